from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from control_plane.kit.auth import TenantScope
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import Forbidden, error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.numbers import service
from control_plane.numbers.schemas import NumberIn, NumberOut
from control_plane.tenants.service import get_tenant

# The secret that shows a tenant brings its own account with the provider.
OWN_ACCOUNT_SECRET = {"twilio": "twilio_auth_token", "exotel": "exotel_api_token"}

router = APIRouter(
    prefix="/v1/tenants/{tenant_id}/numbers",
    tags=["numbers"],
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NumberOut,
    responses=error_responses(409),
)
async def bind_number(
    tenant_id: str, body: NumberIn, request: Request, session: SessionDep, principal: TenantScope
) -> NumberOut:
    """A tenant binds numbers on its own Twilio or Exotel account (its credentials stored as
    its secrets: the provider signs each call with them). A number on the platform's own
    account is assigned by a platform admin: anyone could name it, so claiming it first
    must not make it theirs."""
    if not principal.is_platform_admin:
        own = OWN_ACCOUNT_SECRET[body.provider]
        if await request.app.state.secrets.metadata(tenant_id, own) is None:
            raise Forbidden(
                f"numbers on the platform's {body.provider} account are assigned by a platform "
                f"admin; to bind a number on your own {body.provider} account, store its "
                f"credentials first (secret {own!r})"
            )
    return NumberOut.model_validate(await service.bind_number(session, tenant_id, body))


@router.get("", response_model=Page[NumberOut])
async def list_numbers(
    tenant_id: str,
    session: SessionDep,
    _: TenantScope,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[NumberOut]:
    await get_tenant(session, tenant_id)
    rows, total = await service.list_numbers(session, tenant_id, paging)
    return Page[NumberOut].of(rows, total, paging)


@router.delete("/{e164}", status_code=status.HTTP_204_NO_CONTENT)
async def unbind_number(tenant_id: str, e164: str, session: SessionDep, _: TenantScope) -> None:
    """Release the number: calls to it are refused from now on (calls under way go on)."""
    await service.unbind_number(session, tenant_id, e164)
