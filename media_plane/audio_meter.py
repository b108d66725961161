"""How late the caller is heard: the media plane's own health signal, at ``/metrics``.

A caller's audio is due every 20 ms. Each frame carries its place in the stream (Twilio's
``media.timestamp``), so the stream's clock can be anchored at the earliest-arriving frame:
when the VAD analyses a frame, how long after its due time that happened is the inbound
delay, with socket backlog, event-loop lag and pipeline queues all included. An overloaded
pod shows it here first, long before calls fail. A frame received but never analysed
before the call ended is counted as dropped.

The per-frame cost is a clock read and a deque append on receipt, and a pop and a
histogram observation at the VAD.
"""

import time
from collections import deque

from prometheus_client import Counter, Histogram

DELAY = Histogram(
    "switchboard_inbound_audio_delay_seconds",
    "Caller audio frame: due time in the stream -> analysed by the VAD.",
    # Fine below 20 ms, where a healthy pod lives; the limit for "calls per core" is 20 ms.
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2,
             0.5, 1.0, 2.0),
)  # fmt: skip
FRAMES = Counter(
    "switchboard_inbound_audio_frames",
    "Caller audio frames, by stage: received from the socket, analysed by the VAD, or "
    "dropped (received but never analysed).",
    ["stage"],
)
_RECEIVED, _ANALYSED, _DROPPED = (FRAMES.labels(s) for s in ("received", "analysed", "dropped"))


class InboundAudioMeter:
    """One call's inbound audio, from the serializer (``received``) to the VAD
    (``analysed``). Frames reach the VAD in order, so the oldest pending one is the one
    analysed; anything skipped over never will be."""

    def __init__(self) -> None:
        self._pending: deque[tuple[bytes, float]] = deque()
        self._origin: float | None = None  # monotonic time of the stream's position 0

    def received(self, audio: bytes, stream_ms: int | None) -> None:
        now = time.monotonic()
        if stream_ms is None:
            due = now
        else:
            # The earliest arrival seen for any frame is the best estimate of the clock.
            origin = now - stream_ms / 1000
            if self._origin is None or origin < self._origin:
                self._origin = origin
            due = self._origin + stream_ms / 1000
        self._pending.append((audio, due))
        _RECEIVED.inc()

    def analysed(self, audio: bytes) -> None:
        while self._pending:
            pending, due = self._pending.popleft()
            if pending is audio:
                DELAY.observe(max(0.0, time.monotonic() - due))
                _ANALYSED.inc()
                return
            _DROPPED.inc()

    def close(self) -> None:
        """The call ended: whatever was never analysed was dropped."""
        _DROPPED.inc(len(self._pending))
        self._pending.clear()
