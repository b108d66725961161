"""Call lifecycle: calls announced by a webhook, live calls, their timeline events.

The registry holds this process's own calls; what the fleet must agree on is in the call
ledger (``media_plane/ledger.py``): in-process by default, in Redis for many processes.
"""

import asyncio
import math
import secrets
import time
import uuid
from dataclasses import dataclass, field

from loguru import logger

from media_plane import metrics
from media_plane.agent import AgentConfig, CallEventRecord
from media_plane.audio_meter import InboundAudioMeter
from media_plane.breakers import CallProviders
from media_plane.events import EventSink
from media_plane.http_tools import ToolAccess
from media_plane.ledger import (
    HEARTBEAT_SECS,
    PENDING_TTL_SECS,
    Announced,
    CallLedger,
    LedgerUnavailable,
    LocalLedger,
)
from media_plane.providers.credentials import Credentials
from media_plane.recording import CallRecorder

# A call's timeline is bounded: a long, busy call writes ~5 events a turn (a turn every
# ~10 s: ~2,000 an hour). Past the budget, events are counted by kind, not stored, and the
# counts go on ``call.ended``; the call's own lifecycle (``call.*``) is always stored.
MAX_TIMELINE_EVENTS = 5000
EVENT_BATCH = 200  # events written at once (one request to a separate control plane)
STREAM_GRACE_SECS = 10.0  # a draining process waits this long for an announced call's stream


def new_call_id() -> str:
    # Unguessable: the id in a stream URL is what admits a WebSocket to a call.
    return "call_" + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Prepared:
    """What a call needs before its stream opens, made ready at the webhook."""

    credentials: Credentials  # its cloud providers' keys
    tools: ToolAccess = field(default_factory=lambda: ToolAccess(secret=None))  # its own tools


@dataclass
class Call:
    """A call this process runs (or made ready): what was announced, and what it is doing."""

    announced: Announced
    created_at: float = field(default_factory=time.time)
    transfer_to: str | None = None
    prepared: asyncio.Task[Prepared] | None = None
    recorder: CallRecorder | None = None
    audio_in: InboundAudioMeter = field(default_factory=InboundAudioMeter)
    providers: CallProviders = field(default_factory=CallProviders)  # for the breakers
    end_reason: str | None = None  # set by whatever ends the call other than a hang-up
    started_at: float | None = None  # monotonic: when its pipeline started (billed from)
    ended_at: float | None = None
    drawn_secs: float = 0.0  # of its tenant's minutes for the month, from the ledger
    unmetered_secs: float = 0.0  # allowed while the ledger could not be reached
    tool_calls: int = 0  # its tool calls so far (tools/__init__.py bounds them)
    tool_calls_this_turn: int = 0
    events_dropped: dict[str, int] = field(default_factory=dict)  # past the budget, by kind
    _seq: int = 0
    _events: asyncio.Queue[CallEventRecord | None] = field(default_factory=asyncio.Queue)

    @property
    def call_id(self) -> str:
        return self.announced.call_id

    @property
    def provider_call_sid(self) -> str:
        return self.announced.provider_call_sid

    @property
    def agent(self) -> AgentConfig:
        return self.announced.agent

    @property
    def tenant_id(self) -> str:
        return self.agent.tenant_id

    @property
    def number(self) -> str | None:
        return self.announced.number

    @property
    def provider_account(self) -> str | None:
        return self.announced.provider_account

    def elapsed(self) -> float:
        """Seconds since its pipeline started (to its end, once it ended): its billed length."""
        if self.started_at is None:
            return 0.0
        return (self.ended_at or time.monotonic()) - self.started_at

    def allowed_secs(self) -> float:
        """How long it may run: the plan's longest call (or the platform's), and while the
        tenant's minutes for the month last, what it has drawn of them."""
        limit = self.announced.max_secs if self.announced.max_secs is not None else math.inf
        if self.announced.minutes is not None:
            limit = min(limit, self.drawn_secs + self.unmetered_secs)
        return limit

    def unused_secs(self) -> float:
        """What it drew of its tenant's minutes and did not use: given back as it ends."""
        return max(0.0, self.drawn_secs - self.elapsed())

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
    """This process's calls: those it announced (made ready while their stream opens) and
    those it runs. What must hold across the fleet (a call announced and claimed once, a
    tenant's lines, the live-call gauge, a call's outcome) is the ledger's."""

    def __init__(self, ledger: CallLedger | None = None, capacity: int = 30) -> None:
        self.ledger: CallLedger = ledger or LocalLedger()
        self.capacity = capacity  # what the process is sized for: reported, not enforced
        self.last_finished = float("-inf")  # when its last call ended (monotonic)
        self.draining = False  # SIGTERM: it takes no new calls, its live calls go on
        metrics.CAPACITY.set(capacity)
        metrics.HEADROOM.set(capacity)
        self._preparing: dict[str, tuple[float, Call]] = {}  # announced here, no stream yet
        self._live: dict[str, Call] = {}

    def preparing(self, call: Call) -> None:
        """Keep the call this process announced while its stream opens (here, or anywhere
        the proxy sends it: then its owner makes it ready again)."""
        self._expire()
        self._preparing[call.call_id] = (time.monotonic(), call)

    async def pending(self, call_id: str) -> Announced | None:
        """The announced call whose stream has not opened yet, if any (not claiming it)."""
        return await self.ledger.pending(call_id)

    async def claim(self, call_id: str, tenant_id: str) -> Call | None:
        """The stream for an announced call opened here. Each call is claimed once,
        fleet-wide; a call announced by another process is made ready here."""
        announced = await self.ledger.claim(call_id, tenant_id)
        if announced is None:
            return None
        entry = self._preparing.pop(call_id, None)
        call = entry[1] if entry else Call(announced)
        self._live[call_id] = call
        self._count()
        return call

    async def finish(self, call: Call) -> None:
        """The call ended: its line, its place on the gauge and its outcome are the
        ledger's to settle, once, whichever of its ends comes first."""
        if self._live.pop(call.call_id, None) is None:
            return
        self.last_finished = time.monotonic()
        self._count()
        try:
            await self.ledger.finish(call.announced, call.transfer_to, call.unused_secs())
        except LedgerUnavailable:
            # Its line and gauge entry expire with their lease; only a transfer's follow-up
            # (the provider asking whom to dial) is lost, and it hangs up.
            logger.bind(tenant_id=call.tenant_id, call_id=call.call_id).exception(
                "call.ledger_unavailable"
            )

    async def keep_leases(self) -> None:
        """For the process's life: renew its live calls' leases (so they stay on the gauge
        and hold their tenant's lines however long they run) and reap the entries of
        processes that died."""
        while True:
            try:
                await self.ledger.renew((c.tenant_id, c.call_id) for c in self._live.values())
                await self.ledger.reap()
                metrics.FLEET_LIVE_CALLS.set(await self.ledger.live_count())
            except LedgerUnavailable:
                logger.warning("calls.leases_not_renewed", live=len(self._live))
            self._expire()
            await asyncio.sleep(HEARTBEAT_SECS)

    @property
    def live_count(self) -> int:
        return len(self._live)

    def _count(self) -> None:
        metrics.LIVE_CALLS.set(len(self._live))
        metrics.HEADROOM.set(max(0, self.capacity - len(self._live)))

    def start_draining(self) -> None:
        self.draining = True
        metrics.DRAINING.set(1)

    async def drained(self) -> bool:
        """No call runs here, and none this process announced in the last few seconds can
        still open its stream here. (A provider opens it within a second or two; one that
        comes later finds the process gone and is claimed by another from the ledger.)"""
        self._expire()
        if self._live:
            return False
        now = time.monotonic()
        for call_id, (at, _) in list(self._preparing.items()):
            try:
                if now - at < STREAM_GRACE_SECS and await self.ledger.pending(call_id):
                    return False
            except LedgerUnavailable:
                return False
            del self._preparing[call_id]
        return True

    def _expire(self) -> None:
        now = time.monotonic()
        for call_id, (at, call) in list(self._preparing.items()):
            if now - at > PENDING_TTL_SECS:
                del self._preparing[call_id]
                if call.prepared is not None:
                    call.prepared.cancel()
