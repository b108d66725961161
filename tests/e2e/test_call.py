"""Whole calls against ``switchboard up`` over real loopback sockets, placed by the
simulated caller speaking Twilio's Media Streams protocol."""

import asyncio
import base64
import io
import json
import secrets
import time
import wave

import httpx
import numpy as np
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from knowledge.text import words
from media_plane.providers.offline_tts import synthesize
from switchboard.caller import Utterance, place_call
from switchboard.line_conditions import LineConditions
from switchboard.phones import signed_by_twilio
from switchboard.settings import DEV_TWILIO_AUTH_TOKEN
from tests.conftest import AUTH, TOKEN, make_tenant, post_as_twilio
from tests.speech_corpus import OFFLINE_VOICE, clip, require_tools

pytestmark = pytest.mark.e2e

DOCUMENT = """# Parking

Free parking for patients is on Mill Lane, behind the building.

# Teeth whitening

Our whitening treatment takes about one hour in the chair, and we first clean and polish
your teeth, then apply a gentle whitening gel in three short rounds under a blue light,
and most patients see their teeth become several shades lighter after a single session.
"""


# The document's answer to "Where can I park?", as a caller's recogniser may hear it.
# Its words' stems: the recogniser may hear "patient" for "patients", "build" for
# "building", and none of them is in the greeting or in "one moment, please".
PARKING_ANSWER = frozenset({"free", "park", "pati", "mill", "lane", "behi", "buil"})


def heard_the_parking_answer(heard: str) -> bool:
    """Two of the answer's words at least, whichever the recogniser caught this time."""
    return len({word[:4] for word in words(heard)} & PARKING_ANSWER) >= 2


async def timeline(url: str, tenant_id: str, call_id: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        r = await http.get(f"/v1/tenants/{tenant_id}/calls/{call_id}/events", params={"limit": 200})
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def wait_for_end(url: str, tenant_id: str, call_id: str) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = await timeline(url, tenant_id, call_id)
        if events and events[-1]["kind"] == "call.ended":
            return events
        await asyncio.sleep(0.2)
    raise AssertionError(f"call {call_id} never ended: {await timeline(url, tenant_id, call_id)}")


@pytest.fixture(scope="module")
def tenant(platform: str) -> dict:
    with httpx.Client(base_url=platform) as api:
        return make_tenant(api, DOCUMENT, transfer_number="+15550100300")


async def test_a_quiet_callers_one_word_answer_over_a_noisy_line_is_answered(
    platform, tenant, tmp_path
):
    require_tools()
    yes = clip("yes", OFFLINE_VOICE, -45, tmp_path)  # a soft voice, the handset held away
    report = await place_call(
        platform, tenant["number"], [Utterance(audio=yes.path)],
        conditions=LineConditions(noise_snr_db=20, seed=1),
    )  # fmt: skip
    assert report.turns[1].latency_ms is not None  # the agent answered


async def test_greeting_then_answer_from_the_document_then_hang_up(platform, tenant):
    report = await place_call(
        platform,
        tenant["number"],
        [Utterance("Where can I park?")],
        token=TOKEN,
        tenant_id=tenant["id"],
    )
    greeting, answer = report.turns
    assert report.greeting_first_audio_ms is not None
    assert greeting.agent_heard  # the greeting was heard and transcribed
    assert answer.tools == ["search_knowledge"]
    assert answer.latency_ms is not None and answer.agent_heard

    events = await wait_for_end(platform, tenant["id"], report.call_id)
    # The platform's own account of the turn's latency, broken down, on the timeline.
    (latency,) = [e["data"] for e in events if e["kind"] == "turn.latency"]
    assert latency["end_of_turn_ms"] + latency["response_ms"] == pytest.approx(
        latency["speech_end_to_audio_ms"], abs=0.2
    )
    assert 300 < latency["end_of_turn_ms"] < 1000 and latency["response_ms"] > 0
    assert set(latency["ttfb_ms"]) == {"OfflineDialogueEngine", "OfflineTTSService"}, latency
    # It agrees with what the caller measured on the wire, give or take the line.
    assert abs(latency["speech_end_to_audio_ms"] - answer.latency_ms) < 250, (latency, answer)
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    # "Mill Lane" exists only in the uploaded document.
    assert any("Mill Lane" in text for text in spoken), spoken
    assert events[-1]["data"]["reason"] == "caller_hung_up"
    async with httpx.AsyncClient(base_url=platform, headers=AUTH) as http:
        health = (await http.get("/healthz")).json()
        call = (await http.get(f"/v1/tenants/{tenant['id']}/calls/{report.call_id}")).json()
        listed = (
            await http.get(
                f"/v1/tenants/{tenant['id']}/calls",
                params={"outcome": "caller_hung_up", "number": tenant["number"]},
            )
        ).json()
    assert call["outcome"] == "caller_hung_up" and call["number"] == tenant["number"]
    assert [line["speaker"] for line in call["transcript"]][:2] == ["agent", "caller"]
    assert any("Mill Lane" in line["text"] for line in call["transcript"])
    assert report.call_id in [c["call_id"] for c in listed["items"]]
    assert health["live_calls"] == 0  # hang-up freed the call
    assert events[-2]["kind"] == "call.recorded"

    # The recording: a presigned link (no credentials needed) to a stereo WAV with the
    # caller on the left and the agent on the right, as long as the call.
    async with httpx.AsyncClient(base_url=platform, headers=AUTH) as http:
        r = await http.get(f"/v1/tenants/{tenant['id']}/calls/{report.call_id}/recording")
    assert r.status_code == 200, r.text
    async with httpx.AsyncClient() as anyone:
        audio = await anyone.get(r.json()["url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/x-wav"
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        secs = wav.getnframes() / 8000
        samples = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).reshape(-1, 2)
    recorded = events[-2]["data"]
    assert recorded["bytes"] == len(audio.content) and abs(secs - recorded["secs"]) < 0.1
    assert secs > 3
    caller, agent = (np.abs(samples[:, i]).astype(float) for i in (0, 1))
    # The greeting opens the call: the agent's side is loud first while the caller is quiet.
    assert agent[: 8000 // 2].mean() > 10 * caller[: 8000 // 2].mean() + 1
    assert caller.max() > 1000  # and the caller's question is on the left


async def inbound_audio(url: str) -> dict[str, float]:
    """The media plane's /metrics: caller frames by stage, and delays observed."""
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == "switchboard_inbound_audio_frames_total":
                figures[sample.labels["stage"]] = sample.value
            elif sample.name == "switchboard_inbound_audio_delay_seconds_count":
                figures["delays"] = sample.value
    return figures


async def test_the_media_plane_reports_how_late_it_hears_the_caller(platform, tenant):
    before = await inbound_audio(platform)
    report = await place_call(
        platform, tenant["number"], [Utterance("Hello?")], token=TOKEN, tenant_id=tenant["id"]
    )
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    after = await inbound_audio(platform)
    got = {k: after[k] - before.get(k, 0) for k in after}
    frames = events[-1]["data"]["secs"] / 0.02  # the caller sends a frame every 20 ms
    # Every frame the platform received was analysed by the VAD, each with its delay, but
    # for the few still in flight when the caller hung up.
    assert 0.9 * frames < got["received"] <= frames + 5, (got, frames)
    assert got["received"] == got["analysed"] + got["dropped"] and got["dropped"] <= 10, got
    assert got["delays"] == got["analysed"]


async def test_caller_interrupting_makes_the_agent_stop(platform, tenant):
    report = await place_call(
        platform,
        tenant["number"],
        [
            Utterance("Tell me about teeth whitening."),
            Utterance("Where can I park?", barge_in=True),
        ],
        token=TOKEN,
        tenant_id=tenant["id"],
    )
    _, long_answer, interruption = report.turns
    assert long_answer.interrupted_by_caller  # the platform sent `clear` while it spoke
    assert interruption.clear_after_ms is not None
    # The whitening answer is ~10 s of speech; the caller heard only the start of it.
    assert 0.5 < long_answer.agent_heard_secs < 4, long_answer
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    agent_turns = [e["data"] for e in events if e["kind"] == "turn.agent"]
    assert any(t["interrupted"] for t in agent_turns), agent_turns
    assert interruption.tools == ["search_knowledge"]


async def test_an_agent_on_a_cloud_provider_without_a_key_is_still_heard(platform):
    with httpx.Client(base_url=platform) as api:  # this platform has no Deepgram key
        t = make_tenant(api, DOCUMENT, providers={"stt": "deepgram"})
    report = await place_call(
        platform, t["number"], [Utterance("Where can I park?")], token=TOKEN, tenant_id=t["id"]
    )
    assert report.turns[1].tools == ["search_knowledge"]  # heard, by the offline recogniser
    events = await wait_for_end(platform, t["id"], report.call_id)
    (fallback,) = [e["data"] for e in events if e["kind"] == "provider.fallback"]
    assert fallback == {"role": "stt", "provider": "deepgram", "reason": "no API key for deepgram"}


async def test_agent_ends_the_call_when_the_caller_says_goodbye(platform, tenant):
    report = await place_call(
        platform,
        tenant["number"],
        [Utterance("Goodbye.")],
        token=TOKEN,
        tenant_id=tenant["id"],
        hang_up=False,
    )
    assert report.hung_up_by == "agent"
    assert report.turns[1].tools == ["end_call"]
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    assert events[-1]["data"]["reason"] == "agent_ended"


async def test_unknown_number_gets_a_spoken_message_and_no_stream(platform):
    report = await place_call(platform, "+15550199999", [])
    assert report.outcome == "no_stream"
    assert "not in service" in (report.spoken or "")


@pytest.mark.parametrize("query", ["", "?call_id=call_forged", "?call_id="])
async def test_stream_without_an_announced_call_is_refused(platform, query):
    ws_url = platform.replace("http://", "ws://") + "/twilio/stream" + query
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws_url):
            pass
    assert refused.value.response.status_code == 403


async def _announce(platform: str, number: str) -> tuple[str, str]:
    call_sid = "CA" + secrets.token_hex(16)
    form = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": "+15550100999"}
    with httpx.Client(base_url=platform) as http:
        r = post_as_twilio(http, "/twilio/voice", form | {"To": number})
    stream_url = r.text.split('Stream url="')[1].split('"')[0].replace("&amp;", "&")
    return call_sid, stream_url


def open_stream(stream_url: str, auth_token: str = DEV_TWILIO_AUTH_TOKEN):
    """The media stream's WebSocket, its upgrade signed as Twilio signs it."""
    return websockets.connect(
        stream_url, additional_headers=signed_by_twilio(auth_token, stream_url)
    )


async def test_a_stream_opens_only_with_twilios_signature_for_that_call(platform, tenant):
    _, mine = await _announce(platform, tenant["number"])
    _, other = await _announce(platform, tenant["number"])
    forged = {
        "unsigned": {},
        "signed for another call": signed_by_twilio(DEV_TWILIO_AUTH_TOKEN, other),
        "signed by another account": signed_by_twilio("another-accounts-token", mine),
    }
    for why, headers in forged.items():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(mine, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 403, why
    # None of them used the call up: Twilio's own upgrade opens it, and only once.
    async with open_stream(mine) as ws:
        await ws.close()
    with pytest.raises(websockets.InvalidStatus) as replayed:
        async with open_stream(mine):
            pass
    assert replayed.value.response.status_code == 403


SILENCE = b"\xff" * 160


class RawTwilioStream:
    """Media Streams by hand, for tests that send what the simulated caller never would."""

    def __init__(self, ws, call_sid: str, stream_url: str):
        self.ws = ws
        self.call_sid = call_sid
        self.call_id = stream_url.split("call_id=")[1]
        self.stream_sid = "MZ" + secrets.token_hex(16)

    def media(self, payload: bytes | str) -> str:
        data = payload if isinstance(payload, str) else base64.b64encode(payload).decode()
        return json.dumps(
            {"event": "media", "streamSid": self.stream_sid, "media": {"payload": data}}
        )

    async def start(self) -> None:
        await self.ws.send(
            json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        )
        await self.ws.send(
            json.dumps(
                {
                    "event": "start",
                    "streamSid": self.stream_sid,
                    "start": {"streamSid": self.stream_sid, "callSid": self.call_sid},
                }
            )
        )

    async def play(self, frames: list[bytes]) -> None:
        for frame in frames:
            await self.ws.send(self.media(frame))
            await asyncio.sleep(0.02)

    async def timeline_until(self, platform: str, tenant_id: str, done, within: float = 10):
        """Keep the line open (silence) until the call's timeline satisfies ``done``."""
        deadline = time.monotonic() + within
        events: list[dict] = []
        while time.monotonic() < deadline and not done(events):
            await self.play([SILENCE])
            events = await timeline(platform, tenant_id, self.call_id)
        return events


async def test_a_stream_url_admits_one_stream_only(platform, tenant):
    _, stream_url = await _announce(platform, tenant["number"])
    async with open_stream(stream_url) as first:
        with pytest.raises(websockets.InvalidStatus):
            async with open_stream(stream_url):
                pass
        await first.close()


async def test_malformed_media_messages_are_skipped_and_the_call_goes_on(platform, tenant):
    call_sid, stream_url = await _announce(platform, tenant["number"])
    question = synthesize("en_US-joe-medium", "Where can I park?", 8000, repeatable=True)
    import audioop  # stdlib on 3.11; only this raw client needs it

    ulaw = audioop.lin2ulaw(question, 2)
    frames = [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]

    async with open_stream(stream_url) as ws:
        raw = RawTwilioStream(ws, call_sid, stream_url)
        await raw.start()
        for bad in [
            "{not json",
            '"a string"',
            json.dumps({"event": "dance"}),
            raw.media("!!!not base64!!!="),
            json.dumps({"event": "media", "media": 7}),
            b"\x00\xff binary",
        ]:
            await ws.send(bad)
        # After the junk, a real question still gets its answer.
        await raw.play([SILENCE] * 60 + frames + [SILENCE] * 60)

        def answered(events):
            return any(
                "Mill Lane" in e["data"]["text"] for e in events if e["kind"] == "turn.agent"
            )

        events = await raw.timeline_until(platform, tenant["id"], answered)
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any("Mill Lane" in t for t in spoken), spoken


async def test_asking_for_a_person_transfers_the_call_to_the_agents_number(platform, tenant):
    report = await place_call(
        platform,
        tenant["number"],
        [Utterance("Can I speak to a person please?")],
        token=TOKEN,
        tenant_id=tenant["id"],
        hang_up=False,
    )
    assert report.turns[1].tools == ["transfer_to_human"]
    assert report.hung_up_by == "agent"  # the stream ended after the hand-off sentence
    assert report.transferred_to == "+15550100300"  # and Twilio was told to <Dial> it
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    assert events[-1]["data"]["reason"] == "transferred"


async def test_concurrent_calls_to_two_tenants_each_hear_their_own_documents(platform):
    with httpx.Client(base_url=platform) as api:
        mill = make_tenant(api, "# Parking\n\nFree parking is on Mill Lane.")
        oak = make_tenant(api, "# Parking\n\nFree parking is on Oak Street.")
    reports = await asyncio.gather(
        *(
            place_call(
                platform,
                t["number"],
                [Utterance("Where can I park?")],
                token=TOKEN,
                tenant_id=t["id"],
            )
            for t in (mill, oak)
        )
    )
    for t, report, street, other in zip(
        (mill, oak), reports, ("Mill Lane", "Oak Street"), ("Oak Street", "Mill Lane"), strict=True
    ):
        events = await wait_for_end(platform, t["id"], report.call_id)
        spoken = " ".join(e["data"]["text"] for e in events if e["kind"] == "turn.agent")
        assert street in spoken and other not in spoken


async def test_a_call_keeps_the_agent_version_live_when_it_started(platform):
    with httpx.Client(base_url=platform) as api:  # set-up before any call
        t = make_tenant(api, greeting="Welcome to version one.")
    call_sid, stream_url = await _announce(platform, t["number"])  # the call starts: v1
    async with httpx.AsyncClient(base_url=platform, headers=AUTH) as api:
        r = await api.put(
            f"/v1/tenants/{t['id']}/agents/{t['agent_id']}",
            json={"name": "Reception", "greeting": "Welcome to version two."},
        )
        assert r.json()["version"] == 2
    async with open_stream(stream_url) as ws:
        raw = RawTwilioStream(ws, call_sid, stream_url)
        await raw.start()
        events = await raw.timeline_until(
            platform, t["id"], lambda evs: any(e["kind"] == "turn.agent" for e in evs)
        )
    started = next(e for e in events if e["kind"] == "call.started")
    assert started["data"]["agent_version"] == 1
    greeting = next(e for e in events if e["kind"] == "turn.agent")
    assert greeting["data"]["text"] == "Welcome to version one."
    # A call that starts now gets version two.
    report = await place_call(platform, t["number"], [], token=TOKEN, tenant_id=t["id"])
    events = await wait_for_end(platform, t["id"], report.call_id)
    assert next(e for e in events if e["kind"] == "call.started")["data"]["agent_version"] == 2


async def test_the_benchmark_providers_answer_at_once_with_their_fixed_content(platform):
    """What the load benchmark relies on: the production pipeline with instant providers."""
    from media_plane.providers import benchmark

    with httpx.Client(base_url=platform) as api:
        t = make_tenant(api, providers={"stt": "benchmark", "llm": "benchmark", "tts": "benchmark"})
    report = await place_call(
        platform,
        t["number"],
        [Utterance("What time do you open?")],
        token=TOKEN,
        tenant_id=t["id"],
    )
    greeting, answer = report.turns
    # The greeting and the reply are each the provider's tone, played whole.
    assert greeting.agent_heard_secs == pytest.approx(benchmark.REPLY_SECS, abs=0.1)
    assert answer.agent_heard_secs == pytest.approx(benchmark.REPLY_SECS, abs=0.1)
    assert answer.platform_heard == benchmark.TRANSCRIPT
    events = await wait_for_end(platform, t["id"], report.call_id)
    replies = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert benchmark.REPLY in replies
