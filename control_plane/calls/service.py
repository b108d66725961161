from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.calls.models import Booking, CallEvent
from control_plane.kit.db import new_id
from control_plane.kit.pagination import PageParams, paginate


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
    session: AsyncSession, tenant_id: str, call_id: str, paging: PageParams
) -> tuple[list[CallEvent], int]:
    query = select(CallEvent).where(CallEvent.tenant_id == tenant_id, CallEvent.call_id == call_id)
    return await paginate(session, query.order_by(CallEvent.seq), paging)


async def create_booking(
    session: AsyncSession, tenant_id: str, call_id: str, when: str, name: str | None
) -> Booking:
    booking = Booking(id=new_id("bkg"), tenant_id=tenant_id, call_id=call_id, when=when, name=name)
    session.add(booking)
    await session.flush()
    return booking


async def list_bookings(
    session: AsyncSession, tenant_id: str, paging: PageParams
) -> tuple[list[Booking], int]:
    query = select(Booking).where(Booking.tenant_id == tenant_id)
    return await paginate(session, query.order_by(Booking.created_at), paging)
