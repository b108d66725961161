"""Users of the built-in issuer. With Keycloak, users and their groups live in Keycloak."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.identity.models import User
from control_plane.identity.passwords import hash_password
from control_plane.kit.db import new_id
from control_plane.kit.errors import Conflict
from control_plane.kit.pagination import PageParams, paginate
from control_plane.tenants.service import get_tenant
from control_plane.users.schemas import UserIn


async def create_user(session: AsyncSession, tenant_id: str, data: UserIn) -> User:
    await get_tenant(session, tenant_id)
    if await session.scalar(select(User).where(User.username == data.username)):
        raise Conflict(f"username {data.username!r} is taken")
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
