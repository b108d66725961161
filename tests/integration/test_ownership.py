"""Who owns what: a number on the platform's own telephony account is assigned by a platform
admin, never claimed first; a tenant binds numbers of its own account; a user disabled or
deleted is refused at once, tokens already issued included."""

from collections.abc import Iterator

import httpx
import pytest

from control_plane.numbers.routes import OWN_ACCOUNT_SECRET
from tests.conftest import AUTH, make_tenant, unique_number
from tests.unit.test_sign_in import sign_in


@pytest.fixture
def client(live_platform) -> Iterator[httpx.Client]:
    """The platform under a real server: its tokens are checked against its served keys."""
    with httpx.Client(base_url=live_platform.url, timeout=30) as api:
        yield api


def tenant_admin(client, tenant_id: str) -> tuple[dict, dict]:
    """A tenant-admin user of the built-in issuer, and its token's header."""
    body = {"username": f"admin-{tenant_id}", "password": "correct horse", "role": "tenant-admin"}
    r = client.post(f"/v1/tenants/{tenant_id}/users", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
    token = sign_in(client, r.json()["sign_in_name"], body["password"]).json()["access_token"]
    return r.json(), {"Authorization": f"Bearer {token}"}


def bind(client, tenant: dict, headers: dict, provider: str = "twilio"):
    number = unique_number("91804") if provider == "exotel" else unique_number()
    body = {"e164": number, "agent_id": tenant["agent_id"], "provider": provider}
    return client.post(f"/v1/tenants/{tenant['id']}/numbers", json=body, headers=headers)


@pytest.mark.parametrize("provider", ["twilio", "exotel"])
def test_a_tenant_binds_numbers_of_its_own_account_only(client, provider):
    t = make_tenant(client)
    _, admin = tenant_admin(client, t["id"])
    refused = bind(client, t, admin, provider)
    assert refused.status_code == 403
    assert "assigned by a platform admin" in refused.json()["detail"]
    assert OWN_ACCOUNT_SECRET[provider] in refused.json()["detail"]
    # With its own account's credentials stored, its numbers are its own to bind.
    name = OWN_ACCOUNT_SECRET[provider]
    stored = client.put(
        f"/v1/tenants/{t['id']}/secrets/{name}", json={"value": "x" * 32}, headers=admin
    )
    assert stored.status_code == 200
    assert bind(client, t, admin, provider).status_code == 201
    # A platform admin assigns a number on the platform's account to any tenant.
    assert bind(client, make_tenant(client), AUTH, provider).status_code == 201


def test_the_secret_names_are_the_ones_the_webhooks_verify_with():
    from media_plane.telephony import exotel_auth, twilio_auth

    assert OWN_ACCOUNT_SECRET == {
        "twilio": twilio_auth.TENANT_TOKEN,
        "exotel": exotel_auth.TENANT_TOKEN,
    }


def test_a_disabled_users_token_is_refused_at_once_and_so_is_its_sign_in(client):
    t = make_tenant(client)
    user, token = tenant_admin(client, t["id"])
    assert user["disabled_at"] is None
    mine = f"/v1/tenants/{t['id']}"
    assert client.get(mine, headers=token).status_code == 200
    r = client.patch(f"{mine}/users/{user['id']}", json={"disabled": True}, headers=AUTH)
    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    assert client.get(mine, headers=token).status_code == 401  # the token it already holds
    refused = sign_in(client, user["sign_in_name"], "correct horse")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_grant"
    # Enabled again: it signs in as before.
    client.patch(f"{mine}/users/{user['id']}", json={"disabled": False}, headers=AUTH)
    again = sign_in(client, user["sign_in_name"], "correct horse").json()["access_token"]
    assert client.get(mine, headers={"Authorization": f"Bearer {again}"}).status_code == 200


def test_a_deleted_users_token_is_refused_at_once(client):
    t = make_tenant(client)
    user, token = tenant_admin(client, t["id"])
    r = client.delete(f"/v1/tenants/{t['id']}/users/{user['id']}", headers=AUTH)
    assert r.status_code == 204
    assert client.get(f"/v1/tenants/{t['id']}", headers=token).status_code == 401
    assert sign_in(client, user["sign_in_name"], "correct horse").status_code == 401


def test_a_tenant_admin_cannot_disable_another_tenants_user(client):
    a, b = make_tenant(client), make_tenant(client)
    _, admin_a = tenant_admin(client, a["id"])
    user_b, token_b = tenant_admin(client, b["id"])
    for path in (
        f"/v1/tenants/{b['id']}/users/{user_b['id']}",
        f"/v1/tenants/{a['id']}/users/{user_b['id']}",
    ):
        assert client.patch(path, json={"disabled": True}, headers=admin_a).status_code in (
            403,
            404,
        )
        assert client.delete(path, headers=admin_a).status_code in (403, 404)
    assert client.get(f"/v1/tenants/{b['id']}", headers=token_b).status_code == 200


def test_another_tenants_usernames_answer_nothing_different(client):
    a, b = make_tenant(client), make_tenant(client)
    body = {"username": "alice", "password": "correct horse", "role": "tenant-viewer"}
    alice_a = client.post(f"/v1/tenants/{a['id']}/users", json=body, headers=AUTH)
    # B may have an alice too: the answer is the one a name no one uses gets.
    alice_b = client.post(f"/v1/tenants/{b['id']}/users", json=body, headers=AUTH)
    assert (alice_a.status_code, alice_b.status_code) == (201, 201)
    assert client.post(f"/v1/tenants/{b['id']}/users", json=body, headers=AUTH).status_code == 409
    # Each signs in as her own tenant's user, and sees her own tenant only.
    for alice, mine, theirs in ((alice_a, a, b), (alice_b, b, a)):
        assert alice.json()["sign_in_name"] == f"alice@{mine['id']}"
        token = sign_in(client, alice.json()["sign_in_name"], "correct horse").json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.get(f"/v1/tenants/{mine['id']}", headers=headers).status_code == 200
        assert client.get(f"/v1/tenants/{theirs['id']}", headers=headers).status_code in (403, 404)
    # A tenant's user never signs in by the bare name.
    assert sign_in(client, "alice", "correct horse").status_code == 401
