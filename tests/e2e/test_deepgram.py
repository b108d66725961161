"""Calls whose agent listens through Deepgram: Pipecat's ``DeepgramSTTService`` and the
official ``deepgram-sdk`` beneath it, against the Deepgram test server (which hears the
caller with the offline recogniser), in a platform configured only by settings."""

from collections.abc import Iterator

import httpx
import pytest

from media_plane.providers.calibration import calibrate_recogniser
from media_plane.providers.recogniser import Recogniser
from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from switchboard.settings import Settings
from tests.conftest import AUTH, TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import DOCUMENT, wait_for_end
from tests.servers import LiveServer
from tests.servers.deepgram import deepgram_app

pytestmark = pytest.mark.e2e

PLATFORM_KEY = "the-platforms-deepgram-key"
TENANT_KEY = "a-tenants-own-deepgram-key"


@pytest.fixture(scope="module")
def deepgram() -> Iterator[LiveServer]:
    recogniser = Recogniser()  # the test server's own ears
    calibrate_recogniser(Settings(_env_file=None).model_cache_dir, recogniser)
    with LiveServer(deepgram_app({PLATFORM_KEY, TENANT_KEY}, recogniser), free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def platform(deepgram: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process = PlatformProcess(
        tmp_path_factory.mktemp("deepgram-platform"),
        deepgram_api_key=PLATFORM_KEY,
        deepgram_url=deepgram.url.replace("http://", "ws://"),
    )
    try:
        yield process.url
    finally:
        process.stop()


async def call_and_hear(platform: str, tenant: dict) -> list[dict]:
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    assert report.turns[1].tools == ["search_knowledge"], report.turns
    return await wait_for_end(platform, tenant["id"], report.call_id)


async def test_a_caller_is_heard_through_deepgram(platform, deepgram):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"stt": "deepgram"})
    events = await call_and_hear(platform, tenant)
    (heard,) = [e["data"]["text"] for e in events if e["kind"] == "turn.user"]
    assert "park" in heard.split()
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any("Mill Lane" in text for text in spoken), spoken
    connection = deepgram.app.state.connections[-1]
    assert connection["key"] == PLATFORM_KEY  # the tenant has none of its own
    query = connection["query"]
    # The call's own audio, untouched: 8 kHz 16-bit PCM; nova-3, the agent's language.
    assert query["encoding"] == ["linear16"] and query["sample_rate"] == ["8000"]
    assert query["model"] == ["nova-3"] and query["language"] == ["en-US"]
    assert query["interim_results"] == ["true"]


async def test_a_tenants_own_deepgram_key_is_used_for_its_calls(platform, deepgram):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"stt": "deepgram"})
    async with httpx.AsyncClient(base_url=platform, headers=AUTH) as api:
        r = await api.put(
            f"/v1/tenants/{tenant['id']}/secrets/deepgram_api_key", json={"value": TENANT_KEY}
        )
        assert r.status_code == 200
    await call_and_hear(platform, tenant)
    assert deepgram.app.state.connections[-1]["key"] == TENANT_KEY
