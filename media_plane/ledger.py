"""What the fleet knows about calls, whichever media process holds them.

A call's pipeline lives in one process, but the facts about it must hold across every
process behind the proxy:

- a provider's call is announced once: a retry of its webhook, landing anywhere, gets the
  call already announced, never a second one;
- a tenant's lines: an announced or live call holds one of the tenant's lines (its plan's
  concurrent calls), taken in the same atomic step as the announcement, so two processes
  admitting a tenant's last line at once cannot both win;
- a call's stream is claimed once, by whichever process the proxy sends it to;
- the live-call gauge: a sorted set of call id -> lease deadline, the key KEDA's Redis
  scaler counts (ZCARD). The process running a call renews its lease every few seconds; a
  reaper drops entries whose lease ran out, so the calls of a process that died leave the
  gauge within ``LEASE_SECS + HEARTBEAT_SECS``, while a call that is merely long (hours)
  stays as long as it is renewed;
- a call's outcome (its transfer number) for the provider's follow-up request, which may
  land on any process;
- a tenant's minutes for the month: live calls draw on them a minute at a time
  (``GRANT_SECS``) and give back what they did not use when they end, so calls under way
  together share the minutes left instead of each being allowed all of them, and a call
  is refused once they are used up. The timeline's sum of the month's ended calls is the
  floor of the count (it survives Redis losing its data).

``RedisLedger`` keeps them in Redis (every decision in one Lua script, on Redis's own
clock); ``LocalLedger`` in this process, the embedded default. One contract suite runs
against both (``tests/integration/test_ledger.py``).
"""

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from media_plane.agent import AgentConfig, MonthlyMinutes, agent_from_dict

PENDING_TTL_SECS = 60.0  # a provider opens the stream within seconds of the webhook
OUTCOME_TTL_SECS = 300.0  # the provider's follow-up request comes right after hang-up
LEASE_SECS = 15.0  # a live call stays on the gauge this long past its last renewal
HEARTBEAT_SECS = 5.0  # how often a process renews its calls' leases and reaps
GRANT_SECS = 60.0  # a live call draws on its tenant's month's minutes this much at a time
MINUTES_TTL_SECS = 40 * 86400.0  # a month's count outlives the month

Refusal = Literal["concurrent_calls", "monthly_minutes"]


@dataclass(frozen=True)
class Announced:
    """A call a webhook admitted: what the process that gets its stream needs to run it."""

    call_id: str
    provider_call_sid: str
    agent: AgentConfig
    number: str | None = None  # the tenant's number that was called
    provider_account: str | None = None  # the provider's account the number is on
    max_secs: float | None = None  # how long it may run (plan and platform limits)
    minutes: MonthlyMinutes | None = None  # the tenant's month's minutes it draws on

    @property
    def tenant_id(self) -> str:
        return self.agent.tenant_id

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Announced":
        data = json.loads(text)
        minutes = MonthlyMinutes(**data["minutes"]) if data.get("minutes") else None
        return cls(**data | {"agent": agent_from_dict(data["agent"]), "minutes": minutes})


@dataclass(frozen=True)
class Outcome:
    """How a call ended, as far as the provider's follow-up request needs to know."""

    call_id: str
    tenant_id: str
    transfer_to: str | None = None


class LedgerUnavailable(RuntimeError):
    """The ledger's store could not be reached: new calls cannot be admitted safely."""


class CallLedger(Protocol):
    async def announce(self, call: Announced, limit: int | None) -> Announced | Refusal:
        """In one step: the call already announced for this provider call (a retry), or
        this one, holding one of the tenant's ``limit`` lines (None: no limit); refused
        if every line is taken or the tenant's minutes for the month are used up."""
        ...

    async def draw(self, call: Announced, secs: float) -> float:
        """Take up to ``secs`` of the tenant's minutes for the month (``call.minutes``)
        for the live call: what is left if less, 0 once they are used up."""
        ...

    async def announced(self, provider_call_sid: str) -> Announced | None:
        """The call announced for this provider call and not yet finished, if any."""
        ...

    async def pending(self, call_id: str) -> Announced | None:
        """The announced call whose stream has not been claimed (not claiming it)."""
        ...

    async def claim(self, call_id: str, tenant_id: str) -> Announced | None:
        """The call's stream opened here: once per call, fleet-wide. It is live now."""
        ...

    async def renew(self, calls: Iterable[tuple[str, str]]) -> None:
        """Extend the leases of these live calls, (tenant id, call id) each."""
        ...

    async def finish(self, call: Announced, transfer_to: str | None, unused_secs: float) -> None:
        """The call ended (or never started): its line and gauge entry are given back, so
        are the minutes it drew and did not use, and its outcome is kept for the
        provider's follow-up request."""
        ...

    async def outcome(self, call_id: str) -> Outcome | None: ...

    async def outcome_for(self, provider_call_sid: str) -> Outcome | None:
        """The outcome of the ended call the provider knows by this id (Exotel's
        follow-up requests name the call only by its own id)."""
        ...

    async def live_count(self) -> int:
        """Live calls on the gauge, fleet-wide: what KEDA's scaler reads."""
        ...

    async def is_live(self, call_id: str) -> bool:
        """Whether the call is on the gauge (its stream open, somewhere)."""
        ...

    async def reap(self) -> int:
        """Drop gauge entries whose lease ran out (their process died); how many."""
        ...


class LocalLedger:
    """The ledger of one process: the embedded default."""

    def __init__(self, lease_secs: float = LEASE_SECS, pending_secs: float = PENDING_TTL_SECS):
        self._lease = lease_secs
        self._pending_secs = pending_secs
        self._by_sid: dict[str, tuple[float, Announced]] = {}  # deadline, call
        self._pending: dict[str, tuple[float, Announced]] = {}
        self._lines: dict[str, dict[str, float]] = {}  # tenant -> call id -> deadline
        self._gauge: dict[str, float] = {}
        self._outcomes: dict[str, tuple[float, Outcome]] = {}
        self._outcomes_by_sid: dict[str, tuple[float, Outcome]] = {}
        self._used: dict[tuple[str, str], float] = {}  # (tenant, month) -> secs drawn

    async def announce(self, call: Announced, limit: int | None) -> Announced | Refusal:
        now = time.monotonic()
        existing = _live_entry(self._by_sid, call.provider_call_sid, now)
        if existing is not None:
            return existing
        if call.minutes is not None:
            month = (call.tenant_id, call.minutes.month)
            self._used[month] = max(self._used.get(month, 0.0), call.minutes.used_secs)
            if self._used[month] >= call.minutes.allowance_secs:
                return "monthly_minutes"
        lines = {c: d for c, d in self._lines.get(call.tenant_id, {}).items() if d > now}
        if limit is not None and len(lines) >= limit:
            self._lines[call.tenant_id] = lines
            return "concurrent_calls"
        lines[call.call_id] = now + self._pending_secs
        self._lines[call.tenant_id] = lines
        self._by_sid[call.provider_call_sid] = (now + self._pending_secs, call)
        self._pending[call.call_id] = (now + self._pending_secs, call)
        return call

    async def announced(self, provider_call_sid: str) -> Announced | None:
        return _live_entry(self._by_sid, provider_call_sid, time.monotonic())

    async def pending(self, call_id: str) -> Announced | None:
        return _live_entry(self._pending, call_id, time.monotonic())

    async def claim(self, call_id: str, tenant_id: str) -> Announced | None:
        call = _live_entry(self._pending, call_id, time.monotonic())
        if call is None or call.tenant_id != tenant_id:
            return None
        del self._pending[call_id]
        await self.renew([(tenant_id, call_id)])
        return call

    async def renew(self, calls: Iterable[tuple[str, str]]) -> None:
        deadline = time.monotonic() + self._lease
        for tenant_id, call_id in calls:
            self._gauge[call_id] = deadline
            self._lines.setdefault(tenant_id, {})[call_id] = deadline

    async def draw(self, call: Announced, secs: float) -> float:
        if call.minutes is None:
            return secs
        month = (call.tenant_id, call.minutes.month)
        used = self._used.get(month, 0.0)
        taken = max(0.0, min(secs, call.minutes.allowance_secs - used))
        self._used[month] = used + taken
        return taken

    async def finish(self, call: Announced, transfer_to: str | None, unused_secs: float) -> None:
        if call.minutes is not None and unused_secs > 0:
            month = (call.tenant_id, call.minutes.month)
            self._used[month] = self._used.get(month, 0.0) - unused_secs
        self._gauge.pop(call.call_id, None)
        self._pending.pop(call.call_id, None)
        self._lines.get(call.tenant_id, {}).pop(call.call_id, None)
        entry = self._by_sid.get(call.provider_call_sid)
        if entry is not None and entry[1].call_id == call.call_id:
            del self._by_sid[call.provider_call_sid]
        now = time.monotonic()
        for key in [k for k, (d, _) in self._outcomes.items() if d <= now]:
            del self._outcomes[key]
        for key in [k for k, (d, _) in self._outcomes_by_sid.items() if d <= now]:
            del self._outcomes_by_sid[key]
        outcome = (now + OUTCOME_TTL_SECS, Outcome(call.call_id, call.tenant_id, transfer_to))
        self._outcomes[call.call_id] = outcome
        self._outcomes_by_sid[call.provider_call_sid] = outcome

    async def outcome(self, call_id: str) -> Outcome | None:
        return _live_entry(self._outcomes, call_id, time.monotonic())

    async def outcome_for(self, provider_call_sid: str) -> Outcome | None:
        return _live_entry(self._outcomes_by_sid, provider_call_sid, time.monotonic())

    async def live_count(self) -> int:
        return len(self._gauge)

    async def is_live(self, call_id: str) -> bool:
        return call_id in self._gauge

    async def reap(self) -> int:
        now = time.monotonic()
        dead = [call_id for call_id, deadline in self._gauge.items() if deadline <= now]
        for call_id in dead:
            del self._gauge[call_id]
        for key in [k for k, (d, _) in self._by_sid.items() if d <= now]:
            del self._by_sid[key]
        for key in [k for k, (d, _) in self._pending.items() if d <= now]:
            del self._pending[key]
        return len(dead)


T = TypeVar("T")


def _live_entry(entries: dict[str, tuple[float, T]], key: str, now: float) -> T | None:
    entry = entries.get(key)
    if entry is None:
        return None
    if entry[0] <= now:
        del entries[key]
        return None
    return entry[1]


# Every script reads Redis's own clock, so every process agrees on when a lease ends.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: the provider call's key, the tenant's lines, the call's pending key, the tenant's
# month's minutes. ARGV: call id, limit (-1: none), pending ttl ms, the call, lines key ttl
# ms, the month's allowance in secs (-1: not metered), secs its ended calls used (the
# timeline's count: the floor), minutes key ttl ms. Returns {'call', json} or
# {'refused', reason}. (Numbers cross as strings: Lua's would be truncated to integers.)
_ANNOUNCE = (
    _NOW
    + """
local existing = redis.call('GET', KEYS[1])
if existing then return {'call', existing} end
local allowance = tonumber(ARGV[6])
if allowance >= 0 then
  local used = math.max(tonumber(redis.call('GET', KEYS[4]) or '0'), tonumber(ARGV[7]))
  redis.call('SET', KEYS[4], tostring(used), 'PX', tonumber(ARGV[8]))
  if used >= allowance then return {'refused', 'monthly_minutes'} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local limit = tonumber(ARGV[2])
if limit >= 0 and redis.call('ZCARD', KEYS[2]) >= limit then
  return {'refused', 'concurrent_calls'}
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
redis.call('SET', KEYS[1], ARGV[4], 'PX', tonumber(ARGV[3]))
redis.call('SET', KEYS[3], ARGV[4], 'PX', tonumber(ARGV[3]))
return {'call', ARGV[4]}
"""
)

# KEYS: the tenant's month's minutes. ARGV: the allowance in secs, secs wanted, key ttl ms.
_DRAW = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local taken = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used)
if taken <= 0 then return '0' end
redis.call('INCRBYFLOAT', KEYS[1], tostring(taken))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return tostring(taken)
"""

# KEYS: the gauge, the tenant's lines, the call's pending key, its outcome, its outcome by
# provider call id, the provider call's key, the tenant's month's minutes. ARGV: call id,
# the outcome, outcome ttl ms, unused secs (given back), minutes key ttl ms. The provider
# call's key goes only if it is still this call's.
_FINISH = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[4], ARGV[2], 'PX', tonumber(ARGV[3]))
redis.call('SET', KEYS[5], ARGV[2], 'PX', tonumber(ARGV[3]))
local announced = redis.call('GET', KEYS[6])
if announced and cjson.decode(announced)['call_id'] == ARGV[1] then
  redis.call('DEL', KEYS[6])
end
if tonumber(ARGV[4]) > 0 and redis.call('EXISTS', KEYS[7]) == 1 then
  redis.call('INCRBYFLOAT', KEYS[7], '-' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[7], tonumber(ARGV[5]))
end
return 1
"""

# KEYS: the call's pending key, the gauge, the tenant's lines. ARGV: call id, lease ms,
# lines key ttl ms, tenant id. The pending key is deleted as it is read (a call is claimed
# once), and only by a stream of the call's own tenant.
_CLAIM = (
    _NOW
    + """
local call = redis.call('GET', KEYS[1])
if not call or cjson.decode(call)['agent']['tenant_id'] ~= ARGV[4] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]))
return call
"""
)

# KEYS: the gauge, then each call's tenant lines. ARGV: lease ms, lines key ttl ms, then
# each call id. A plain ZADD (not XX): an entry lost to a Redis restart, or reaped while
# its process was stalled, comes back with the next renewal.
_RENEW = (
    _NOW
    + """
local lease = tonumber(ARGV[1])
for i = 2, #KEYS do
  local call_id = ARGV[i + 1]
  redis.call('ZADD', KEYS[1], now + lease, call_id)
  redis.call('ZADD', KEYS[i], now + lease, call_id)
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2]))
end
return #KEYS - 1
"""
)

_REAP = _NOW + "return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)"


class RedisLedger:
    """The fleet's ledger in Redis. Keys, under ``prefix``: ``live`` (the gauge KEDA
    counts), ``lines:<tenant>``, ``sid:<provider call id>``, ``pending:<call id>``,
    ``outcome:<call id>``, ``outcome-sid:<provider call id>``, ``minutes:<tenant>:<month>``
    (seconds drawn)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        lease_secs: float = LEASE_SECS,
        pending_secs: float = PENDING_TTL_SECS,
    ):
        self._redis = redis
        self._prefix = prefix
        self._lease_ms = int(lease_secs * 1000)
        self._pending_ms = int(pending_secs * 1000)
        self.gauge = f"{prefix}:live"
        scripts = (_ANNOUNCE, _DRAW, _CLAIM, _RENEW, _FINISH, _REAP)
        self._scripts = {s: redis.register_script(s) for s in scripts}
        # Never shorter than any entry in it: a pending call's line outlives a lease.
        self._lines_ttl_ms = max(self._pending_ms, self._lease_ms)

    def _lines(self, tenant_id: str) -> str:
        return f"{self._prefix}:lines:{tenant_id}"

    def _sid(self, provider_call_sid: str) -> str:
        return f"{self._prefix}:sid:{provider_call_sid}"

    def _pending(self, call_id: str) -> str:
        return f"{self._prefix}:pending:{call_id}"

    def _minutes(self, call: Announced) -> str:
        month = call.minutes.month if call.minutes else "unmetered"
        return f"{self._prefix}:minutes:{call.tenant_id}:{month}"

    async def announce(self, call: Announced, limit: int | None) -> Announced | Refusal:
        keys = [
            self._sid(call.provider_call_sid),
            self._lines(call.tenant_id),
            self._pending(call.call_id),
            self._minutes(call),
        ]
        args = [
            call.call_id,
            -1 if limit is None else limit,
            self._pending_ms,
            call.to_json(),
            self._lines_ttl_ms,
            repr(call.minutes.allowance_secs) if call.minutes else -1,
            repr(call.minutes.used_secs) if call.minutes else 0,
            int(MINUTES_TTL_SECS * 1000),
        ]
        kind, found = await self._run(_ANNOUNCE, keys, args)
        if kind == "refused":
            return "concurrent_calls" if found == "concurrent_calls" else "monthly_minutes"
        return Announced.from_json(found)

    async def draw(self, call: Announced, secs: float) -> float:
        if call.minutes is None:
            return secs
        args = [repr(call.minutes.allowance_secs), repr(secs), int(MINUTES_TTL_SECS * 1000)]
        return float(await self._run(_DRAW, [self._minutes(call)], args))

    async def announced(self, provider_call_sid: str) -> Announced | None:
        found = await self._call(self._redis.get(self._sid(provider_call_sid)))
        return Announced.from_json(found) if found else None

    async def pending(self, call_id: str) -> Announced | None:
        found = await self._call(self._redis.get(self._pending(call_id)))
        return Announced.from_json(found) if found else None

    async def claim(self, call_id: str, tenant_id: str) -> Announced | None:
        keys = [self._pending(call_id), self.gauge, self._lines(tenant_id)]
        args = [call_id, self._lease_ms, self._lines_ttl_ms, tenant_id]
        found = await self._run(_CLAIM, keys, args)
        return Announced.from_json(found) if found else None

    async def renew(self, calls: Iterable[tuple[str, str]]) -> None:
        calls = list(calls)
        if not calls:
            return
        keys = [self.gauge, *(self._lines(tenant_id) for tenant_id, _ in calls)]
        args = [self._lease_ms, self._lines_ttl_ms, *(c for _, c in calls)]
        await self._run(_RENEW, keys, args)

    async def finish(self, call: Announced, transfer_to: str | None, unused_secs: float) -> None:
        keys = [
            self.gauge,
            self._lines(call.tenant_id),
            self._pending(call.call_id),
            f"{self._prefix}:outcome:{call.call_id}",
            f"{self._prefix}:outcome-sid:{call.provider_call_sid}",
            self._sid(call.provider_call_sid),
            self._minutes(call),
        ]
        outcome = json.dumps(asdict(Outcome(call.call_id, call.tenant_id, transfer_to)))
        unused = repr(unused_secs) if call.minutes and unused_secs > 0 else "0"
        args = [call.call_id, outcome, int(OUTCOME_TTL_SECS * 1000), unused]
        await self._run(_FINISH, keys, [*args, int(MINUTES_TTL_SECS * 1000)])

    async def outcome(self, call_id: str) -> Outcome | None:
        found = await self._call(self._redis.get(f"{self._prefix}:outcome:{call_id}"))
        return Outcome(**json.loads(found)) if found else None

    async def outcome_for(self, provider_call_sid: str) -> Outcome | None:
        key = f"{self._prefix}:outcome-sid:{provider_call_sid}"
        found = await self._call(self._redis.get(key))
        return Outcome(**json.loads(found)) if found else None

    async def live_count(self) -> int:
        return int(await self._call(self._redis.zcard(self.gauge)))

    async def is_live(self, call_id: str) -> bool:
        return await self._call(self._redis.zscore(self.gauge, call_id)) is not None

    async def reap(self) -> int:
        return int(await self._run(_REAP, [self.gauge], []))

    async def _run(self, script: str, keys: list[str], args: list) -> Any:
        return await self._call(self._scripts[script](keys=keys, args=args))

    @staticmethod
    async def _call(pending):
        try:
            return await pending
        except (RedisError, OSError) as e:
            raise LedgerUnavailable(f"the call ledger's Redis: {e!r}") from e
