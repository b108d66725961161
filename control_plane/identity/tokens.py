"""Bearer-token validation through python-keycloak: JWKS fetched from the realm, cached,
refetched when a token names a key we have not seen (rotation); ``iss``, ``aud`` and
``exp`` checked on every request."""

import base64
import json
import time
from dataclasses import dataclass

from jwcrypto import jwk
from jwcrypto.common import JWException
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakError

from control_plane.identity.roles import ROLES, TENANT_GROUP_PREFIX

JWKS_MAX_AGE_SECS = 300
MIN_REFETCH_SECS = 10  # an unknown kid never turns into a request flood against the realm
# A Keycloak access token with many groups is a few KB; past this it is not one of ours.
MAX_TOKEN_CHARS = 16 * 1024


class InvalidToken(Exception):
    pass


class IdentityUnavailable(Exception):
    """The realm's keys could not be fetched and none are cached: an outage, not a bad token."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[str]
    tenant_ids: frozenset[str]

    @property
    def is_platform_admin(self) -> bool:
        return "platform-admin" in self.roles

    def can_read(self, tenant_id: str) -> bool:
        return self.is_platform_admin or (
            tenant_id in self.tenant_ids and bool({"tenant-admin", "tenant-viewer"} & self.roles)
        )

    def can_write(self, tenant_id: str) -> bool:
        return self.is_platform_admin or (
            tenant_id in self.tenant_ids and "tenant-admin" in self.roles
        )


def principal_from_claims(claims: dict) -> Principal:
    roles = frozenset((claims.get("realm_access") or {}).get("roles", [])) & frozenset(ROLES)
    tenants = frozenset(
        g.removeprefix(TENANT_GROUP_PREFIX)
        for g in claims.get("groups", [])
        if isinstance(g, str) and g.startswith(TENANT_GROUP_PREFIX)
    )
    return Principal(subject=str(claims.get("sub", "")), roles=roles, tenant_ids=tenants)


def _unverified_kid(token: str) -> str | None:
    try:
        header = token.split(".", 1)[0]
        parsed = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
        return None
    kid = parsed.get("kid") if isinstance(parsed, dict) else None
    return kid if isinstance(kid, str) else None


class TokenValidator:
    def __init__(self, server_url: str, realm: str, client_id: str):
        self._oidc = KeycloakOpenID(server_url=server_url, realm_name=realm, client_id=client_id)
        self.issuer = f"{server_url.rstrip('/')}/realms/{realm}"
        self.client_id = client_id
        self._keys: jwk.JWKSet | None = None
        self._fetched_at = 0.0

    async def _jwks(self, *, refresh: bool = False) -> jwk.JWKSet:
        age = time.monotonic() - self._fetched_at
        stale = self._keys is None or age > JWKS_MAX_AGE_SECS
        if stale or (refresh and age > MIN_REFETCH_SECS):
            try:
                certs = await self._oidc.a_certs()
            except (KeycloakError, OSError) as e:
                if self._keys is None:
                    raise IdentityUnavailable(f"identity provider unreachable: {e}") from e
            else:
                keys = jwk.JWKSet()
                for cert in certs.get("keys", []):
                    keys.add(jwk.JWK(**cert))
                self._keys, self._fetched_at = keys, time.monotonic()
        assert self._keys is not None
        return self._keys

    async def validate(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(f"longer than {MAX_TOKEN_CHARS} characters")
        kid = _unverified_kid(token)
        keys = await self._jwks()
        if kid is not None and keys.get_key(kid) is None:
            keys = await self._jwks(refresh=True)  # the realm may have rotated its key
        try:
            claims = await self._oidc.a_decode_token(
                token,
                key=keys,
                check_claims={"iss": self.issuer, "aud": self.client_id, "exp": None},
            )
        except (JWException, ValueError, TypeError, RecursionError) as e:
            raise InvalidToken(str(e)[:200] or type(e).__name__) from e
        return principal_from_claims(claims)
