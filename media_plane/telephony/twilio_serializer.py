"""Pipecat's Twilio serializer, hardened for the open internet.

Pipecat's serializer raises on a malformed payload, which ends the transport's receive
loop and with it the call. A phone call must survive one bad message: each is logged and
skipped. ``mark`` echoes and ``stop`` are recorded on the call's timeline. When the agent
ends the call, Twilio is told what next through its REST API (``twilio_rest.py``).
"""

import asyncio
import base64
import binascii
import json

from loguru import logger
from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame
from pipecat.serializers.twilio import TwilioFrameSerializer

from media_plane.calls import Call
from media_plane.pcm import audioop
from media_plane.telephony.twilio_rest import TwilioAccount, act_on_call

KNOWN_EVENTS = {"connected", "start", "media", "mark", "dtmf", "stop"}


class SwitchboardTwilioSerializer(TwilioFrameSerializer):
    def __init__(
        self,
        *,
        stream_sid: str,
        call: Call,
        account: "asyncio.Task[TwilioAccount | None] | None" = None,
    ):
        # When the agent ends the call, it is transferred or hung up through the REST API
        # with the account's credentials (twilio_rest.py), which also dials a transfer:
        # Pipecat's own REST hang-up, which cannot, stays off.
        super().__init__(
            stream_sid=stream_sid,
            call_sid=call.provider_call_sid,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        self._call = call
        self._account = account
        self._log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        # An EndFrame reaches the output after the agent's last sentence has been sent,
        # just before the stream closes: the moment to act on the call. (A caller who
        # hangs up cancels the pipeline instead, and there is nothing to act on.)
        if isinstance(frame, EndFrame) and self._account is not None:
            lookup, self._account = self._account, None  # once
            try:
                account = await lookup
            except Exception:
                # The control plane could not say; the <Connect action> acts instead.
                self._log.exception("twilio.account_unknown")
                account = None
            if account is not None:
                await act_on_call(self._call, account)
            return None
        return await super().serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            message = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._log.warning("twilio.bad_json")
            return None
        if not isinstance(message, dict):
            self._log.warning("twilio.bad_message")
            return None
        event = message.get("event")
        if event not in KNOWN_EVENTS:
            self._log.warning("twilio.unknown_event", twilio_event=str(event)[:40])
            return None
        if event == "mark":
            name = (message.get("mark") or {}).get("name")
            self._call.record("playback.mark", name=name)
            return None
        if event == "stop":
            self._log.info("twilio.stop")
            return None
        if event == "media":
            return await self._caller_audio(message.get("media"))
        try:
            return await super().deserialize(data)
        except (binascii.Error, ValueError, TypeError):
            self._log.warning("twilio.bad_media")
            return None

    async def _caller_audio(self, media: object) -> InputAudioRawFrame | None:
        # Decoded here rather than by Pipecat's serializer, which would parse the message
        # a second time: this runs 50 times a second per call.
        if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
            self._log.warning("twilio.bad_media")
            return None
        try:
            pcm = audioop.ulaw2lin(base64.b64decode(media["payload"], validate=True), 2)
        except binascii.Error:
            self._log.warning("twilio.bad_media")
            return None
        if not pcm:
            return None
        if self._sample_rate != self._twilio_sample_rate:  # the platform's calls stay at 8 kHz
            pcm = await self._input_resampler.resample(
                pcm, self._twilio_sample_rate, self._sample_rate
            )
        self._call.audio_in.received(pcm, _stream_ms(media.get("timestamp")))
        return InputAudioRawFrame(audio=pcm, num_channels=1, sample_rate=self._sample_rate)


def _stream_ms(timestamp: object) -> int | None:
    """Twilio's ``media.timestamp``: the frame's place in the stream, in ms, as a string."""
    return int(timestamp) if isinstance(timestamp, str) and timestamp.isdigit() else None
