"""The internal API's own refusals (its behaviour end to end: tests/e2e/test_split_planes.py)."""

import time

import pytest
from fastapi.testclient import TestClient

from switchboard.control import CONTROL_BODY_LIMITS
from switchboard.server import create_app

SERVICE = {"Authorization": "Bearer dev-service-token"}


@pytest.fixture
def client(settings):
    """A control-plane process: the only kind that serves the internal API."""
    with TestClient(create_app(settings.model_copy(update={"plane": "control"}))) as c:
        yield c


def test_odd_bytes_in_the_service_token_are_a_401(client):
    odd = {"Authorization": "Bearer caf\xe9".encode("latin-1")}
    assert client.get("/internal/v1/tenants/t/admission", headers=odd).status_code == 401


def test_one_process_running_both_planes_does_not_serve_the_internal_api(settings):
    with TestClient(create_app(settings, warm=False)) as both:
        assert both.post("/internal/v1/events", json=[event()], headers=SERVICE).status_code == 404
        assert not [p for p in both.app.openapi()["paths"] if p.startswith("/internal/")]


def event(**overrides) -> dict:
    return {
        "event_id": "e1",
        "tenant_id": "ten_x",
        "call_id": "call_x",
        "seq": 1,
        "kind": "call.started",
        "at": time.time(),
        "data": {},
    } | overrides


@pytest.mark.parametrize(
    "bad",
    [{"at": 1e300}, {"at": -1}, {"seq": 2**40}, {"kind": ""}, {"surprise": 1}],
)
def test_malformed_events_are_a_clear_422(client, bad):
    r = client.post("/internal/v1/events", json=[event(**bad)], headers=SERVICE)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("call_id", ["call x", "é", ".hidden", "x" * 65])
def test_recordings_under_unsafe_names_are_refused(client, call_id):
    r = client.put(
        f"/internal/v1/tenants/ten_x/recordings/{call_id}", content=b"RIFF", headers=SERVICE
    )
    assert r.status_code == 422, r.text
    assert client.portal.call(client.app.state.objects.list, "ten_x") == []


def declared_body(client, path: str, length: int) -> int:
    """The status for a request declaring a body of ``length`` bytes (none is sent: the
    limit must answer from the declaration alone)."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("testclient", 1),
        "headers": [
            (b"host", b"testserver"),
            (b"content-length", str(length).encode()),
            (b"authorization", SERVICE["Authorization"].encode()),
        ],
    }
    client.portal.call(client.app, scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_recordings_may_be_large_but_not_unbounded(client):
    from control_plane.internal.routes import MAX_RECORDING_BYTES

    path = "/internal/v1/tenants/ten_x/recordings/call_x"
    assert declared_body(client, path, MAX_RECORDING_BYTES + 1) == 413
    # Past the internal API's ordinary limit, which still holds everywhere else.
    limit = CONTROL_BODY_LIMITS["/internal/"]
    assert declared_body(client, path, limit + 1) != 413
    assert declared_body(client, "/internal/v1/events", limit + 1) == 413
