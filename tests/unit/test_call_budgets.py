"""What one call may spend: its timeline, and its model's tool calls."""

from types import SimpleNamespace

from media_plane.agent import AgentConfig
from media_plane.calls import MAX_TIMELINE_EVENTS, Call
from media_plane.http_tools import ToolAccess
from media_plane.ledger import Announced
from media_plane.tools import MAX_TOOL_CALLS_PER_CALL, MAX_TOOL_CALLS_PER_TURN, register_tools

AGENT = AgentConfig("t1", "a1", "n", "p", "g", "en-US", "v", ("search_knowledge",))


class Registry:
    def __init__(self) -> None:
        self.handlers: dict = {}

    def register_function(self, name, handler) -> None:
        self.handlers[name] = handler


class Port:
    def __init__(self) -> None:
        self.searches = 0

    async def search_knowledge(self, tenant_id, query, k):
        self.searches += 1
        return []


async def ask(handler) -> dict:
    results: list = []

    async def result_callback(result, properties=None):
        results.append(result)

    params = SimpleNamespace(
        function_name="search_knowledge", arguments={"query": "parking?"},
        result_callback=result_callback, llm=None,
    )  # fmt: skip
    await handler(params)
    return results[0]


async def test_tool_calls_are_bounded_per_turn_and_per_call():
    call = Call(Announced("call_x", "CA1", AGENT))
    llm, port = Registry(), Port()
    register_tools(llm, call, port, ToolAccess(None))  # type: ignore[arg-type]
    search = llm.handlers["search_knowledge"]
    for _ in range(MAX_TOOL_CALLS_PER_TURN):
        assert "passages" in await ask(search)
    assert "error" in await ask(search)  # the model must answer with what it has
    assert port.searches == MAX_TOOL_CALLS_PER_TURN
    while call.tool_calls < MAX_TOOL_CALLS_PER_CALL:  # turn after turn
        call.tool_calls_this_turn = 0
        assert "passages" in await ask(search)
    call.tool_calls_this_turn = 0
    assert "error" in await ask(search)
    assert port.searches == MAX_TOOL_CALLS_PER_CALL
    events = [call._events.get_nowait() for _ in range(call._events.qsize())]
    assert [e.kind for e in events].count("tool.refused") == 2


def test_a_calls_timeline_is_bounded_and_the_excess_counted_not_stored():
    call = Call(Announced("call_x", "CA1", AGENT))
    call.record("call.started")
    for _ in range(MAX_TIMELINE_EVENTS + 999):
        call.record("turn.user", text="x")
    call.record("call.ended", reason="caller_hung_up")  # the call's own lifecycle: kept
    assert call._events.qsize() == MAX_TIMELINE_EVENTS + 1
    assert call.events_dropped == {"turn.user": 1000}
    kinds = [call._events.get_nowait().kind for _ in range(call._events.qsize())]
    assert kinds[0] == "call.started" and kinds[-1] == "call.ended"
