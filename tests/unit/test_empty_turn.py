"""A turn the recogniser found no words in ends at once (and is answered once, with
"sorry, I didn't catch that"), not after Pipecat's 5 s stop timeout; one with words, or
whose caller is speaking again, is left to the other strategies."""

import pytest
from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import (
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.utils.asyncio.task_manager import TaskManager

from media_plane.barge_in import NoWordsFrame
from media_plane.empty_turn import NoWordsUserTurnStopStrategy


class Turn:
    def __init__(self, strategy: NoWordsUserTurnStopStrategy) -> None:
        self.strategy = strategy
        self.stopped = False

        @strategy.event_handler("on_user_turn_stopped")
        async def _stopped(_strategy, _params):
            self.stopped = True

    async def feed(self, *frames) -> None:
        for frame in frames:
            await self.strategy.process_frame(frame)


@pytest.fixture
async def turn():
    strategy = NoWordsUserTurnStopStrategy()
    setup = FrameProcessorSetup(
        clock=SystemClock(), task_manager=TaskManager(), pipeline_worker=None
    )
    await strategy.setup(setup)
    await strategy.handle_user_turn_started()
    yield Turn(strategy)
    await strategy.cleanup()


async def test_a_turn_with_no_words_ends_when_the_recogniser_says_so(turn):
    await turn.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame(), NoWordsFrame())
    assert turn.stopped


async def test_a_turn_with_words_is_left_to_the_speech_timeout(turn):
    await turn.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame())
    await turn.feed(TranscriptionFrame("My number is", "caller", "now"))
    await turn.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame(), NoWordsFrame())
    assert not turn.stopped  # a cough after "my number is" does not end the turn


async def test_a_caller_speaking_again_keeps_the_turn_open(turn):
    await turn.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame())
    await turn.feed(VADUserStartedSpeakingFrame(), NoWordsFrame())
    assert not turn.stopped
