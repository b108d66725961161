import uuid
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from switchboard.phones import signed_by_twilio
from switchboard.server import create_app
from switchboard.settings import DEV_TWILIO_AUTH_TOKEN
from tests.conftest import AUTH, make_tenant, post_as_twilio

FORM = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "2" * 32, "From": "+15550100999"}


def test_known_number_gets_a_stream_whose_urls_carry_the_call_id(client):
    tenant = make_tenant(client)
    r = post_as_twilio(client, "/twilio/voice", FORM | {"To": tenant["number"]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    connect = ET.fromstring(r.text).find("Connect")
    stream = connect.find("Stream")
    stream_url = urlparse(stream.get("url"))
    assert stream_url.scheme == "ws" and stream_url.path == "/twilio/stream"
    call_id = parse_qs(stream_url.query)["call_id"][0]
    assert parse_qs(urlparse(connect.get("action")).query)["call_id"] == [call_id]
    assert stream.find("Parameter").get("value") == call_id
    assert len(call_id) > 30  # unguessable


def test_ids_that_are_not_twilios_are_refused_before_they_reach_a_rest_path(client):
    tenant = make_tenant(client)
    for bad in ({"CallSid": "CA../../Accounts/x"}, {"AccountSid": "AC" + "2" * 31 + "/"}):
        r = post_as_twilio(client, "/twilio/voice", FORM | {"To": tenant["number"]} | bad)
        assert r.status_code == 422, r.text


def test_provider_retries_of_a_webhook_get_the_same_call(client):
    tenant = make_tenant(client)
    first = post_as_twilio(client, "/twilio/voice", FORM | {"To": tenant["number"]}).text
    again = post_as_twilio(client, "/twilio/voice", FORM | {"To": tenant["number"]}).text
    assert first == again


def test_unknown_number_is_told_politely_and_hung_up(client):
    r = post_as_twilio(client, "/twilio/voice", FORM | {"To": "+15550000000"})
    assert r.status_code == 200
    root = ET.fromstring(r.text)
    assert "not in service" in root.find("Say").text
    assert root.find("Hangup") is not None and root.find("Connect") is None


def test_a_number_bound_to_exotel_is_not_twilios_to_deliver(client):
    tenant = make_tenant(client)
    number = "+9180" + "4" * 8
    r = client.post(
        f"/v1/tenants/{tenant['id']}/numbers",
        json={"e164": number, "agent_id": tenant["agent_id"], "provider": "exotel"},
        headers=AUTH,
    )
    assert r.status_code == 201 and r.json()["provider"] == "exotel"
    root = ET.fromstring(post_as_twilio(client, "/twilio/voice", FORM | {"To": number}).text)
    assert root.find("Connect") is None and "not in service" in root.find("Say").text
    # Only the providers the platform speaks can be chosen.
    r = client.post(
        f"/v1/tenants/{tenant['id']}/numbers",
        json={"e164": "+15550100123", "agent_id": tenant["agent_id"], "provider": "vonage"},
        headers=AUTH,
    )
    assert r.status_code == 422 and "provider" in str(r.json()["detail"])


@pytest.mark.parametrize("missing", ["CallSid", "AccountSid", "To", "From"])
def test_missing_form_fields_are_a_clear_422(client, missing):
    data = FORM | {"To": "+15550000000"}
    del data[missing]
    r = post_as_twilio(client, "/twilio/voice", data)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert missing in str(r.json()["detail"])


def test_malformed_numbers_and_bodies_are_4xx_never_500(client):
    r = post_as_twilio(client, "/twilio/voice", FORM | {"To": "not-a-number"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "To"]
    r = client.post("/twilio/voice", json=FORM | {"To": "+15550000000"})
    assert r.status_code == 422
    r = client.post(
        "/twilio/voice",
        content=b"\xff\xfe garbage",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422


def test_after_the_stream_an_ordinary_call_hangs_up(client):
    r = post_as_twilio(client, "/twilio/stream-ended?call_id=call_unknown", {"CallSid": "CA1"})
    assert r.status_code == 200 and ET.fromstring(r.text).find("Hangup") is not None


def test_unsigned_or_tampered_webhooks_are_refused_and_start_nothing(client):
    tenant = make_tenant(client)
    form = FORM | {"To": tenant["number"], "CallSid": "CA" + "9" * 32}
    url = "http://testserver/twilio/voice"
    forged = {
        "unsigned": {},
        "signed by another account": signed_by_twilio("another-accounts-token", url, form),
        "signed for other fields": signed_by_twilio(
            DEV_TWILIO_AUTH_TOKEN, url, form | {"From": "+15550100000"}
        ),
        "signed for another URL": signed_by_twilio(
            DEV_TWILIO_AUTH_TOKEN, "https://elsewhere.example/twilio/voice", form
        ),
    }
    for why, headers in forged.items():
        r = client.post("/twilio/voice", data=form, headers=headers)
        assert r.status_code == 403, why
        assert r.json() == {"error": "forbidden", "detail": "not a request signed by Twilio"}
    assert client.portal.call(client.app.state.calls.ledger.announced, form["CallSid"]) is None
    # Unknown numbers too: an unsigned probe learns nothing about which numbers exist.
    r = client.post("/twilio/voice", data=FORM | {"To": "+15550000000"})
    assert r.status_code == 403
    r = client.post("/twilio/stream-ended?call_id=call_x", data={"CallSid": "CA1"})
    assert r.status_code == 403


def test_a_tenant_with_its_own_twilio_account_is_checked_with_its_token(client):
    tenant = make_tenant(client)
    r = client.put(
        f"/v1/tenants/{tenant['id']}/secrets/twilio_auth_token",
        json={"value": "the-tenants-own-token"},
        headers=AUTH,
    )
    assert r.status_code == 200
    form = FORM | {"To": tenant["number"]}
    assert post_as_twilio(client, "/twilio/voice", form).status_code == 403  # platform's
    r = post_as_twilio(client, "/twilio/voice", form, auth_token="the-tenants-own-token")
    assert r.status_code == 200 and ET.fromstring(r.text).find("Connect") is not None


def test_behind_a_proxy_the_public_url_is_what_twilio_signed(settings):
    public = settings.model_copy(update={"public_url": "https://voice.example.com/"})
    with TestClient(create_app(public, warm=False)) as client:
        tenant = make_tenant(client)
        form = FORM | {"To": tenant["number"]}
        signed = signed_by_twilio(
            DEV_TWILIO_AUTH_TOKEN, "https://voice.example.com/twilio/voice", form
        )
        r = client.post("/twilio/voice", data=form, headers=signed)
        assert r.status_code == 200
        stream_url = ET.fromstring(r.text).find("Connect/Stream").get("url")
        assert stream_url.startswith("wss://voice.example.com/twilio/stream?call_id=")
        # Signed for the address the proxy forwarded to instead: refused.
        assert post_as_twilio(client, "/twilio/voice", form).status_code == 403


def test_a_media_stream_is_admitted_only_signed_and_fresh(client, monkeypatch):
    tenant = make_tenant(client)

    def announce() -> tuple[str, dict[str, str]]:
        form = FORM | {"To": tenant["number"], "CallSid": "CA" + uuid.uuid4().hex}
        root = ET.fromstring(post_as_twilio(client, "/twilio/voice", form).text)
        url = root.find("Connect/Stream").get("url")
        return url.removeprefix("ws://testserver"), signed_by_twilio(DEV_TWILIO_AUTH_TOKEN, url)

    path, signed = announce()
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path):
        pass  # unsigned
    assert refused.value.code == 1008
    with client.websocket_connect(path, headers=signed) as ws:
        ws.close()  # admitted
    # A call whose stream does not open within PENDING_TTL_SECS of its webhook is gone.
    monkeypatch.setattr(client.app.state.calls.ledger, "_pending_secs", 0)
    path, signed = announce()
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(path, headers=signed):
        pass
