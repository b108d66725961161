"""Call events through real Redis streams (one per tenant) to the timeline writer:
at-least-once, idempotent, acknowledged only after the write, nothing lost to a restart or
an outage, and fair: one tenant's flood never holds up another tenant's events."""

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from control_plane.calls.models import CallEvent
from control_plane.calls.store import STORE_OUTAGES, SqlTimelineStore
from control_plane.calls.writer import GROUP, PER_STREAM, TimelineWriter
from control_plane.kit.db import create_engine, session_factory
from control_plane.kit.migrate import upgrade
from control_plane.tenants.models import Tenant
from media_plane.agent import CallEventRecord
from media_plane.events import RedisStreamEventSink, stream_registry, tenant_stream


def event(n: int, call_id: str = "call_1", tenant_id: str = "ten_1") -> CallEventRecord:
    return CallEventRecord(
        event_id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        call_id=call_id,
        seq=n,
        kind="turn.user",
        at=time.time(),
        data={"text": f"utterance {n}"},
    )


class Store:
    """A timeline store that records writes by event id, and can be told to fail."""

    def __init__(self, fail_times: int = 0, reject: set[str] | None = None):
        self.rows: dict[str, CallEventRecord] = {}  # in the order first written
        self.writes = 0
        self.fail_times = fail_times
        self.reject = reject or set()
        self.blocked: asyncio.Event | None = None
        self.delay = 0.0  # seconds each write takes

    async def write(self, events: list[CallEventRecord]) -> None:
        self.writes += 1
        await asyncio.sleep(self.delay)
        if self.blocked is not None:
            await self.blocked.wait()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("timeline store is down")
        if any(e.event_id in self.reject for e in events):
            raise ValueError("this event cannot be stored")
        for e in events:
            self.rows.setdefault(e.event_id, e)  # idempotent by event id


@pytest.fixture
async def redis(redis_url):
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def stream(redis):
    return f"test:events:{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
async def _cleanup(redis, stream):
    yield
    keys = [key async for key in redis.scan_iter(match=f"{stream}*")]
    if keys:
        await redis.delete(*keys)


def writer(redis, stream, store, consumer="w1", **kw):
    return TimelineWriter(
        redis, stream, store.write, consumer=consumer, block_ms=50, max_backoff_secs=0.05, **kw
    )


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def until(predicate, within=5.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def pending(redis, base) -> int:
    """Entries delivered to a writer and not yet acknowledged, over every tenant's stream."""
    streams = await redis.smembers(stream_registry(base))
    if await redis.exists(base):
        streams.add(base)  # the single stream of earlier versions
    groups = [await redis.xinfo_groups(s) if await redis.exists(s) else [] for s in streams]
    return sum(group["pending"] for found in groups for group in found if group["name"] == GROUP)


async def test_published_events_are_written_then_acknowledged(redis, stream):
    store = Store()
    w = writer(redis, stream, store)
    await w.ensure_group()
    task = asyncio.create_task(w.run())
    events = [event(n) for n in range(5)]
    await RedisStreamEventSink(redis, stream).publish(events)

    async def written():
        return len(store.rows) == 5

    await until(written)
    await until(lambda: _zero(pending(redis, stream)))
    assert [store.rows[e.event_id] for e in events] == events
    await stop(task)


async def _zero(coro) -> bool:
    return await coro == 0


async def test_a_store_outage_loses_nothing_and_writes_once(redis, stream):
    store = Store(fail_times=3)
    w = writer(redis, stream, store)
    await w.ensure_group()
    await RedisStreamEventSink(redis, stream).publish([event(1), event(2)])
    task = asyncio.create_task(w.run())

    async def written():
        return len(store.rows) == 2

    await until(written)
    assert store.writes > 3  # it retried through the outage
    await until(lambda: _zero(pending(redis, stream)))
    await stop(task)


async def test_events_survive_a_writer_that_dies_before_acknowledging(redis, stream):
    store = Store()
    store.blocked = asyncio.Event()  # the write hangs: then the process "dies"
    first = writer(redis, stream, store)
    await first.ensure_group()
    task = asyncio.create_task(first.run())
    await RedisStreamEventSink(redis, stream).publish([event(1), event(2), event(3)])

    async def delivered():
        return await pending(redis, stream) == 3

    await until(delivered)
    await stop(task)
    await asyncio.gather(task, return_exceptions=True)
    assert store.rows == {}

    # The same consumer restarts and picks up what it had been given.
    store.blocked = None
    again = asyncio.create_task(writer(redis, stream, store).run())

    async def written():
        return len(store.rows) == 3

    await until(written)
    await until(lambda: _zero(pending(redis, stream)))
    await stop(again)


async def test_another_writer_claims_entries_a_dead_one_abandoned(redis, stream):
    store = Store()
    store.blocked = asyncio.Event()
    dead = writer(redis, stream, store, consumer="dead-pod")
    await dead.ensure_group()
    task = asyncio.create_task(dead.run())
    await RedisStreamEventSink(redis, stream).publish([event(1), event(2)])

    async def delivered():
        return await pending(redis, stream) == 2

    await until(delivered)
    await stop(task)
    await asyncio.gather(task, return_exceptions=True)
    store.blocked = None
    other = asyncio.create_task(writer(redis, stream, store, "new-pod", claim_idle_ms=0).run())

    async def written():
        return len(store.rows) == 2

    await until(written)
    await stop(other)


async def test_one_tenants_flood_never_holds_up_another_tenants_events(redis, stream):
    """Tenant A has 5,000 events waiting and the writer is working through them when tenant
    B's ten arrive: B's are written within a pass or two, not behind A's flood."""
    store = Store()
    store.delay = 0.005
    sink = RedisStreamEventSink(redis, stream)
    flood = [event(n, call_id="call_a", tenant_id="ten_a") for n in range(5000)]
    for start in range(0, len(flood), 500):
        await sink.publish(flood[start : start + 500])
    task = asyncio.create_task(writer(redis, stream, store).run())

    async def started():
        return len(store.rows) > 0

    await until(started)
    others = [event(n, call_id="call_b", tenant_id="ten_b") for n in range(10)]
    await sink.publish(others)
    before = len(store.rows)

    async def written():
        return all(e.event_id in store.rows for e in others)

    try:
        await until(written, within=30)
        meanwhile = sum(1 for e in flood if e.event_id in store.rows) - before
        assert meanwhile <= 3 * PER_STREAM, meanwhile  # B waited a pass or two of A's

        async def all_written():  # and A lost nothing
            return len(store.rows) == len(flood) + len(others)

        await until(all_written, within=30)
    finally:
        await stop(task)


async def test_redelivered_events_are_written_once_in_the_real_store(redis, stream, database_url):
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    timeline = SqlTimelineStore(sessions)
    async with session_factory(engine)() as session:
        session.add(Tenant(id="ten_1", name="t"))
        await session.commit()
    w = TimelineWriter(redis, stream, timeline.write, consumer="w1", block_ms=50)
    await w.ensure_group()
    task = asyncio.create_task(w.run())
    e = event(1)
    await RedisStreamEventSink(redis, stream).publish([e, e])  # a retried publish
    tenant = tenant_stream(stream, "ten_1")
    last_id = (await redis.xrevrange(tenant, count=1))[0][0]

    async def settled():
        groups = await redis.xinfo_groups(tenant)  # none until the writer finds the stream
        return any(g["last-delivered-id"] == last_id and g["pending"] == 0 for g in groups)

    await until(settled)
    async with session_factory(engine)() as session:
        rows = (await session.scalars(select(CallEvent))).all()
    assert [r.id for r in rows] == [e.event_id]
    await stop(task)
    await engine.dispose()


async def test_a_bad_entry_is_dead_lettered_and_does_not_block_the_rest(redis, stream):
    good, bad = event(1), event(2)
    store = Store(reject={bad.event_id})
    w = writer(redis, stream, store)
    await w.ensure_group()
    await redis.xadd(stream, {"not": "an event"})  # in the single stream of earlier versions
    await RedisStreamEventSink(redis, stream).publish([good, bad])
    task = asyncio.create_task(w.run())

    async def settled():
        return await redis.xlen(f"{stream}:dead") == 2 and await pending(redis, stream) == 0

    await until(settled)
    assert list(store.rows) == [good.event_id]
    reasons = [fields["reason"] for _, fields in await redis.xrange(f"{stream}:dead")]
    assert reasons[0].startswith("undecodable") and "cannot be stored" in reasons[1]
    await stop(task)


async def test_a_poison_event_alone_never_holds_up_another_tenants_events(
    redis, stream, database_url
):
    """The real store, refusing an event on its own (its tenant does not exist): it is
    retried a bounded number of times, dead-lettered with the reason, and the ten events
    behind it are written, once each."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        session.add(Tenant(id="ten_1", name="t"))
        await session.commit()
    timeline = SqlTimelineStore(session_factory(engine))
    w = TimelineWriter(
        redis, stream, timeline.write, consumer="w1", block_ms=50, outages=STORE_OUTAGES
    )
    await w.ensure_group()
    poison = CallEventRecord(uuid.uuid4().hex, "ten_gone", "call_x", 1, "call.started", 1.0, {})
    sink = RedisStreamEventSink(redis, stream)
    await sink.publish([poison])
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0.2)  # the writer has it, alone, before anything else arrives
    others = [event(n, call_id="call_2") for n in range(10)]
    await sink.publish(others)

    async def settled():
        async with session_factory(engine)() as session:
            written = len((await session.scalars(select(CallEvent))).all())
        return await redis.xlen(f"{stream}:dead") == 1 and written == len(others)

    try:
        await until(settled)
        await until(lambda: _zero(pending(redis, stream)))
        async with session_factory(engine)() as session:
            rows = (await session.scalars(select(CallEvent))).all()
        assert sorted(r.id for r in rows) == sorted(e.event_id for e in others)
        ((_, letter),) = await redis.xrange(f"{stream}:dead")
        assert letter["event_id"] == poison.event_id and "IntegrityError" in letter["reason"]
    finally:
        await stop(task)
        await engine.dispose()


def test_the_platform_wires_media_events_through_redis_to_the_timeline_api(
    settings, redis_url, stream
):
    from fastapi.testclient import TestClient
    from redis import Redis as SyncRedis

    from switchboard.server import create_app
    from tests.conftest import AUTH, make_tenant

    settings = settings.model_copy(update={"redis_url": redis_url, "events_stream": stream})
    with TestClient(create_app(settings, warm=False)) as client:
        tenant = make_tenant(client)
        sink = client.app.state.event_sink
        events = [
            CallEventRecord(
                event_id=uuid.uuid4().hex,
                tenant_id=tenant["id"],
                call_id="call_x",
                seq=n,
                kind="turn.user",
                at=time.time(),
                data={"text": f"hello {n}"},
            )
            for n in (1, 2)
        ]
        client.portal.call(sink.publish, events)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = client.get(f"/v1/tenants/{tenant['id']}/calls/call_x/events", headers=AUTH)
            if r.status_code == 200 and r.json()["total"] == 2:
                break
            time.sleep(0.05)
        assert [e["data"]["text"] for e in r.json()["items"]] == ["hello 1", "hello 2"]
    # They went through the tenant's stream (not straight to the store).
    with SyncRedis.from_url(redis_url) as redis:
        assert redis.xlen(tenant_stream(stream, tenant["id"])) == 2
