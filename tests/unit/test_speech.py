"""The offline speech pieces on 8 kHz telephone audio: VAD turn detection, recognition."""

import numpy as np
import pytest
from pipecat.audio.vad.vad_analyzer import VADState

from media_plane.providers import vad
from media_plane.providers.offline_stt import decode_pcm
from media_plane.providers.offline_tts import synthesize
from media_plane.providers.vad import SharedSileroVADAnalyzer, phone_vad_params
from tests.speech_corpus import telephone_channel

RATE = 8000


@pytest.fixture(scope="module")
def speech() -> bytes:
    return telephone_channel(
        synthesize("en_US-joe-medium", "Where can I park my car?", RATE, repeatable=True)
    )


async def test_vad_finds_the_start_and_end_of_speech_at_8khz(speech):
    vad = SharedSileroVADAnalyzer(sample_rate=RATE, params=phone_vad_params(0.3))
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
    voiced = speech[: len(speech) // 2]  # no trailing quiet, which would reset the state
    for i in range(0, len(voiced), step):
        await a.analyze_audio(voiced[i : i + step])
    assert not np.array_equal(a._model._state, b._model._state)


class CountingModel:
    def __init__(self, model):
        self.model, self.runs = model, 0

    def __call__(self, x, sr):
        self.runs += 1
        return self.model(x, sr)

    def reset_states(self):
        self.model.reset_states()


async def vad_states(vad: SharedSileroVADAnalyzer, audio: bytes) -> list[VADState]:
    vad.set_sample_rate(RATE)
    step = RATE * 2 * 20 // 1000
    return [await vad.analyze_audio(audio[i : i + step]) for i in range(0, len(audio), step)]


async def test_quiet_windows_skip_the_model_and_decide_the_same(speech, monkeypatch):
    silence = bytes(RATE * 2)
    audio = silence + speech + silence
    gated = SharedSileroVADAnalyzer(sample_rate=RATE, params=phone_vad_params(0.3))
    gated._model = counting = CountingModel(gated._model)
    with_gate = await vad_states(gated, audio)
    monkeypatch.setattr(vad, "SILENCE_RMS", 0)  # the model hears every window
    without_gate = await vad_states(
        SharedSileroVADAnalyzer(sample_rate=RATE, params=phone_vad_params(0.3)), audio
    )
    windows = len(audio) // 2 // 256
    speech_windows = len(speech) // 2 // 256
    assert counting.runs <= speech_windows + 2 < windows / 2  # the two silent seconds skipped
    # Speech starts within a window of the same moment (the model starts from a reset
    # state rather than one run over silence); it ends no later, at most two windows
    # sooner (Silero's confidence trails off over digital silence; the gate says 0 at once).
    start = [s.index(VADState.SPEAKING) for s in (with_gate, without_gate)]
    assert abs(start[0] - start[1]) * 0.02 <= 0.04
    last = [len(s) - 1 - s[::-1].index(VADState.SPEAKING) for s in (with_gate, without_gate)]
    assert last[1] - 4 <= last[0] <= last[1]
    assert with_gate[-1] == without_gate[-1] == VADState.QUIET


def test_recogniser_hears_telephone_speech(speech):
    assert decode_pcm(speech, RATE) == "Where can I park my car?"


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
