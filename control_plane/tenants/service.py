from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.kit import changes
from control_plane.kit.db import new_id
from control_plane.kit.errors import NotFound
from control_plane.kit.pagination import PageParams, paginate
from control_plane.tenants.models import Agent, AgentVersion, Tenant
from control_plane.tenants.schemas import AgentIn


async def create_tenant(session: AsyncSession, name: str) -> Tenant:
    tenant = Tenant(id=new_id("ten"), name=name)
    session.add(tenant)
    await session.flush()
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    return tenant


async def list_tenants(
    session: AsyncSession, paging: PageParams, only: frozenset[str] | None = None
) -> tuple[list[Tenant], int]:
    query = select(Tenant)
    if only is not None:
        query = query.where(Tenant.id.in_(only))
    return await paginate(session, query.order_by(Tenant.created_at), paging)


async def create_agent(session: AsyncSession, tenant_id: str, data: AgentIn) -> Agent:
    await get_tenant(session, tenant_id)
    agent = Agent(id=new_id("agt"), tenant_id=tenant_id, version=1, **_columns(data))
    session.add(agent)
    session.add(
        AgentVersion(
            agent_id=agent.id, version=1, tenant_id=tenant_id, config=data.model_dump(mode="json")
        )
    )
    await session.flush()
    changes.tenant_changed(session, tenant_id)
    return agent


async def update_agent(
    session: AsyncSession, tenant_id: str, agent_id: str, data: AgentIn
) -> Agent:
    """A new live version. Calls already under way keep the version they started with."""
    agent = await get_agent(session, tenant_id, agent_id)
    agent.version += 1
    for column, value in _columns(data).items():
        setattr(agent, column, value)
    session.add(
        AgentVersion(
            agent_id=agent.id,
            version=agent.version,
            tenant_id=tenant_id,
            config=data.model_dump(mode="json"),
        )
    )
    await session.flush()
    changes.tenant_changed(session, tenant_id)  # media pods drop their cached config
    return agent


async def list_agent_versions(
    session: AsyncSession, tenant_id: str, agent_id: str, paging: PageParams
) -> tuple[list[AgentVersion], int]:
    await get_agent(session, tenant_id, agent_id)
    query = select(AgentVersion).where(
        AgentVersion.tenant_id == tenant_id, AgentVersion.agent_id == agent_id
    )
    return await paginate(session, query.order_by(AgentVersion.version.desc()), paging)


def _columns(data: AgentIn) -> dict:
    return data.model_dump(mode="json")  # the URL as text; the providers as a dict


async def get_agent(session: AsyncSession, tenant_id: str, agent_id: str) -> Agent:
    agent = await session.scalar(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.id == agent_id)
    )
    if agent is None:
        raise NotFound(f"agent {agent_id} does not exist for tenant {tenant_id}")
    return agent


async def list_agents(
    session: AsyncSession, tenant_id: str, paging: PageParams
) -> tuple[list[Agent], int]:
    await get_tenant(session, tenant_id)
    query = select(Agent).where(Agent.tenant_id == tenant_id).order_by(Agent.created_at)
    return await paginate(session, query, paging)
