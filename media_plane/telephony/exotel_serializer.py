"""Pipecat's Exotel serializer, held to Exotel's documented rules and hardened for the
open internet.

Exotel's Voicebot stream carries base64 16-bit little-endian PCM at 8 kHz both ways.
Audio sent to Exotel must come in chunks of at least 3.2 KB and at most 100 KB, each a
multiple of 320 bytes: a smaller chunk risks distortion, an odd size leaves gaps in
playback. (Exotel's page calls 3.2 KB "100 ms", true at 16 kHz; at the call's 8 kHz it is
200 ms, and 320 bytes is 20 ms.) The pipeline sends 200 ms chunks (``AUDIO_CHUNK_10MS``)
and Pipecat pads a reply's last one with silence; ``serialize`` pads anything else that
arrives short rather than let a gap reach the caller.

Like the Twilio one, it reads the stream through ``stream_serializer.py``: a malformed
message is skipped rather than ending the call.
"""

import base64
import json

from pipecat.frames.frames import AudioRawFrame, Frame
from pipecat.serializers.exotel import ExotelFrameSerializer

from media_plane.calls import Call
from media_plane.providers.factory import CALL_SAMPLE_RATE
from media_plane.telephony.stream_guard import StreamGuard
from media_plane.telephony.stream_serializer import HardenedStream

MIN_CHUNK_BYTES = 3200
AUDIO_CHUNK_10MS = MIN_CHUNK_BYTES // (CALL_SAMPLE_RATE // 100 * 2)  # 200 ms of 8 kHz PCM
MAX_CHUNK_BYTES = 100_000
CHUNK_MULTIPLE = 320


def exotel_chunk(pcm: bytes) -> bytes:
    """``pcm`` padded with silence to a size Exotel plays without a gap."""
    size = max(MIN_CHUNK_BYTES, -(-len(pcm) // CHUNK_MULTIPLE) * CHUNK_MULTIPLE)
    return pcm + bytes(size - len(pcm))


def media_message(stream_sid: str, pcm: bytes) -> str:
    """Agent audio as Exotel takes it: a ``media`` message of base64 PCM, padded to a chunk
    Exotel plays without a gap."""
    payload = base64.b64encode(exotel_chunk(pcm)).decode("ascii")
    return json.dumps({"event": "media", "stream_sid": stream_sid, "media": {"payload": payload}})


class SwitchboardExotelSerializer(HardenedStream, ExotelFrameSerializer):
    provider = "exotel"

    def __init__(self, *, stream_sid: str, call: Call, guard: StreamGuard):
        super().__init__(stream_sid=stream_sid, call_sid=call.provider_call_sid)
        self._harden(call, guard)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, AudioRawFrame):
            # The call runs at Exotel's 8 kHz end to end: nothing to resample.
            if frame.sample_rate != self._exotel_sample_rate or not frame.audio:
                return await super().serialize(frame)
            return media_message(self._stream_sid, frame.audio)
        return await super().serialize(frame)

    def _pcm(self, audio: bytes) -> bytes | None:
        return None if len(audio) % 2 else audio  # whole 16-bit samples, or not audio
