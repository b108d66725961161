from typing import Annotated

from fastapi import APIRouter, Depends

from control_plane.calls import service
from control_plane.calls.schemas import BookingOut, CallEventOut
from control_plane.kit.auth import TenantScope
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import NotFound, error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.tenants.service import get_tenant

router = APIRouter(
    prefix="/v1/tenants/{tenant_id}", tags=["calls"], responses=error_responses(401, 403, 404, 422)
)
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/calls/{call_id}/events", response_model=Page[CallEventOut])
async def call_events(
    tenant_id: str, call_id: str, session: SessionDep, _: TenantScope, paging: Paging
) -> Page[CallEventOut]:
    await get_tenant(session, tenant_id)
    rows, total = await service.call_timeline(session, tenant_id, call_id, paging)
    if total == 0:
        raise NotFound(f"call {call_id} does not exist for tenant {tenant_id}")
    return Page[CallEventOut].of(rows, total, paging)


@router.get("/bookings", response_model=Page[BookingOut])
async def bookings(
    tenant_id: str, session: SessionDep, _: TenantScope, paging: Paging
) -> Page[BookingOut]:
    await get_tenant(session, tenant_id)
    rows, total = await service.list_bookings(session, tenant_id, paging)
    return Page[BookingOut].of(rows, total, paging)
