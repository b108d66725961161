"""Calls whose agent listens through Deepgram: Pipecat's ``DeepgramSTTService`` and the
official ``deepgram-sdk`` beneath it, against the Deepgram test server (which hears the
caller with the offline recogniser), in a platform configured only by settings."""

from collections.abc import Iterator

import httpx
import pytest

from media_plane.phrases import SAY_AGAIN
from media_plane.providers.recogniser import Recogniser
from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from tests.conftest import TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import DOCUMENT, heard_the_parking_answer, wait_for_end, words
from tests.servers import LiveServer
from tests.servers.deepgram import deepgram_app

pytestmark = pytest.mark.e2e

PLATFORM_KEY = "the-platforms-deepgram-key"
TENANT_KEY = "a-tenants-own-deepgram-key"
FLAKY_KEY = "a-key-whose-first-connection-drops"
GARBLED_KEY = "a-key-whose-first-result-comes-after-garbage"


@pytest.fixture(scope="module")
def deepgram() -> Iterator[LiveServer]:
    recogniser = Recogniser()  # the test server's own ears
    keys = {PLATFORM_KEY, TENANT_KEY, FLAKY_KEY, GARBLED_KEY}
    app = deepgram_app(keys, recogniser, frozenset({FLAKY_KEY}), frozenset({GARBLED_KEY}))
    with LiveServer(app, free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def platform(deepgram: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("deepgram-platform")
    url = deepgram.url.replace("http://", "ws://")
    with PlatformProcess(data, deepgram_api_key=PLATFORM_KEY, deepgram_url=url) as process:
        yield process.url


async def call_and_hear(
    platform: str, tenant: dict, questions: tuple[str, ...] = ("Where can I park?",)
) -> list[dict]:
    report = await place_call(
        platform, tenant["number"], [Utterance(q) for q in questions], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    for turn in report.turns[1:]:
        assert turn.tools == ["search_knowledge"], report.turns
    return await wait_for_end(platform, tenant["id"], report.call_id)


def deepgram_tenant(platform: str, key: str | None = None) -> dict:
    secrets = {"deepgram_api_key": key} if key is not None else {}
    with httpx.Client(base_url=platform) as api:
        return make_tenant(api, DOCUMENT, providers={"stt": "deepgram"}, secrets=secrets)


async def test_a_caller_is_heard_through_deepgram(platform, deepgram):
    speech = {"endpointing_ms": 450, "keyterms": ["Mill Lane"]}
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"stt": "deepgram"}, speech=speech)
    events = await call_and_hear(platform, tenant)
    (heard,) = [e["data"]["text"] for e in events if e["kind"] == "turn.user"]
    assert "park" in words(heard)
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any("Mill Lane" in text for text in spoken), spoken
    connection = deepgram.app.state.connections[-1]
    assert connection["key"] == PLATFORM_KEY  # the tenant has none of its own
    query = connection["query"]
    # The call's own audio, untouched: 8 kHz 16-bit PCM; nova-3, the agent's language.
    assert query["encoding"] == ["linear16"] and query["sample_rate"] == ["8000"]
    assert query["model"] == ["nova-3"] and query["language"] == ["en-US"]
    assert query["interim_results"] == ["true"]
    # The agent's own listening: its endpointing, and its key terms to favour.
    assert query["endpointing"] == ["450"] and query["keyterm"] == ["Mill Lane"]


async def test_a_tenants_own_deepgram_key_is_used_for_its_calls(platform, deepgram):
    tenant = deepgram_tenant(platform, TENANT_KEY)
    await call_and_hear(platform, tenant)
    assert deepgram.app.state.connections[-1]["key"] == TENANT_KEY


async def test_a_connection_lost_mid_call_is_reopened_and_the_call_goes_on(platform, deepgram):
    tenant = deepgram_tenant(platform, FLAKY_KEY)
    events = await call_and_hear(platform, tenant, ("Where can I park?", "Where can I park?"))
    # The first answer closed the connection; Pipecat reconnected, and Deepgram (not the
    # standby) heard the second question.
    assert [c["key"] for c in deepgram.app.state.connections].count(FLAKY_KEY) == 2
    assert not [e for e in events if e["kind"] == "provider.fallback"]
    heard = [e["data"]["text"] for e in events if e["kind"] == "turn.user"]
    assert len(heard) == 2 and all("park" in words(text) for text in heard), heard


async def test_a_question_lost_with_the_connection_is_asked_for_again(platform, deepgram):
    tenant = deepgram_tenant(platform, GARBLED_KEY)
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")] * 2, token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    _, lost, again = report.turns
    # A message that is not JSON broke the connection just before the question's words
    # came: they were lost. The caller is asked to say it again, not left in silence...
    assert lost.platform_heard == "" and lost.agent_heard_secs > 1, lost
    said = set(words(lost.agent_heard))
    assert len(said & {"sorry", "didn't", "catch", "say", "again"}) >= 2, lost.agent_heard
    # ...and the question said again is heard over the reopened connection and answered.
    assert again.tools == ["search_knowledge"]
    assert heard_the_parking_answer(again.agent_heard), again.agent_heard
    assert [c["key"] for c in deepgram.app.state.connections].count(GARBLED_KEY) == 2
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    assert any(SAY_AGAIN["en"] in e["data"]["text"] for e in events if e["kind"] == "turn.agent")


async def test_a_refused_key_fails_over_to_the_offline_recogniser(platform, deepgram):
    tenant = deepgram_tenant(platform, "a-revoked-key")
    before = len(deepgram.app.state.connections)
    events = await call_and_hear(platform, tenant)  # heard all the same
    assert len(deepgram.app.state.connections) == before  # Deepgram refused every attempt
    (fallback,) = [e["data"] for e in events if e["kind"] == "provider.fallback"]
    assert fallback == {"role": "stt", "provider": "deepgram", "reason": "failed"}
