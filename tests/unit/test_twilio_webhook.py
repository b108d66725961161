import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import AUTH, make_tenant

FORM = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "2" * 32, "From": "+15550100999"}


def test_known_number_gets_a_stream_whose_urls_carry_the_call_id(client):
    tenant = make_tenant(client)
    r = client.post("/twilio/voice", data=FORM | {"To": tenant["number"]})
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


def test_provider_retries_of_a_webhook_get_the_same_call(client):
    tenant = make_tenant(client)
    first = client.post("/twilio/voice", data=FORM | {"To": tenant["number"]}).text
    again = client.post("/twilio/voice", data=FORM | {"To": tenant["number"]}).text
    assert first == again


def test_unknown_number_is_told_politely_and_hung_up(client):
    r = client.post("/twilio/voice", data=FORM | {"To": "+15550000000"})
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
    root = ET.fromstring(client.post("/twilio/voice", data=FORM | {"To": number}).text)
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
    r = client.post("/twilio/voice", data=data)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert missing in str(r.json()["detail"])


def test_malformed_numbers_and_bodies_are_4xx_never_500(client):
    r = client.post("/twilio/voice", data=FORM | {"To": "not-a-number"})
    assert r.status_code == 400 and "E.164" in r.json()["detail"]
    r = client.post("/twilio/voice", json=FORM | {"To": "+15550000000"})
    assert r.status_code == 422
    r = client.post(
        "/twilio/voice",
        content=b"\xff\xfe garbage",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422


def test_after_the_stream_an_ordinary_call_hangs_up(client):
    r = client.post("/twilio/stream-ended", params={"call_id": "call_unknown"})
    assert r.status_code == 200 and ET.fromstring(r.text).find("Hangup") is not None
