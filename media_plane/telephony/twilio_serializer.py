"""Pipecat's Twilio serializer, hardened for the open internet.

Pipecat's serializer raises on a malformed payload, which ends the transport's receive
loop and with it the call. A phone call must survive one bad message: each is logged and
skipped. ``mark`` echoes and ``stop`` are recorded on the call's timeline.
"""

import binascii
import json

from loguru import logger
from pipecat.frames.frames import Frame
from pipecat.serializers.twilio import TwilioFrameSerializer

from media_plane.calls import Call

KNOWN_EVENTS = {"connected", "start", "media", "mark", "dtmf", "stop"}


class SwitchboardTwilioSerializer(TwilioFrameSerializer):
    def __init__(self, *, stream_sid: str, call: Call):
        # Hang-up happens by ending the stream (Twilio then runs the <Connect> action),
        # so Pipecat's REST hang-up, which needs account credentials, stays off.
        super().__init__(
            stream_sid=stream_sid,
            call_sid=call.provider_call_sid,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        self._call = call
        self._log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)

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
            media = message.get("media")
            if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
                self._log.warning("twilio.bad_media")
                return None
        try:
            return await super().deserialize(data)
        except (binascii.Error, ValueError, TypeError):
            self._log.warning("twilio.bad_media")
            return None
