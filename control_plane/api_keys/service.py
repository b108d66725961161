"""Tenant API keys: ``sb_<id>_<secret>``. The id finds the key, the secret proves it; only
the secret's SHA-256 is stored (it is 256 random bits, so a slow hash adds nothing)."""

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.api_keys.models import ApiKey
from control_plane.api_keys.schemas import ApiKeyIn
from control_plane.identity.tokens import Principal
from control_plane.kit.db import utcnow
from control_plane.kit.errors import NotFound
from control_plane.kit.pagination import PageParams, paginate
from control_plane.tenants.service import get_tenant

PREFIX = "sb_"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(session: AsyncSession, tenant_id: str, data: ApiKeyIn) -> tuple[ApiKey, str]:
    await get_tenant(session, tenant_id)
    key_id, secret = f"key{secrets.token_hex(8)}", secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        name=data.name,
        role=data.role,
        secret_sha256=_sha256(secret),
    )
    session.add(key)
    await session.flush()
    return key, f"{PREFIX}{key_id}_{secret}"


async def list_keys(
    session: AsyncSession, tenant_id: str, paging: PageParams
) -> tuple[list[ApiKey], int]:
    await get_tenant(session, tenant_id)
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
    return await paginate(session, query, paging)


async def revoke_key(session: AsyncSession, tenant_id: str, key_id: str) -> None:
    key = await session.scalar(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
    )
    if key is None:
        raise NotFound(f"API key {key_id} does not exist for tenant {tenant_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()


async def principal_for_key(session: AsyncSession, token: str) -> Principal | None:
    """The key's principal, or None for a malformed, unknown, wrong or revoked key."""
    key_id, _, secret = token.removeprefix(PREFIX).partition("_")
    if not key_id or not secret:
        return None
    key = await session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_sha256, _sha256(secret)):
        return None
    return Principal(
        subject=f"api-key:{key.id}",
        roles=frozenset({key.role}),
        tenant_ids=frozenset({key.tenant_id}),
    )
