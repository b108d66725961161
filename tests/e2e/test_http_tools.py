"""A call whose agent uses its tenant's own HTTP tool: the model (the OpenAI-compatible
test server, scripted to choose the tool as a model would) calls ``order_status``; the
platform signs the request to the tenant's API (tests/servers/tenant_api.py), and the
answer comes back into the conversation, or, when the tenant's API fails, the caller
hears an apology and the call goes on."""

import json
from collections.abc import Iterator

import httpx
import pytest

from media_plane.phrases import TOOL_FAILED
from media_plane.providers.offline_engine import Reply, decide
from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from tests.conftest import TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import DOCUMENT, heard_the_parking_answer, wait_for_end
from tests.servers import LiveServer
from tests.servers.openai import openai_app
from tests.servers.tenant_api import tenant_api_app

pytestmark = pytest.mark.e2e

KEY = "the-platforms-openai-key"
SECRET = "the-clinics-tool-signing-secret"


def model(messages: list[dict], tools: list[str]) -> Reply:
    """A model's choices for this test: an order question calls the tenant's tool, and
    its answer is read back; anything else as the offline engine would."""
    last = messages[-1]
    if last.get("role") == "tool":
        answer = json.loads(last["content"]).get("result")
        if isinstance(answer, dict) and "status" in answer:
            return Reply(f"Your order has {answer['status']} and arrives on {answer['arrives']}.")
    asked = last.get("role") == "user" and "order" in str(last.get("content")).lower()
    if asked and "order_status" in tools:
        return Reply("Let me check.", [("order_status", {"order_id": "A17"})])
    return decide(messages, tools)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LiveServer]]:
    with (
        LiveServer(openai_app({KEY}, decide=model), free_port()) as openai,
        LiveServer(tenant_api_app(SECRET), free_port()) as tenant_api,
    ):
        yield {"openai": openai, "tenant_api": tenant_api}


@pytest.fixture(scope="module")
def platform(servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("http-tools-platform")
    settings = {
        "openai_api_key": KEY,
        "openai_url": servers["openai"].url + "/v1",
        "tenant_outbound_allow_private": "true",  # the tenant's API is on this machine
    }
    with PlatformProcess(data, **settings) as process:
        yield process.url


@pytest.fixture(scope="module")
def tenant(platform, servers) -> dict:
    order_status = {
        "name": "order_status",
        "description": "Where a customer's order is, and when it arrives.",
        "url": servers["tenant_api"].url + "/orders/status",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        "timeout_ms": 1500,
    }
    with httpx.Client(base_url=platform) as api:
        return make_tenant(
            api,
            DOCUMENT,
            providers={"llm": "openai"},
            http_tools=[order_status],
            secrets={"tool_signing_secret": SECRET},
        )


async def test_the_agent_answers_with_the_tenants_own_api(platform, servers, tenant):
    servers["tenant_api"].app.state.mode = "ok"
    report = await place_call(
        platform, tenant["number"], [Utterance("Where is my order?")], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    assert report.turns[1].tools == ["order_status"]
    request = servers["tenant_api"].app.state.requests[-1]
    assert request["signed"] is True  # the tenant's own check of our signature held
    assert request["body"] == {
        "tool": "order_status",
        "arguments": {"order_id": "A17"},
        "call_id": report.call_id,
        "agent_id": tenant["agent_id"],
    }
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    (result,) = [e["data"] for e in events if e["kind"] == "tool.result"]
    assert result["result"]["result"]["status"] == "shipped"
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any("shipped and arrives on Tuesday" in text for text in spoken), spoken
    # The OpenAI-compatible model was told about the tool, with its schema.
    tools = servers["openai"].app.state.requests[-1]["body"]["tools"]
    (declared,) = [t["function"] for t in tools if t["function"]["name"] == "order_status"]
    assert declared["parameters"]["properties"] == {"order_id": {"type": "string"}}


async def test_a_tool_that_times_out_is_apologised_for_and_the_call_goes_on(
    platform, servers, tenant
):
    servers["tenant_api"].app.state.mode = "slow"
    try:
        report = await place_call(
            platform,
            tenant["number"],
            [Utterance("Where is my order?"), Utterance("Where can I park?")],
            token=TOKEN,
            tenant_id=tenant["id"],
        )
    finally:
        servers["tenant_api"].app.state.mode = "ok"
    _, order, parking = report.turns
    assert order.tools == ["order_status"]
    assert order.agent_heard_secs > 1  # an apology, not silence
    assert heard_the_parking_answer(parking.agent_heard), parking.agent_heard  # goes on
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    (failed,) = [e["data"] for e in events if e["kind"] == "tool.failed"]
    assert failed == {
        "name": "order_status",
        "reason": "the tool did not answer within 1500 ms",
    }
    spoken = [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]
    assert any(TOOL_FAILED["en"] in text for text in spoken), spoken
