"""Secrets through the API: write-only, and the value never comes back out."""

import json

from loguru import logger

from tests.conftest import AUTH, make_tenant

VALUE = "sk-live-ZZZ-do-not-leak-123"


def test_secrets_are_write_only_and_never_echoed(client):
    t = make_tenant(client)
    url = f"/v1/tenants/{t['id']}/secrets"
    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG")
    try:
        bodies = []
        for _ in range(2):
            r = client.put(f"{url}/deepgram", json={"value": VALUE}, headers=AUTH)
            assert r.status_code == 200
            bodies.append(r.text)
        assert json.loads(bodies[1]) | {"updated_at": None} == {
            "name": "deepgram",
            "version": 2,
            "updated_at": None,
        }
        bodies.append(client.get(f"{url}/deepgram", headers=AUTH).text)
        bodies.append(client.get(url, headers=AUTH).text)
        # Bad input is refused without repeating it.
        r = client.put(f"{url}/deepgram", json={"value": VALUE, "extra": VALUE}, headers=AUTH)
        assert r.status_code == 422
        bodies.append(r.text)
        r = client.put(f"{url}/Bad Name!", json={"value": VALUE}, headers=AUTH)
        assert r.status_code == 422
        bodies.append(r.text)
        bodies.append(json.dumps(client.app.openapi()))
    finally:
        logger.remove(sink)
    assert all(VALUE not in body for body in bodies)
    assert all(VALUE not in line for line in lines)
    assert client.app.state.secrets  # and it was really stored:
    import asyncio

    assert asyncio.run(client.app.state.secrets.reveal(t["id"], "deepgram")) == VALUE


def test_missing_secrets_and_tenants_are_404_and_viewers_cannot_write(client):
    t = make_tenant(client)
    url = f"/v1/tenants/{t['id']}/secrets"
    assert client.get(f"{url}/nothing", headers=AUTH).status_code == 404
    assert client.delete(f"{url}/nothing", headers=AUTH).status_code == 404
    assert (
        client.put("/v1/tenants/ten_nope/secrets/k", json={"value": "v"}, headers=AUTH).status_code
        == 404
    )
    key = client.post(
        f"/v1/tenants/{t['id']}/api-keys",
        json={"name": "ro", "role": "tenant-viewer"},
        headers=AUTH,
    ).json()["key"]
    viewer = {"Authorization": f"Bearer {key}"}
    assert client.put(f"{url}/k", json={"value": "v"}, headers=viewer).status_code == 403
    assert client.get(url, headers=viewer).status_code == 200
    client.put(f"{url}/k", json={"value": "v"}, headers=AUTH)
    assert client.delete(f"{url}/k", headers=AUTH).status_code == 204
    assert client.get(url, headers=AUTH).json()["total"] == 0
