"""Each turn's latency, broken down, for the call's timeline.

One processor at the end of the pipeline watches the frames that pass it anyway — the VAD's
and the turn logic's broadcasts, the services' TTFB metrics and the output transport's
``BotStartedSpeakingFrame`` — rather than an observer on every frame of every processor,
which would cost the media plane on each 20 ms of audio.
"""

import time
from collections.abc import Callable

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    MetricsFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class TurnLatency(FrameProcessor):
    """Calls ``report`` once per answered turn with (all in milliseconds):

    - ``speech_end_to_audio_ms``: the caller's last word to the agent's first audio on the
      wire — what the caller waits;
    - ``end_of_turn_ms``: of that, the silence waited to decide the caller had finished;
    - ``response_ms``: the rest — recognition, thinking, tools and speech synthesis;
    - ``ttfb_ms``: by service, its time to first byte before the agent spoke (summed when
      it was asked more than once, as around a tool call).
    """

    def __init__(self, report: Callable[..., None]):
        super().__init__(enable_direct_mode=True)  # it only watches: no queue hop of its own
        self._report = report
        self._speech_end: float | None = None
        self._turn_end: float | None = None
        self._ttfb: dict[str, float] = {}

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self._observe(frame)
        await self.push_frame(frame, direction)

    def _observe(self, frame: Frame) -> None:
        # Most frames are audio: they pass through every branch untouched and unclocked.
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._speech_end = self._turn_end = None  # the caller goes on: start over
            self._ttfb = {}
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            # The VAD decides speech ended after stop_secs of silence.
            self._speech_end = time.monotonic() - frame.stop_secs
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._turn_end = time.monotonic()
        elif isinstance(frame, MetricsFrame) and self._turn_end is not None:
            for data in frame.data:
                if isinstance(data, TTFBMetricsData) and data.value > 0:
                    # Summed: a tool call means the LLM is asked twice before it speaks.
                    service = data.processor.split("#")[0]
                    self._ttfb[service] = round(self._ttfb.get(service, 0) + data.value * 1000, 1)
        elif isinstance(frame, BotStartedSpeakingFrame) and self._speech_end is not None:
            now = time.monotonic()
            turn_end = self._turn_end if self._turn_end is not None else now
            self._report(
                speech_end_to_audio_ms=round((now - self._speech_end) * 1000, 1),
                end_of_turn_ms=round((turn_end - self._speech_end) * 1000, 1),
                response_ms=round((now - turn_end) * 1000, 1),
                ttfb_ms=self._ttfb,
            )
            self._speech_end = self._turn_end = None
            self._ttfb = {}
