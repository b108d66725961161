"""The planes as separate processes, as a cluster runs them: a control-plane process and a
media-plane process that knows the control plane only by its internal API URL, the
service token and Redis (call events on a stream, agent changes on a channel)."""

import asyncio
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchboard.caller import Utterance, place_call
from switchboard.settings import DEV_TWILIO_AUTH_TOKEN
from tests.conftest import AUTH, PlatformProcess, make_tenant, post_as_twilio

pytestmark = pytest.mark.e2e

SERVICE_TOKEN = "test-service-token"


@pytest.fixture(scope="module")
def planes(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    data = tmp_path_factory.mktemp("split")
    shared = {
        "redis_url": redis_url,
        "service_token": SERVICE_TOKEN,
        # Names of our own, so other tests sharing this Redis cannot interfere.
        "events_stream": f"test-events-{uuid.uuid4().hex[:8]}",
        "agent_changes_channel": f"test-changes-{uuid.uuid4().hex[:8]}",
    }
    control = PlatformProcess(data / "control", plane="control", **shared)
    try:
        media = PlatformProcess(
            data / "media",
            plane="media",
            control_plane_url=control.url,
            # An hour: a media process that sees a change sooner was told about it.
            agent_cache_secs="3600",
            **shared,
        )
    except Exception:
        control.stop()
        raise
    try:
        yield {"control": control, "media": media}
    finally:
        media.stop()
        control.stop()


def phrases(media_url: str) -> dict[str, float]:
    """The media process's offline TTS phrases so far: synthesised, or served cached."""
    text = httpx.get(f"{media_url}/metrics").raise_for_status().text
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "switchboard_tts_phrases_total"
    }


async def phrases_settled(media_url: str) -> dict[str, float]:
    last = phrases(media_url)
    while True:
        await asyncio.sleep(1.0)
        now = phrases(media_url)
        if now == last:
            return now
        last = now


def ring(media_url: str, number: str, auth_token: str = DEV_TWILIO_AUTH_TOKEN) -> ET.Element:
    form = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32}
    with httpx.Client(base_url=media_url) as http:
        r = post_as_twilio(
            http, "/twilio/voice", form | {"From": "+15550100999", "To": number}, auth_token
        )
    assert r.status_code == 200, r.text
    return ET.fromstring(r.text)


async def call_detail(control_url: str, tenant_id: str, call_id: str) -> dict:
    """The call as the control plane has it, once its end has arrived through Redis."""
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(base_url=control_url, headers=AUTH) as http:
        while time.monotonic() < deadline:
            r = await http.get(f"/v1/tenants/{tenant_id}/calls/{call_id}")
            if r.status_code == 200 and r.json()["outcome"]:
                return r.json()
            await asyncio.sleep(0.2)
    raise AssertionError(f"call {call_id} never reached the control plane")


async def test_a_call_through_the_media_process(planes):
    control, media = planes["control"].url, planes["media"].url
    with httpx.Client(base_url=control) as api:
        t = make_tenant(api, "# Parking\n\nFree parking for patients is on Mill Lane.")
    report = await place_call(media, t["number"], [Utterance("Where can I park?")])
    assert report.turns[1].agent_heard
    call = await call_detail(control, t["id"], report.call_id)
    assert call["outcome"] == "caller_hung_up"
    # Answered from the document, searched over the internal API.
    assert any("Mill Lane" in line["text"] for line in call["transcript"])
    tools = [e["data"]["name"] for e in call["timeline"] if e["kind"] == "tool.called"]
    assert tools == ["search_knowledge"]
    kinds = [e["kind"] for e in call["timeline"]]
    assert kinds[0] == "call.started" and "call.recorded" in kinds
    async with httpx.AsyncClient(headers=AUTH) as http:
        link = await http.get(f"{control}/v1/tenants/{t['id']}/calls/{report.call_id}/recording")
        assert link.status_code == 200, link.text
        assert (await http.get(link.json()["url"])).content[:4] == b"RIFF"
        # The media process serves calls only; the API is the control plane's.
        assert (await http.get(f"{media}/v1/tenants")).status_code == 404


async def test_agent_changes_reach_the_media_process_at_once(planes):
    control, media = planes["control"].url, planes["media"].url
    with httpx.Client(base_url=control, headers=AUTH) as api:
        t = make_tenant(api)
    assert ring(media, t["number"]).find("Connect") is not None  # now cached for an hour

    async with httpx.AsyncClient(base_url=control, headers=AUTH) as http:
        agent_path = f"/v1/tenants/{t['id']}/agents/{t['agent_id']}"
        agent = (await http.get(agent_path)).json()
        changed = {k: agent[k] for k in ("name", "persona", "language", "voice", "tools")}
        changed["greeting"] = "Good morning, this is the new greeting."
        before = await phrases_settled(media)  # the ring's warm-up of the old greeting done
        r = await http.put(agent_path, json=changed)
        assert r.status_code == 200, r.text
    # The media process readies the new greeting as soon as it hears of the change...
    deadline = time.monotonic() + 15
    while phrases(media)["synthesised"] == before["synthesised"]:
        assert time.monotonic() < deadline, "the new greeting was not synthesised ahead"
        await asyncio.sleep(0.1)
    ready = phrases(media)
    report = await place_call(media, t["number"], [])
    # ...so the call plays it from the cache: nothing is synthesised while the caller waits.
    after = phrases(media)
    assert after["synthesised"] == ready["synthesised"] and after["cached"] > ready["cached"]
    call = await call_detail(control, t["id"], report.call_id)
    assert call["agent_version"] == 2
    assert call["transcript"][0]["text"] == "Good morning, this is the new greeting."

    with httpx.Client(base_url=control, headers=AUTH) as api:
        assert api.delete(f"/v1/tenants/{t['id']}/numbers/{t['number']}").status_code == 204
    deadline = time.monotonic() + 5
    while ring(media, t["number"]).find("Connect") is not None:  # the announcement is async
        assert time.monotonic() < deadline, "the released number still reaches the agent"
        await asyncio.sleep(0.05)
    assert "not in service" in ring(media, t["number"]).find("Say").text


async def test_a_tenants_new_twilio_token_is_checked_at_once(planes):
    control, media = planes["control"].url, planes["media"].url
    with httpx.Client(base_url=control, headers=AUTH) as api:
        t = make_tenant(api)
    assert ring(media, t["number"]).find("Connect") is not None  # "no token of its own",
    # cached for an hour. The tenant moves the number to its own Twilio account:
    with httpx.Client(base_url=control, headers=AUTH) as api:
        r = api.put(
            f"/v1/tenants/{t['id']}/secrets/twilio_auth_token", json={"value": "its-own-token"}
        )
        assert r.status_code == 200
    deadline = time.monotonic() + 5
    while True:  # the announcement is async
        with httpx.Client(base_url=media) as http:
            form = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32}
            form |= {"From": "+15550100999", "To": t["number"]}
            r = post_as_twilio(http, "/twilio/voice", form, "its-own-token")
        if r.status_code == 200:
            break
        assert time.monotonic() < deadline, "the media process still checks the old token"
        await asyncio.sleep(0.05)
    with httpx.Client(base_url=media) as http:
        form["CallSid"] = "CA" + uuid.uuid4().hex
        assert post_as_twilio(http, "/twilio/voice", form).status_code == 403  # platform's


def test_the_internal_api_takes_only_the_service_token(planes):
    control = planes["control"].url
    path = f"{control}/internal/v1/numbers/%2B15550100000/agent"
    assert httpx.get(path).status_code == 401
    assert httpx.get(path, headers=AUTH).status_code == 401  # the operator token is not it
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    assert httpx.get(path, headers=service).status_code == 404  # not bound: but let in


async def test_callers_hear_an_apology_while_the_control_plane_is_down(planes, tmp_path):
    """Last: it stops the control plane."""
    control, media = planes["control"], planes["media"].url
    with httpx.Client(base_url=control.url, headers=AUTH) as api:
        t = make_tenant(api)
    assert ring(media, t["number"]).find("Connect") is not None
    control.stop()
    # A number the media process knows still rings through: its cached config is served.
    assert ring(media, t["number"]).find("Connect") is not None
    # One it has never seen gets a spoken apology, not an error or silence.
    refused = ring(media, "+15550109999")
    assert refused.find("Connect") is None
    assert "cannot take your call" in refused.find("Say").text
    # The failure is logged with its traceback, whose frames hold the service token; the
    # log has the traceback's lines, never the frames' values.
    log = planes["media"].log_path.read_text()
    assert "twilio.control_plane_unavailable" in log and "Traceback" in log
    assert SERVICE_TOKEN not in log
