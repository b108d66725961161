from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from control_plane.kit.auth import TenantScope
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import Conflict, error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.users import service
from control_plane.users.schemas import UserChange, UserIn, UserOut

router = APIRouter(
    prefix="/v1/tenants/{tenant_id}/users",
    tags=["users"],
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=UserOut, responses=error_responses(409)
)
async def create_user(
    tenant_id: str, body: UserIn, request: Request, session: SessionDep, _: TenantScope
) -> UserOut:
    """A user of the built-in issuer, in this tenant (with Keycloak: manage users there)."""
    if request.app.state.identity.signing_key is None:
        raise Conflict("users are managed in Keycloak for this deployment")
    return UserOut.model_validate(await service.create_user(session, tenant_id, body))


@router.get("", response_model=Page[UserOut])
async def list_users(
    tenant_id: str,
    session: SessionDep,
    _: TenantScope,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[UserOut]:
    rows, total = await service.list_users(session, tenant_id, paging)
    return Page[UserOut].of(rows, total, paging)


@router.patch("/{user_id}", response_model=UserOut)
async def change_user(
    tenant_id: str, user_id: str, body: UserChange, session: SessionDep, _: TenantScope
) -> UserOut:
    """Disable a user (``{"disabled": true}``): sign-in is refused and every token it holds
    stops working at once; ``false`` enables it again."""
    return UserOut.model_validate(
        await service.set_disabled(session, tenant_id, user_id, body.disabled)
    )


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(tenant_id: str, user_id: str, session: SessionDep, _: TenantScope) -> None:
    """Remove the user: its tokens stop working at once."""
    await service.delete_user(session, tenant_id, user_id)
