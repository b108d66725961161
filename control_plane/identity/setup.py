"""Identity at start-up: the built-in issuer (key, bootstrap admin) or a Keycloak realm."""

from dataclasses import dataclass

from jwcrypto import jwk
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.identity.keys import load_or_create_signing_key
from control_plane.identity.models import User
from control_plane.identity.passwords import hash_password
from control_plane.identity.tokens import TokenValidator
from control_plane.kit.db import new_id, session_scope
from switchboard.settings import Settings


@dataclass(frozen=True)
class Identity:
    realm: str
    client_id: str
    issuer: str
    validator: TokenValidator
    signing_key: jwk.JWK | None  # set only when this platform is the issuer


async def start_identity(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> Identity:
    if settings.oidc_server_url:
        server, key = str(settings.oidc_server_url), None
    else:
        server = settings.base_url
        key = load_or_create_signing_key(settings.data_dir / "oidc" / "signing-key.pem")
        await _bootstrap_admin(sessions, settings.bootstrap_admin_password)
    validator = TokenValidator(server, settings.oidc_realm, settings.oidc_client_id)
    return Identity(
        realm=settings.oidc_realm,
        client_id=settings.oidc_client_id,
        issuer=validator.issuer,
        validator=validator,
        signing_key=key,
    )


async def _bootstrap_admin(sessions: async_sessionmaker[AsyncSession], password: str) -> None:
    async with session_scope(sessions) as session:
        if await session.scalar(select(func.count()).select_from(User)):
            return
        session.add(
            User(
                id=new_id("usr"),
                username="admin",
                password_hash=await hash_password(password),
                role="platform-admin",
                tenant_id=None,
            )
        )
