from typing import Annotated

from fastapi import APIRouter, Depends, status

from control_plane.kit.auth import CurrentPrincipal, PlatformAdmin, TenantScope
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.tenants import service
from control_plane.tenants.schemas import (
    AgentIn,
    AgentOut,
    AgentVersionOut,
    TenantIn,
    TenantOut,
)

router = APIRouter(
    prefix="/v1/tenants", tags=["tenants"], responses=error_responses(401, 403, 422, 503)
)
Paging = Annotated[PageParams, Depends(page_params)]


class TenantCreated(TenantOut):
    agent: AgentOut | None = None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TenantCreated)
async def create_tenant(body: TenantIn, session: SessionDep, _: PlatformAdmin) -> TenantCreated:
    tenant = await service.create_tenant(session, body.name)
    out = TenantCreated.model_validate(tenant)
    if body.agent is not None:
        agent = await service.create_agent(session, tenant.id, body.agent)
        out.agent = AgentOut.model_validate(agent)
    return out


@router.get("", response_model=Page[TenantOut])
async def list_tenants(
    session: SessionDep, principal: CurrentPrincipal, paging: Paging
) -> Page[TenantOut]:
    """Every tenant for a platform-admin; otherwise the caller's own."""
    only = None if principal.is_platform_admin else principal.tenant_ids
    rows, total = await service.list_tenants(session, paging, only=only)
    return Page[TenantOut].of(rows, total, paging)


@router.get("/{tenant_id}", response_model=TenantOut, responses=error_responses(404))
async def get_tenant(tenant_id: str, session: SessionDep, _: TenantScope) -> TenantOut:
    return TenantOut.model_validate(await service.get_tenant(session, tenant_id))


@router.post(
    "/{tenant_id}/agents",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentOut,
    responses=error_responses(404),
)
async def create_agent(
    tenant_id: str, body: AgentIn, session: SessionDep, _: TenantScope
) -> AgentOut:
    return AgentOut.model_validate(await service.create_agent(session, tenant_id, body))


@router.get("/{tenant_id}/agents", response_model=Page[AgentOut], responses=error_responses(404))
async def list_agents(
    tenant_id: str, session: SessionDep, _: TenantScope, paging: Paging
) -> Page[AgentOut]:
    rows, total = await service.list_agents(session, tenant_id, paging)
    return Page[AgentOut].of(rows, total, paging)


@router.get(
    "/{tenant_id}/agents/{agent_id}", response_model=AgentOut, responses=error_responses(404)
)
async def get_agent(tenant_id: str, agent_id: str, session: SessionDep, _: TenantScope) -> AgentOut:
    return AgentOut.model_validate(await service.get_agent(session, tenant_id, agent_id))


@router.put(
    "/{tenant_id}/agents/{agent_id}", response_model=AgentOut, responses=error_responses(404)
)
async def update_agent(
    tenant_id: str, agent_id: str, body: AgentIn, session: SessionDep, _: TenantScope
) -> AgentOut:
    """Replace the agent's configuration: a new version goes live for calls that start
    from now on; calls already under way keep theirs."""
    return AgentOut.model_validate(await service.update_agent(session, tenant_id, agent_id, body))


@router.get(
    "/{tenant_id}/agents/{agent_id}/versions",
    response_model=Page[AgentVersionOut],
    responses=error_responses(404),
)
async def list_agent_versions(
    tenant_id: str, agent_id: str, session: SessionDep, _: TenantScope, paging: Paging
) -> Page[AgentVersionOut]:
    rows, total = await service.list_agent_versions(session, tenant_id, agent_id, paging)
    return Page[AgentVersionOut].of(rows, total, paging)
