"""A tenant's HTTP tool, called as the agent calls it, against a tenant API that checks
signatures the way docs/tools.md tells tenants to (tests/servers/tenant_api.py)."""

from collections.abc import Iterator

import pytest

from media_plane.http_tools import ToolAccess, ToolFailed, call_http_tool, sign
from switchboard.demo.run import free_port
from tests.servers import LiveServer
from tests.servers.tenant_api import tenant_api_app

SECRET = "the-tenants-tool-secret"
PARAMETERS = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "pattern": "^[A-Z][0-9]+$"}},
    "required": ["order_id"],
}


@pytest.fixture(scope="module")
def api() -> Iterator[LiveServer]:
    with LiveServer(tenant_api_app(SECRET), free_port()) as server:
        yield server


@pytest.fixture
def tool(api) -> dict:
    api.app.state.mode = "ok"
    return {
        "name": "order_status",
        "description": "An order's delivery status.",
        "url": api.url + "/orders/status",
        "parameters": PARAMETERS,
        "timeout_ms": 1000,
    }


async def use(tool: dict, arguments: dict, access: ToolAccess | None = None):
    access = access or ToolAccess(SECRET, allow_private=True)
    return await call_http_tool(tool, arguments, call_id="call_1", agent_id="agt_1", access=access)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    # A fixed vector a tenant can check its own verifier against (docs/tools.md).
    assert sign("secret", "1700000000", b'{"a":1}') == (
        "v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
    )


async def test_a_signed_call_gets_the_tenants_answer(api, tool):
    answer = await use(tool, {"order_id": "A17"})
    assert answer == {"order_id": "A17", "status": "shipped", "arrives": "Tuesday"}
    last = api.app.state.requests[-1]
    assert last["signed"] is True
    assert last["body"] == {
        "tool": "order_status",
        "arguments": {"order_id": "A17"},
        "call_id": "call_1",
        "agent_id": "agt_1",
    }


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("slow", "did not answer within 1000 ms"),
        ("huge", "over 16384 bytes"),
        ("error", "HTTP 500"),
        ("not_json", "not JSON"),
        ("redirect", "HTTP 302"),  # never followed: it could lead anywhere
    ],
)
async def test_a_misbehaving_tool_fails_with_the_reason(api, tool, mode, why):
    api.app.state.mode = mode
    with pytest.raises(ToolFailed, match=why):
        await use(tool, {"order_id": "A17"})


async def test_a_wrong_secret_is_refused_by_the_tenant(api, tool):
    with pytest.raises(ToolFailed, match="HTTP 401"):
        await use(tool, {"order_id": "A17"}, ToolAccess("not-the-secret", allow_private=True))
    assert api.app.state.requests[-1]["signed"] is False


async def test_nothing_is_sent_without_a_secret_or_with_bad_arguments(api, tool):
    before = len(api.app.state.requests)
    with pytest.raises(ToolFailed, match="tool_signing_secret"):
        await use(tool, {"order_id": "A17"}, ToolAccess(None, allow_private=True))
    with pytest.raises(ToolFailed, match="schema"):
        await use(tool, {"order_id": "17; DROP TABLE"})
    with pytest.raises(ToolFailed, match="schema"):
        await use(tool, {})
    assert len(api.app.state.requests) == before


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/x",
        "http://[::1]:9/x",
    ],
)
async def test_a_tool_may_not_reach_into_the_platforms_network(tool, url):
    with pytest.raises(ToolFailed, match="not a public address"):
        await use(tool | {"url": url}, {"order_id": "A17"}, ToolAccess(SECRET))


async def test_a_pattern_that_backtracks_in_python_is_checked_in_linear_time(api, tool):
    # "^(a+)+$" against 5,000 a's and a "!" is ~2**5000 steps for a backtracking engine
    # (a test that would never end); RE2 answers in microseconds, and refuses it.
    evil = {"type": "string", "pattern": "^(a+)+$"}
    schema = {"type": "object", "properties": {"order_id": evil}, "required": ["order_id"]}
    with pytest.raises(ToolFailed, match="does not match"):
        await use(tool | {"parameters": schema}, {"order_id": "a" * 5000 + "!"})
    assert await use(tool | {"parameters": schema}, {"order_id": "aaaa"}) is not None


async def test_arguments_nested_absurdly_deep_are_refused_not_raised(api, tool):
    deep: object = "x"
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(ToolFailed, match="nested"):
        await use(tool, {"order_id": deep})


async def test_a_host_that_cannot_be_looked_up_is_a_tool_failure_like_any_other(api, tool):
    unresolvable = tool | {"url": "https://" + "a" * 64 + ".example.com/orders/status"}
    with pytest.raises(ToolFailed, match=r"could not be reached.*does not resolve"):
        await use(unresolvable, {"order_id": "A17"}, ToolAccess(SECRET))
