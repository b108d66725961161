"""Calls delivered by Exotel's Voicebot applet: the simulated caller speaks Exotel's
protocol as Exotel documents it (the bootstrap GET, HTTP Basic credentials, snake_case
stream messages, 16-bit PCM in 100 ms chunks, the Passthru and Connect applets after the
stream), against ``switchboard up``."""

import base64
import json
import secrets

import httpx
import pytest
import websockets

from switchboard.caller import Utterance, place_call
from switchboard.phones import ExotelPhone
from switchboard.settings import DEV_EXOTEL_API_KEY, DEV_EXOTEL_API_TOKEN
from tests.conftest import TOKEN, make_tenant
from tests.e2e.test_call import DOCUMENT, heard_the_parking_answer, wait_for_end, words

pytestmark = pytest.mark.e2e


def basic(key: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{token}".encode()).decode()}


PLATFORM_CREDENTIALS = basic(DEV_EXOTEL_API_KEY, DEV_EXOTEL_API_TOKEN)


@pytest.fixture(scope="module")
def tenant(platform: str) -> dict:
    with httpx.Client(base_url=platform) as api:
        return make_tenant(api, DOCUMENT, telephony="exotel", transfer_number="+919800000300")


def bootstrap(
    platform: str, number: str, headers: dict[str, str], call_sid: str = ""
) -> httpx.Response:
    query = {
        "CallSid": call_sid or secrets.token_hex(16),
        "CallFrom": "09800000999",
        "CallTo": ExotelPhone.national(number),
    }
    with httpx.Client(base_url=platform) as http:
        return http.get("/exotel/voicebot", params=query, headers=headers)


async def test_an_exotel_call_is_answered_from_the_document_and_then_hung_up(platform, tenant):
    report = await place_call(
        platform,
        tenant["number"],
        [Utterance("Where can I park?")],
        provider="exotel",
        caller_id="+919800000999",
        token=TOKEN,
        tenant_id=tenant["id"],
    )
    greeting, parking = report.turns
    assert greeting.agent_heard and report.greeting_first_audio_ms is not None
    assert parking.tools == ["search_knowledge"]
    assert heard_the_parking_answer(parking.agent_heard), parking.agent_heard
    # Every chunk of agent audio kept Exotel's rules (>= 3.2 KB, <= 100 KB, 320-byte
    # multiples): the caller checks each one it is sent.
    assert report.protocol_errors == []
    assert report.hung_up_by == "caller" and report.transferred_to is None

    events = await wait_for_end(platform, tenant["id"], report.call_id)
    kinds = [e["kind"] for e in events]
    assert events[-1]["data"]["reason"] == "caller_hung_up"
    assert events[0]["data"]["to"] == tenant["number"]  # Exotel's 080... read as E.164
    assert "playback.mark" in kinds  # Exotel's mark echoes: what the caller really heard
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any("Mill Lane" in text for text in spoken), spoken
    # This very call, as the flow asks after it: Passthru's other branch (Hangup), and
    # nobody for Connect to dial.
    query = {"CallSid": report.provider_call_sid}
    async with httpx.AsyncClient(base_url=platform, headers=PLATFORM_CREDENTIALS) as http:
        assert (await http.get("/exotel/stream-ended", params=query)).status_code == 302
        assert (await http.get("/exotel/transfer", params=query)).status_code == 404


async def test_asking_for_a_person_on_exotel_transfers_the_call(platform, tenant):
    report = await place_call(
        platform,
        tenant["number"],
        [Utterance("Can I speak to a person please?")],
        provider="exotel",
        token=TOKEN,
        tenant_id=tenant["id"],
        hang_up=False,
    )
    assert report.turns[1].tools == ["transfer_to_human"], report.turns[1]
    assert report.protocol_errors == []
    # The platform closed the stream after the hand-off sentence; Exotel's Passthru was
    # answered 200 and its Connect applet was told to dial the agent's number.
    assert report.hung_up_by == "agent"
    assert report.transferred_to == "+919800000300"
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    assert events[-1]["data"]["reason"] == "transferred"


async def test_an_unknown_number_hears_an_apology_then_the_stream_closes(platform):
    report = await place_call(platform, "+918000000001", [], provider="exotel")
    (greeting,) = report.turns
    assert report.hung_up_by == "agent"  # the platform closed the stream
    assert greeting.agent_heard_secs > 2, greeting  # after speaking, not in silence
    said = set(words(greeting.agent_heard))
    assert said & {"sorry", "number", "service", "called", "goodbye"}, greeting.agent_heard
    assert report.protocol_errors == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(DEV_EXOTEL_API_KEY, "a-wrong-token"),
        basic("another-key", DEV_EXOTEL_API_TOKEN),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer " + DEV_EXOTEL_API_TOKEN},
    ],
    ids=["none", "wrong token", "wrong key", "not base64", "not basic"],
)
def test_a_bootstrap_without_exotels_credentials_is_refused(platform, tenant, headers):
    r = bootstrap(platform, tenant["number"], headers)
    assert r.status_code == 403, r.text
    assert "url" not in r.json()


def test_a_tenants_own_exotel_account_is_the_only_one_for_its_numbers(platform):
    own = {"exotel_api_key": "clinic-key", "exotel_api_token": "clinic-token"}
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, telephony="exotel", secrets=own)
    assert bootstrap(platform, tenant["number"], PLATFORM_CREDENTIALS).status_code == 403
    r = bootstrap(platform, tenant["number"], basic("clinic-key", "clinic-token"))
    assert r.status_code == 200 and r.json()["url"].startswith("ws://")


async def test_a_twilio_number_is_not_exotels_to_deliver(platform):
    with httpx.Client(base_url=platform) as api:
        twilio_tenant = make_tenant(api)
    call_sid = secrets.token_hex(16)
    r = bootstrap(platform, twilio_tenant["number"], PLATFORM_CREDENTIALS, call_sid)
    assert r.status_code == 200, r.text
    heard: list[dict] = []
    async with websockets.connect(r.json()["url"], additional_headers=PLATFORM_CREDENTIALS) as ws:
        await ws.send(json.dumps({"event": "connected"}))
        start = {"stream_sid": "s1", "call_sid": call_sid, "account_sid": "a"}
        await ws.send(json.dumps({"event": "start", "stream_sid": "s1", "start": start}))
        async for raw in ws:
            message = json.loads(raw)
            heard.append(message)
            if message["event"] == "mark":
                await ws.send(raw)  # played: the platform may hang up
    assert [m["event"] for m in heard].count("media") > 10  # an apology, 200 ms a chunk
    assert heard[-1]["event"] == "mark"
    # No call was started for the tenant whose number it is.
    with httpx.Client(base_url=platform, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        calls = api.get(f"/v1/tenants/{twilio_tenant['id']}/calls").json()
    assert calls["items"] == []


async def test_a_stream_opens_only_with_exotels_credentials_for_an_issued_call(platform, tenant):
    call_sid = secrets.token_hex(16)
    mine = bootstrap(platform, tenant["number"], PLATFORM_CREDENTIALS, call_sid).json()["url"]
    forged = {
        "no credentials": (mine, {}),
        "wrong credentials": (mine, basic(DEV_EXOTEL_API_KEY, "a-wrong-token")),
        "no call id": (mine.split("?")[0], PLATFORM_CREDENTIALS),
        "a call id never issued": (
            mine.split("call_id=")[0] + "call_id=call_" + secrets.token_urlsafe(24),
            PLATFORM_CREDENTIALS,
        ),
    }
    for why, (url, headers) in forged.items():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 403, why
    # None of them used the call up; Exotel's own upgrade opens it, and only once.
    async with websockets.connect(mine, additional_headers=PLATFORM_CREDENTIALS) as ws:
        await ws.send(json.dumps({"event": "connected"}))
        with pytest.raises(websockets.InvalidStatus) as replayed:
            async with websockets.connect(mine, additional_headers=PLATFORM_CREDENTIALS):
                pass
        assert replayed.value.response.status_code == 403
        await ws.close()


async def test_a_stream_whose_start_names_another_call_is_closed(platform, tenant):
    call_sid = secrets.token_hex(16)
    url = bootstrap(platform, tenant["number"], PLATFORM_CREDENTIALS, call_sid).json()["url"]
    async with websockets.connect(url, additional_headers=PLATFORM_CREDENTIALS) as ws:
        await ws.send(json.dumps({"event": "connected"}))
        start = {"stream_sid": "s1", "call_sid": "another-call", "account_sid": "a"}
        await ws.send(json.dumps({"event": "start", "stream_sid": "s1", "start": start}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_a_providers_retry_of_the_bootstrap_gets_the_same_stream(platform, tenant):
    call_sid = secrets.token_hex(16)
    first = bootstrap(platform, tenant["number"], PLATFORM_CREDENTIALS, call_sid).json()
    again = bootstrap(platform, tenant["number"], PLATFORM_CREDENTIALS, call_sid).json()
    assert first == again


def test_the_flows_follow_ups_need_exotels_credentials(platform):
    with httpx.Client(base_url=platform) as http:
        for path in ("/exotel/stream-ended", "/exotel/transfer"):
            r = http.get(path, params={"CallSid": "unknown"})
            assert r.status_code == 403, path
        r = http.get(
            "/exotel/stream-ended", params={"CallSid": "unknown"}, headers=PLATFORM_CREDENTIALS
        )
        assert r.status_code == 302  # no transfer: the flow's Hangup branch
        r = http.get(
            "/exotel/transfer", params={"CallSid": "unknown"}, headers=PLATFORM_CREDENTIALS
        )
        assert r.status_code == 404
