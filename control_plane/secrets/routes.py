"""Write-only secrets: a value goes in, only metadata (name, version, updated_at) comes out."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from control_plane.kit.auth import TenantScope
from control_plane.kit.changes import tenant_changed
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import NotFound, error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.secrets.store import SecretMeta, SecretStore
from control_plane.tenants.service import get_tenant

router = APIRouter(
    prefix="/v1/tenants/{tenant_id}/secrets",
    tags=["secrets"],
    responses=error_responses(401, 403, 404, 422, 503),
)
SecretName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # SecretStr: the value never shows in a repr, a log line or an error.
    value: SecretStr = Field(min_length=1, max_length=8192)


class SecretMetaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    version: int
    updated_at: datetime


def _store(request: Request) -> SecretStore:
    return request.app.state.secrets


@router.put("/{name}", response_model=SecretMetaOut)
async def put_secret(
    tenant_id: str,
    name: SecretName,
    body: SecretIn,
    request: Request,
    session: SessionDep,
    _: TenantScope,
) -> SecretMetaOut:
    """Create the secret, or store a new version of it."""
    await get_tenant(session, tenant_id)
    meta = await _store(request).put(tenant_id, name, body.value.get_secret_value())
    tenant_changed(session, tenant_id)  # media pods drop the value they cached
    return SecretMetaOut.model_validate(meta)


@router.get("", response_model=Page[SecretMetaOut])
async def list_secrets(
    tenant_id: str,
    request: Request,
    session: SessionDep,
    _: TenantScope,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[SecretMetaOut]:
    await get_tenant(session, tenant_id)
    metas: list[SecretMeta] = await _store(request).list(tenant_id)
    page = metas[paging.offset : paging.offset + paging.limit]
    return Page[SecretMetaOut].of(page, len(metas), paging)


@router.get("/{name}", response_model=SecretMetaOut)
async def get_secret(
    tenant_id: str, name: SecretName, request: Request, session: SessionDep, _: TenantScope
) -> SecretMetaOut:
    """Metadata only: the value is never returned."""
    await get_tenant(session, tenant_id)
    meta = await _store(request).metadata(tenant_id, name)
    if meta is None:
        raise NotFound(f"secret {name} does not exist for tenant {tenant_id}")
    return SecretMetaOut.model_validate(meta)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_secret(
    tenant_id: str, name: SecretName, request: Request, session: SessionDep, _: TenantScope
) -> None:
    await get_tenant(session, tenant_id)
    if not await _store(request).delete(tenant_id, name):
        raise NotFound(f"secret {name} does not exist for tenant {tenant_id}")
    tenant_changed(session, tenant_id)
