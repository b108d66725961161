"""The built-in OIDC issuer through python-keycloak, and token validation.

The contract tests (discovery, login, validation, refusal) also run against a real
Keycloak when SWITCHBOARD_TEST_KEYCLOAK_URL is set, with _USERNAME and _PASSWORD naming a
platform-admin user of realm "switchboard" whose public client "switchboard" allows the
password grant and maps groups and the audience as docs/control-plane.md describes.
"""

import os
import time
from dataclasses import dataclass

import pytest
from jwcrypto import jwk, jwt
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError

from control_plane.identity.keys import load_or_create_signing_key
from control_plane.identity.tokens import InvalidToken, TokenValidator

REALM, CLIENT = "switchboard", "switchboard"


def oidc(url: str) -> KeycloakOpenID:
    return KeycloakOpenID(server_url=url, realm_name=REALM, client_id=CLIENT)


def forge(live, key: jwk.JWK | None = None, **overrides) -> str:
    """A token signed like the issuer's, with some claims changed."""
    key = key or load_or_create_signing_key(live.settings.data_dir / "oidc" / "signing-key.pem")
    now = int(time.time())
    claims = {
        "iss": f"{live.url}/realms/{REALM}",
        "sub": "usr_x",
        "aud": CLIENT,
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["platform-admin"]},
        "groups": [],
    } | overrides
    token = jwt.JWT(header={"alg": "RS256", "kid": key["kid"]}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


@dataclass
class Issuer:
    url: str
    username: str
    password: str


ISSUERS = ["built-in"]
if os.environ.get("SWITCHBOARD_TEST_KEYCLOAK_URL"):
    ISSUERS.append("keycloak")


@pytest.fixture(params=ISSUERS)
def issuer(request) -> Issuer:
    if request.param == "built-in":
        return Issuer(request.getfixturevalue("live_platform").url, "admin", "admin")
    return Issuer(
        os.environ["SWITCHBOARD_TEST_KEYCLOAK_URL"].rstrip("/"),
        os.environ["SWITCHBOARD_TEST_KEYCLOAK_USERNAME"],
        os.environ["SWITCHBOARD_TEST_KEYCLOAK_PASSWORD"],
    )


async def test_discovery_and_keys_follow_keycloaks_layout(issuer):
    client = oidc(issuer.url)
    well_known = await client.a_well_known()
    assert well_known["issuer"] == f"{issuer.url}/realms/{REALM}"
    assert well_known["jwks_uri"].endswith("/protocol/openid-connect/certs")
    keys = (await client.a_certs())["keys"]
    assert ("RSA", "RS256", "sig") in [(k["kty"], k.get("alg"), k.get("use")) for k in keys]
    assert all("d" not in k for k in keys)  # the private part never leaves the issuer
    assert await client.a_public_key()


async def test_the_admin_logs_in_and_its_token_validates(issuer):
    token = (await oidc(issuer.url).a_token(issuer.username, issuer.password))["access_token"]
    principal = await TokenValidator(issuer.url, REALM, CLIENT).validate(token)
    assert principal.is_platform_admin and principal.tenant_ids == frozenset()


async def test_wrong_credentials_get_no_token(issuer):
    with pytest.raises(KeycloakAuthenticationError):
        await oidc(issuer.url).a_token(issuer.username, "wrong")
    with pytest.raises(KeycloakAuthenticationError):
        await oidc(issuer.url).a_token("nobody-at-all", issuer.password)


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "another-client"},
        {"iss": "https://evil.example/realms/switchboard"},
        {"exp": int(time.time()) - 3600},
    ],
    ids=["audience", "issuer", "expired"],
)
async def test_tokens_with_wrong_claims_are_refused(live_platform, change):
    validator = TokenValidator(live_platform.url, REALM, CLIENT)
    assert (await validator.validate(forge(live_platform))).is_platform_admin  # control
    with pytest.raises(InvalidToken):
        await validator.validate(forge(live_platform, **change))


async def test_tokens_signed_by_another_key_or_tampered_are_refused(live_platform):
    validator = TokenValidator(live_platform.url, REALM, CLIENT)
    stranger = jwk.JWK.generate(kty="RSA", size=2048)
    stranger.update(
        kid=load_or_create_signing_key(
            live_platform.settings.data_dir / "oidc" / "signing-key.pem"
        )["kid"]
    )
    with pytest.raises(InvalidToken):
        await validator.validate(forge(live_platform, key=stranger))
    header, payload, signature = forge(live_platform).split(".")
    with pytest.raises(InvalidToken):
        await validator.validate(f"{header}.{payload[:-4]}AAAA.{signature}")
    with pytest.raises(InvalidToken):
        await validator.validate("not a token")


async def test_the_signing_key_survives_a_restart(live_platform):
    token = (await oidc(live_platform.url).a_token("admin", "admin"))["access_token"]
    live_platform.stop()
    live_platform.start()  # same data dir: same key
    principal = await TokenValidator(live_platform.url, REALM, CLIENT).validate(token)
    assert principal.is_platform_admin


async def test_a_rotated_key_is_fetched_when_a_token_names_it(live_platform, monkeypatch):
    validator = TokenValidator(live_platform.url, REALM, CLIENT)
    await validator.validate(forge(live_platform))  # keys now cached
    # The realm rotates: new key on disk, platform restarted; the cached set is stale.
    path = live_platform.settings.data_dir / "oidc" / "signing-key.pem"
    live_platform.stop()
    path.unlink()
    live_platform.start()
    monkeypatch.setattr("control_plane.identity.tokens.MIN_REFETCH_SECS", 0)
    token = (await oidc(live_platform.url).a_token("admin", "admin"))["access_token"]
    assert (await validator.validate(token)).is_platform_admin
