"""An empty turn ends as soon as the recogniser says it holds no words.

The caller spoke to a silent agent (the VAD started their turn) and the recogniser found
nothing in it: too quiet or too garbled to make out. Pipecat's turn-stop strategies wait
for a transcript that will never come, and Pipecat ends such a turn only after its
5 s stop timeout, so the caller heard 5 s of silence before the platform's "sorry, I
didn't catch that" (pipeline.py). The offline recogniser knows at once (``NoWordsFrame``),
so the turn ends then. Cloud recognisers send nothing for no words; their empty turns
still end on the timeout.
"""

from pipecat.frames.frames import (
    Frame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop.base_user_turn_stop_strategy import BaseUserTurnStopStrategy

from media_plane.barge_in import NoWordsFrame


class NoWordsUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """Ends a turn that holds no words once the recogniser says its last utterance had
    none and the caller is not speaking again."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._in_turn = False
        self._words = False  # any words in this turn so far
        self._caller_speaking = False

    async def handle_user_turn_started(self) -> None:
        await super().handle_user_turn_started()
        self._in_turn, self._words = True, False

    async def handle_user_turn_stopped(self) -> None:
        await super().handle_user_turn_stopped()
        self._in_turn = False

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._caller_speaking = True
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._caller_speaking = False
        elif isinstance(frame, TranscriptionFrame) and frame.text.strip():
            self._words = True
        elif (
            isinstance(frame, NoWordsFrame)
            and self._in_turn
            and not self._words
            and not self._caller_speaking
        ):
            await self.trigger_user_turn_stopped()
            return ProcessFrameResult.STOP
        return ProcessFrameResult.CONTINUE
