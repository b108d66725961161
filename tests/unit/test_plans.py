import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from media_plane.agent import CallEventRecord
from tests.conftest import AUTH, make_tenant, post_as_twilio

FORM = {"AccountSid": "AC" + "2" * 32, "From": "+15550100999"}


def ring(client, number: str, call_sid: str | None = None) -> ET.Element:
    sid = call_sid or "CA" + uuid.uuid4().hex
    r = post_as_twilio(client, "/twilio/voice", FORM | {"CallSid": sid, "To": number})
    assert r.status_code == 200
    return ET.fromstring(r.text)


def put_on_plan(client, tenant_id: str, **quotas) -> dict:
    plan = client.post(
        "/v1/plans", json={"name": f"plan-{uuid.uuid4().hex[:6]}", **quotas}, headers=AUTH
    ).json()
    r = client.put(f"/v1/tenants/{tenant_id}/plan", json={"plan_id": plan["id"]}, headers=AUTH)
    assert r.status_code == 204
    return plan


def test_concurrent_calls_beyond_the_plan_are_told_the_lines_are_busy(client):
    t = make_tenant(client)
    put_on_plan(client, t["id"], max_concurrent_calls=1, monthly_minutes=1000)
    first_sid = "CA" + uuid.uuid4().hex
    assert ring(client, t["number"], first_sid).find("Connect") is not None
    busy = ring(client, t["number"])
    assert busy.find("Connect") is None and "lines are busy" in busy.find("Say").text
    # Twilio retrying the first call's webhook is not a new call: it is still admitted.
    assert ring(client, t["number"], first_sid).find("Connect") is not None
    # Another tenant is not limited by this tenant's plan.
    other = make_tenant(client)
    assert ring(client, other["number"]).find("Connect") is not None


def minutes_used(client, tenant_id: str, secs: float) -> None:
    """A finished call of ``secs`` on the tenant's timeline this month."""
    now = time.time()
    call_id = "call_" + uuid.uuid4().hex
    events = [
        CallEventRecord(uuid.uuid4().hex, tenant_id, call_id, 1, "call.started", now - secs, {}),
        CallEventRecord(
            uuid.uuid4().hex, tenant_id, call_id, 2, "call.ended", now,
            {"reason": "caller_hung_up", "secs": secs},
        ),
    ]  # fmt: skip
    client.portal.call(client.app.state.timeline.write, events)


def test_a_call_may_run_only_as_long_as_its_plan_allows(client):
    port = client.app.state.port
    t = make_tenant(client)
    assert client.portal.call(port.admission, t["id"]).max_secs is None  # no plan
    put_on_plan(client, t["id"], max_concurrent_calls=10, monthly_minutes=2)
    minutes_used(client, t["id"], 90)
    # Its calls draw on the month's minutes as they run (the call ledger meters them).
    admitted = client.portal.call(port.admission, t["id"])
    assert admitted.max_secs is None and admitted.minutes is not None
    assert admitted.minutes.allowance_secs == 120
    assert admitted.minutes.used_secs == pytest.approx(90, abs=0.1)
    assert admitted.minutes.month == time.strftime("%Y-%m", time.gmtime())
    put_on_plan(client, t["id"], max_concurrent_calls=10, monthly_minutes=900, max_call_minutes=5)
    assert client.portal.call(port.admission, t["id"]).max_secs == 300
    # A plan that allows overage: admitted with no minutes left, and not metered.
    put_on_plan(client, t["id"], max_concurrent_calls=10, monthly_minutes=1, overage_allowed=True)
    admitted = client.portal.call(port.admission, t["id"])
    assert admitted.refusal is None and admitted.max_secs is None and admitted.minutes is None


def test_a_tenant_out_of_monthly_minutes_is_refused(client):
    t = make_tenant(client)
    put_on_plan(client, t["id"], max_concurrent_calls=10, monthly_minutes=2)
    assert ring(client, t["number"]).find("Connect") is not None
    minutes_used(client, t["id"], 180)
    usage = client.get(f"/v1/tenants/{t['id']}/usage", headers=AUTH).json()
    assert usage["minutes_used"] == 3.0 and usage["plan"]["monthly_minutes"] == 2
    refused = ring(client, t["number"])
    assert refused.find("Connect") is None and refused.find("Hangup") is not None


def test_only_platform_admins_manage_plans(client):
    t = make_tenant(client)
    key = client.post(
        f"/v1/tenants/{t['id']}/api-keys",
        json={"name": "k", "role": "tenant-admin"},
        headers=AUTH,
    ).json()["key"]
    tenant_admin = {"Authorization": f"Bearer {key}"}
    body = {"name": "free", "max_concurrent_calls": 1, "monthly_minutes": 10}
    assert client.post("/v1/plans", json=body, headers=tenant_admin).status_code == 403
    plan = client.post("/v1/plans", json=body, headers=AUTH).json()
    r = client.put(
        f"/v1/tenants/{t['id']}/plan", json={"plan_id": plan["id"]}, headers=tenant_admin
    )
    assert r.status_code == 403
    assert client.get("/v1/plans", headers=tenant_admin).json()["total"] >= 1
    assert client.post("/v1/plans", json=body, headers=AUTH).status_code == 409  # same name
    r = client.put(f"/v1/tenants/{t['id']}/plan", json={"plan_id": "pln_nope"}, headers=AUTH)
    assert r.status_code == 404
    bad = body | {"name": "neg", "monthly_minutes": -1}
    assert client.post("/v1/plans", json=bad, headers=AUTH).status_code == 422


def test_without_a_plan_there_are_no_limits(client):
    t = make_tenant(client)
    for _ in range(5):
        assert ring(client, t["number"]).find("Connect") is not None
    assert client.get(f"/v1/tenants/{t['id']}/usage", headers=AUTH).json()["plan"] is None
