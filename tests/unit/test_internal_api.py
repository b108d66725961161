"""The internal API's own refusals (its behaviour end to end: tests/e2e/test_split_planes.py)."""

import time

import pytest

SERVICE = {"Authorization": "Bearer dev-service-token"}


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


@pytest.mark.parametrize("call_id", ["..", "a/b", "call x", "é"])
def test_recordings_under_unsafe_names_are_refused(client, call_id):
    r = client.put(
        f"/internal/v1/tenants/ten_x/recordings/{call_id}", content=b"RIFF", headers=SERVICE
    )
    assert r.status_code in (404, 422), r.text  # "a/b" matches no route at all
