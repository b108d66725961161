"""Call timelines: every call's ordered events and a summary row per call.

Two implementations of one contract: MongoDB through motor (production) and the relational
store (embedded default). Writes are idempotent by event id, so the stream writer's
at-least-once delivery never duplicates an event.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, ConnectionFailure
from sqlalchemy import func, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.calls.models import CallEvent, CallRecord
from control_plane.kit.db import session_scope
from control_plane.kit.pagination import PageParams, paginate
from media_plane.agent import CallEventRecord

DUPLICATE_KEY = 11000


# What a store raises when it cannot be reached, as opposed to refusing what it was given:
# the timeline writer waits the first out and dead-letters an event that causes the second.
# (SQLAlchemy's OperationalError is the driver's: a lost connection, a locked database.)
STORE_OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    OSError,
    ConnectionFailure,  # pymongo: AutoReconnect, NetworkTimeout, ServerSelectionTimeout
    OperationalError,
    InterfaceError,
)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    id: str
    call_id: str
    seq: int
    kind: str
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallSummary:
    call_id: str
    tenant_id: str
    number: str | None
    agent_id: str | None
    agent_version: int | None
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class CallFilters:
    since: datetime | None = None
    until: datetime | None = None
    number: str | None = None
    outcome: str | None = None


class TimelineStore(Protocol):
    async def write(self, events: list[CallEventRecord]) -> None: ...

    async def timeline(
        self, tenant_id: str, call_id: str, paging: PageParams
    ) -> tuple[list[TimelineEvent], int]: ...

    async def calls(
        self, tenant_id: str, filters: CallFilters, paging: PageParams
    ) -> tuple[list[CallSummary], int]: ...

    async def call(self, tenant_id: str, call_id: str) -> CallSummary | None: ...

    async def minutes_used(self, tenant_id: str, since: datetime) -> float: ...


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _utc(value: datetime | None) -> datetime | None:
    # Drivers hand back naive UTC datetimes (SQLite, pymongo): make them explicit.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def summary_changes(event: CallEventRecord) -> dict[str, Any]:
    """What an event says about its call's summary row."""
    if event.kind == "call.started":
        return {
            "number": event.data.get("to"),
            "agent_id": event.data.get("agent_id"),
            "agent_version": event.data.get("agent_version"),
            "started_at": _at(event.at),
        }
    if event.kind == "call.ended":
        secs = event.data.get("secs")
        return {
            "ended_at": _at(event.at),
            "outcome": event.data.get("reason"),
            "duration_secs": float(secs) if isinstance(secs, int | float) else None,
        }
    return {}


class SqlTimelineStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions

    async def write(self, events: list[CallEventRecord]) -> None:
        async with session_scope(self._sessions) as session:
            for e in events:
                if await session.get(CallEvent, e.event_id) is not None:
                    continue  # redelivered
                session.add(
                    CallEvent(
                        id=e.event_id,
                        tenant_id=e.tenant_id,
                        call_id=e.call_id,
                        seq=e.seq,
                        kind=e.kind,
                        at=_at(e.at),
                        data=e.data,
                    )
                )
                if changes := summary_changes(e):
                    record = await session.get(CallRecord, e.call_id)
                    if record is None:
                        record = CallRecord(call_id=e.call_id, tenant_id=e.tenant_id)
                        session.add(record)
                    for key, value in changes.items():
                        setattr(record, key, value)

    async def timeline(
        self, tenant_id: str, call_id: str, paging: PageParams
    ) -> tuple[list[TimelineEvent], int]:
        async with session_scope(self._sessions) as session:
            query = select(CallEvent).where(
                CallEvent.tenant_id == tenant_id, CallEvent.call_id == call_id
            )
            rows, total = await paginate(session, query.order_by(CallEvent.seq), paging)
            events = [
                TimelineEvent(r.id, r.call_id, r.seq, r.kind, _utc(r.at) or r.at, r.data)
                for r in rows
            ]
            return events, total
        return [], 0

    async def calls(
        self, tenant_id: str, filters: CallFilters, paging: PageParams
    ) -> tuple[list[CallSummary], int]:
        query = select(CallRecord).where(CallRecord.tenant_id == tenant_id)
        if filters.since:
            query = query.where(CallRecord.started_at >= filters.since)
        if filters.until:
            query = query.where(CallRecord.started_at < filters.until)
        if filters.number:
            query = query.where(CallRecord.number == filters.number)
        if filters.outcome:
            query = query.where(CallRecord.outcome == filters.outcome)
        async with session_scope(self._sessions) as session:
            rows, total = await paginate(
                session, query.order_by(CallRecord.started_at.desc()), paging
            )
            return [self._summary(r) for r in rows], total

    async def call(self, tenant_id: str, call_id: str) -> CallSummary | None:
        async with session_scope(self._sessions) as session:
            row = await session.scalar(
                select(CallRecord).where(
                    CallRecord.tenant_id == tenant_id, CallRecord.call_id == call_id
                )
            )
            return self._summary(row) if row else None

    async def minutes_used(self, tenant_id: str, since: datetime) -> float:
        """Minutes of the tenant's ended calls that started at or after ``since``."""
        # One indexed aggregate in the database: this runs on every webhook of a tenant
        # with a plan, so it must not grow with the month's calls in Python.
        query = select(func.coalesce(func.sum(CallRecord.duration_secs), 0.0)).where(
            CallRecord.tenant_id == tenant_id, CallRecord.started_at >= since
        )
        async with session_scope(self._sessions) as session:
            return float(await session.scalar(query) or 0.0) / 60

    @staticmethod
    def _summary(r: CallRecord) -> CallSummary:
        return CallSummary(
            r.call_id,
            r.tenant_id,
            r.number,
            r.agent_id,
            r.agent_version,
            _utc(r.started_at),
            _utc(r.ended_at),
            r.outcome,
        )


class MongoTimelineStore:
    """Collections ``call_events`` (_id = event id) and ``calls`` (_id = call id)."""

    def __init__(self, db: AsyncIOMotorDatabase):
        self._events = db["call_events"]
        self._calls = db["calls"]

    async def ensure_indexes(self) -> None:
        await self._events.create_index(
            [("tenant_id", ASCENDING), ("call_id", ASCENDING), ("seq", ASCENDING)]
        )
        await self._events.create_index([("tenant_id", ASCENDING), ("at", DESCENDING)])
        await self._calls.create_index([("tenant_id", ASCENDING), ("started_at", DESCENDING)])

    async def write(self, events: list[CallEventRecord]) -> None:
        if not events:
            return
        docs = [
            {
                "_id": e.event_id,
                "tenant_id": e.tenant_id,
                "call_id": e.call_id,
                "seq": e.seq,
                "kind": e.kind,
                "at": _at(e.at),
                "data": e.data,
            }
            for e in events
        ]
        try:
            await self._events.insert_many(docs, ordered=False)
        except BulkWriteError as e:
            # Redelivered events collide on _id: that is the idempotency working.
            if any(err.get("code") != DUPLICATE_KEY for err in e.details.get("writeErrors", [])):
                raise
        for event in events:
            if changes := summary_changes(event):
                await self._calls.update_one(
                    {"_id": event.call_id, "tenant_id": event.tenant_id},
                    {"$set": changes},
                    upsert=True,
                )

    async def timeline(
        self, tenant_id: str, call_id: str, paging: PageParams
    ) -> tuple[list[TimelineEvent], int]:
        query = {"tenant_id": tenant_id, "call_id": call_id}
        total = await self._events.count_documents(query)
        cursor = self._events.find(query).sort("seq", ASCENDING)
        docs = await cursor.skip(paging.offset).limit(paging.limit).to_list(paging.limit)
        return [
            TimelineEvent(
                d["_id"], d["call_id"], d["seq"], d["kind"], _utc(d["at"]) or d["at"], d["data"]
            )
            for d in docs
        ], total

    async def calls(
        self, tenant_id: str, filters: CallFilters, paging: PageParams
    ) -> tuple[list[CallSummary], int]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        started: dict[str, datetime] = {}
        if filters.since:
            started["$gte"] = filters.since
        if filters.until:
            started["$lt"] = filters.until
        if started:
            query["started_at"] = started
        if filters.number:
            query["number"] = filters.number
        if filters.outcome:
            query["outcome"] = filters.outcome
        total = await self._calls.count_documents(query)
        cursor = self._calls.find(query).sort("started_at", DESCENDING)
        docs = await cursor.skip(paging.offset).limit(paging.limit).to_list(paging.limit)
        return [self._summary(d) for d in docs], total

    async def call(self, tenant_id: str, call_id: str) -> CallSummary | None:
        doc = await self._calls.find_one({"_id": call_id, "tenant_id": tenant_id})
        return self._summary(doc) if doc else None

    async def minutes_used(self, tenant_id: str, since: datetime) -> float:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"tenant_id": tenant_id, "started_at": {"$gte": since}}},
            {"$group": {"_id": None, "secs": {"$sum": "$duration_secs"}}},
        ]
        result = await self._calls.aggregate(pipeline).to_list(1)
        return float(result[0]["secs"] or 0) / 60 if result else 0.0

    @staticmethod
    def _summary(d: dict) -> CallSummary:
        return CallSummary(
            d["_id"],
            d["tenant_id"],
            d.get("number"),
            d.get("agent_id"),
            d.get("agent_version"),
            _utc(d.get("started_at")),
            _utc(d.get("ended_at")),
            d.get("outcome"),
        )
