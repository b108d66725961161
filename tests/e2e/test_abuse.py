"""Hostile callers, tenants and strangers against ``switchboard up``: each is refused where
its input enters, and another tenant's call in the same process is answered all the while.

The attacker is a tenant with its own signed streams (its Twilio token signs them), so
"needs a signed stream" is no defence here: the limits are."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from media_plane.phrases import TIME_UP
from switchboard.caller import Utterance, place_call
from switchboard.phones import TwilioPhone
from tests import formats
from tests.conftest import AUTH, TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import DOCUMENT, heard_the_parking_answer, wait_for_end
from tests.unit.test_plans import put_on_plan
from tests.usage import a_call_earlier

pytestmark = pytest.mark.e2e

SERVICE = {"Authorization": "Bearer dev-service-token"}  # the internal API's

SILENCE_20MS = b"\xff" * 160  # mu-law


@pytest.fixture(scope="module")
def tenants(platform: str) -> dict:
    with httpx.Client(base_url=platform) as api:
        victim = make_tenant(api, DOCUMENT)
        attacker = make_tenant(api)
        put_on_plan(api, attacker["id"], max_concurrent_calls=2, monthly_minutes=1000)
    return {"victim": victim, "attacker": attacker}


async def open_stream(platform: str, number: str, *, start: bool = True):
    """A signed stream for a new call to ``number``, its ``start`` sent if asked."""
    phone = TwilioPhone(platform)
    async with httpx.AsyncClient() as http:
        answer = await phone.dial(http, number, "+15550100777")
    assert answer.stream_url, answer.spoken
    ws = await websockets.connect(
        answer.stream_url, additional_headers=answer.headers, max_size=None
    )
    if start:
        for message in phone.opening():
            await ws.send(json.dumps(message))
    return ws, phone, answer.call_id


async def closed_with(ws) -> int | None:
    """The close code the platform sent, once it has closed the socket."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


async def live_calls(platform: str) -> int:
    async with httpx.AsyncClient(base_url=platform) as http:
        return (await http.get("/healthz")).json()["live_calls"]


async def a_victims_call(platform: str, victim: dict):
    report = await place_call(
        platform,
        victim["number"],
        [Utterance("Where can I park?")],
        token=TOKEN,
        tenant_id=victim["id"],
    )
    assert heard_the_parking_answer(report.turns[1].agent_heard), report.turns[1]
    return report


async def test_a_message_too_big_closes_only_its_own_stream(platform, tenants):
    attacker = tenants["attacker"]

    async def attack() -> tuple[int | None, str]:
        ws, phone, call_id = await open_stream(platform, attacker["number"])
        huge = phone.media(b"\xff" * 3_000_000, 1, 20)  # a 4 MB message
        await ws.send(json.dumps(huge))
        return await closed_with(ws), call_id

    (code, call_id), _ = await asyncio.gather(attack(), a_victims_call(platform, tenants["victim"]))
    assert code == 1009  # refused by the protocol before the message was buffered
    events = await wait_for_end(platform, attacker["id"], call_id)
    assert {"kind": "stream.refused", "reason": "message_too_big"} in [
        {"kind": e["kind"], **e["data"]} for e in events
    ]
    assert events[-1]["data"]["reason"] == "stream_refused"


async def test_audio_faster_than_real_time_is_refused_within_seconds_of_audio(platform, tenants):
    attacker = tenants["attacker"]

    async def attack() -> tuple[int | None, int, str]:
        ws, phone, call_id = await open_stream(platform, attacker["number"])
        sent = 0
        try:
            for n in range(25_000):  # 500 s of audio, as fast as the socket takes it
                await ws.send(json.dumps(phone.media(SILENCE_20MS, n, n * 20)))
                sent += 1
                if n % 50 == 0:
                    await asyncio.sleep(0)  # let the client's reader see a close
        except websockets.ConnectionClosed:
            pass
        return await closed_with(ws), sent, call_id

    (code, sent, call_id), _ = await asyncio.gather(
        attack(), a_victims_call(platform, tenants["victim"])
    )
    assert code == 1008 and sent < 25_000  # cut off, not served
    events = await wait_for_end(platform, attacker["id"], call_id)
    refused = [e["data"] for e in events if e["kind"] == "stream.refused"]
    assert refused == [{"reason": "audio_faster_than_real_time"}]


async def test_streams_that_close_before_start_give_their_lines_back(platform, tenants):
    attacker = tenants["attacker"]
    before = await live_calls(platform)
    for _ in range(3):  # more than the plan's two lines
        ws, _phone, _id = await open_stream(platform, attacker["number"], start=False)
        await ws.send(b"\x00\x01 binary before start")
        await ws.close()
    for _ in range(50):
        if await live_calls(platform) == before:
            break
        await asyncio.sleep(0.1)
    assert await live_calls(platform) == before
    # The plan's lines are free: a real call is admitted, not told the lines are busy.
    ws, _phone, call_id = await open_stream(platform, attacker["number"])
    await ws.close()
    assert call_id


async def test_malformed_fields_are_skipped_and_the_call_goes_on(platform, tenants):
    attacker = tenants["attacker"]
    ws, phone, call_id = await open_stream(platform, attacker["number"])
    for bad in [
        {"event": "mark", "mark": "reply-1"},
        {"event": "dtmf", "dtmf": "5"},
        {"event": "media", "media": {"payload": 7}},
        {"event": "mark", "mark": {"name": "x" * 4000}},  # never sent by the platform
    ]:
        await ws.send(json.dumps(bad))
    await ws.send("[" * 7_000 + "]" * 7_000)  # 14 KB, nested past any parser
    await ws.send(json.dumps(phone.media(SILENCE_20MS, 1, 20)))
    await asyncio.sleep(0.5)
    assert ws.close_code is None  # still up
    await ws.send(json.dumps(phone.stop()))
    await ws.close()
    events = await wait_for_end(platform, attacker["id"], call_id)
    skipped = next(e["data"] for e in events if e["kind"] == "stream.skipped")
    assert sum(skipped.values()) == 5
    assert not [e for e in events if e["kind"] == "playback.mark"]
    assert events[-1]["data"]["reason"] == "caller_hung_up"


async def test_a_burst_of_hostile_uploads_never_stops_another_tenants_call(platform, tenants):
    """Eight uploads at once of a PDF that costs seconds of CPU to read (the inline path),
    and a zip bomb: each is answered with a status a user can act on, and another tenant's
    call, placed meanwhile, is answered from its document."""
    attacker = tenants["attacker"]["id"]

    async def send(http: httpx.AsyncClient, name: str, data: bytes) -> int:
        r = await http.post(
            f"/v1/tenants/{attacker}/documents", files={"file": (name, data)}, headers=AUTH
        )
        return r.status_code

    async with httpx.AsyncClient(base_url=platform, timeout=120) as http:
        drawing = formats.heavy_pdf(3)
        uploads = asyncio.gather(
            *(send(http, f"drawing{n}.pdf", drawing) for n in range(8)),
            send(http, "bomb.docx", formats.docx_bomb(1536)),
        )
        await asyncio.sleep(0.5)  # the uploads are being read
        await a_victims_call(platform, tenants["victim"])
        statuses = await uploads
    # Read (201), refused with the reason (422), or told to wait its turn (429): never a 5xx.
    assert set(statuses) <= {201, 422, 429} and 429 in statuses, statuses
    assert statuses[-1] in (422, 429)  # the bomb is never indexed


async def test_a_burst_of_webhooks_admits_no_more_calls_than_the_plan_allows(platform):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api)
        put_on_plan(api, tenant["id"], max_concurrent_calls=1, monthly_minutes=1000)

    async def ring() -> bool:
        async with httpx.AsyncClient() as http:
            return (
                await TwilioPhone(platform).dial(http, tenant["number"], "+1555")
            ).stream_url is not None

    admitted = await asyncio.gather(*(ring() for _ in range(20)))
    assert sum(admitted) == 1


async def answer_before_the_body(
    platform: str, path: str, body_bytes: int, form: bool = False, **headers: str
):
    """The status the platform answers a request whose headers promise ``body_bytes``,
    before any of the body is sent (None if it waits for the body)."""
    host, port = platform.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Type: {kind}"]
    head += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {body_bytes}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        status = await asyncio.wait_for(reader.readline(), 5)
    except TimeoutError:
        return None
    finally:
        writer.close()
    return int(status.split()[1])


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/internal/v1/events", {}),
        ("/internal/v1/events", {"Authorization": "Bearer wrong"}),
        ("/v1/tenants", {}),
        ("/v1/tenants", {"Authorization": "Bearer not-a-token"}),
    ],
)
async def test_a_strangers_body_is_refused_before_it_is_read(platform, path, headers):
    assert await answer_before_the_body(platform, path, 128 * 1024 * 1024, **headers) == 401


@pytest.mark.parametrize(
    ("path", "limit", "authenticated"),
    [
        ("/v1/tenants", 256 * 1024, True),
        ("/realms/switchboard/protocol/openid-connect/token", 16 * 1024, False),
        ("/twilio/voice", 64 * 1024, False),
    ],
)
async def test_each_route_takes_a_body_no_larger_than_it_needs(
    platform, path, limit, authenticated
):
    headers = {"Authorization": f"Bearer {TOKEN}"} if authenticated else {}
    form = not authenticated
    assert await answer_before_the_body(platform, path, limit + 1, form, **headers) == 413
    assert await answer_before_the_body(platform, path, limit, form, **headers) is None


async def test_an_address_that_keeps_forging_streams_is_refused_before_any_lookup(tmp_path):
    # Its own platform, with the default budget of refusals (the shared one forgives them).
    with PlatformProcess(tmp_path / "p", telephony_refusals_free="20") as guarded:
        with httpx.Client(base_url=guarded.url) as api:
            victim, attacker = make_tenant(api, DOCUMENT), make_tenant(api)
        stranger = ("127.0.0.3", 0)  # loopback, but not where the real calls come from
        ws_base = guarded.url.replace("http://", "ws://")
        refused = 0
        for n in range(60):
            with pytest.raises(websockets.InvalidStatus) as no:
                await websockets.connect(
                    f"{ws_base}/twilio/stream?call_id=call_forged{n}", local_addr=stranger
                )
            refused += no.value.response.status_code == 403
        assert refused == 60
        # Now even a real, signed stream from that address is refused: it is waiting out
        # its backoff. The same stream from elsewhere (a carrier's address) is admitted.
        phone = TwilioPhone(guarded.url)
        async with httpx.AsyncClient() as http:
            answer = await phone.dial(http, attacker["number"], "+15550100777")
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(
                answer.stream_url, additional_headers=answer.headers, local_addr=stranger
            )
        async with websockets.connect(answer.stream_url, additional_headers=answer.headers) as ws:
            await ws.send(json.dumps(phone.stop()))
        await a_victims_call(guarded.url, victim)


async def test_a_call_that_would_run_past_the_plans_minutes_is_told_and_ended(tmp_path):
    # Its own platform: the earlier call goes straight into its store.
    with PlatformProcess(tmp_path / "platform") as process:
        await a_call_past_the_plan(process.url, process.data)


async def a_call_past_the_plan(platform: str, data: Path) -> None:
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT)
        put_on_plan(api, tenant["id"], max_concurrent_calls=5, monthly_minutes=1)
    await a_call_earlier(data, tenant["id"], 52)  # 8 s of the plan's minute left
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"], hang_up=False,
    )  # fmt: skip
    assert report.hung_up_by == "agent"
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    assert events[-1]["data"]["reason"] == "time_limit"
    assert events[-1]["data"]["secs"] < 20  # ended at the limit, not when the caller left
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert spoken[-1] == TIME_UP["en"]
