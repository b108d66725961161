"""The agent's keypad tool: only keys a phone has, pressed as tones on the line."""

from types import SimpleNamespace

from pipecat.frames.frames import OutputDTMFFrame

from media_plane.agent import AgentConfig
from media_plane.calls import Call
from media_plane.http_tools import ToolAccess
from media_plane.keypad import PREFIX, keys_pressed
from media_plane.ledger import Announced
from media_plane.providers.offline_engine import decide
from media_plane.tools import register_tools
from tests.unit.test_call_budgets import Port, Registry

AGENT = AgentConfig("t1", "a1", "n", "p", "g", "en-US", "v", ("send_digits",))


class Model:
    def __init__(self) -> None:
        self.pushed: list = []

    async def push_frame(self, frame) -> None:
        self.pushed.append(frame)


async def press(digits: str) -> tuple[dict, list]:
    llm, model, results = Registry(), Model(), []

    async def result_callback(result, properties=None):
        results.append(result)

    register_tools(llm, Call(Announced("call_x", "CA1", AGENT)), Port(), ToolAccess(None))  # type: ignore[arg-type]
    params = SimpleNamespace(
        function_name="send_digits", arguments={"digits": digits},
        result_callback=result_callback, llm=model,
    )  # fmt: skip
    await llm.handlers["send_digits"](params)
    return results[0], model.pushed


async def test_the_agent_presses_keys_a_phone_has():
    result, pushed = await press("1 2 3#")
    assert result == {"pressed": "123#"}
    (frame,) = pushed
    assert isinstance(frame, OutputDTMFFrame) and frame.to_string() == "123#"


async def test_anything_else_is_refused_with_the_reason():
    for digits in ("12a", "", "1" * 33):
        result, pushed = await press(digits)
        assert "error" in result and pushed == []


def test_a_keypad_entry_is_told_apart_from_words_and_answered_offline():
    assert keys_pressed(f"{PREFIX}0800#") == "0800#"
    assert keys_pressed("I pressed one") is None
    entry = [{"role": "user", "content": f"{PREFIX}42#"}]
    assert decide(entry, ()).text == "You entered 4 2."
