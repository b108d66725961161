from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.kit import changes
from control_plane.kit.errors import Conflict, NotFound
from control_plane.kit.pagination import PageParams, paginate
from control_plane.numbers.models import PhoneNumber
from control_plane.numbers.schemas import NumberIn
from control_plane.tenants.models import Agent
from control_plane.tenants.service import get_agent


async def bind_number(session: AsyncSession, tenant_id: str, data: NumberIn) -> PhoneNumber:
    await get_agent(session, tenant_id, data.agent_id)
    if await session.get(PhoneNumber, data.e164) is not None:
        raise Conflict(f"{data.e164} is already bound")
    number = PhoneNumber(
        e164=data.e164, tenant_id=tenant_id, agent_id=data.agent_id, provider=data.provider
    )
    session.add(number)
    await session.flush()
    changes.tenant_changed(session, tenant_id)
    return number


async def unbind_number(session: AsyncSession, tenant_id: str, e164: str) -> None:
    """Calls to the number are refused from now on (calls under way carry on)."""
    number = await session.scalar(
        select(PhoneNumber).where(PhoneNumber.tenant_id == tenant_id, PhoneNumber.e164 == e164)
    )
    if number is None:
        raise NotFound(f"{e164} is not bound to tenant {tenant_id}")
    await session.delete(number)
    await session.flush()
    changes.tenant_changed(session, tenant_id)


async def list_numbers(
    session: AsyncSession, tenant_id: str, paging: PageParams
) -> tuple[list[PhoneNumber], int]:
    query = select(PhoneNumber).where(PhoneNumber.tenant_id == tenant_id)
    return await paginate(session, query.order_by(PhoneNumber.e164), paging)


async def agent_for_number(session: AsyncSession, e164: str) -> tuple[Agent, str] | None:
    """Platform-internal: the agent a called number reaches, and the number's provider."""
    row = (
        await session.execute(
            select(Agent, PhoneNumber.provider)
            .join(PhoneNumber, PhoneNumber.agent_id == Agent.id)
            .where(PhoneNumber.e164 == e164)
        )
    ).first()
    return (row[0], row[1]) if row else None
