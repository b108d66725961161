"""The call ledger's contract, run against the in-process ledger and against Redis (two
ledgers on one Redis standing for two media processes): a call announced and claimed
once, a tenant's lines held fleet-wide, outcomes readable anywhere, and a live-call gauge
that KEDA's own count agrees with and that heals when a process dies."""

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from media_plane.agent import AgentConfig, MonthlyMinutes
from media_plane.ledger import Announced, LedgerUnavailable, LocalLedger, RedisLedger

LEASE = 0.4  # seconds: short, so a dead process's calls expire within a test

# How KEDA's Redis scaler reads `listName` (kedacore/keda pkg/scalers/redis_scaler.go):
# one script that counts the key by its type.
KEDA_COUNT = """
local kind = redis.call('type', KEYS[1]).ok
local count = {zset = 'zcard', set = 'scard', list = 'llen', hash = 'hlen', none = 'llen'}
return redis.call(count[kind], KEYS[1])
"""


def agent(tenant_id: str = "ten_a") -> AgentConfig:
    return AgentConfig(tenant_id, "agt_1", "n", "p", "Hello.", "en-US", "v", ("end_call",))


def a_call(
    sid: str | None = None, tenant_id: str = "ten_a", minutes: MonthlyMinutes | None = None
) -> Announced:
    sid = sid or "CA" + uuid.uuid4().hex
    call_id = "call_" + uuid.uuid4().hex
    return Announced(call_id, sid, agent(tenant_id), "+15550100", None, 60.0, minutes)


class Fleet:
    """Two processes' ledgers over one store, and what KEDA would read."""

    def __init__(self, first, second, keda=None):
        self.first, self.second, self._keda = first, second, keda

    async def keda_reads(self) -> int:
        if self._keda is None:
            return await self.first.live_count()
        redis, gauge = self._keda
        return int(await redis.eval(KEDA_COUNT, 1, gauge))


@pytest.fixture(params=["local", "redis"])
async def fleet(request):
    if request.param == "local":
        one = LocalLedger(lease_secs=LEASE)
        yield Fleet(one, one)
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test:calls:{uuid.uuid4().hex}"
    clients = [Redis.from_url(url, decode_responses=True) for _ in range(2)]
    first, second = (RedisLedger(c, prefix, lease_secs=LEASE) for c in clients)
    yield Fleet(first, second, (clients[0], first.gauge))
    keys = [k async for k in clients[0].scan_iter(match=f"{prefix}*")]
    if keys:
        await clients[0].delete(*keys)
    for c in clients:
        await c.aclose()


async def test_a_providers_retry_gets_the_call_already_announced_wherever_it_lands(fleet):
    call = a_call()
    assert await fleet.first.announce(call, limit=5) == call
    retry = a_call(sid=call.provider_call_sid)  # the other process mints another id
    assert await fleet.second.announce(retry, limit=5) == call
    assert await fleet.second.announced(call.provider_call_sid) == call


async def test_a_tenants_last_line_goes_to_exactly_one_of_many_concurrent_webhooks(fleet):
    ledgers = [fleet.first, fleet.second] * 10
    won = await asyncio.gather(*(ledger.announce(a_call(), limit=1) for ledger in ledgers))
    assert sum(1 for w in won if isinstance(w, Announced)) == 1
    assert won.count("concurrent_calls") == len(ledgers) - 1
    # Another tenant's lines are its own.
    assert await fleet.second.announce(a_call(tenant_id="ten_b"), limit=1) != "concurrent_calls"


async def test_a_line_comes_back_when_the_call_ends(fleet):
    call = a_call()
    await fleet.first.announce(call, limit=1)
    assert await fleet.second.announce(a_call(), limit=1) == "concurrent_calls"
    assert await fleet.second.claim(call.call_id, call.tenant_id) == call
    await fleet.second.finish(call, None, 0.0)
    assert isinstance(await fleet.first.announce(a_call(), limit=1), Announced)


async def test_a_stream_is_claimed_once_fleet_wide_and_only_for_its_tenant(fleet):
    call = a_call()
    await fleet.first.announce(call, limit=None)
    assert await fleet.first.pending(call.call_id) == call
    assert await fleet.second.claim(call.call_id, "ten_other") is None
    claims = await asyncio.gather(
        fleet.first.claim(call.call_id, call.tenant_id),
        fleet.second.claim(call.call_id, call.tenant_id),
    )
    assert claims.count(call) == 1 and claims.count(None) == 1
    assert await fleet.first.pending(call.call_id) is None


async def test_an_outcome_is_read_by_any_process_by_either_id(fleet):
    call = a_call()
    await fleet.first.announce(call, limit=None)
    await fleet.first.claim(call.call_id, call.tenant_id)
    assert await fleet.second.outcome(call.call_id) is None
    await fleet.first.finish(call, "+15550100777", 0.0)
    for outcome in (
        await fleet.second.outcome(call.call_id),
        await fleet.second.outcome_for(call.provider_call_sid),
    ):
        assert outcome is not None
        assert (outcome.tenant_id, outcome.transfer_to) == (call.tenant_id, "+15550100777")
    assert await fleet.second.outcome_for("CA-another") is None


async def test_the_gauge_counts_live_calls_as_keda_reads_it(fleet):
    calls = [a_call() for _ in range(3)]
    for call in calls:
        await fleet.first.announce(call, limit=None)
    assert await fleet.keda_reads() == 0  # announced is not live
    for call in calls:
        await fleet.second.claim(call.call_id, call.tenant_id)
    assert await fleet.keda_reads() == 3
    await fleet.first.finish(calls[0], None, 0.0)
    assert await fleet.keda_reads() == 2


async def test_a_dead_processs_calls_leave_the_gauge_and_a_long_call_never_does(fleet):
    dead, long = a_call(), a_call(tenant_id="ten_b")
    for call in (dead, long):
        await fleet.first.announce(call, limit=1)
    await fleet.first.claim(dead.call_id, dead.tenant_id)  # its process stops renewing
    await fleet.second.claim(long.call_id, long.tenant_id)
    for _ in range(5):  # five lease periods: the long call is renewed, the dead one not
        await asyncio.sleep(LEASE / 2)
        await fleet.second.renew([(long.tenant_id, long.call_id)])
        await fleet.second.renew([])
        await asyncio.sleep(LEASE / 2)
        await fleet.second.renew([(long.tenant_id, long.call_id)])
        await fleet.first.reap()
    assert await fleet.keda_reads() == 1
    # The dead call's line is free again; the long call still holds its tenant's.
    assert isinstance(await fleet.second.announce(a_call(), limit=1), Announced)
    assert await fleet.second.announce(a_call(tenant_id="ten_b"), limit=1) == "concurrent_calls"


async def live(ledger, call: Announced) -> Announced:
    assert isinstance(await ledger.announce(call, limit=None), Announced)
    assert await ledger.claim(call.call_id, call.tenant_id) == call
    return call


async def test_calls_under_way_together_share_the_months_last_minutes(fleet):
    month = MonthlyMinutes("2026-12", allowance_secs=100.0, used_secs=0.0)
    one = await live(fleet.first, a_call(minutes=month))
    two = await live(fleet.second, a_call(minutes=month))
    assert await fleet.first.draw(one, 60.0) == 60.0
    assert await fleet.second.draw(two, 60.0) == 40.0  # not another 100: what is left
    assert await fleet.first.draw(one, 60.0) == 0.0
    # The first call ends having used 35 of its 60 s: the 25 it did not use are the other's.
    await fleet.first.finish(one, None, 25.0)
    assert await fleet.second.draw(two, 60.0) == 25.0
    # All 100 s are drawn: the next call is refused, on either process.
    assert await fleet.first.announce(a_call(minutes=month), limit=None) == "monthly_minutes"
    # Another tenant's minutes, and the tenant's next month, are their own.
    other = await live(fleet.second, a_call(tenant_id="ten_b", minutes=month))
    assert await fleet.second.draw(other, 60.0) == 60.0
    january = MonthlyMinutes("2027-01", allowance_secs=100.0, used_secs=0.0)
    assert isinstance(await fleet.second.announce(a_call(minutes=january), None), Announced)


async def test_many_calls_drawing_at_once_never_take_more_than_the_month_has(fleet):
    month = MonthlyMinutes("2026-12", allowance_secs=300.0, used_secs=0.0)
    calls = [await live(fleet.first, a_call(minutes=month)) for _ in range(20)]
    ledgers = [fleet.first, fleet.second] * 10
    drawn = await asyncio.gather(*(ld.draw(c, 60.0) for ld, c in zip(ledgers, calls, strict=True)))
    assert sum(drawn) == 300.0 and drawn.count(60.0) == 5


async def test_the_timelines_count_of_ended_calls_is_the_floor(fleet):
    # The store lost its count (or never had it): what the timeline has is not drawn again.
    used = MonthlyMinutes("2026-12", allowance_secs=100.0, used_secs=80.0)
    call = await live(fleet.first, a_call(minutes=used))
    assert await fleet.second.draw(call, 60.0) == 20.0
    spent = MonthlyMinutes("2026-12", allowance_secs=100.0, used_secs=100.0)
    assert await fleet.first.announce(a_call(tenant_id="ten_b", minutes=spent), None) == (
        "monthly_minutes"
    )


async def test_renewal_heals_a_gauge_that_lost_its_entries(fleet, redis_url):
    if isinstance(fleet.first, LocalLedger):
        pytest.skip("a store that can lose its keys is Redis (no persistence, a restart)")
    call = a_call()
    await fleet.first.announce(call, limit=None)
    await fleet.first.claim(call.call_id, call.tenant_id)
    redis, gauge = fleet._keda
    await redis.delete(gauge)  # Redis restarted empty
    assert await fleet.keda_reads() == 0
    await fleet.first.renew([(call.tenant_id, call.call_id)])
    assert await fleet.keda_reads() == 1


async def test_an_unreachable_redis_is_said_so():
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    ledger = RedisLedger(redis, "test:nowhere")
    with pytest.raises(LedgerUnavailable):
        await ledger.announce(a_call(), limit=1)
    await redis.aclose()
