"""Tenant isolation, generated from the route table: a new route cannot escape it.

Tenant A's admin walks every tenant route against tenant B's real resources and is refused
every time (404: B does not exist for A; or 403). Tenant B's viewer can read every one of
those resources (so A's refusals are about scope, not missing data) and change none.
"""

import asyncio
import sqlite3
import time
import uuid

import httpx
from keycloak import KeycloakOpenID

from tests.conftest import AUTH, make_tenant


def login(url: str, username: str, password: str) -> dict:
    client = KeycloakOpenID(server_url=url, realm_name="switchboard", client_id="switchboard")
    token = client.token(username, password)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def add_user(api: httpx.Client, tenant_id: str, role: str) -> tuple[str, str]:
    username, password = f"{role}-{uuid.uuid4().hex[:8]}", "correct horse battery"
    r = api.post(
        f"/v1/tenants/{tenant_id}/users",
        json={"username": username, "password": password, "role": role},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    return r.json()["sign_in_name"], password


def params_for(path: str) -> dict:
    return {"params": {"q": "parking"}} if path.endswith("/knowledge/search") else {}


def body_for(path: str) -> dict:
    """A valid request for each writable tenant route: without the scope check it would
    succeed, so a refusal proves the check."""
    agent = {"name": "Hijack", "greeting": "Hijacked"}
    bodies = {
        "/v1/tenants/{tenant_id}/agents": {"json": agent},
        "/v1/tenants/{tenant_id}/agents/{agent_id}": {"json": agent},
        "/v1/tenants/{tenant_id}/numbers": {"json": {"e164": "+15550177777"}},
        "/v1/tenants/{tenant_id}/numbers/{e164}": {},
        "/v1/tenants/{tenant_id}/documents": {"files": {"file": ("x.md", b"Hijacked text.")}},
        "/v1/tenants/{tenant_id}/documents/{document_id}": {},
        "/v1/tenants/{tenant_id}/secrets/{name}": {"json": {"value": "stolen"}},
        "/v1/tenants/{tenant_id}/plan": {"json": {"plan_id": None}},
        "/v1/tenants/{tenant_id}/api-keys": {"json": {"name": "stolen", "role": "tenant-admin"}},
        "/v1/tenants/{tenant_id}/api-keys/{key_id}": {},
        "/v1/tenants/{tenant_id}/users": {
            "json": {"username": "intruder", "password": "password123", "role": "tenant-admin"}
        },
        "/v1/tenants/{tenant_id}/users/{user_id}": {"json": {"disabled": True}},
    }
    assert path in bodies, f"add a request body for the new route {path}"
    return bodies[path]


def test_no_tenant_route_lets_one_tenant_touch_another(live_platform):
    url = live_platform.url
    with httpx.Client(base_url=url, timeout=30) as api:
        a = make_tenant(api)
        b = make_tenant(api, "# Parking\n\nParking is on Mill Lane.")
        admin_a = login(url, *add_user(api, a["id"], "tenant-admin"))
        viewer_b = login(url, *add_user(api, b["id"], "tenant-viewer"))
        users_b = api.get(f"/v1/tenants/{b['id']}/users", headers=AUTH).json()["items"]
        document_b = api.get(f"/v1/tenants/{b['id']}/documents", headers=AUTH).json()["items"][0]
        api.put(f"/v1/tenants/{b['id']}/secrets/twilio", json={"value": "b's"}, headers=AUTH)
        key_b = api.post(
            f"/v1/tenants/{b['id']}/api-keys", json={"name": "b's robot"}, headers=AUTH
        ).json()
    # A call on B's timeline (written where the media plane's events land).
    db = live_platform.settings.resolved_database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO call_events (id, tenant_id, call_id, seq, kind, at, data) "
            "VALUES (?, ?, 'call_b', 1, 'call.started', ?, '{}')",
            (uuid.uuid4().hex, b["id"], time.strftime("%Y-%m-%d %H:%M:%S")),
        )
        conn.execute(
            "INSERT INTO calls (call_id, tenant_id, number, started_at) VALUES (?, ?, ?, ?)",
            ("call_b", b["id"], b["number"], time.strftime("%Y-%m-%d %H:%M:%S")),
        )
    # And its recording, where the media plane keeps it.
    asyncio.run(
        live_platform.app.state.objects.put(b["id"], "recordings/call_b.wav", b"RIFF", "audio/wav")
    )
    ids = {
        "tenant_id": b["id"],
        "agent_id": b["agent_id"],
        "document_id": document_b["id"],
        "call_id": "call_b",
        "key_id": key_b["id"],
        "name": "twilio",
        "e164": b["number"],
        # B's viewer itself: were it disabled or deleted, its later requests would fail.
        "user_id": users_b[0]["id"],
    }
    routes = [
        (path, method.upper())
        for path, operations in live_platform.app.openapi()["paths"].items()
        if path.startswith("/v1/tenants/{tenant_id}")
        for method in sorted(operations)
    ]
    assert len(routes) >= 14  # the walk really covers the API
    with httpx.Client(base_url=url, timeout=30) as api:
        for path, method in routes:
            target = path.format(**ids)
            request = params_for(path) if method == "GET" else body_for(path)
            if method == "POST" and path.endswith("/numbers"):
                request = {"json": request["json"] | {"agent_id": b["agent_id"]}}
            as_a = api.request(method, target, headers=admin_a, **request)
            assert as_a.status_code in (403, 404), (method, path, as_a.status_code, as_a.text)
            as_viewer = api.request(method, target, headers=viewer_b, **request)
            if method == "GET":
                assert as_viewer.status_code == 200, (method, path, as_viewer.text)
            else:
                assert as_viewer.status_code == 403, (method, path, as_viewer.status_code)
        # Nothing A or the viewer tried was written.
        agent = api.get(f"/v1/tenants/{b['id']}/agents/{b['agent_id']}", headers=AUTH).json()
        assert agent["version"] == 1 and agent["greeting"] != "Hijacked"
        docs = api.get(f"/v1/tenants/{b['id']}/documents", headers=AUTH).json()
        assert docs["total"] == 1
        secret = api.get(f"/v1/tenants/{b['id']}/secrets/twilio", headers=AUTH).json()
        assert secret["version"] == 1  # no one overwrote it
        # B's key was neither revoked nor joined by another.
        keys = api.get(f"/v1/tenants/{b['id']}/api-keys", headers=AUTH).json()["items"]
        assert [(k["id"], k["revoked_at"]) for k in keys] == [(key_b["id"], None)]
        robot = {"Authorization": f"Bearer {key_b['key']}"}
        numbers = api.get(f"/v1/tenants/{b['id']}/numbers", headers=robot)
        assert [n["e164"] for n in numbers.json()["items"]] == [b["number"]]  # still bound


def test_platform_routes_need_platform_admin(live_platform):
    url = live_platform.url
    with httpx.Client(base_url=url, timeout=30) as api:
        a, b = make_tenant(api), make_tenant(api)
        admin_a = login(url, *add_user(api, a["id"], "tenant-admin"))
        r = api.post("/v1/tenants", json={"name": "Mine now"}, headers=admin_a)
        assert r.status_code == 403
        # The dead-letter list spans tenants: platform-admins only.
        assert api.get("/v1/knowledge/dead-letters", headers=admin_a).status_code == 403
        replay = api.post("/v1/knowledge/dead-letters/doc_x/replay", headers=admin_a)
        assert replay.status_code == 403
        plan = {"name": "mine", "max_concurrent_calls": 1, "monthly_minutes": 1}
        assert api.post("/v1/plans", json=plan, headers=admin_a).status_code == 403
        listed = api.get("/v1/tenants", headers=admin_a).json()
        assert [t["id"] for t in listed["items"]] == [a["id"]] and listed["total"] == 1
        everyone = api.get("/v1/tenants", headers=login(url, "admin", "admin")).json()
        assert {a["id"], b["id"]} <= {t["id"] for t in everyone["items"]}
        assert api.get("/v1/tenants", headers={"Authorization": "Bearer junk"}).status_code == 401


def test_a_tenant_admin_manages_its_own_tenant(live_platform):
    url = live_platform.url
    with httpx.Client(base_url=url, timeout=30) as api:
        a = make_tenant(api)
        admin_a = login(url, *add_user(api, a["id"], "tenant-admin"))
        r = api.put(
            f"/v1/tenants/{a['id']}/agents/{a['agent_id']}",
            json={"name": "Reception", "greeting": "Updated by the tenant"},
            headers=admin_a,
        )
        assert r.status_code == 200 and r.json()["version"] == 2
        r = api.post(
            f"/v1/tenants/{a['id']}/documents",
            files={"file": ("faq.md", b"We open at nine.")},
            headers=admin_a,
        )
        assert r.status_code == 201
