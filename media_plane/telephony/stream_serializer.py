"""The envelope Twilio's and Exotel's media streams share, read safely.

Both carriers send JSON messages ``{"event": ..., <event>: {...}}``: ``connected``,
``start``, ``media`` (base64 audio), ``mark`` (the echo of one the platform sent), ``dtmf``
and ``stop``. Pipecat's serializers raise on a malformed payload, which ends the
transport's receive loop and with it the call. Here any message that cannot be read, for
whatever reason, is skipped and counted (``StreamGuard.skip``); a phone call survives it.

A provider's serializer mixes this in before Pipecat's own (which still serializes what
goes back) and says only how its audio is coded (``_pcm``).
"""

import base64
import json
from typing import Any

from loguru import logger
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputTransportMessageFrame

from media_plane.calls import Call
from media_plane.providers.factory import CALL_SAMPLE_RATE
from media_plane.telephony.stream_guard import StreamGuard

BYTES_PER_SEC = CALL_SAMPLE_RATE * 2  # 16-bit PCM: the call's audio once decoded


class HardenedStream:
    """Pipecat serializer mixin: ``deserialize`` that never raises, playback marks
    recorded only when they echo one the platform sent."""

    provider = "stream"

    def _harden(self, call: Call, guard: StreamGuard) -> None:
        self._call = call
        self._guard = guard
        self._marks_sent: set[str] = set()
        self._log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)

    def _pcm(self, audio: bytes) -> bytes | None:
        """The carrier's decoded ``media.payload`` as 16-bit PCM at 8 kHz, or None if it
        is not audio in the carrier's coding."""
        raise NotImplementedError

    async def serialize(self, frame: Frame) -> str | bytes | None:
        message = frame.message if isinstance(frame, OutputTransportMessageFrame) else None
        if isinstance(message, dict) and message.get("event") == "mark":
            self._marks_sent.add(message["mark"]["name"])
        return await super().serialize(frame)  # type: ignore[misc]

    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested absurdly deep
            self._guard.skip("not_json")
            return None
        if not isinstance(message, dict):
            self._guard.skip("not_an_object")
            return None
        event = message.get("event")
        try:
            if event == "media":
                return await self._caller_audio(message.get("media"))
            if event == "mark":
                self._echoed(message.get("mark"))
            elif event == "dtmf":
                return await self._dtmf(data, message.get("dtmf"))
            elif event == "stop":
                self._log.info(f"{self.provider}.stop")
            elif event not in ("connected", "start"):
                self._guard.skip("unknown_event")
        except Exception:  # a field of the wrong shape: the message is skipped, not the call
            self._guard.skip(f"bad_{event}")
        return None

    async def _caller_audio(self, media: Any) -> InputAudioRawFrame | None:
        # Decoded here, from the message parsed once: this runs up to 50 times a second.
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            self._guard.skip("bad_media")
            return None
        pcm = self._pcm(base64.b64decode(payload, validate=True))
        if pcm is None:
            self._guard.skip("bad_media")
            return None
        if not pcm or not await self._guard.admit_audio(len(pcm) / BYTES_PER_SEC):
            return None
        self._call.audio_in.received(pcm, _stream_ms(media.get("timestamp")))
        return InputAudioRawFrame(audio=pcm, num_channels=1, sample_rate=CALL_SAMPLE_RATE)

    def _echoed(self, mark: Any) -> None:
        name = mark.get("name") if isinstance(mark, dict) else None
        if name not in self._marks_sent:  # not one of ours (or echoed twice): not stored
            self._guard.skip("unknown_mark")
            return
        self._marks_sent.discard(name)
        self._call.record("playback.mark", name=name)

    async def _dtmf(self, data: str | bytes, dtmf: Any) -> Frame | None:
        if not isinstance(dtmf, dict) or not isinstance(dtmf.get("digit"), str):
            self._guard.skip("bad_dtmf")
            return None
        return await super().deserialize(data)  # type: ignore[misc]  # Pipecat's keypad frame


def _stream_ms(timestamp: object) -> int | None:
    """``media.timestamp``: the frame's place in the stream, in ms (Twilio: a string)."""
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        return timestamp
    return int(timestamp) if isinstance(timestamp, str) and timestamp.isdigit() else None
