from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.calls.models import Booking
from control_plane.kit.db import new_id
from control_plane.kit.pagination import PageParams, paginate


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
