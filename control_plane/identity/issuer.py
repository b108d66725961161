"""The built-in OIDC issuer: the embedded default for Keycloak, with Keycloak's URL layout,
so the platform validates its tokens through the same python-keycloak code path it uses
against a real Keycloak.

    GET  /realms/{realm}                                   realm info with its public key
    GET  /realms/{realm}/.well-known/openid-configuration  discovery
    GET  /realms/{realm}/protocol/openid-connect/certs     JWKS
    POST /realms/{realm}/protocol/openid-connect/token     password grant

Tokens look like Keycloak's: RS256, ``realm_access.roles`` for the realm role and
``groups`` holding ``/tenants/<tenant_id>`` for the user's tenant.
"""

import base64
import math
import time
import uuid
from typing import Annotated

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from jwcrypto import jwk, jwt
from loguru import logger
from sqlalchemy import select

from common.failures import SIGN_IN_ADDRESS, SIGN_IN_USER
from control_plane.identity.models import User, named, sign_in_name
from control_plane.identity.passwords import verify_password
from control_plane.identity.roles import tenant_group
from control_plane.kit.db import session_scope

ACCESS_TOKEN_SECS = 300  # Keycloak's default access-token lifespan


def oauth_errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI entries for OAuth 2.0 error answers (RFC 6749 section 5.2)."""
    schema = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        "required": ["error"],
    }
    return {
        code: {"description": "OAuth error", "content": {"application/json": {"schema": schema}}}
        for code in codes
    }


router = APIRouter(
    prefix="/realms/{realm}", tags=["oidc (built-in issuer)"], responses=oauth_errors(404)
)


def issuer_url(base_url: str, realm: str) -> str:
    return f"{base_url.rstrip('/')}/realms/{realm}"


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _realm_or_404(request: Request, realm: str) -> JSONResponse | None:
    identity = request.app.state.identity
    if identity.signing_key is None or realm != identity.realm:  # Keycloak is the issuer
        return _oauth_error(404, "not_found", f"realm {realm!r} does not exist")
    return None


@router.get("")
async def realm_info(request: Request, realm: str) -> JSONResponse:
    if missing := _realm_or_404(request, realm):
        return missing
    identity = request.app.state.identity
    public_der = identity.signing_key.get_op_key("verify").public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return JSONResponse(
        {
            "realm": realm,
            "public_key": base64.b64encode(public_der).decode(),
            "token-service": f"{identity.issuer}/protocol/openid-connect",
            "tokens-not-before": 0,
        }
    )


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request, realm: str) -> JSONResponse:
    if missing := _realm_or_404(request, realm):
        return missing
    issuer = request.app.state.identity.issuer
    return JSONResponse(
        {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/protocol/openid-connect/token",
            "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
            "grant_types_supported": ["password"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        }
    )


@router.get("/protocol/openid-connect/certs")
async def certs(request: Request, realm: str) -> JSONResponse:
    if missing := _realm_or_404(request, realm):
        return missing
    key: jwk.JWK = request.app.state.identity.signing_key
    public = key.export_public(as_dict=True)
    return JSONResponse({"keys": [public | {"alg": "RS256", "use": "sig", "kid": key["kid"]}]})


@router.post("/protocol/openid-connect/token", responses=oauth_errors(400, 401, 429))
async def token(
    request: Request,
    realm: str,
    grant_type: Annotated[str, Form(min_length=1, max_length=100)],
    client_id: Annotated[str, Form(min_length=1, max_length=200)],
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> JSONResponse:
    if missing := _realm_or_404(request, realm):
        return missing
    identity = request.app.state.identity
    if grant_type != "password":
        return _oauth_error(400, "unsupported_grant_type", "only the password grant is supported")
    if client_id != identity.client_id:
        return _oauth_error(401, "invalid_client", "unknown client")
    # A guesser is refused before the guess costs a hash: by username (one account under
    # attack) and by address (one client trying many accounts). Unknown users count too.
    failures = request.app.state.failures
    address = request.client.host if request.client else "unknown"
    attempt = ((SIGN_IN_USER, username), (SIGN_IN_ADDRESS, address))
    wait = max([await failures.wait(policy, who) for policy, who in attempt])
    if wait > 0:
        refused = _oauth_error(429, "too_many_attempts", "too many failed sign-ins; wait")
        refused.headers["Retry-After"] = str(math.ceil(wait))
        return refused
    async with session_scope(request.app.state.sessions) as session:
        name, tenant_id = named(username)
        user = await session.scalar(
            select(User).where(User.username == name, User.tenant_id.is_(None))
            if tenant_id is None
            else select(User).where(User.username == name, User.tenant_id == tenant_id)
        )
    known = await verify_password(password, user.password_hash if user else None)
    # A disabled user is refused exactly like a wrong password: nothing tells them apart.
    if not known or user is None or user.disabled_at is not None:
        for policy, who in attempt:
            await failures.failed(policy, who)
        logger.warning("identity.sign_in_failed")  # neither the username nor the address
        return _oauth_error(401, "invalid_grant", "invalid user credentials")
    await failures.cleared(SIGN_IN_USER, username)
    now = int(time.time())
    claims = {
        "iss": identity.issuer,
        "sub": user.id,
        "aud": identity.client_id,
        "azp": client_id,
        "typ": "Bearer",
        "iat": now,
        "exp": now + ACCESS_TOKEN_SECS,
        "jti": uuid.uuid4().hex,
        "preferred_username": sign_in_name(user.username, user.tenant_id),
        "realm_access": {"roles": [user.role]},
        "groups": [tenant_group(user.tenant_id)] if user.tenant_id else [],
    }
    key: jwk.JWK = identity.signing_key
    signed = jwt.JWT(header={"alg": "RS256", "typ": "JWT", "kid": key["kid"]}, claims=claims)
    signed.make_signed_token(key)
    return JSONResponse(
        {
            "access_token": signed.serialize(),
            "expires_in": ACCESS_TOKEN_SECS,
            "token_type": "Bearer",
            "scope": "openid",
        }
    )
