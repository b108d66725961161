import base64
import json
from types import SimpleNamespace

from pipecat.frames.frames import InputAudioRawFrame, OutputTransportMessageFrame

from media_plane.agent import AgentConfig
from media_plane.calls import Call
from media_plane.ledger import Announced
from media_plane.telephony.twilio import playback_mark
from media_plane.telephony.twilio_serializer import SwitchboardTwilioSerializer
from tests.unit.test_stream_guard import quiet_guard

AGENT = AgentConfig("t1", "a1", "n", "p", "g", "en-US", "en_US-joe-medium", ())


async def make():
    call = Call(Announced("call_x", "CA1", AGENT))
    serializer = SwitchboardTwilioSerializer(stream_sid="MZ1", call=call, guard=quiet_guard(call))
    # The serializer reads only the pipeline's input rate from its setup.
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=8000))  # type: ignore[arg-type]
    return call, serializer


async def test_bad_messages_are_skipped_not_raised():
    _, s = await make()
    for bad in [
        "{not json",
        b"\xff\xfe",
        '"a string"',
        "[1, 2]",
        json.dumps({"event": "dance"}),
        json.dumps({"event": "media", "media": 7}),
        json.dumps({"event": "media", "media": {"payload": 5}}),
        json.dumps({"event": "media", "media": {"payload": "abc"}}),  # bad padding
    ]:
        assert await s.deserialize(bad) is None


async def test_media_becomes_8khz_audio():
    _, s = await make()
    payload = base64.b64encode(b"\xff" * 160).decode()
    frame = await s.deserialize(json.dumps({"event": "media", "media": {"payload": payload}}))
    assert isinstance(frame, InputAudioRawFrame)
    assert frame.sample_rate == 8000 and len(frame.audio) == 320


async def test_the_echo_of_a_mark_the_platform_sent_is_recorded_once():
    call, s = await make()
    await s.serialize(OutputTransportMessageFrame(message=playback_mark("MZ1", "reply-1")))
    for name in ("reply-1", "reply-1", "reply-2", {"nested": 1}):  # echoed twice, never sent
        assert await s.deserialize(json.dumps({"event": "mark", "mark": {"name": name}})) is None
    event = call._events.get_nowait()
    assert (event.kind, event.data) == ("playback.mark", {"name": "reply-1"})
    assert call._events.empty()  # the rest were not the platform's marks: not stored


async def test_fields_of_the_wrong_shape_are_skipped_and_the_stream_goes_on():
    _, s = await make()
    for bad in [
        {"event": "mark", "mark": "reply-1"},
        {"event": "dtmf", "dtmf": "5"},
        {"event": "dtmf", "dtmf": {"digit": ["5"]}},
        {"event": "media", "media": {"payload": ["ff"]}},
        {"event": ["media"]},
    ]:
        assert await s.deserialize(json.dumps(bad)) is None
    assert await s.deserialize("[" * 10_000 + "]" * 10_000) is None  # nested past the parser
    assert sum(s._guard.skipped.values()) == 6
    payload = base64.b64encode(b"\xff" * 160).decode()
    frame = await s.deserialize(json.dumps({"event": "media", "media": {"payload": payload}}))
    assert isinstance(frame, InputAudioRawFrame)  # still reading


async def test_a_payload_that_is_not_base64_is_skipped():
    _, s = await make()
    message = {"event": "media", "media": {"payload": "not base64!", "timestamp": "20"}}
    assert await s.deserialize(json.dumps(message)) is None
    assert not call_pending(s)


def call_pending(serializer: SwitchboardTwilioSerializer) -> int:
    return len(serializer._call.audio_in._pending)
