"""The offline dialogue engine: the embedded default in the LLM's seat. It is NOT an LLM.

It is deterministic and grounded: it routes the caller's intent to the same tools a cloud
LLM would call, through Pipecat's function-calling path (so tool handlers, the timeline
and barge-in behave identically), and it answers factual questions only with sentences
taken verbatim from the passages ``search_knowledge`` returned. When nothing relevant comes
back it says plainly that it does not know. It never invents text.
"""

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import (
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings

from knowledge.chunking import split_sentences
from knowledge.text import content_words
from media_plane.keypad import keys_pressed

NOT_KNOWN = (
    "I'm sorry, I don't have that information. "
    "I can transfer you to a member of our team if you'd like."
)
BOOKING_ASK = "Sure. What day and time would suit you?"
TRANSFER_SAY = "Of course. Please hold while I transfer you to a member of our team."
NO_TRANSFER = "I'm sorry, nobody is available to take your call right now. Please call back later."
CANT_BOOK = "I'm sorry, I can't book appointments on this line."
HELLO = "Hello! How can I help you today?"
ANYTHING_ELSE = "Is there anything else I can help with?"

_END = re.compile(
    r"\b(bye|goodbye|good bye|that'?s all|that is all|hang up|no thanks?|nothing else)\b"
)
_TRANSFER = re.compile(
    r"\b(human|person|someone|somebody|representative|operator|receptionist|real agent)\b"
)
# Words that carry no request: after "anything else?", an answer of only these means no.
_CLOSING = frozenset(
    {
        "no", "nope", "thank", "thanks", "okay", "ok", "great", "fine", "good", "bye",
        "goodbye", "that", "all", "noth", "nothing", "else", "perfect", "cheer", "wonderful",
    }
)  # fmt: skip
_BOOK = re.compile(r"\b(book|booking|appointment|schedule|reserve)\b")
_HELLO = re.compile(r"^(hi|hello|hey)\b")
_DAY = (
    r"today|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"next week|this week"
)
_NUM = r"\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|noon"
_WHEN = re.compile(
    rf"\b(?:(?:{_DAY})(?:\s+(?:morning|afternoon|evening))?"
    rf"(?:\s+at\s+(?:{_NUM})(?::\d\d)?(?:\s*(?:am|pm|a m|p m|o'?clock))?)?"
    rf"|at\s+(?:{_NUM})(?::\d\d)?\s*(?:am|pm|a m|p m|o'?clock))\b"
)
_PRICE_Q = re.compile(r"\b(how much|cost|costs|price|prices|fee|fees|charge)\b")
_TIME_Q = re.compile(r"\b(what time|when|open|close|closed|hours)\b")
_HAS_PRICE = re.compile(r"(\$|£|€|₹|\d+\s*(dollars|pounds|euros|rupees))", re.I)
_HAS_TIME = re.compile(r"\b(\d{1,2}(:\d\d)?\s*(am|pm|a\.m\.|p\.m\.)|noon|midnight|closed)\b", re.I)


_LLM_SETTINGS = (
    "model", "system_instruction", "temperature", "max_tokens", "top_p", "top_k",
    "frequency_penalty", "presence_penalty", "seed", "filter_incomplete_user_turns",
    "user_turn_completion_config",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reply:
    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def best_sentences(query: str, passages: Sequence[dict[str, Any]], limit: int = 2) -> list[str]:
    """The passage sentences that answer ``query``, verbatim; empty if none does."""
    wanted = content_words(query)
    if not wanted:
        return []
    q = query.lower()
    scored: list[tuple[float, int, str]] = []
    order = 0
    for rank, passage in enumerate(passages):
        section_words = content_words(passage.get("section", ""))
        for sentence in split_sentences(passage.get("text", "")):
            words = content_words(sentence)
            overlap = len(wanted & words)
            if overlap == 0:
                continue
            score = overlap + 0.5 * len(wanted & section_words) - 0.1 * rank
            if _PRICE_Q.search(q) and _HAS_PRICE.search(sentence):
                score += 1
            if _TIME_Q.search(q) and _HAS_TIME.search(sentence):
                score += 1
            scored.append((score, order, sentence))
            order += 1
    if not scored:
        return []
    scored.sort(key=lambda s: (-s[0], s[1]))
    top = scored[0][0]
    # Keep the best sentence and any that score as well (a fact split over two sentences),
    # in the order the document gives them.
    chosen = [s for s in scored[:limit] if s[0] >= top - 0.01]
    chosen.sort(key=lambda s: s[1])
    return [s[2] for s in chosen]


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _tool_name(messages: Sequence[dict[str, Any]], tool_call_id: str) -> str:
    for m in reversed(messages):
        for call in m.get("tool_calls") or []:
            if call.get("id") == tool_call_id:
                return str(call.get("function", {}).get("name", ""))
    return ""


def _last_said(messages: Sequence[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "assistant" and _text_of(m):
            return _text_of(m)
        if m.get("role") == "user":
            return ""
    return ""


def decide(messages: Sequence[dict[str, Any]], tools: Iterable[str]) -> Reply:
    """The next move, given the conversation so far and the tools this agent may use."""
    enabled = set(tools)
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return _after_tool(messages, last)

    said = _last_said(messages[:-1])
    user = _text_of(last).lower().strip() if last.get("role") == "user" else ""
    if not user:
        return Reply()
    keys = keys_pressed(_text_of(last))
    if keys is not None:
        # No menu to read it against: say back what was entered (a model reads the
        # agent's persona for what each key means).
        return Reply(f"You entered {' '.join(keys.rstrip('#'))}." if keys.rstrip("#") else "")

    when = _WHEN.search(user)
    declined = said.endswith(ANYTHING_ELSE) and not (content_words(user) - _CLOSING)
    if (_END.search(user) or declined) and "end_call" in enabled:
        return Reply("Thank you for calling. Goodbye!", [("end_call", {})])
    if _TRANSFER.search(user) and "transfer_to_human" in enabled:
        return Reply(TRANSFER_SAY, [("transfer_to_human", {"reason": user})])
    if _BOOK.search(user) or (said.endswith(BOOKING_ASK) and when):
        if "book_appointment" not in enabled:
            return Reply(CANT_BOOK)
        if when:
            return Reply(calls=[("book_appointment", {"when": when.group(0)})])
        return Reply(BOOKING_ASK)
    if _HELLO.search(user) and len(user.split()) <= 3:
        return Reply(HELLO)
    if "search_knowledge" in enabled:
        return Reply(calls=[("search_knowledge", {"query": user})])
    return Reply(NOT_KNOWN)


def _after_tool(messages: Sequence[dict[str, Any]], last: dict[str, Any]) -> Reply:
    name = _tool_name(messages, str(last.get("tool_call_id", "")))
    try:
        result = json.loads(_text_of(last) or "{}")
    except json.JSONDecodeError:
        result = {}
    if not isinstance(result, dict):
        result = {}
    if name == "search_knowledge":
        sentences = best_sentences(str(result.get("query", "")), result.get("passages", []))
        return Reply(" ".join(sentences) if sentences else NOT_KNOWN)
    if name == "book_appointment":
        if result.get("booking_id"):
            return Reply(f"All set. I've booked you in for {result['when']}. {ANYTHING_ELSE}")
        return Reply("I'm sorry, I couldn't make that booking. " + ANYTHING_ELSE)
    if name == "transfer_to_human" and result.get("status") != "transferring":
        return Reply(NO_TRANSFER)
    return Reply()


class OfflineDialogueEngine(LLMService):
    """Sits where the LLM sits and speaks its protocol: context in, text and tool calls out."""

    def __init__(self, **kwargs: Any):
        # No model, no sampling: every LLM setting is explicitly "unsupported" (None).
        unsupported: dict[str, Any] = {name: None for name in _LLM_SETTINGS}
        super().__init__(settings=LLMSettings(**unsupported), **kwargs)

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self.push_frame(LLMFullResponseStartFrame())
            await self.start_processing_metrics()
            await self.start_ttfb_metrics()
            try:
                await self._respond(frame.context)
            finally:
                await self.stop_processing_metrics()
                await self.push_frame(LLMFullResponseEndFrame())
        else:
            await self.push_frame(frame, direction)

    async def _respond(self, context: LLMContext) -> None:
        messages: list[dict[str, Any]] = [
            dict(m) for m in context.get_messages() if isinstance(m, dict)
        ]
        tools = context.tools
        names = [t.name for t in tools.standard_tools] if hasattr(tools, "standard_tools") else []
        reply = decide(messages, names)
        await self.stop_ttfb_metrics()  # the decision is this engine's first byte
        if reply.text:
            await self.push_frame(LLMTextFrame(reply.text))
        if reply.calls:
            await self.run_function_calls(
                [
                    FunctionCallFromLLM(
                        function_name=name,
                        tool_call_id=f"call_{uuid.uuid4().hex[:16]}",
                        arguments=args,
                        context=context,
                    )
                    for name, args in reply.calls
                ]
            )
