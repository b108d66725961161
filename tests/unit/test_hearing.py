"""The VAD hears a caller's short, quiet answer and is not started by noise, and the
recogniser hears its word: the hardest cases of the hearing benchmark
(``benchmarks/hearing.py``), kept as a regression test. With Pipecat's defaults none of the
quiet words below started a turn."""

import queue
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pipecat.audio.vad.vad_analyzer import VADState

from media_plane.barge_in import is_backchannel
from media_plane.pcm import audioop
from media_plane.pipeline import VAD_STOP_SECS
from media_plane.providers.offline_stt import decode_pcm
from media_plane.providers.recogniser import RECOGNISER
from media_plane.providers.vad import SharedSileroVADAnalyzer, phone_vad_params
from switchboard.line_conditions import BadLine, LineConditions, speech_level_dbfs
from tests.speech_corpus import (
    OFFLINE_VOICE,
    at_level,
    clip,
    over_the_line,
    read_wav,
    require_tools,
)

RATE = 8000


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools()
    return tmp_path_factory.mktemp("speech")


def turn_starts(pcm: np.ndarray) -> bool:
    """Whether the platform's VAD takes the caller to be speaking, streamed in 20 ms frames
    with a second of line before and after."""
    vad = SharedSileroVADAnalyzer(sample_rate=RATE, params=phone_vad_params(VAD_STOP_SECS))
    vad.set_sample_rate(RATE)
    line = np.concatenate([np.zeros(RATE, np.int16), pcm, np.zeros(RATE, np.int16)])
    frames = (line[i : i + 160].tobytes() for i in range(0, len(line) - 159, 160))
    return any(vad._run_analyzer(frame) == VADState.SPEAKING for frame in frames)


@pytest.mark.parametrize("voice", [OFFLINE_VOICE, "en-us+f3", "en-gb-scotland+f2"])
@pytest.mark.parametrize("word", ["two", "no", "yes", "okay"])
def test_a_quiet_callers_one_word_answer_starts_a_turn(cache, voice, word):
    quiet = clip(word, voice, -45, cache)  # a soft voice, the handset held away
    assert turn_starts(read_wav(quiet.path))


@pytest.mark.parametrize(
    ("voice", "word"), [(OFFLINE_VOICE, "two"), (OFFLINE_VOICE, "eight"), ("en-us+klatt4", "no")]
)
def test_a_short_answer_starts_a_turn_wherever_it_falls_against_the_vads_windows(
    cache, voice, word
):
    # The caller's 20 ms frames fall at eight offsets into the VAD's 32 ms windows; scored
    # at one phase, each of these words started no turn at two to four of them.
    pcm = read_wav(clip(word, voice, -25, cache).path)
    missed = [
        k for k in range(8) if not turn_starts(np.concatenate([np.zeros(160 * k, np.int16), pcm]))
    ]
    assert missed == []


@pytest.mark.parametrize("kind", ["whitenoise", "brownnoise"])
def test_steady_noise_on_the_line_starts_no_turn(cache, kind):
    path = cache / f"{kind}.wav"
    subprocess.run(
        ["sox", "-n", "-r", str(RATE), "-b", "16", "-c", "1", str(path),
         "synth", "3", kind, "sinc", "300-3400"],
        check=True, capture_output=True,
    )  # fmt: skip
    for level in (-45, -25):  # the gain lifts the quiet one as far as it lifts speech
        assert not turn_starts(over_the_line(at_level(read_wav(path), level)))


def test_a_knock_on_the_line_starts_no_turn():
    rng = np.random.default_rng(5)
    for _ in range(10):
        length = int(RATE * rng.uniform(0.04, 0.15))
        knock = rng.normal(0, 1, length) * np.exp(-np.linspace(0, 5, length))
        pcm = (knock / np.abs(knock).max() * 16000).astype(np.int16)
        assert not turn_starts(over_the_line(pcm))


@pytest.mark.parametrize("word", ["two", "no", "okay"])
def test_an_answer_over_a_noisy_line_starts_a_turn(cache, word):
    # Noise 5 dB under the speech, before and after it too: the gain must not lift the
    # noise floor so far that Silero stops hearing the speech (it did: 9% of words).
    pcm = read_wav(clip(word, OFFLINE_VOICE, -25, cache).path)
    line = BadLine(LineConditions(noise_snr_db=5, seed=3), speech_level_dbfs(pcm))
    padded = np.concatenate([np.zeros(RATE, np.int16), pcm, np.zeros(RATE, np.int16)])
    noisy = b"".join(
        line.noisy(audioop.lin2ulaw(padded[i : i + 160].tobytes(), 2))
        for i in range(0, len(padded) - 159, 160)
    )
    # turn_starts pads with digital silence; here the noise is on the whole line.
    vad = SharedSileroVADAnalyzer(sample_rate=RATE, params=phone_vad_params(VAD_STOP_SECS))
    vad.set_sample_rate(RATE)
    pcm_line = audioop.ulaw2lin(noisy, 2)
    frames = (pcm_line[i : i + 320] for i in range(0, len(pcm_line) - 319, 320))
    assert any(vad._run_analyzer(frame) == VADState.SPEAKING for frame in frames)


@pytest.mark.parametrize(
    ("voice", "answer"),
    [
        (OFFLINE_VOICE, "four five six"),  # a number said digit by digit stays digits
        (OFFLINE_VOICE, "zero"),
        ("en-us+f3", "two"),
        ("en-us+f3", "six"),
        ("en-us", "yes"),
        ("en-us", "okay"),
    ],
)
def test_a_quiet_short_answer_is_recognised(cache, voice, answer):
    """The offline recogniser hears a one-word answer at -40 dBFS as its word (PocketSphinx,
    before it, heard 14% of these; docs/call-quality.md)."""
    pcm = read_wav(clip(answer, voice, -40, cache).path)
    line = np.concatenate([np.zeros(RATE, np.int16), pcm, np.zeros(RATE // 2, np.int16)])
    heard = decode_pcm(line.tobytes(), RATE)
    assert re.findall(r"[a-z]+", heard.lower()) == answer.split()


def heard_over_the_agent(pcm: np.ndarray) -> str:
    """What the recogniser makes of an utterance that began while the agent spoke."""
    results: queue.SimpleQueue = queue.SimpleQueue()
    session = RECOGNISER.open(RATE, lambda kind, payload: results.put((kind, payload)))
    try:
        line = np.concatenate([np.zeros(RATE // 2, np.int16), pcm, np.zeros(RATE // 4, np.int16)])
        session.start(line.tobytes(), over_agent=True)
        session.end()
        kind, text = results.get(timeout=60)
    finally:
        session.close()
    assert kind == "text", text
    return text


@pytest.mark.parametrize(
    ("voice", "said"),
    [(OFFLINE_VOICE, "mm hmm"), ("en-029+m3", "uh huh"), ("en-us+f3", "yeah")],
)
def test_a_hum_over_the_agent_is_heard_as_one(cache, voice, said):
    """Without being told what callers say over the agent, the recogniser wrote these as
    "Remember." and "Thank you.": words, which cut the agent off."""
    heard = heard_over_the_agent(read_wav(clip(said, voice, -40, cache).path))
    assert is_backchannel(heard) or not heard, heard


@pytest.mark.parametrize(
    ("voice", "said"), [(OFFLINE_VOICE, "wait"), ("en-gb", "no, wait"), (OFFLINE_VOICE, "no")]
)
def test_an_interruption_over_the_agent_is_still_heard_as_words(cache, voice, said):
    heard = heard_over_the_agent(read_wav(clip(said, voice, -40, cache).path))
    assert re.findall(r"[a-z]+", heard.lower()) == re.findall(r"[a-z]+", said), heard
