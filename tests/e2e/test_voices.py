"""Calls whose agent speaks through a cloud voice: Cartesia (Pipecat's
``CartesiaTTSService``) for English, Sarvam (Pipecat's ``SarvamTTSService``) for Hindi, each
against its test server, in one platform configured only by settings. The Hindi call is
heard through the Deepgram test server and answered from a Hindi document."""

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from media_plane.breakers import FAILURES_TO_OPEN, metric_key
from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from tests.conftest import TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import DOCUMENT, heard_the_parking_answer, wait_for_end
from tests.servers import LiveServer
from tests.servers.cartesia import cartesia_app
from tests.servers.deepgram import deepgram_app
from tests.servers.phrase_recogniser import PhraseRecogniser
from tests.servers.sarvam import sarvam_app

pytestmark = pytest.mark.e2e

KEY = "the-platforms-key"  # the platform's key at each test server
CARTESIA_VOICE = "71a7ad14-091c-4e8e-a314-022ece01c121"  # Cartesia's default, on the server
HINDI_DOCUMENT = """# खुलने का समय

दुकान सुबह नौ बजे खुलती है और शाम सात बजे बंद होती है। रविवार को दुकान दोपहर बारह बजे खुलती है।

# पार्किंग

पार्किंग दुकान के पीछे मिल लेन पर मुफ़्त है।
"""
HINDI_QUESTIONS = ["दुकान कितने बजे खुलती है?", "पार्किंग कहाँ है?", "क्या आप रविवार को खुले हैं?"]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LiveServer]]:
    apps = {
        "cartesia": cartesia_app({KEY}, {CARTESIA_VOICE}),
        "sarvam": sarvam_app({KEY}),
        "deepgram": deepgram_app({KEY}, PhraseRecogniser(HINDI_QUESTIONS)),
    }
    with (
        LiveServer(apps["cartesia"], free_port()) as cartesia,
        LiveServer(apps["sarvam"], free_port()) as sarvam,
        LiveServer(apps["deepgram"], free_port()) as deepgram,
    ):
        yield {"cartesia": cartesia, "sarvam": sarvam, "deepgram": deepgram}


@pytest.fixture(scope="module")
def platform(servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = {}
    for name, server in servers.items():
        settings[f"{name}_api_key"] = KEY
        settings[f"{name}_url"] = server.url.replace("http://", "ws://")
    with PlatformProcess(tmp_path_factory.mktemp("voices-platform"), **settings) as process:
        yield process.url


async def test_an_english_agent_speaks_through_cartesia(platform, servers):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"tts": "cartesia"})
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    greeting, answer = report.turns
    assert greeting.agent_heard_secs > 1 and answer.agent_heard_secs > 1
    # Cartesia's audio of "Free parking for patients is on Mill Lane, behind the building.",
    # as the caller's own recogniser heard it.
    assert heard_the_parking_answer(answer.agent_heard), answer.agent_heard
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    # What the agent said comes back from Cartesia's word timestamps, as it was played.
    assert any("Mill Lane" in text for text in spoken), spoken
    assert not [e for e in events if e["kind"] in ("provider.fallback", "provider.error")]

    cartesia = servers["cartesia"].app.state
    assert cartesia.connections[-1]["key"] == KEY and cartesia.connections[-1]["version"]
    said = [r for r in cartesia.requests if r["transcript"]]
    assert said[0]["transcript"] == "Hello, you have reached the test clinic."
    assert any("Mill Lane" in r["transcript"] for r in said)
    request = said[-1]
    assert request["model_id"] == "sonic-3" and request["language"] == "en-US"
    assert request["voice"] == {"mode": "id", "id": CARTESIA_VOICE}
    # The call's own rate, raw 16-bit PCM: nothing to decode or resample on the way out.
    assert request["output_format"] == {
        "container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000
    }  # fmt: skip


@pytest.mark.parametrize("fault", ["drop", "garbage"])
async def test_a_cartesia_connection_that_fails_mid_reply_says_the_reply_again(
    platform, servers, fault
):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"tts": "cartesia"})
    cartesia = servers["cartesia"].app.state
    connections = len(cartesia.connections)
    cartesia.fault = (fault, "Mill Lane")  # the answer's audio: cut off after one chunk
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")] * 2, token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    _, first, second = report.turns
    assert cartesia.fault is None  # the fault happened
    # The answer the failure cut off is heard, said again; the call goes on.
    assert heard_the_parking_answer(first.agent_heard), first.agent_heard
    assert heard_the_parking_answer(second.agent_heard), second.agent_heard
    assert report.hung_up_by == "caller"
    assert len(cartesia.connections) > connections + 1  # Pipecat reconnected
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    errors = [e["data"] for e in events if e["kind"] == "provider.error"]
    assert errors[0] == {"role": "tts", "provider": "cartesia", "said_again": True}, errors


def cartesia_tenant(platform: str, key: str) -> dict:
    with httpx.Client(base_url=platform) as api:
        return make_tenant(
            api, DOCUMENT, providers={"tts": "cartesia"}, secrets={"cartesia_api_key": key}
        )


async def test_a_refused_cartesia_key_falls_back_to_the_offline_voice(platform, servers):
    tenant = cartesia_tenant(platform, "a-revoked-key")
    before = len(servers["cartesia"].app.state.connections)
    refused = servers["cartesia"].app.state.refused
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    greeting, answer = report.turns
    # Never silence: the greeting and the answer are spoken by the offline voice instead.
    assert greeting.agent_heard_secs > 1
    assert heard_the_parking_answer(answer.agent_heard), answer.agent_heard
    assert servers["cartesia"].app.state.refused > refused  # Cartesia was tried
    assert len(servers["cartesia"].app.state.connections) == before  # and refused each time
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    (fallback,) = [e["data"] for e in events if e["kind"] == "provider.fallback"]
    assert fallback == {"role": "tts", "provider": "cartesia", "reason": "failed"}


async def test_a_provider_failing_call_after_call_is_not_tried_until_its_breaker_half_opens(
    platform, servers
):
    tenant = cartesia_tenant(platform, "another-revoked-key")
    cartesia = servers["cartesia"].app.state
    for _ in range(FAILURES_TO_OPEN):
        refused = cartesia.refused
        report = await place_call(platform, tenant["number"], [], token=TOKEN)
        assert cartesia.refused > refused  # tried, refused, the offline voice spoke
        assert report.turns[0].agent_heard_secs > 1
    assert breaker_state(platform, "cartesia", metric_key(tenant["id"])) == 2  # open
    refused = cartesia.refused
    report = await place_call(platform, tenant["number"], [], token=TOKEN)
    assert cartesia.refused == refused  # not even tried
    assert report.turns[0].agent_heard_secs > 1  # and the greeting still spoken, offline
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    (fallback,) = [e["data"] for e in events if e["kind"] == "provider.fallback"]
    assert fallback == {"role": "tts", "provider": "cartesia", "reason": "circuit_open"}
    # The breaker is this tenant's key's alone: the platform's key is still closed.
    assert breaker_state(platform, "cartesia", "platform") in (None, 0)  # None: never used
    assert tenant["id"] not in metrics_text(platform)


def metrics_text(platform: str) -> str:
    return httpx.get(f"{platform}/metrics").text


def breaker_state(platform: str, provider: str, key: str) -> float | None:
    for family in text_string_to_metric_families(metrics_text(platform)):
        for sample in family.samples:
            if sample.name == "switchboard_provider_breaker_state" and sample.labels == {
                "provider": provider,
                "key": key,
            }:
                return sample.value
    return None


async def test_a_hindi_call_is_heard_answered_and_spoken_in_hindi(platform, servers):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(
            api,
            HINDI_DOCUMENT,
            greeting="नमस्ते! मैं आपकी क्या मदद कर सकता हूँ?",
            language="hi-IN",
            voice="priya",
            providers={"stt": "deepgram", "tts": "sarvam"},
        )
    report = await place_call(
        platform, tenant["number"], [Utterance(HINDI_QUESTIONS[0])], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    greeting, answer = report.turns
    assert answer.tools == ["search_knowledge"]
    assert greeting.agent_heard_secs > 1 and answer.agent_heard_secs > 3
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    (heard,) = [e["data"]["text"] for e in events if e["kind"] == "turn.user"]
    assert heard == "दुकान कितने बजे खुलती है"
    opening, sunday = (
        "दुकान सुबह नौ बजे खुलती है और शाम सात बजे बंद होती है।",
        "रविवार को दुकान दोपहर बारह बजे खुलती है।",
    )
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any(opening in text and sunday in text for text in spoken), spoken
    assert not [e for e in events if e["kind"] in ("provider.fallback", "provider.error")]

    listen = servers["deepgram"].app.state.connections[-1]["query"]
    assert listen["language"] == ["hi"] and listen["model"] == ["nova-3"]
    sarvam = servers["sarvam"].app.state.connections[-1]
    assert sarvam["key"] == KEY and sarvam["query"]["model"] == ["bulbul:v3"]
    config = sarvam["config"]
    assert config["target_language_code"] == "hi-IN" and config["speaker"] == "priya"
    assert config["speech_sample_rate"] == "8000" and config["min_buffer_size"] == 30
    # The answer went to Sarvam a sentence at a time, cut at the danda, and its first
    # sentence was being spoken before the second was sent.
    texts = [text.strip() for text, _ in sarvam["texts"]]
    first = texts.index(opening)
    assert texts[first + 1] == sunday
    assert sarvam["texts"][first + 1][1] > sarvam["texts"][first][1]
