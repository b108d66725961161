"""The inbound audio meter: each caller frame's delay from its due time in the stream to
the VAD, and frames received but never analysed counted as dropped."""

import pytest

from media_plane import audio_meter
from media_plane.audio_meter import DELAY, FRAMES, InboundAudioMeter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(audio_meter.time, "monotonic", clock)
    return clock


def counts() -> tuple[float, float, float, float]:
    """Frames received, analysed and dropped so far, and the sum of observed delays."""
    stage = {s: FRAMES.labels(s)._value.get() for s in ("received", "analysed", "dropped")}
    return stage["received"], stage["analysed"], stage["dropped"], DELAY._sum.get()


def frame(n: int) -> bytes:
    return bytes([n]) * 320  # a distinct object per frame


def test_delay_is_measured_from_the_frames_due_time_in_the_stream(clock: Clock):
    meter = InboundAudioMeter()
    before = counts()
    a, b, c = frame(1), frame(2), frame(3)
    meter.received(a, 0)  # stream position 0 arrives at t=100: the anchor
    clock.now = 100.020
    meter.received(b, 20)  # on time
    clock.now = 100.100
    meter.received(c, 40)  # 60 ms late on the wire
    clock.now = 100.110
    for f in (a, b, c):
        meter.analysed(f)
    received, analysed, dropped, delay_sum = (x - y for x, y in zip(counts(), before, strict=True))
    assert (received, analysed, dropped) == (3, 3, 0)
    # Due at 100.000, 100.020, 100.040; analysed at 100.110.
    assert delay_sum == pytest.approx(0.110 + 0.090 + 0.070)


def test_an_early_frame_moves_the_anchor(clock: Clock):
    meter = InboundAudioMeter()
    late_first, on_time = frame(1), frame(2)
    clock.now = 100.050
    meter.received(late_first, 0)  # the first frame was held up 50 ms
    clock.now = 100.020 + 0.005
    # A later frame arriving sooner shows the stream actually began by t=100.005.
    meter.received(on_time, 20)
    before = counts()
    meter.analysed(late_first)  # at 100.025, before its (late) due time: no delay
    clock.now = 100.040
    meter.analysed(on_time)  # due at 100.005 + 0.020: 15 ms, not 0 from the first anchor
    assert counts()[3] - before[3] == pytest.approx(0.015)


def test_frames_never_analysed_are_dropped(clock: Clock):
    meter = InboundAudioMeter()
    before = counts()
    frames = [frame(i) for i in range(5)]
    for i, f in enumerate(frames):
        meter.received(f, i * 20)
    meter.analysed(frames[2])  # 0 and 1 were skipped over
    meter.close()  # 3 and 4 were still waiting when the call ended
    received, analysed, dropped, _ = (x - y for x, y in zip(counts(), before, strict=True))
    assert (received, analysed, dropped) == (5, 1, 4)


def test_frames_without_a_stream_position_are_due_on_arrival(clock: Clock):
    meter = InboundAudioMeter()
    f = frame(1)
    meter.received(f, None)
    clock.now += 0.004
    before = counts()
    meter.analysed(f)
    assert counts()[3] - before[3] == pytest.approx(0.004)
