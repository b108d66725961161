"""A media stream's limits, on a socket that delivers whatever a test scripts."""

import asyncio

import pytest
from loguru import logger

from media_plane.agent import AgentConfig
from media_plane.calls import Call
from media_plane.ledger import Announced
from media_plane.telephony import stream_guard
from media_plane.telephony.stream_guard import StreamGuard

AGENT = AgentConfig("t1", "a1", "n", "p", "g", "en-US", "en_US-joe-medium", ())


class ScriptedSocket:
    """Delivers the scripted ASGI messages, then waits; records how it was closed."""

    def __init__(self, *messages: dict) -> None:
        self.inbox = list(messages)
        self.closed_with: int | None = None

    async def receive(self) -> dict:
        if self.closed_with is not None:
            return {"type": "websocket.disconnect", "code": self.closed_with}
        if self.inbox:
            return self.inbox.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = code


def quiet_guard(call: Call | None = None) -> StreamGuard:
    """A guard for a serializer under test, on a socket that never sends anything."""
    return StreamGuard(ScriptedSocket(), logger, call)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def text(body: str = "{}") -> dict:
    return {"type": "websocket.receive", "text": body}


def new_call() -> Call:
    return Call(Announced("call_x", "CA1", AGENT))


async def read(guard: StreamGuard, n: int) -> list[str]:
    got: list[str] = []
    async for message in guard.messages():
        got.append(message)
        if len(got) == n:
            break
    return got


async def test_a_flood_of_messages_is_refused_after_the_burst_a_stall_can_release():
    call = new_call()
    socket = ScriptedSocket(*[text() for _ in range(2000)])
    guard = StreamGuard(socket, logger, call, clock=Clock())  # type: ignore[arg-type]
    got = await read(guard, 2000)
    assert len(got) == stream_guard.MESSAGE_BURST  # all at one instant: the burst, no more
    assert socket.closed_with == stream_guard.POLICY_VIOLATION
    assert call.end_reason == "stream_refused"
    event = call._events.get_nowait()
    assert (event.kind, event.data) == ("stream.refused", {"reason": "message_flood"})


async def test_messages_at_the_carriers_pace_are_never_refused():
    clock = Clock()
    socket = ScriptedSocket(*[text() for _ in range(3000)])
    guard = StreamGuard(socket, logger, clock=clock)  # type: ignore[arg-type]
    n = 0
    async for _ in guard.messages():
        n += 1
        clock.now += 0.02 if n % 500 else 5.0  # 50 a second, with a 5 s stall now and then
        if n == 3000:
            break
    assert n == 3000 and socket.closed_with is None


async def test_audio_faster_than_real_time_closes_the_stream():
    clock = Clock()
    call = new_call()
    socket = ScriptedSocket()
    guard = StreamGuard(socket, logger, call, clock=clock)  # type: ignore[arg-type]
    # Real time, then a 3 s stall whose backlog arrives at once: still within real time.
    for _ in range(100):
        assert await guard.admit_audio(0.02)
        clock.now += 0.02
    clock.now += 3.0
    for _ in range(150):
        assert await guard.admit_audio(0.02)
    # Then 500 times real time: refused once more than 2 s ahead.
    admitted = 0
    while await guard.admit_audio(0.02):
        admitted += 1
        clock.now += 0.02 / 500
    assert admitted == pytest.approx(stream_guard.AUDIO_LEAD_SECS / 0.02, abs=2)
    assert socket.closed_with == stream_guard.POLICY_VIOLATION
    assert call._events.get_nowait().data == {"reason": "audio_faster_than_real_time"}
    assert not await guard.admit_audio(0.02)  # and stays refused


async def test_a_backlog_read_late_because_this_process_stalled_is_not_ahead():
    """The process was busy when the call began (a neighbour starting on the same cores):
    the carrier's first 5 s of audio wait in the socket and are read at once."""
    clock = Clock()
    socket = ScriptedSocket()
    guard = StreamGuard(socket, logger, new_call(), clock=clock)  # type: ignore[arg-type]
    clock.now += 5.0
    for _ in range(250):
        assert await guard.admit_audio(0.02)
    for _ in range(100):  # then real time
        clock.now += 0.02
        assert await guard.admit_audio(0.02)
    assert socket.closed_with is None


async def test_binary_frames_are_skipped_and_a_too_big_message_is_on_the_timeline():
    call = new_call()
    socket = ScriptedSocket(
        {"type": "websocket.receive", "bytes": b"\x00" * 10},
        text("a"),
        {"type": "websocket.disconnect", "code": 1009},  # the server's own refusal
    )
    guard = StreamGuard(socket, logger, call)  # type: ignore[arg-type]
    assert await read(guard, 10) == ["a"]
    assert guard.skipped == {"binary_frame": 1}
    assert call._events.get_nowait().data == {"reason": "message_too_big"}
    assert call.end_reason == "stream_refused"
