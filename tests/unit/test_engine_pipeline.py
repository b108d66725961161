"""The offline engine inside a Pipecat pipeline speaks the LLM protocol: a context in;
text and function calls out through Pipecat's function-calling path."""

from pipecat.frames.frames import (
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import run_test

from media_plane.providers.offline_engine import OfflineDialogueEngine
from media_plane.tools import tools_schema


async def test_a_question_becomes_a_search_knowledge_call_with_its_result():
    engine = OfflineDialogueEngine()
    calls = []

    async def search(params: FunctionCallParams):
        calls.append(dict(params.arguments))
        await params.result_callback({"query": params.arguments["query"], "passages": []})

    engine.register_function("search_knowledge", search)
    context = LLMContext(
        messages=[{"role": "user", "content": "where can i park"}],
        tools=tools_schema(("search_knowledge", "end_call")),
    )
    down, _ = await run_test(engine, frames_to_send=[LLMContextFrame(context)])
    kinds = [type(f) for f in down]
    assert kinds.index(LLMFullResponseStartFrame) < kinds.index(LLMFullResponseEndFrame)
    assert FunctionCallInProgressFrame in kinds and FunctionCallResultFrame in kinds
    assert calls == [{"query": "where can i park"}]


async def test_goodbye_is_spoken_before_the_end_call_tool_runs():
    engine = OfflineDialogueEngine()
    context = LLMContext(
        messages=[{"role": "user", "content": "thanks goodbye"}],
        tools=tools_schema(("end_call",)),
    )
    ran = []

    async def end_call(params: FunctionCallParams):
        ran.append(True)
        await params.result_callback({"status": "ending"})

    engine.register_function("end_call", end_call)
    down, _ = await run_test(engine, frames_to_send=[LLMContextFrame(context)])
    texts = [f.text for f in down if isinstance(f, LLMTextFrame)]
    assert texts and "Goodbye" in texts[0]
    first_text = next(i for i, f in enumerate(down) if isinstance(f, LLMTextFrame))
    first_call = next(i for i, f in enumerate(down) if isinstance(f, FunctionCallInProgressFrame))
    assert first_text < first_call and ran == [True]
