"""The keypad: keys the caller presses reach the agent as a turn of their own, and the
agent can press keys (``send_digits``).

The provider's ``dtmf`` events become Pipecat's keypad frames in the serializers; here
they are gathered into one entry — until ``#``, or until the caller stops pressing for
``ENTRY_PAUSE_SECS`` — and handed on as the caller's words, so the LLM reads "The caller
pressed on the keypad: 1234#" in the conversation and a menu ("press 1 for…") or a number
collected key by key works with any model. An entry starts the caller's turn by itself
(there is no speech for the VAD to hear), and its first key cuts the agent off, as a key
press does on any phone menu.
"""

import re

from pipecat.frames.frames import Frame, OutputDTMFFrame, TranscriptionFrame
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start.base_user_turn_start_strategy import BaseUserTurnStartStrategy

PREFIX = "The caller pressed on the keypad: "
ENTRY_PAUSE_SECS = 2.0  # a pause this long between keys ends the entry (or ``#`` does)
DIGITS = re.compile(r"^[0-9*#]{1,32}$")  # what the agent may press at once
_ENTRY = re.compile("^" + re.escape(PREFIX) + r"([0-9*#]+)$")


class KeypadInput(DTMFAggregator):
    """The caller's key presses, gathered into entries (Pipecat's DTMF aggregator)."""

    def __init__(self) -> None:
        super().__init__(timeout=ENTRY_PAUSE_SECS, prefix=PREFIX)


def keys_pressed(text: str) -> str | None:
    """The keys of a keypad entry, if ``text`` is one."""
    match = _ENTRY.match(text.strip())
    return match.group(1) if match else None


class KeypadUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """A keypad entry starts the caller's turn (the VAD starts spoken ones)."""

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, TranscriptionFrame) and keys_pressed(frame.text):
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        return ProcessFrameResult.CONTINUE


def key_presses(digits: str) -> OutputDTMFFrame:
    """The agent pressing ``digits`` (checked against ``DIGITS``): tones in the call's
    audio, as a phone sends them in-band (a phone tree on the other end hears them)."""
    return OutputDTMFFrame.from_string(digits)
