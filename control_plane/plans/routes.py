from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from control_plane.kit.auth import CurrentPrincipal, PlatformAdmin, TenantScope
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.plans import service
from control_plane.plans.schemas import PlanIn, PlanOut, TenantPlanIn, UsageOut

router = APIRouter(tags=["plans"], responses=error_responses(401, 403, 404, 422, 503))


@router.post(
    "/v1/plans",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanOut,
    responses=error_responses(409),
)
async def create_plan(body: PlanIn, session: SessionDep, _: PlatformAdmin) -> PlanOut:
    return PlanOut.model_validate(await service.create_plan(session, body))


@router.get("/v1/plans", response_model=Page[PlanOut])
async def list_plans(
    session: SessionDep,
    _: CurrentPrincipal,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[PlanOut]:
    rows, total = await service.list_plans(session, paging)
    return Page[PlanOut].of(rows, total, paging)


@router.put("/v1/tenants/{tenant_id}/plan", status_code=status.HTTP_204_NO_CONTENT)
async def set_plan(
    tenant_id: str, body: TenantPlanIn, session: SessionDep, _: TenantScope, __: PlatformAdmin
) -> None:
    """Put the tenant on a plan (or none: no limits)."""
    await service.set_tenant_plan(session, tenant_id, body.plan_id)


@router.get("/v1/tenants/{tenant_id}/usage", response_model=UsageOut)
async def usage(tenant_id: str, request: Request, session: SessionDep, _: TenantScope) -> UsageOut:
    plan = await service.tenant_plan(session, tenant_id)
    start = service.month_start()
    minutes = await request.app.state.timeline.minutes_used(tenant_id, start)
    return UsageOut(
        plan=PlanOut.model_validate(plan) if plan else None,
        month_start=start,
        minutes_used=round(minutes, 2),
    )
