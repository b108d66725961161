"""Call recordings through the API: playback links, plans that do not record, retention."""

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from control_plane.calls import recordings
from control_plane.objects.store import tenant_key
from media_plane.agent import CallEventRecord
from tests.conftest import AUTH, make_tenant
from tests.unit.test_plans import put_on_plan


def a_call(client, tenant_id: str) -> str:
    call_id = f"call_{uuid.uuid4().hex}"
    event = CallEventRecord(
        uuid.uuid4().hex, tenant_id, call_id, 1, "call.started", time.time(), {}
    )
    client.portal.call(client.app.state.timeline.write, [event])
    return call_id


def keep(client, tenant_id: str, call_id: str, wav: bytes, age_days: float = 0) -> None:
    objects = client.app.state.objects
    client.portal.call(objects.put, tenant_id, recordings.object_name(call_id), wav, "audio/wav")
    if age_days:
        path = objects.path_for(tenant_key(tenant_id, recordings.object_name(call_id)))
        then = time.time() - age_days * 86400
        os.utime(path, (then, then))


def recording(client, tenant_id: str, call_id: str) -> httpx.Response:
    return client.get(f"/v1/tenants/{tenant_id}/calls/{call_id}/recording", headers=AUTH)


def test_a_recording_is_served_through_a_short_lived_link(client):
    t = make_tenant(client)
    call_id = a_call(client, t["id"])
    keep(client, t["id"], call_id, b"RIFF-the-call")
    r = recording(client, t["id"], call_id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bytes"] == len(b"RIFF-the-call")
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=1)
    served = client.get(body["url"].removeprefix(client.app.state.settings.base_url))
    assert served.status_code == 200 and served.content == b"RIFF-the-call"
    # The link is the credential: a changed signature is refused.
    assert client.get(served.url.path + "?expires=9999999999&signature=00").status_code == 403


def test_calls_without_a_recording_say_why(client):
    t = make_tenant(client)
    call_id = a_call(client, t["id"])
    r = recording(client, t["id"], call_id)
    assert r.status_code == 404 and "no recording" in r.json()["detail"]
    assert recording(client, t["id"], "call_unknown").status_code == 404


def test_another_tenants_recording_is_out_of_reach(client):
    mine, theirs = make_tenant(client), make_tenant(client)
    call_id = a_call(client, theirs["id"])
    keep(client, theirs["id"], call_id, b"RIFF-theirs")
    # Their call id under my tenant: no such call for me.
    assert recording(client, mine["id"], call_id).status_code == 404


def test_a_plan_with_no_retention_does_not_record_calls(client):
    recorded, unrecorded = make_tenant(client), make_tenant(client)
    put_on_plan(
        client,
        unrecorded["id"],
        max_concurrent_calls=5,
        monthly_minutes=100,
        recording_retention_days=0,
    )
    port = client.app.state.port
    assert client.portal.call(port.agent_for_number, recorded["number"]).record_calls
    assert not client.portal.call(port.agent_for_number, unrecorded["number"]).record_calls


def test_recordings_past_their_plans_retention_are_deleted(client):
    week, default = make_tenant(client), make_tenant(client)
    put_on_plan(
        client, week["id"], max_concurrent_calls=5, monthly_minutes=100, recording_retention_days=7
    )
    calls = {
        (week["id"], 8): a_call(client, week["id"]),  # past 7 days: goes
        (week["id"], 6): a_call(client, week["id"]),  # within: stays
        (default["id"], 8): a_call(client, default["id"]),  # the default is 30 days: stays
        (default["id"], 31): a_call(client, default["id"]),  # goes
    }
    for (tenant_id, age), call_id in calls.items():
        keep(client, tenant_id, call_id, b"RIFF", age_days=age)
    # A document beside the recordings is not a recording, whatever its age.
    objects = client.app.state.objects
    client.portal.call(objects.put, week["id"], "documents/doc_1.md", b"# old", "text/markdown")
    os.utime(objects.path_for(tenant_key(week["id"], "documents/doc_1.md")), (0, 0))

    deleted = client.portal.call(
        recordings.sweep,
        client.app.state.sessions,
        objects,
        client.app.state.settings.recording_retention_days,
    )
    assert deleted == 2
    for (tenant_id, age), call_id in calls.items():
        expected = 404 if (tenant_id, age) in {(week["id"], 8), (default["id"], 31)} else 200
        assert recording(client, tenant_id, call_id).status_code == expected, (tenant_id, age)
    assert client.portal.call(objects.stat, week["id"], "documents/doc_1.md") is not None
