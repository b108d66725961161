"""Pipecat's Twilio serializer, hardened for the open internet (``stream_serializer.py``):
mu-law at 8 kHz in, and when the agent ends the call, Twilio is told what next through its
REST API (``twilio_rest.py``).
"""

import asyncio

from pipecat.frames.frames import EndFrame, Frame
from pipecat.serializers.twilio import TwilioFrameSerializer

from media_plane.calls import Call
from media_plane.pcm import audioop
from media_plane.telephony.stream_guard import StreamGuard
from media_plane.telephony.stream_serializer import HardenedStream
from media_plane.telephony.twilio_rest import TwilioAccount, act_on_call


class SwitchboardTwilioSerializer(HardenedStream, TwilioFrameSerializer):
    provider = "twilio"

    def __init__(
        self,
        *,
        stream_sid: str,
        call: Call,
        guard: StreamGuard,
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
        self._harden(call, guard)
        self._account = account

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

    def _pcm(self, audio: bytes) -> bytes | None:
        return audioop.ulaw2lin(audio, 2)  # every byte is a mu-law sample
