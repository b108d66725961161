"""The simulated caller's bad line: what it does to the caller's audio and packets, the
same for the same seed."""

import numpy as np

from media_plane.pcm import audioop
from switchboard.line_conditions import BadLine, LineConditions, speech_level_dbfs, with_gain

SPEECH = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 3000).astype(np.int16)


def sent(conditions: LineConditions, n: int = 1000) -> list[tuple[float, int]]:
    """(arrival time, message number) of n messages handed over every 20 ms."""
    line, arrived = BadLine(conditions, -20.0), []
    for k in range(n):
        arrived += [(k * 0.02, m["n"]) for m in line.send({"n": k}, k * 0.02)]
    for k in range(n, n + 50):  # the caller keeps ticking: late ones still arrive
        arrived += [(k * 0.02, m["n"]) for m in line.due(k * 0.02)]
    return arrived


def test_a_clean_line_delivers_every_message_at_once_in_order():
    assert sent(LineConditions()) == [(k * 0.02, k) for k in range(1000)]


def test_loss_drops_about_that_share_and_the_same_ones_for_a_seed():
    lossy = sent(LineConditions(loss_pct=5, seed=7))
    assert 30 <= 1000 - len(lossy) <= 70
    assert lossy == sent(LineConditions(loss_pct=5, seed=7))
    assert lossy != sent(LineConditions(loss_pct=5, seed=8))


def test_jitter_delays_messages_in_order_by_at_most_its_bound():
    late = sent(LineConditions(jitter_ms=60, seed=1))
    numbers = [n for _, n in late]
    assert numbers == sorted(numbers) == list(range(1000))
    delays = [at - n * 0.02 for at, n in late]
    assert max(delays) <= 0.06 + 0.02 and np.mean(delays) > 0.01


def test_noise_sits_the_asked_distance_under_the_speech():
    line = BadLine(LineConditions(noise_snr_db=10, seed=3), speech_level_dbfs(SPEECH))
    silence = bytes([0xFF]) * 8000
    noise = np.frombuffer(audioop.ulaw2lin(line.noisy(silence), 2), np.int16)
    noise_dbfs = 20 * np.log10(np.sqrt(np.mean(noise.astype(float) ** 2)) / 32768)
    snr = speech_level_dbfs(SPEECH) - noise_dbfs
    assert 9 < snr < 11


def test_gain_sets_the_callers_level():
    assert abs(speech_level_dbfs(with_gain(SPEECH, -20)) - (speech_level_dbfs(SPEECH) - 20)) < 0.1
