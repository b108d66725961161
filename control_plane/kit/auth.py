"""Who is calling, and which tenant they may touch.

A bearer token is an OIDC access token (Keycloak, or the built-in issuer), validated on
every request; a tenant API key (``sb_...``, machine access, one tenant and role); or the
operator token from settings (break-glass platform access, refused
in production unless set to a real secret). Tenant scope is decided here, from the
principal and the tenant in the path, never from a request body:

* reading a tenant's resources needs a role in that tenant (or platform-admin); without one
  the tenant does not exist for you (404, so ids of other tenants cannot be probed);
* changing them needs tenant-admin in that tenant (a tenant-viewer gets 403).
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control_plane.api_keys import service as api_keys
from control_plane.identity.models import User
from control_plane.identity.tokens import IdentityUnavailable, InvalidToken, Principal
from control_plane.kit.authenticate_first import AUTHENTICATED
from control_plane.kit.crypto import same_secret
from control_plane.kit.db import session_scope
from control_plane.kit.errors import Forbidden, NotFound, ServiceUnavailable, Unauthorized

_bearer = HTTPBearer(auto_error=False)
OPERATOR = Principal(
    subject="operator", roles=frozenset({"platform-admin"}), tenant_ids=frozenset()
)
READ_METHODS = {"GET", "HEAD"}


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    known = request.scope.get(AUTHENTICATED)
    if isinstance(known, Principal):  # checked before the body was read
        return known
    if credentials is None:
        raise Unauthorized("a bearer token is required")
    token = credentials.credentials
    if same_secret(token, request.app.state.settings.admin_token):
        return OPERATOR
    if token.startswith(api_keys.PREFIX):
        async with session_scope(request.app.state.sessions) as session:
            principal = await api_keys.principal_for_key(session, token)
        if principal is None:
            raise Unauthorized("invalid or revoked API key")
        return principal
    try:
        principal = await request.app.state.identity.validator.validate(token)
    except InvalidToken as e:
        raise Unauthorized(f"invalid token: {e}") from e
    except IdentityUnavailable as e:
        raise ServiceUnavailable(str(e)) from e
    if request.app.state.identity.signing_key is not None:
        # Our own issuer's tokens name a user of ours: one disabled or deleted since the
        # token was signed is refused now, not when the token expires.
        async with session_scope(request.app.state.sessions) as session:
            user = await session.get(User, principal.subject)
        if user is None or user.disabled_at is not None:
            raise Unauthorized("the token's user is disabled or no longer exists")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def authenticate(request: Request) -> Principal:
    """The request's principal from its headers alone (``kit/authenticate_first.py``)."""
    return await current_principal(request, await _bearer(request))


async def require_platform_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_platform_admin:
        raise Forbidden("this needs the platform-admin role")
    return principal


PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]


async def tenant_scope(tenant_id: str, request: Request, principal: CurrentPrincipal) -> Principal:
    if not principal.can_read(tenant_id):
        raise NotFound(f"tenant {tenant_id} does not exist")
    if request.method not in READ_METHODS and not principal.can_write(tenant_id):
        raise Forbidden("this needs the tenant-admin role for this tenant")
    return principal


TenantScope = Annotated[Principal, Depends(tenant_scope)]
