"""What a provider's media stream may send, checked where each message enters.

A media stream is one call's audio at real time: Twilio sends a ~0.2 KB ``media`` message
every 20 ms, Exotel a few KB every 100-200 ms, plus a ``mark`` echo per reply. Every
message is work on the event loop that carries every other call's audio, so a stream far
outside that shape is broken or hostile, and it is refused (closed with a policy code, the
reason on the call's timeline and in the log as ``stream.refused``) rather than served:

- One message: at most 16 KB (``MAX_MESSAGE_BYTES``, the server's ``ws_max_size``). The
  largest real one (Exotel's media chunk, Twilio's ``start`` with custom parameters) is
  under 8 KB; one of 16 MB blocked the event loop for 134 s. The server closes the socket
  (1009) before it buffers more.
- Messages: 100 a second, in bursts of up to 500 (``MESSAGES_PER_SEC``, ``MESSAGE_BURST``).
  Twilio sends 50 media messages a second plus marks; the burst covers the backlog a
  network stall releases (10 s of Twilio's frames).
- Audio: at most 2 s ahead of real time (``AUDIO_LEAD_SECS``), real time counted from
  when the stream opened (``STARTUP_STALL_SECS`` at most before its first audio is read).
  A carrier sends audio as it is spoken: after a stall it catches up, it never gets ahead.
  The stream is closed, not thinned: a sender 2 s ahead is not a phone line, and dropping
  its frames would still cost the work of reading them.

A malformed message (not JSON, a field of the wrong type) is skipped, never fatal; the
stream's serializer counts it here, and only the first of each kind is logged (so a
flood of bad messages cannot flood the log either); the counts go on the call's timeline
as ``stream.skipped`` when the call ends.
"""

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from fastapi import WebSocket

if TYPE_CHECKING:
    from media_plane.calls import Call

MAX_MESSAGE_BYTES = 16 * 1024
MESSAGES_PER_SEC = 100.0
MESSAGE_BURST = 500.0
AUDIO_LEAD_SECS = 2.0
# Real time counts from the stream's first audio as this process reads it, less the time
# the stream was open before that, up to this much: a process that was busy (a neighbour
# starting up on the same cores, a pause) reads a backlog that looks ahead of real time
# only because it was read late. A scale-out's start-up stall cut 7 calls of 12 without it.
STARTUP_STALL_SECS = 10.0
POLICY_VIOLATION = 1008  # RFC 6455: the close code for a stream that is refused
# Close codes the server sends on its own when a peer breaks the protocol.
PROTOCOL_REFUSALS = {1007: "invalid_text", 1009: "message_too_big"}


class StreamGuard:
    """One media stream's limits: read its messages through ``messages()`` and hand its
    caller audio to ``admit_audio``."""

    def __init__(
        self,
        websocket: WebSocket,
        log,
        call: "Call | None" = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._websocket = websocket
        self._log = log
        self._call = call
        self._clock = clock
        self._tokens = MESSAGE_BURST
        self._refilled = clock()
        self._opened = clock()
        self._audio_from: float | None = None
        self._audio_secs = 0.0
        self.skipped: Counter[str] = Counter()
        self.refused: str | None = None

    async def messages(self) -> AsyncIterator[str]:
        """The stream's text messages until it closes or is refused. Neither carrier sends
        binary frames: one is skipped."""
        while self.refused is None:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                reason = PROTOCOL_REFUSALS.get(message.get("code") or 1000)
                if reason is not None:  # the server already closed the socket
                    self._note_refusal(reason)
                return
            if not self._within_rate():
                await self.refuse("message_flood")
                return
            text = message.get("text")
            if text is None:
                self.skip("binary_frame")
                continue
            yield text

    async def admit_audio(self, secs: float) -> bool:
        """Whether ``secs`` of caller audio, just received, keeps the stream within real
        time; if not, the stream is refused."""
        now = self._clock()
        if self._audio_from is None:
            self._audio_from = max(self._opened, now - STARTUP_STALL_SECS)
        self._audio_secs += secs
        if self._audio_secs - (now - self._audio_from) > AUDIO_LEAD_SECS:
            await self.refuse("audio_faster_than_real_time")
            return False
        return self.refused is None

    def skip(self, why: str) -> None:
        """A malformed message was skipped."""
        self.skipped[why] += 1
        if self.skipped[why] == 1:
            self._log.warning("stream.message_skipped", why=why)

    async def refuse(self, reason: str) -> None:
        """Close the stream with the policy code and say why, once."""
        if self.refused is not None:
            return
        self._note_refusal(reason)
        with contextlib.suppress(RuntimeError):  # already closing
            await self._websocket.close(code=POLICY_VIOLATION, reason=reason)

    def _note_refusal(self, reason: str) -> None:
        self.refused = reason
        self._log.warning("stream.refused", reason=reason)
        if self._call is not None:
            self._call.record("stream.refused", reason=reason)
            self._call.end_reason = "stream_refused"

    def _within_rate(self) -> bool:
        now = self._clock()
        self._tokens = min(MESSAGE_BURST, self._tokens + (now - self._refilled) * MESSAGES_PER_SEC)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
