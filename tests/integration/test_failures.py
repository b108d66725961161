"""Failed attempts and their backoff, in this process and in real Redis (where the count
is the fleet's: two clients stand for two processes)."""

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from common.failures import SIGN_IN_USER, LocalFailures, Policy, RedisFailures


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "redis"])
async def counters(request, redis_url):
    """Two views of the same counts (one per process), on the same clock."""
    clock = Clock()
    if request.param == "local":
        local = LocalFailures(clock)
        yield local, local, clock
        return
    clients = [Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    yield RedisFailures(clients[0], clock), RedisFailures(clients[1], clock), clock
    for client in clients:
        await client.aclose()


async def test_failures_past_the_free_ones_back_off_doubling(counters):
    here, there, clock = counters
    policy = Policy("test-" + uuid.uuid4().hex, free=3)
    for _ in range(3):
        await here.failed(policy, "alice")
    assert await there.wait(policy, "alice") == 0  # a person mistyping
    await here.failed(policy, "alice")
    assert await there.wait(policy, "alice") == pytest.approx(1.0)
    await there.failed(policy, "alice")  # counted wherever it happens
    assert await here.wait(policy, "alice") == pytest.approx(2.0)
    clock.now += 2.5
    assert await here.wait(policy, "alice") == 0
    assert await here.wait(policy, "bob") == 0  # per key


async def test_a_success_clears_and_a_quiet_window_forgets(counters):
    here, there, clock = counters
    policy = Policy("test-" + uuid.uuid4().hex, free=0, window_secs=1)
    await here.failed(policy, "alice")
    assert await there.wait(policy, "alice") > 0
    await there.cleared(policy, "alice")
    assert await here.wait(policy, "alice") == 0
    await here.failed(policy, "alice")
    clock.now += 1.5
    if isinstance(here, RedisFailures):
        await asyncio.sleep(1.5)  # Redis forgets by the key's own expiry, in real time
    await here.failed(policy, "alice")  # the old failure is forgotten: one, not two
    assert await there.wait(policy, "alice") == pytest.approx(1.0)


async def test_keys_are_not_stored_in_the_clear(redis_url):
    redis = Redis.from_url(redis_url, decode_responses=True)
    username = "someone-" + uuid.uuid4().hex
    await RedisFailures(redis).failed(SIGN_IN_USER, username)
    keys = [k async for k in redis.scan_iter(match="switchboard:failures:*")]
    assert keys and not [k for k in keys if username in k]
    await redis.aclose()
