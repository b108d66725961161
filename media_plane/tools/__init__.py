"""The tools an agent can use in a call, advertised to the LLM and handled here."""

import asyncio
from typing import Any

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import EndWorkerFrame, FunctionCallResultProperties, TTSSpeakFrame
from pipecat.pipeline.llm_switcher import LLMSwitcher
from pipecat.services.llm_service import FunctionCallParams, LLMService

from media_plane.agent import ControlPlanePort
from media_plane.calls import Call
from media_plane.http_tools import ToolAccess, ToolFailed, call_http_tool
from media_plane.keypad import DIGITS, key_presses
from media_plane.phrases import TOOL_FAILED, in_language

SEARCH_BUDGET_SECS = 0.5  # a slow store must never stall the turn
SEARCH_K = 3
# A model that keeps calling tools (a loop, a prompt injected through a document or a
# tool's answer) is stopped: it must answer the caller with what it has. A turn needs one
# or two; a long call a few dozen.
MAX_TOOL_CALLS_PER_TURN = 6
MAX_TOOL_CALLS_PER_CALL = 60

SCHEMAS = {
    "search_knowledge": FunctionSchema(
        name="search_knowledge",
        description="Search the business's own documents (prices, hours, policies, FAQs). "
        "Use it for every factual question about the business.",
        properties={"query": {"type": "string", "description": "The caller's question."}},
        required=["query"],
    ),
    "book_appointment": FunctionSchema(
        name="book_appointment",
        description="Book an appointment for the caller.",
        properties={
            "when": {"type": "string", "description": "Day and time, as the caller said it."},
            "name": {"type": "string", "description": "The caller's name, if given."},
        },
        required=["when"],
    ),
    "transfer_to_human": FunctionSchema(
        name="transfer_to_human",
        description="Transfer the caller to a member of staff.",
        properties={"reason": {"type": "string"}},
        required=[],
    ),
    "end_call": FunctionSchema(
        name="end_call",
        description="Hang up after saying goodbye.",
        properties={},
        required=[],
    ),
    "send_digits": FunctionSchema(
        name="send_digits",
        description="Press keys on the phone's keypad (tones the other end hears), e.g. to "
        "choose from a phone menu or enter an extension.",
        properties={"digits": {"type": "string", "description": "Keys to press: 0-9, * and #."}},
        required=["digits"],
    ),
}


def tools_schema(enabled: tuple[str, ...], http_tools: tuple[dict, ...] = ()) -> ToolsSchema:
    """The built-in tools the agent has enabled, then the tenant's own."""
    built_in = [SCHEMAS[name] for name in enabled if name in SCHEMAS]
    own = [
        FunctionSchema(
            name=tool["name"],
            description=tool["description"],
            properties=tool["parameters"].get("properties", {}),
            required=tool["parameters"].get("required", []),
        )
        for tool in http_tools
    ]
    return ToolsSchema(standard_tools=built_in + own)


def register_tools(
    llm: LLMService | LLMSwitcher, call: Call, port: ControlPlanePort, access: ToolAccess
) -> None:
    log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)

    async def done(params: FunctionCallParams, result: dict[str, Any], **props: Any) -> None:
        call.record("tool.result", name=params.function_name, result=result)
        properties = FunctionCallResultProperties(**props) if props else None
        await params.result_callback(result, properties=properties)

    async def search_knowledge(params: FunctionCallParams) -> None:
        query = str(params.arguments.get("query", ""))[:500]
        try:
            hits = await asyncio.wait_for(
                port.search_knowledge(call.tenant_id, query, SEARCH_K), SEARCH_BUDGET_SECS
            )
            passages = [{"section": h.section, "text": h.text} for h in hits]
            await done(params, {"query": query, "passages": passages})
        except TimeoutError:
            log.warning("tool.search_timeout")
            await done(params, {"query": query, "passages": [], "error": "timeout"})

    async def book_appointment(params: FunctionCallParams) -> None:
        when = str(params.arguments.get("when", "")).strip()[:200]
        name = params.arguments.get("name")
        if not when:
            await done(params, {"error": "a day and time are needed"})
            return
        booking_id = await port.create_booking(
            call.tenant_id, call.call_id, when, str(name)[:200] if name else None
        )
        await done(params, {"booking_id": booking_id, "when": when})

    async def transfer_to_human(params: FunctionCallParams) -> None:
        target = call.agent.transfer_number
        if not target:
            await done(params, {"status": "unavailable"})
            return
        # The stream ends once the hand-off message is spoken; the provider then asks what
        # to do next, and telephony answers with a dial to this number.
        call.transfer_to = target
        await done(params, {"status": "transferring"}, run_llm=False)
        await params.llm.push_frame(EndWorkerFrame(reason="transfer"))

    async def end_call(params: FunctionCallParams) -> None:
        await done(params, {"status": "ending"}, run_llm=False)
        await params.llm.push_frame(EndWorkerFrame(reason="end_call"))

    async def send_digits(params: FunctionCallParams) -> None:
        digits = str(params.arguments.get("digits", "")).replace(" ", "")
        if not DIGITS.match(digits):
            await done(params, {"error": "digits must be 1 to 32 of 0-9, * and #"})
            return
        await params.llm.push_frame(key_presses(digits))
        await done(params, {"pressed": digits})

    def budgeted(handler):
        async def within_budget(params: FunctionCallParams) -> None:
            if (
                call.tool_calls_this_turn >= MAX_TOOL_CALLS_PER_TURN
                or call.tool_calls >= MAX_TOOL_CALLS_PER_CALL
            ):
                call.record("tool.refused", name=params.function_name, reason="budget")
                await done(params, {"error": "no more tool calls now: answer with what you have"})
                return
            call.tool_calls += 1
            call.tool_calls_this_turn += 1
            await handler(params)

        return within_budget

    handlers = {
        "search_knowledge": search_knowledge,
        "book_appointment": book_appointment,
        "transfer_to_human": transfer_to_human,
        "end_call": end_call,
        "send_digits": send_digits,
    }
    for name in call.agent.tools:
        if name in handlers:
            llm.register_function(name, budgeted(handlers[name]))

    own_tools = {tool["name"]: tool for tool in call.agent.http_tools}
    sorry = in_language(TOOL_FAILED, call.agent.language)

    async def http_tool(params: FunctionCallParams) -> None:
        name = params.function_name
        try:
            result = await call_http_tool(
                own_tools[name],
                dict(params.arguments),
                call_id=call.call_id,
                agent_id=call.agent.agent_id,
                access=access,
            )
        except ToolFailed as failed:
            # Never silence: the caller hears an apology at once, and the LLM's context
            # keeps the error for the next turn.
            log.warning("tool.failed", name=name, reason=str(failed))
            call.record("tool.failed", name=name, reason=str(failed))
            await done(params, {"error": str(failed)}, run_llm=False)
            await params.llm.push_frame(TTSSpeakFrame(sorry, append_to_context=True))
            return
        await done(params, {"result": result})

    for name in own_tools:
        llm.register_function(name, budgeted(http_tool))
