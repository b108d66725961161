"""The benchmark provider set: STT, LLM and TTS that answer at once with fixed content.

For load tests (``benchmarks/calls.py``, or an operator load-testing a deployment): with
the providers' own latency taken out, what a turn's timing shows is the platform itself
(transport, serializer, VAD, turn logic, context, TTS framing, observers, events). Each is a
Pipecat service like the real ones, so the pipeline around it is the production pipeline.
"""

import math
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
from pipecat.frames.frames import (
    Frame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings, TTSSettings
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.utils.time import time_now_iso8601

from media_plane.providers.offline_engine import OfflineDialogueEngine

TRANSCRIPT = "what are your opening hours"
REPLY = "We are open from nine to five."
REPLY_SECS = 1.0  # the spoken reply: a tone this long, in 20 ms frames
_FRAME_MS = 20


def _tone(sample_rate: int, secs: float) -> bytes:
    t = np.arange(int(sample_rate * secs)) / sample_rate
    return (0.3 * 32767 * np.sin(2 * math.pi * 440 * t)).astype(np.int16).tobytes()


class BenchmarkSTTService(STTService):
    """The caller always said TRANSCRIPT, known the moment VAD hears them stop."""

    def __init__(self, **kwargs: Any):
        super().__init__(settings=STTSettings(model=None, language=None), **kwargs)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            await self.push_frame(
                TranscriptionFrame(TRANSCRIPT, self._user_id, time_now_iso8601(), finalized=True)
            )


class BenchmarkLLMService(OfflineDialogueEngine):
    """Every turn is answered with REPLY, no tools: the offline engine's frame protocol
    (response start/end, metrics) with the decision taken out."""

    async def _respond(self, context: LLMContext) -> None:
        await self.stop_ttfb_metrics()
        await self.push_frame(LLMTextFrame(REPLY))


class BenchmarkTTSService(TTSService):
    """Any text becomes REPLY_SECS of a tone, at once."""

    def __init__(self, **kwargs: Any):
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice="benchmark-tone", language=None),
            **kwargs,
        )
        self._audio: bytes | None = None

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        if self._audio is None:
            self._audio = _tone(self.sample_rate, REPLY_SECS)
        await self.start_tts_usage_metrics(text)
        await self.stop_ttfb_metrics()
        step = self.sample_rate * 2 * _FRAME_MS // 1000
        for i in range(0, len(self._audio), step):
            yield TTSAudioRawFrame(
                audio=self._audio[i : i + step],
                sample_rate=self.sample_rate,
                num_channels=1,
                context_id=context_id,
            )
