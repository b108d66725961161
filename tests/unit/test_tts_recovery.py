"""What the voice is saying, for a reply lost with its connection: remembered from the
LLM's text, done once its audio has come out, forgotten when the caller cuts in."""

from pipecat.frames.frames import (
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
)
from pipecat.tests.utils import run_test

from media_plane.pipeline import PlaybackMarks
from media_plane.tts_recovery import ReplyInFlight


def a_reply() -> list:
    return [
        LLMFullResponseStartFrame(),
        LLMTextFrame("Free parking "),
        LLMTextFrame("on Mill Lane."),
    ]


def mark(name: str) -> dict:
    return {"event": "mark", "mark": {"name": name}}


async def test_a_reply_is_in_flight_until_its_audio_has_played():
    reply = ReplyInFlight()
    await run_test(reply, frames_to_send=[*a_reply(), LLMFullResponseEndFrame()])
    assert reply.speaking and "".join(reply.text) == "Free parking on Mill Lane."

    # The voice's stop, passing the playback marks after it, ends the reply.
    await run_test(PlaybackMarks(mark, reply), frames_to_send=[TTSStoppedFrame()])
    assert not reply.speaking


async def test_a_spoken_phrase_replaces_the_reply_and_an_interruption_ends_it():
    reply = ReplyInFlight()
    await run_test(reply, frames_to_send=[*a_reply(), TTSSpeakFrame("One moment.")])
    assert reply.speaking and reply.text == ["One moment."]
    await run_test(reply, frames_to_send=[InterruptionFrame()])
    assert not reply.speaking  # the caller cut in: nothing to say again
