"""What counts as a backchannel (acknowledgements alone, as a recogniser writes them), and
how the caller's speech over the agent pauses it, lets it speak on, or cuts it off."""

import asyncio

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    TranscriptionFrame,
    UserBackchannelFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)

from media_plane.barge_in import (
    AgentPauseFrame,
    AgentResumeFrame,
    BargeInUserTurnStartStrategy,
    NoWordsFrame,
    is_backchannel,
)
from tests.turn_strategy import StrategyUnderTest


@pytest.mark.parametrize(
    "said", ["Mm-hmm.", "Uh-huh.", "Okay.", "OK, okay.", "Yeah, I see.", "All right.", "Got it."]
)
def test_acknowledgements_alone_are_a_backchannel(said):
    assert is_backchannel(said)


@pytest.mark.parametrize(
    "said",
    ["No, wait.", "Stop.", "Yes.", "Okay, but what about Tuesday?", "Hold on a second.", ""],
)
def test_anything_more_takes_the_turn(said):
    # "Yes" over a question is an answer; no words at all is not an acknowledgement.
    assert not is_backchannel(said)


@pytest.fixture
async def over_agent():
    """The start strategy over an agent that is speaking."""
    strategy = BargeInUserTurnStartStrategy(long_speech_secs=30, words_wait_secs=0.05)
    over = StrategyUnderTest(strategy, "on_user_turn_started")
    await over.set_up()
    await over.feed(BotStartedSpeakingFrame())
    yield over
    await strategy.cleanup()


async def test_the_agent_pauses_for_the_callers_words_and_speaks_on_after_a_backchannel(
    over_agent,
):
    await over_agent.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame())
    await over_agent.feed(UserBackchannelFrame("Mm-hmm.", "caller", "now"))
    assert over_agent.pushed == [AgentPauseFrame, AgentResumeFrame]
    assert "on_user_turn_started" not in over_agent.raised


async def test_no_words_from_the_first_part_do_not_resume_the_agent_while_the_caller_goes_on(
    over_agent,
):
    # "No, ... wait": the recogniser found nothing in "no", but the caller is already
    # saying "wait". The agent stays paused, and "wait" cuts it off.
    await over_agent.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame())
    await over_agent.feed(VADUserStartedSpeakingFrame(), NoWordsFrame())
    assert over_agent.pushed == [AgentPauseFrame]
    await over_agent.feed(TranscriptionFrame("Wait.", "caller", "now"))
    assert "on_user_turn_started" in over_agent.raised


async def test_words_that_come_after_the_agent_spoke_on_still_cut_it_off(over_agent):
    # The recogniser was slow (a busy machine): the agent stopped waiting and spoke on.
    await over_agent.feed(VADUserStartedSpeakingFrame(), VADUserStoppedSpeakingFrame())
    await asyncio.sleep(0.2)
    assert over_agent.pushed == [AgentPauseFrame, AgentResumeFrame]
    await over_agent.feed(TranscriptionFrame("No, wait.", "caller", "now"))
    assert "on_user_turn_started" in over_agent.raised
