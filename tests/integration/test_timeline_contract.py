"""One contract for every timeline store: the relational store (SQLite and PostgreSQL) and
MongoDB through motor's API (in-process mongomock-motor; a real MongoDB when
SWITCHBOARD_TEST_MONGODB_URL is set)."""

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from mongomock_motor import AsyncMongoMockClient

from control_plane.calls.store import CallFilters, MongoTimelineStore, SqlTimelineStore
from control_plane.kit.db import create_engine, session_factory
from control_plane.kit.migrate import upgrade
from control_plane.kit.pagination import PageParams
from control_plane.tenants.models import Tenant
from media_plane.agent import CallEventRecord

BACKENDS = ["sqlite", "postgresql", "mongodb-in-process"]
if os.environ.get("SWITCHBOARD_TEST_MONGODB_URL"):
    BACKENDS.append("mongodb")


@pytest.fixture(params=BACKENDS)
async def store(request, tmp_path):
    if request.param.startswith("mongodb"):
        if request.param == "mongodb":
            from motor.motor_asyncio import AsyncIOMotorClient

            client = AsyncIOMotorClient(os.environ["SWITCHBOARD_TEST_MONGODB_URL"], tz_aware=True)
        else:
            client = AsyncMongoMockClient(tz_aware=True)
        mongo = MongoTimelineStore(client[f"test_{uuid.uuid4().hex[:8]}"])
        await mongo.ensure_indexes()
        yield mongo
        return
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("database_url_postgresql")
    )
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        session.add_all([Tenant(id="ten_a", name="A"), Tenant(id="ten_b", name="B")])
        await session.commit()
    yield SqlTimelineStore(sessions)
    await engine.dispose()


def events(
    tenant: str,
    call: str,
    start: float,
    *,
    number="+15550100200",
    outcome="caller_hung_up",
    secs=4.0,
):
    kinds = [
        ("call.started", {"agent_id": "agt_1", "agent_version": 3, "to": number}),
        ("turn.user", {"text": "where can i park"}),
        ("tool.called", {"name": "search_knowledge", "arguments": {"query": "park"}}),
        ("turn.agent", {"text": "Parking is on Mill Lane.", "interrupted": False}),
        ("call.ended", {"reason": outcome, "secs": secs}),
    ]
    return [
        CallEventRecord(uuid.uuid4().hex, tenant, call, i + 1, kind, start + i, data)
        for i, (kind, data) in enumerate(kinds)
    ]


async def test_a_call_reads_back_in_order_with_its_summary(store):
    start = time.time()
    evs = events("ten_a", "call_1", start)
    await store.write(list(reversed(evs)))  # arrival order does not matter
    timeline, total = await store.timeline("ten_a", "call_1", PageParams())
    assert total == 5 and [e.kind for e in timeline] == [e.kind for e in evs]
    assert timeline[1].data == {"text": "where can i park"}
    # BSON keeps milliseconds; SQL keeps microseconds.
    assert abs(timeline[0].at - datetime.fromtimestamp(start, UTC)) < timedelta(milliseconds=1)
    summary = await store.call("ten_a", "call_1")
    assert (summary.number, summary.agent_version, summary.outcome) == (
        "+15550100200",
        3,
        "caller_hung_up",
    )
    assert summary.ended_at - summary.started_at == timedelta(seconds=4)


async def test_redelivered_events_are_written_once(store):
    evs = events("ten_a", "call_1", time.time())
    await store.write(evs)
    await store.write(evs)
    await store.write(evs[:2])
    _, total = await store.timeline("ten_a", "call_1", PageParams())
    assert total == 5


async def test_calls_are_listed_newest_first_with_filters(store):
    now = time.time()
    await store.write(events("ten_a", "call_old", now - 7200, number="+15550100201"))
    await store.write(events("ten_a", "call_new", now, outcome="transferred"))
    await store.write(events("ten_b", "call_b", now))
    page, total = await store.calls("ten_a", CallFilters(), PageParams())
    assert total == 2 and [c.call_id for c in page] == ["call_new", "call_old"]
    hour_ago = datetime.fromtimestamp(now - 3600, UTC)
    assert [
        c.call_id
        for c in (await store.calls("ten_a", CallFilters(since=hour_ago), PageParams()))[0]
    ] == ["call_new"]
    assert [
        c.call_id
        for c in (await store.calls("ten_a", CallFilters(until=hour_ago), PageParams()))[0]
    ] == ["call_old"]
    by_number = await store.calls("ten_a", CallFilters(number="+15550100201"), PageParams())
    assert [c.call_id for c in by_number[0]] == ["call_old"]
    by_outcome = await store.calls("ten_a", CallFilters(outcome="transferred"), PageParams())
    assert [c.call_id for c in by_outcome[0]] == ["call_new"]
    second = await store.calls("ten_a", CallFilters(), PageParams(limit=1, offset=1))
    assert second[1] == 2 and [c.call_id for c in second[0]] == ["call_old"]


async def test_tenants_never_see_each_others_calls(store):
    await store.write(events("ten_b", "call_b", time.time()))
    assert await store.call("ten_a", "call_b") is None
    assert (await store.timeline("ten_a", "call_b", PageParams()))[1] == 0
    assert (await store.calls("ten_a", CallFilters(), PageParams()))[1] == 0


async def test_minutes_used_sums_the_tenants_ended_calls_since_a_date(store):
    month = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    await store.write(events("ten_a", "call_before", month - 3600, secs=600))  # last month
    await store.write(events("ten_a", "call_1", month + 60, secs=90))
    await store.write(events("ten_a", "call_2", month + 7200, secs=30))
    await store.write(events("ten_b", "call_b", month + 60, secs=1200))  # another tenant
    await store.write(events("ten_a", "call_live", month + 9000)[:2])  # not ended yet
    since = datetime.fromtimestamp(month, UTC)
    assert await store.minutes_used("ten_a", since) == pytest.approx(2.0)
    assert await store.minutes_used("ten_b", since) == pytest.approx(20.0)
    assert await store.minutes_used("ten_c", since) == 0.0
