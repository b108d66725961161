from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.calls.models import Booking, CallEvent
from control_plane.kit.db import new_id


async def record_event(
    session: AsyncSession,
    *,
    event_id: str,
    tenant_id: str,
    call_id: str,
    seq: int,
    kind: str,
    at: float,
    data: dict,
) -> None:
    # Idempotent by event id: a redelivered event is a no-op.
    if await session.get(CallEvent, event_id) is not None:
        return
    session.add(
        CallEvent(
            id=event_id,
            tenant_id=tenant_id,
            call_id=call_id,
            seq=seq,
            kind=kind,
            at=datetime.fromtimestamp(at, UTC),
            data=data,
        )
    )


async def call_timeline(
    session: AsyncSession, tenant_id: str, call_id: str, limit: int, offset: int
) -> tuple[list[CallEvent], int]:
    where = (CallEvent.tenant_id == tenant_id) & (CallEvent.call_id == call_id)
    total = await session.scalar(select(func.count()).select_from(CallEvent).where(where)) or 0
    rows = await session.scalars(
        select(CallEvent).where(where).order_by(CallEvent.seq).limit(limit).offset(offset)
    )
    return list(rows), total


async def create_booking(
    session: AsyncSession, tenant_id: str, call_id: str, when: str, name: str | None
) -> Booking:
    booking = Booking(id=new_id("bkg"), tenant_id=tenant_id, call_id=call_id, when=when, name=name)
    session.add(booking)
    await session.flush()
    return booking


async def list_bookings(
    session: AsyncSession, tenant_id: str, limit: int, offset: int
) -> tuple[list[Booking], int]:
    where = Booking.tenant_id == tenant_id
    total = await session.scalar(select(func.count()).select_from(Booking).where(where)) or 0
    rows = await session.scalars(
        select(Booking).where(where).order_by(Booking.created_at).limit(limit).offset(offset)
    )
    return list(rows), total
