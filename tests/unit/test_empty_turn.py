"""A turn the recogniser found no words in ends at once (and is answered once, with
"sorry, I didn't catch that"), not after Pipecat's 5 s stop timeout; one with words, or
whose caller is speaking again, is left to the other strategies."""

import pytest
from pipecat.frames.frames import (
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)

from media_plane.barge_in import NoWordsFrame
from media_plane.empty_turn import NoWordsUserTurnStopStrategy
from tests.turn_strategy import StrategyUnderTest


@pytest.fixture
async def turn():
    """The stop strategy in a turn the caller has begun."""
    strategy = NoWordsUserTurnStopStrategy()
    turn = StrategyUnderTest(strategy, "on_user_turn_stopped")
    await turn.set_up()
    await strategy.handle_user_turn_started()
    yield turn
    await strategy.cleanup()


async def test_a_turn_with_no_words_ends_when_the_recogniser_says_so(turn):
    await turn.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame(), NoWordsFrame())
    assert "on_user_turn_stopped" in turn.raised


async def test_a_turn_with_words_is_left_to_the_speech_timeout(turn):
    await turn.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame())
    await turn.feed(TranscriptionFrame("My number is", "caller", "now"))
    await turn.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame(), NoWordsFrame())
    assert (
        "on_user_turn_stopped" not in turn.raised
    )  # a cough after "my number is" does not end the turn


async def test_a_caller_speaking_again_keeps_the_turn_open(turn):
    await turn.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame())
    await turn.feed(VADUserStartedSpeakingFrame(), NoWordsFrame())
    assert "on_user_turn_stopped" not in turn.raised
