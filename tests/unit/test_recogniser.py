"""The recogniser process: calls stream audio to it and get their own utterances back,
and a recogniser that dies is replaced without taking the media process down."""

import os
import queue
import signal

import pytest

from media_plane.providers.offline_tts import synthesize
from media_plane.providers.recogniser import Recogniser
from tests.speech_corpus import telephone_channel

RATE = 8000
FRAME = RATE * 2 * 20 // 1000  # 20 ms of 16-bit audio


@pytest.fixture(scope="module")
def phrases() -> dict[str, bytes]:
    said = {"park": "Where can I park my car?", "open": "When do you open tomorrow?"}
    return {
        k: telephone_channel(synthesize("en_US-joe-medium", text, RATE, repeatable=True))
        for k, text in said.items()
    }


def listener() -> tuple[queue.SimpleQueue, object]:
    results: queue.SimpleQueue = queue.SimpleQueue()
    return results, lambda kind, payload: results.put((kind, payload))


def stream(session, pcm: bytes) -> None:
    session.start(pcm[: FRAME * 10])  # the pre-roll, then the rest as it arrives
    for i in range(FRAME * 10, len(pcm), FRAME):
        session.audio(pcm[i : i + FRAME])


def words(text: str) -> list[str]:
    return text.lower().replace("?", "").replace(".", "").replace(",", "").split()


def test_concurrent_calls_each_hear_their_own_caller(phrases):
    recogniser = Recogniser()
    (park_results, on_park), (open_results, on_open) = listener(), listener()
    park, opening = recogniser.open(RATE, on_park), recogniser.open(RATE, on_open)
    # Interleaved, as two live calls' frames arrive.
    park.start(phrases["park"][: FRAME * 10])
    opening.start(phrases["open"][: FRAME * 10])
    longest = max(len(p) for p in phrases.values())
    for i in range(FRAME * 10, longest, FRAME):
        park.audio(phrases["park"][i : i + FRAME])
        opening.audio(phrases["open"][i : i + FRAME])
    park.end()
    opening.end()
    kind, text = park_results.get(timeout=60)
    assert kind == "text" and words(text)[:3] == ["where", "can", "i"]
    kind, text = open_results.get(timeout=60)
    assert kind == "text" and "open" in words(text)
    # A second utterance on the same call.
    stream(park, phrases["open"])
    park.end()
    assert "open" in words(park_results.get(timeout=60)[1])
    park.close()
    opening.close()


def test_a_dead_recogniser_is_reported_to_its_calls_and_replaced(phrases):
    recogniser = Recogniser()
    results, on_result = listener()
    session = recogniser.open(RATE, on_result)
    assert words(recogniser.transcribe(phrases["park"], RATE))[:3] == ["where", "can", "i"]
    child = recogniser.pid
    os.kill(child, signal.SIGKILL)
    assert results.get(timeout=30) == ("lost", "the recogniser process ended")
    # The next use starts a new one.
    assert words(recogniser.transcribe(phrases["park"], RATE))[:3] == ["where", "can", "i"]
    assert recogniser.pid not in (None, child)
    session.close()
