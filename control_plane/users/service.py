"""Users of the built-in issuer. With Keycloak, users and their groups live in Keycloak."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.identity.models import User
from control_plane.identity.passwords import hash_password
from control_plane.kit.db import new_id
from control_plane.kit.errors import Conflict, NotFound
from control_plane.kit.pagination import PageParams, paginate
from control_plane.tenants.service import get_tenant
from control_plane.users.schemas import UserIn


async def create_user(session: AsyncSession, tenant_id: str, data: UserIn) -> User:
    await get_tenant(session, tenant_id)
    # Only the tenant's own names conflict (its admin sees them listed anyway).
    mine = select(User).where(User.tenant_id == tenant_id, User.username == data.username)
    if await session.scalar(mine):
        raise Conflict(f"this tenant already has a user {data.username!r}")
    user = User(
        id=new_id("usr"),
        username=data.username,
        password_hash=await hash_password(data.password),
        role=data.role,
        tenant_id=tenant_id,
    )
    session.add(user)
    await session.flush()
    return user


async def list_users(
    session: AsyncSession, tenant_id: str, paging: PageParams
) -> tuple[list[User], int]:
    await get_tenant(session, tenant_id)
    query = select(User).where(User.tenant_id == tenant_id).order_by(User.created_at)
    return await paginate(session, query, paging)


async def get_user(session: AsyncSession, tenant_id: str, user_id: str) -> User:
    user = await session.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))
    if user is None:
        raise NotFound(f"user {user_id} does not exist for tenant {tenant_id}")
    return user


async def set_disabled(session: AsyncSession, tenant_id: str, user_id: str, disabled: bool) -> User:
    """Disabled: refused at sign-in and on every request with a token it already holds."""
    user = await get_user(session, tenant_id, user_id)
    if disabled and user.disabled_at is None:
        user.disabled_at = datetime.now(UTC)
    elif not disabled:
        user.disabled_at = None
    await session.flush()
    return user


async def delete_user(session: AsyncSession, tenant_id: str, user_id: str) -> None:
    await session.delete(await get_user(session, tenant_id, user_id))
    await session.flush()
