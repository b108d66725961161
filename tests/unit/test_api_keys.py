from tests.conftest import AUTH, make_tenant


def key_for(client, tenant_id: str, role: str) -> dict:
    r = client.post(
        f"/v1/tenants/{tenant_id}/api-keys", json={"name": "robot", "role": role}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    return r.json()


def bearer(key: dict) -> dict:
    return {"Authorization": f"Bearer {key['key']}"}


def test_a_key_is_shown_once_and_works_for_its_own_tenant_only(client):
    a, b = make_tenant(client), make_tenant(client)
    key = key_for(client, a["id"], "tenant-admin")
    assert key["key"].startswith("sb_")
    listed = client.get(f"/v1/tenants/{a['id']}/api-keys", headers=AUTH).json()["items"]
    assert "key" not in listed[0] and key["key"] not in str(listed)
    assert client.get(f"/v1/tenants/{a['id']}/numbers", headers=bearer(key)).status_code == 200
    r = client.post(
        f"/v1/tenants/{a['id']}/documents",
        files={"file": ("faq.md", b"We open at nine.")},
        headers=bearer(key),
    )
    assert r.status_code == 201
    assert client.get(f"/v1/tenants/{b['id']}/numbers", headers=bearer(key)).status_code == 404
    assert client.post("/v1/tenants", json={"name": "x"}, headers=bearer(key)).status_code == 403


def test_a_viewer_key_reads_but_cannot_change(client):
    a = make_tenant(client)
    key = key_for(client, a["id"], "tenant-viewer")
    assert client.get(f"/v1/tenants/{a['id']}/agents", headers=bearer(key)).status_code == 200
    r = client.put(
        f"/v1/tenants/{a['id']}/agents/{a['agent_id']}",
        json={"name": "x", "greeting": "y"},
        headers=bearer(key),
    )
    assert r.status_code == 403


def test_a_revoked_or_forged_key_stops_working_at_once(client):
    a = make_tenant(client)
    key = key_for(client, a["id"], "tenant-admin")
    url = f"/v1/tenants/{a['id']}/numbers"
    forged = key["key"][:-4] + ("AAAA" if not key["key"].endswith("AAAA") else "BBBB")
    assert client.get(url, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    for junk in ["sb_", "sb_nokey", "sb_key_", "sb_keyffffffffffffffff_secret"]:
        assert client.get(url, headers={"Authorization": f"Bearer {junk}"}).status_code == 401
    assert (
        client.delete(f"{url[: -len('numbers')]}api-keys/{key['id']}", headers=AUTH).status_code
        == 204
    )
    assert client.get(url, headers=bearer(key)).status_code == 401
    keys = client.get(f"/v1/tenants/{a['id']}/api-keys", headers=AUTH).json()["items"]
    assert keys[0]["revoked_at"] is not None  # kept for audit


def test_key_requests_are_validated(client):
    a = make_tenant(client)
    r = client.post(
        f"/v1/tenants/{a['id']}/api-keys",
        json={"name": "x", "role": "platform-admin"},
        headers=AUTH,
    )
    assert r.status_code == 422 and "role" in str(r.json()["detail"])
    r = client.post(f"/v1/tenants/{a['id']}/api-keys", json={"name": "x", "extra": 1}, headers=AUTH)
    assert r.status_code == 422
