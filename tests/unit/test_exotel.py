"""Exotel's wire rules: numbers as Exotel writes them, the chunks it will play, and a
serializer that survives whatever arrives."""

import base64
import json
import uuid
from types import SimpleNamespace

import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
)
from starlette.websockets import WebSocketDisconnect

from media_plane.agent import AgentConfig
from media_plane.calls import Call
from media_plane.ledger import Announced
from media_plane.telephony.exotel import e164, playback_mark
from media_plane.telephony.exotel_serializer import SwitchboardExotelSerializer, exotel_chunk
from media_plane.telephony.session import BadWebhook
from switchboard.phones import ExotelPhone
from tests.conftest import make_tenant
from tests.unit.test_stream_guard import quiet_guard

AGENT = AgentConfig("t1", "a1", "n", "p", "g", "en-IN", "en_US-joe-medium", ())


@pytest.mark.parametrize(
    ("exotel", "expected"),
    [
        ("08047491899", "+918047491899"),  # national form, as Exotel writes it
        ("+918047491899", "+918047491899"),
        ("918047491899", "+918047491899"),
        ("8047491899", "+918047491899"),
        ("00918047491899", "+918047491899"),
        ("080 4749-1899", "+918047491899"),
    ],
)
def test_exotels_numbers_are_read_as_e164(exotel, expected):
    assert e164(exotel, "91") == expected


@pytest.mark.parametrize("bad", ["", "0", "+", "abc", "+0123456789", "1" * 20])
def test_a_number_that_is_not_one_is_refused(bad):
    with pytest.raises(BadWebhook):
        e164(bad, "91")


@pytest.mark.parametrize(
    ("size", "sent"), [(1, 3200), (1600, 3200), (3200, 3200), (3201, 3520), (6400, 6400)]
)
def test_audio_goes_out_in_chunks_exotel_plays_without_gaps(size, sent):
    chunk = exotel_chunk(b"\x01" * size)
    assert len(chunk) == sent and len(chunk) % 320 == 0
    assert chunk[:size] == b"\x01" * size and set(chunk[size:]) <= {0}  # padded with silence


async def make():
    call = Call(Announced("call_x", "CA1", AGENT))
    serializer = SwitchboardExotelSerializer(stream_sid="S1", call=call, guard=quiet_guard(call))
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=8000))  # type: ignore[arg-type]
    return call, serializer


async def test_bad_messages_are_skipped_not_raised():
    call, s = await make()
    for bad in [
        "{not json",
        b"\xff\xfe",
        '"a string"',
        json.dumps({"event": "dance"}),
        json.dumps({"event": "media", "media": 7}),
        json.dumps({"event": "media", "media": {"payload": "not base64!"}}),
        json.dumps({"event": "media", "media": {"payload": base64.b64encode(b"abc").decode()}}),
        json.dumps({"event": "dtmf", "dtmf": "5"}),
    ]:
        assert await s.deserialize(bad) is None
    assert not call.audio_in._pending  # nothing half-decoded reached the meter


async def test_caller_audio_and_keys_become_frames():
    call, s = await make()
    pcm = b"\x10\x00" * 800  # 100 ms
    payload = base64.b64encode(pcm).decode()
    message = {"event": "media", "media": {"chunk": 1, "timestamp": "100", "payload": payload}}
    frame = await s.deserialize(json.dumps(message))
    assert isinstance(frame, InputAudioRawFrame)
    assert (frame.audio, frame.sample_rate) == (pcm, 8000)
    assert len(call.audio_in._pending) == 1  # the meter heard it, at its stream time
    key = await s.deserialize(json.dumps({"event": "dtmf", "dtmf": {"digit": "5"}}))
    assert isinstance(key, InputDTMFFrame) and key.button.value == "5"


async def test_agent_audio_clear_and_marks_speak_exotels_protocol():
    call, s = await make()
    sent = json.loads(await s.serialize(OutputAudioRawFrame(b"\x01\x00" * 800, 8000, 1)))
    assert sent["event"] == "media" and sent["stream_sid"] == "S1"
    assert len(base64.b64decode(sent["media"]["payload"])) == 3200
    assert json.loads(await s.serialize(InterruptionFrame())) == {
        "event": "clear",
        "stream_sid": "S1",
    }
    await s.serialize(OutputTransportMessageFrame(message=playback_mark("S1", "reply-1")))
    assert await s.deserialize(json.dumps({"event": "mark", "mark": {"name": "reply-1"}})) is None
    event = call._events.get_nowait()
    assert (event.kind, event.data) == ("playback.mark", {"name": "reply-1"})


def test_an_exotel_stream_is_admitted_only_with_credentials_and_fresh(client, monkeypatch):
    tenant = make_tenant(client, telephony="exotel")
    exotel = ExotelPhone("http://testserver")

    def bootstrap() -> str:
        query = {"CallSid": uuid.uuid4().hex, "CallTo": ExotelPhone.national(tenant["number"])}
        r = client.get("/exotel/voicebot", params=query, headers=exotel.auth)
        assert r.status_code == 200, r.text
        return r.json()["url"].removeprefix("ws://testserver")

    path = bootstrap()
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path):
        pass  # no credentials
    assert refused.value.code == 1008
    with client.websocket_connect(path, headers=exotel.auth) as ws:
        ws.close()  # admitted
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(path, headers=exotel.auth):
        pass  # replayed
    # A call whose stream does not open within PENDING_TTL_SECS of the bootstrap is gone.
    monkeypatch.setattr(client.app.state.calls.ledger, "_pending_secs", 0)
    path = bootstrap()
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(path, headers=exotel.auth):
        pass
    assert client.app.state.calls.live_count == 0  # no pipeline ever started
