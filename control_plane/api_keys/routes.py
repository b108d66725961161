from typing import Annotated

from fastapi import APIRouter, Depends, status

from control_plane.api_keys import service
from control_plane.api_keys.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from control_plane.kit.auth import TenantScope
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import error_responses
from control_plane.kit.pagination import Page, PageParams, page_params

router = APIRouter(
    prefix="/v1/tenants/{tenant_id}/api-keys",
    tags=["api keys"],
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(
    tenant_id: str, body: ApiKeyIn, session: SessionDep, _: TenantScope
) -> ApiKeyCreated:
    key, token = await service.create_key(session, tenant_id, body)
    return ApiKeyCreated.model_validate(ApiKeyOut.model_validate(key).model_dump() | {"key": token})


@router.get("", response_model=Page[ApiKeyOut])
async def list_api_keys(
    tenant_id: str,
    session: SessionDep,
    _: TenantScope,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[ApiKeyOut]:
    rows, total = await service.list_keys(session, tenant_id, paging)
    return Page[ApiKeyOut].of(rows, total, paging)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(tenant_id: str, key_id: str, session: SessionDep, _: TenantScope) -> None:
    """Revoke a key: it stops working at once; the record stays for audit."""
    await service.revoke_key(session, tenant_id, key_id)
