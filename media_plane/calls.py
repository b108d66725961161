"""Call lifecycle: calls announced by a webhook, live calls, their timeline events.

The registry is in-process, the embedded default for coordination. Its contract (claim a
call id once, count live calls, remember a call's outcome until the provider's follow-up
request) is what a Redis-backed registry will keep when pods multiply.
"""

import asyncio
import secrets
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from loguru import logger

from media_plane.agent import AgentConfig, CallEventRecord
from media_plane.audio_meter import InboundAudioMeter
from media_plane.breakers import CallProviders
from media_plane.events import EventSink
from media_plane.http_tools import ToolAccess
from media_plane.providers.credentials import Credentials
from media_plane.recording import CallRecorder

PENDING_TTL_SECS = 60.0  # a provider opens the stream within seconds of the webhook
OUTCOME_TTL_SECS = 300.0
# A call's timeline is bounded: a long, busy call writes ~5 events a turn (a turn every
# ~10 s: ~2,000 an hour). Past the budget, events are counted by kind, not stored, and the
# counts go on ``call.ended``; the call's own lifecycle (``call.*``) is always stored.
MAX_TIMELINE_EVENTS = 5000
EVENT_BATCH = 200  # events written at once (one request to a separate control plane)


def new_call_id() -> str:
    # Unguessable: the id in a stream URL is what admits a WebSocket to a call.
    return "call_" + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Prepared:
    """What a call needs before its stream opens, made ready at the webhook."""

    key_terms: frozenset[str]  # words the STT should favour (the tenant's documents')
    credentials: Credentials  # its cloud providers' keys
    tools: ToolAccess = field(default_factory=lambda: ToolAccess(secret=None))  # its own tools


@dataclass
class Call:
    call_id: str
    provider_call_sid: str
    agent: AgentConfig
    number: str | None = None  # the tenant's number that was called
    provider_account: str | None = None  # the provider's account the number is on
    created_at: float = field(default_factory=time.time)
    transfer_to: str | None = None
    prepared: asyncio.Task[Prepared] | None = None
    recorder: CallRecorder | None = None
    audio_in: InboundAudioMeter = field(default_factory=InboundAudioMeter)
    providers: CallProviders = field(default_factory=CallProviders)  # for the breakers
    end_reason: str | None = None  # set by whatever ends the call other than a hang-up
    max_secs: float | None = None  # how long it may last (the plan's and platform's limits)
    tool_calls: int = 0  # its tool calls so far (tools/__init__.py bounds them)
    tool_calls_this_turn: int = 0
    events_dropped: dict[str, int] = field(default_factory=dict)  # past the budget, by kind
    _seq: int = 0
    _events: asyncio.Queue[CallEventRecord | None] = field(default_factory=asyncio.Queue)

    @property
    def tenant_id(self) -> str:
        return self.agent.tenant_id

    def record(self, kind: str, **data: object) -> None:
        """Append an event to the call's timeline (written in order by the call's writer)."""
        if self._seq >= MAX_TIMELINE_EVENTS and not kind.startswith("call."):
            self.events_dropped[kind] = self.events_dropped.get(kind, 0) + 1
            return
        self._seq += 1
        self._events.put_nowait(
            CallEventRecord(
                event_id=uuid.uuid4().hex,
                tenant_id=self.tenant_id,
                call_id=self.call_id,
                seq=self._seq,
                kind=kind,
                at=time.time(),
                data=dict(data),
            )
        )

    async def write_events(self, sink: EventSink) -> None:
        """Drain the timeline to its sink until the call closes it."""
        while True:
            first = await self._events.get()
            if first is None:
                return
            batch = [first]
            while not self._events.empty() and len(batch) < EVENT_BATCH:
                nxt = self._events.get_nowait()
                if nxt is None:
                    await self._write(sink, batch)
                    return
                batch.append(nxt)
            await self._write(sink, batch)

    async def _write(self, sink: EventSink, batch: list[CallEventRecord]) -> None:
        try:
            await sink.publish(batch)
        except Exception:
            logger.bind(tenant_id=self.tenant_id, call_id=self.call_id).exception(
                "call.events_write_failed"
            )

    def close_timeline(self) -> None:
        self._events.put_nowait(None)


class CallRegistry:
    def __init__(self) -> None:
        self._pending: dict[str, tuple[float, Call]] = {}
        self._live: dict[str, Call] = {}
        self._finished: dict[str, tuple[float, Call]] = {}
        self._by_provider_sid: dict[str, str] = {}
        self._finished_by_provider_sid: dict[str, str] = {}
        self._admitting: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def admission_lock(self, tenant_id: str) -> asyncio.Lock:
        """Held while a tenant's new call is checked against its plan and announced."""
        return self._admitting[tenant_id]

    def announce(
        self, provider_call_sid: str, agent: AgentConfig, number: str | None = None
    ) -> Call:
        """A webhook announced a call. Provider retries get the same call, never a second."""
        self._expire()
        existing = self._by_provider_sid.get(provider_call_sid)
        if existing and existing in self._pending:
            return self._pending[existing][1]
        call = Call(
            call_id=new_call_id(), provider_call_sid=provider_call_sid, agent=agent, number=number
        )
        self._pending[call.call_id] = (time.monotonic(), call)
        self._by_provider_sid[provider_call_sid] = call.call_id
        return call

    def announced(self, provider_call_sid: str) -> Call | None:
        """The pending call a webhook already announced for this provider call, if any."""
        call_id = self._by_provider_sid.get(provider_call_sid)
        entry = self._pending.get(call_id) if call_id else None
        return entry[1] if entry else None

    def pending(self, call_id: str) -> Call | None:
        """The announced call whose stream has not opened yet, if any (not claiming it)."""
        self._expire()
        entry = self._pending.get(call_id)
        return entry[1] if entry else None

    def claim(self, call_id: str) -> Call | None:
        """The stream for an announced call opened. Each call id is claimed once."""
        self._expire()
        entry = self._pending.pop(call_id, None)
        if entry is None:
            return None
        call = entry[1]
        self._live[call_id] = call
        return call

    def finish(self, call: Call) -> None:
        self._live.pop(call.call_id, None)
        self._by_provider_sid.pop(call.provider_call_sid, None)
        self._finished[call.call_id] = (time.monotonic(), call)
        self._finished_by_provider_sid[call.provider_call_sid] = call.call_id

    def finished(self, call_id: str) -> Call | None:
        self._expire()
        entry = self._finished.get(call_id)
        return entry[1] if entry else None

    def finished_for(self, provider_call_sid: str) -> Call | None:
        """The ended call the provider knows by this id (a provider's follow-up request
        that, like Exotel's, names the call only by its own id)."""
        call_id = self._finished_by_provider_sid.get(provider_call_sid)
        return self.finished(call_id) if call_id else None

    def active_for(self, tenant_id: str) -> int:
        """The tenant's calls announced or under way (what a concurrency quota counts)."""
        self._expire()
        pending = sum(1 for _, call in self._pending.values() if call.tenant_id == tenant_id)
        return pending + sum(1 for call in self._live.values() if call.tenant_id == tenant_id)

    @property
    def live_count(self) -> int:
        return len(self._live)

    def _expire(self) -> None:
        now = time.monotonic()
        for call_id, (at, call) in list(self._pending.items()):
            if now - at > PENDING_TTL_SECS:
                del self._pending[call_id]
                self._by_provider_sid.pop(call.provider_call_sid, None)
        for call_id, (at, call) in list(self._finished.items()):
            if now - at > OUTCOME_TTL_SECS:
                del self._finished[call_id]
                if self._finished_by_provider_sid.get(call.provider_call_sid) == call_id:
                    del self._finished_by_provider_sid[call.provider_call_sid]
