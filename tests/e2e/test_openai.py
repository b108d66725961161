"""Calls whose agent thinks with an OpenAI-compatible model: Pipecat's
``OpenAILLMService`` and the official ``openai`` SDK beneath it, against the test server,
reached as the platform's endpoint or as a tenant's own (self-hosted) one."""

from collections.abc import Iterator

import httpx
import pytest

from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from tests.conftest import AUTH, TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import DOCUMENT, wait_for_end
from tests.servers import LiveServer
from tests.servers.openai import openai_app

pytestmark = pytest.mark.e2e

PLATFORM_KEY = "the-platforms-openai-key"


@pytest.fixture(scope="module")
def openai() -> Iterator[LiveServer]:
    with LiveServer(openai_app({PLATFORM_KEY}), free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def self_hosted() -> Iterator[LiveServer]:
    """A tenant's own llama.cpp or vLLM: it asks for no key."""
    with LiveServer(openai_app(), free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def platform(openai: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("openai-platform")
    url = f"{openai.url}/v1"
    # The test servers are on this machine: tenants' servers may be private here.
    with PlatformProcess(
        data, openai_api_key=PLATFORM_KEY, openai_url=url, tenant_outbound_allow_private="true"
    ) as process:
        yield process.url


def store_key(platform: str, tenant: dict, key: str) -> None:
    with httpx.Client(base_url=platform) as api:
        r = api.put(
            f"/v1/tenants/{tenant['id']}/secrets/openai_api_key", json={"value": key}, headers=AUTH
        )
        assert r.status_code == 200


async def answered(platform: str, tenant: dict) -> list[dict]:
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    assert report.turns[1].tools == ["search_knowledge"], report.turns
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any("Mill Lane" in text for text in spoken), spoken  # from the document
    assert not [e for e in events if e["kind"] == "provider.fallback"]
    return events


async def test_an_agent_answers_through_the_platforms_openai_compatible_endpoint(platform, openai):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(
            api, DOCUMENT, providers={"llm": "openai"}, llm_model="llama-3.1-8b-instruct"
        )
    await answered(platform, tenant)
    first, *_ = [
        r for r in openai.app.state.requests if r["body"]["messages"][-1]["role"] == "user"
    ]
    body = first["body"]
    assert first["key"] == PLATFORM_KEY
    assert body["model"] == "llama-3.1-8b-instruct" and body["stream"] is True
    assert body["messages"][0]["role"] == "system"  # the agent's persona
    assert {t["function"]["name"] for t in body["tools"]} >= {"search_knowledge", "end_call"}
    # The tool's result went back to the model as a tool message, and it answered from it.
    assert any(
        m["role"] == "tool" for r in openai.app.state.requests for m in r["body"]["messages"]
    )


async def test_a_tenants_own_endpoint_never_gets_the_platforms_key(platform, self_hosted):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(
            api,
            DOCUMENT,
            providers={"llm": "openai"},
            llm_model="qwen2.5:7b",
            llm_url=f"{self_hosted.url}/v1",
        )
    await answered(platform, tenant)
    keys = {r["key"] for r in self_hosted.app.state.requests}
    assert keys == {"none"}  # no key of its own stored: none sent, not the platform's

    store_key(platform, tenant, "the-tenants-own-key")
    await answered(platform, tenant)
    assert self_hosted.app.state.requests[-1]["key"] == "the-tenants-own-key"


async def test_a_tenants_endpoint_on_a_private_address_is_never_reached(self_hosted, tmp_path):
    # Production's default: a tenant cannot point the platform at its own network. The
    # attempt fails like any unreachable LLM (the caller hears "one moment", the offline
    # engine takes over), and nothing reached the private address.
    with (
        PlatformProcess(tmp_path / "guarded") as guarded,
        httpx.Client(base_url=guarded.url) as api,
    ):
        tenant = make_tenant(
            api, DOCUMENT, providers={"llm": "openai"}, llm_url=f"{self_hosted.url}/v1"
        )
        before = len(self_hosted.app.state.requests)
        report = await place_call(
            guarded.url, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
            tenant_id=tenant["id"],
        )  # fmt: skip
        events = await wait_for_end(guarded.url, tenant["id"], report.call_id)
    assert len(self_hosted.app.state.requests) == before
    kinds = [e["kind"] for e in events]
    assert "llm.retry" in kinds and "provider.fallback" in kinds, kinds
