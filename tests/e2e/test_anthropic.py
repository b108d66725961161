"""Calls whose agent thinks with Claude: Pipecat's ``AnthropicLLMService`` and the
official ``anthropic`` SDK beneath it, against the Anthropic test server (streamed SSE,
``tool_use`` blocks), in a platform configured only by settings."""

from collections.abc import Iterator

import httpx
import pytest

from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from tests.conftest import AUTH, TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import DOCUMENT, heard_the_parking_answer, wait_for_end, words
from tests.servers import LiveServer
from tests.servers.anthropic import anthropic_app

pytestmark = pytest.mark.e2e

PLATFORM_KEY = "the-platforms-anthropic-key"


@pytest.fixture(scope="module")
def anthropic() -> Iterator[LiveServer]:
    with LiveServer(anthropic_app({PLATFORM_KEY}), free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def platform(anthropic: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("anthropic-platform")
    settings = {"anthropic_api_key": PLATFORM_KEY, "anthropic_url": anthropic.url}
    # A stalled stream fails its attempt after 1 s here (5 s by default), so the SDK's
    # three attempts at a stalled turn take seconds, not a quarter of a minute.
    with PlatformProcess(data, **settings, llm_stall_secs="1") as p:
        yield p.url


async def test_claude_answers_from_the_tenants_documents_with_its_tools(platform, anthropic):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"llm": "anthropic"})
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    assert report.turns[1].tools == ["search_knowledge"]
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any("Mill Lane" in text for text in spoken), spoken
    asked, answered = anthropic.app.state.requests[-2:]  # the question, then the tool result
    assert asked["model"] == answered["model"] == "claude-haiku-4-5"
    assert asked["stream"] is True
    # The tools the agent may use, as Anthropic tool definitions.
    assert {t["name"] for t in asked["tools"]} >= {"search_knowledge", "end_call"}
    # The persona and tools are cached across turns: prompt caching is on.
    assert "cache_control" in str(asked["system"]) or "cache_control" in str(asked["tools"])
    results = [
        b for m in answered["messages"] if isinstance(m["content"], list)
        for b in m["content"] if b.get("type") == "tool_result"
    ]  # fmt: skip
    assert results and "Mill Lane" in str(results[-1]["content"])


async def test_claude_overloaded_or_rate_limited_is_retried_within_the_turn(platform, anthropic):
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"llm": "anthropic"})
    anthropic.app.state.failures = [529, 429]  # the question's first two attempts
    before = len(anthropic.app.state.requests)
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    assert report.turns[1].tools == ["search_knowledge"]  # answered all the same
    assert len(anthropic.app.state.requests) - before == 4  # 2 refused, question, result
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    assert any("Mill Lane" in e["data"]["text"] for e in events if e["kind"] == "turn.agent")


def revoked_key_tenant(platform: str) -> dict:
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"llm": "anthropic"})
        r = api.put(
            f"/v1/tenants/{tenant['id']}/secrets/anthropic_api_key",
            json={"value": "a-revoked-key"},
            headers=AUTH,
        )
        assert r.status_code == 200
    return tenant


async def test_a_refused_claude_key_fails_over_to_the_offline_engine(platform, anthropic):
    tenant = revoked_key_tenant(platform)
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    (fallback,) = [e["data"] for e in events if e["kind"] == "provider.fallback"]
    assert fallback == {"role": "llm", "provider": "anthropic", "reason": "failed"}
    # The caller was answered all the same, from the document.
    assert any("Mill Lane" in e["data"]["text"] for e in events if e["kind"] == "turn.agent")


async def a_failing_turn(platform: str, anthropic: LiveServer, failures: list) -> list[dict]:
    """A call whose question meets ``failures`` at Claude (HTTP statuses or ``"stall"``).
    Whatever they are, the caller hears "one moment" and then the document's answer; the
    call's timeline is returned."""
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api, DOCUMENT, providers={"llm": "anthropic"})
    anthropic.app.state.failures = failures
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    answer = report.turns[1]
    assert words(answer.agent_heard)[:2] == ["one", "moment"], answer.agent_heard
    assert heard_the_parking_answer(answer.agent_heard), answer.agent_heard
    assert anthropic.app.state.failures == []  # every injected failure was met
    return await wait_for_end(platform, tenant["id"], report.call_id)


async def test_claude_failing_a_turn_says_one_moment_and_tries_again(platform, anthropic):
    before = len(anthropic.app.state.requests)
    # The question's first attempt and the SDK's two retries all fail: the turn failed.
    # The caller hears "one moment", then Claude's answer on the second try.
    events = await a_failing_turn(platform, anthropic, [500, 500, 500])
    assert len(anthropic.app.state.requests) - before == 5  # 3 failed, question, result
    (retry,) = [e["data"] for e in events if e["kind"] == "llm.retry"]
    assert retry == {"provider": "anthropic", "category": "server"}
    assert not [e for e in events if e["kind"] == "provider.fallback"]
    assert any("Mill Lane" in e["data"]["text"] for e in events if e["kind"] == "turn.agent")


async def test_a_claude_stream_that_goes_quiet_is_given_up_and_the_turn_tried_again(
    platform, anthropic
):
    # The answer starts and then goes quiet. (The SDK does not retry a stream it has
    # begun to read: the turn fails after one stall.)
    events = await a_failing_turn(platform, anthropic, ["stall"])
    (retry,) = [e["data"] for e in events if e["kind"] == "llm.retry"]
    assert retry == {"provider": "anthropic", "category": "timeout"}
    assert not [e for e in events if e["kind"] == "provider.fallback"]
    assert any("Mill Lane" in e["data"]["text"] for e in events if e["kind"] == "turn.agent")


async def test_claude_failing_a_turn_twice_hands_the_call_to_the_offline_engine(
    platform, anthropic
):
    # The turn, and its retry, each 3 attempts.
    events = await a_failing_turn(platform, anthropic, [529] * 6)
    kinds = [e["kind"] for e in events]
    assert kinds.index("llm.retry") < kinds.index("provider.fallback")
    (fallback,) = [e["data"] for e in events if e["kind"] == "provider.fallback"]
    assert fallback == {"role": "llm", "provider": "anthropic", "reason": "unavailable"}
    # The offline engine answered the turn from the tenant's document.
    assert any("Mill Lane" in e["data"]["text"] for e in events if e["kind"] == "turn.agent")
