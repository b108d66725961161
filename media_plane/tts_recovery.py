"""What a call does when its cloud voice's connection fails mid-reply (dropped, or sent
something unreadable): Pipecat reconnects the WebSocket with backoff, but the reply being
spoken is lost with the old connection, and the caller would hear it stop and then
nothing. Instead the reply is said again, whole, by the voice once it is back, and the
timeline records ``provider.error``. (If the provider cannot be reached again, Pipecat
gives up on it and the offline standby takes over: pipeline.py.)

``ReplyInFlight`` sits before the voice and remembers the reply it is being given; the
playback marks after the voice (pipeline.py) mark the reply done when its audio has all
come out, so no extra processor stands on the audio's path.
"""

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.tts_service import TTSService

from media_plane.calls import Call


class ReplyInFlight(FrameProcessor):
    def __init__(self) -> None:
        super().__init__(enable_direct_mode=True)  # a cheap pass-through: no queue hop
        self.text: list[str] = []
        self.speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, LLMFullResponseStartFrame):
                self.text, self.speaking = [], True
            elif isinstance(frame, LLMTextFrame):
                self.text.append(frame.text)
            elif isinstance(frame, TTSSpeakFrame):
                self.text, self.speaking = [frame.text], True
        if isinstance(frame, InterruptionFrame):
            self.speaking = False  # the caller cut in: nothing to say again
        await self.push_frame(frame, direction)


def say_again_after_reconnect(
    call: Call, worker: PipelineWorker, voice: TTSService, reply: ReplyInFlight
) -> None:
    """Pipecat reconnects a dropped voice connection on its own (``on_connected`` again,
    after the first): if that happened while a reply was being spoken, say it again."""
    provider = call.agent.providers.get("tts", "")
    connections = 0

    @voice.event_handler("on_connected")
    async def _connected(_voice):
        nonlocal connections
        connections += 1
        if connections == 1:
            return  # the call's own first connection
        text = "".join(reply.text).strip()
        again = reply.speaking and bool(text)
        logger.bind(tenant_id=call.tenant_id, call_id=call.call_id).warning(
            "call.provider_error", role="tts", provider=provider, said_again=again
        )
        call.record("provider.error", role="tts", provider=provider, said_again=again)
        call.providers.failed(provider)  # its breaker counts the call as failed
        if again:
            reply.speaking = False  # once per lost reply
            await worker.queue_frames([TTSSpeakFrame(text, append_to_context=False)])
