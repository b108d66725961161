"""The offline speech pieces on 8 kHz telephone audio: VAD turn detection, recognition."""

import numpy as np
import pytest
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

from media_plane.providers.calibration import telephone_channel
from media_plane.providers.offline_stt import decode_pcm, rerank
from media_plane.providers.offline_tts import synthesize
from media_plane.providers.vad import SharedSileroVADAnalyzer

RATE = 8000


@pytest.fixture(scope="module")
def speech() -> bytes:
    return telephone_channel(
        synthesize("en_US-joe-medium", "Where can I park my car?", RATE, repeatable=True)
    )


async def test_vad_finds_the_start_and_end_of_speech_at_8khz(speech):
    vad = SharedSileroVADAnalyzer(sample_rate=RATE, params=VADParams(stop_secs=0.3))
    vad.set_sample_rate(RATE)
    silence = bytes(RATE * 2)  # one second
    audio = silence + speech + silence
    step = RATE * 2 * 20 // 1000
    states = []
    for i in range(0, len(audio), step):
        states.append(await vad.analyze_audio(audio[i : i + step]))
    first_speaking = states.index(VADState.SPEAKING)
    assert 0.9 < first_speaking * 0.02 < 1.5  # speech starts after the first second
    assert states[-1] == VADState.QUIET  # and the turn ends in the trailing silence
    last_speaking = len(states) - 1 - states[::-1].index(VADState.SPEAKING)
    speech_end = (len(silence) + len(speech)) / (RATE * 2)
    assert speech_end - 0.3 < last_speaking * 0.02 < speech_end + 0.6


async def test_calls_share_one_vad_model_but_not_its_state(speech):
    a = SharedSileroVADAnalyzer(sample_rate=RATE)
    b = SharedSileroVADAnalyzer(sample_rate=RATE)
    a.set_sample_rate(RATE)
    assert a._model.session is b._model.session
    step = RATE * 2 * 20 // 1000
    for i in range(0, len(speech), step):
        await a.analyze_audio(speech[i : i + step])
    assert not np.array_equal(a._model._state, b._model._state)


def test_recogniser_hears_telephone_speech(speech):
    assert decode_pcm(speech, RATE).split()[:3] == ["where", "can", "i"]


def test_rerank_prefers_the_agents_terms_unless_far_down_the_list():
    hyps = ["how much good quinn in cause", "how much the cleaning cost"]
    terms = frozenset({"clean", "cost"})
    assert rerank(hyps, terms) == "how much the cleaning cost"
    assert rerank(hyps, frozenset()) == hyps[0]
    far = ["top guess", *["filler"] * 60, "cleaning cost"]
    assert rerank(far, terms) == "top guess"
    assert rerank([], terms) == ""


def test_phrase_cache_makes_each_phrase_once_even_when_asked_concurrently():
    import threading
    import time

    from media_plane.providers.offline_tts import PhraseCache

    cache = PhraseCache(max_entries=2)
    made = []

    def make():
        made.append(1)
        time.sleep(0.2)
        return b"pcm"

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(cache.get_or_make(("t1", "v", 8000, "hi"), make))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"pcm"] * 3 and len(made) == 1
    # Keys carry the tenant: another tenant's identical phrase is its own entry.
    cache.get_or_make(("t2", "v", 8000, "hi"), make)
    assert len(made) == 2
