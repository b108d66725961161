"""Pipecat's Exotel serializer, held to Exotel's documented rules and hardened for the
open internet.

Exotel's Voicebot stream carries base64 16-bit little-endian PCM at 8 kHz both ways.
Audio sent to Exotel must come in chunks of at least 3.2 KB and at most 100 KB, each a
multiple of 320 bytes: a smaller chunk risks distortion, an odd size leaves gaps in
playback. (Exotel's page calls 3.2 KB "100 ms", true at 16 kHz; at the call's 8 kHz it is
200 ms, and 320 bytes is 20 ms.) The pipeline sends 200 ms chunks (``AUDIO_CHUNK_10MS``)
and Pipecat pads a reply's last one with silence; ``serialize`` pads anything else that
arrives short rather than let a gap reach the caller.

Like the Twilio one, a malformed message is logged and skipped rather than ending the
call; ``mark`` echoes and ``stop`` are recorded.
"""

import base64
import binascii
import json

from loguru import logger
from pipecat.frames.frames import AudioRawFrame, Frame, InputAudioRawFrame
from pipecat.serializers.exotel import ExotelFrameSerializer

from media_plane.calls import Call
from media_plane.providers.factory import CALL_SAMPLE_RATE

MIN_CHUNK_BYTES = 3200
AUDIO_CHUNK_10MS = MIN_CHUNK_BYTES // (CALL_SAMPLE_RATE // 100 * 2)  # 200 ms of 8 kHz PCM
MAX_CHUNK_BYTES = 100_000
CHUNK_MULTIPLE = 320
KNOWN_EVENTS = {"connected", "start", "media", "mark", "dtmf", "stop"}


def exotel_chunk(pcm: bytes) -> bytes:
    """``pcm`` padded with silence to a size Exotel plays without a gap."""
    size = max(MIN_CHUNK_BYTES, -(-len(pcm) // CHUNK_MULTIPLE) * CHUNK_MULTIPLE)
    return pcm + bytes(size - len(pcm))


def media_message(stream_sid: str, pcm: bytes) -> str:
    """Agent audio as Exotel takes it: a ``media`` message of base64 PCM, padded to a chunk
    Exotel plays without a gap."""
    payload = base64.b64encode(exotel_chunk(pcm)).decode("ascii")
    return json.dumps({"event": "media", "stream_sid": stream_sid, "media": {"payload": payload}})


class SwitchboardExotelSerializer(ExotelFrameSerializer):
    def __init__(self, *, stream_sid: str, call: Call):
        super().__init__(stream_sid=stream_sid, call_sid=call.provider_call_sid)
        self._call = call
        self._log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, AudioRawFrame):
            # The call runs at Exotel's 8 kHz end to end: nothing to resample.
            if frame.sample_rate != self._exotel_sample_rate or not frame.audio:
                return await super().serialize(frame)
            return media_message(self._stream_sid, frame.audio)
        return await super().serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            message = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._log.warning("exotel.bad_json")
            return None
        if not isinstance(message, dict):
            self._log.warning("exotel.bad_message")
            return None
        event = message.get("event")
        if event not in KNOWN_EVENTS:
            self._log.warning("exotel.unknown_event", exotel_event=str(event)[:40])
            return None
        if event == "media":
            return self._caller_audio(message.get("media"))
        if event == "mark":
            name = (message.get("mark") or {}).get("name")
            self._call.record("playback.mark", name=name)
            return None
        if event == "stop":
            reason = (message.get("stop") or {}).get("reason")
            self._log.info("exotel.stop", reason=str(reason)[:40] if reason else None)
            return None
        if event == "dtmf" and isinstance(message.get("dtmf"), dict):
            return await super().deserialize(data)
        return None

    def _caller_audio(self, media: object) -> InputAudioRawFrame | None:
        if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
            self._log.warning("exotel.bad_media")
            return None
        try:
            pcm = base64.b64decode(media["payload"], validate=True)
        except binascii.Error:
            self._log.warning("exotel.bad_media")
            return None
        if len(pcm) % 2:
            self._log.warning("exotel.bad_media")  # not whole 16-bit samples
            return None
        if not pcm:
            return None
        self._call.audio_in.received(pcm, _stream_ms(media.get("timestamp")))
        return InputAudioRawFrame(audio=pcm, num_channels=1, sample_rate=self._exotel_sample_rate)


def _stream_ms(timestamp: object) -> int | None:
    """Exotel's ``media.timestamp``: the chunk's place in the stream, in ms."""
    if isinstance(timestamp, int):
        return timestamp
    return int(timestamp) if isinstance(timestamp, str) and timestamp.isdigit() else None
