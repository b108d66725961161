"""Offline speech-to-text: Whisper tiny.en, decoding in the recogniser process
(``recogniser.py``).

The caller's audio goes to the recogniser process as it arrives, from a second before the
VAD heard speech begin; at the end of speech the utterance is decoded there, whole, and
its text comes back as one final transcription, as a cloud STT's would.
"""

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Sequence

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    StartFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import STTService
from pipecat.utils.time import time_now_iso8601

from media_plane.barge_in import AgentSpeech, NoWordsFrame
from media_plane.providers.recogniser import RECOGNISER, Session

# VAD confirms speech ~0.2 s after it starts, and its decision reaches this service later
# still (VAD runs downstream, in the user aggregator), more so on a loaded machine: at 0.6 s
# a busy process clipped "goodbye" to "the bag". Pipecat's segmented STT keeps 1 s too.
PRE_ROLL_SECS = 1.0


def decode_pcm(pcm: bytes, sample_rate: int) -> str:
    """Whole-recording recognition (used by the simulated caller to hear the agent)."""
    return RECOGNISER.transcribe(pcm, sample_rate)


class OfflineSTTService(STTService):
    """Emits a final TranscriptionFrame per caller utterance, like a cloud STT would.
    ``hints``: the agent's key terms (names, products, places) the caller may say."""

    def __init__(self, *, hints: Sequence[str] = (), **kwargs):
        super().__init__(settings=STTSettings(model=None, language=None), **kwargs)
        self._hints = tuple(hints)
        self._session: Session | None = None
        self._pre_roll: deque[bytes] = deque()
        self._pre_roll_bytes = 0
        self._in_utterance = False
        self._agent = AgentSpeech()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, frame: StartFrame):
        await super().start(frame)
        self._loop = asyncio.get_running_loop()
        # The recogniser session opens at the caller's first utterance: as a cloud STT's
        # standby (pipeline.py) this service may never hear one, and holds no decoder.

    async def stop(self, frame: EndFrame):
        await super().stop(frame)
        self._close()

    async def cancel(self, frame: CancelFrame):
        await super().cancel(frame)
        self._close()

    def _open(self) -> None:
        self._session = RECOGNISER.open(self.sample_rate, self._on_result, self._hints)

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        if self._in_utterance and self._session is not None:
            self._session.audio(audio)
        else:
            self._pre_roll.append(audio)
            self._pre_roll_bytes += len(audio)
            limit = int(PRE_ROLL_SECS * self.sample_rate) * 2
            while self._pre_roll_bytes > limit:
                self._pre_roll_bytes -= len(self._pre_roll.popleft())
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        self._agent.update(frame)
        if isinstance(frame, VADUserStartedSpeakingFrame) and not self._in_utterance:
            if self._session is None and self._loop is not None:
                self._open()  # the first utterance, or the recogniser process was lost
            self._in_utterance = True
            if self._session is not None:
                self._session.start(b"".join(self._pre_roll), over_agent=self._agent.speaking)
            self._pre_roll.clear()
            self._pre_roll_bytes = 0
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._in_utterance:
            self._in_utterance = False
            if self._session is not None:
                self._session.end()
        await super().process_frame(frame, direction)

    def _on_result(self, kind: str, payload: object) -> None:
        """On the recogniser's reader thread: hand over to the event loop."""
        if self._loop is None:
            return
        if kind == "text":
            text = str(payload).strip()
            asyncio.run_coroutine_threadsafe(self._push_transcript(text), self._loop)
        elif kind in ("error", "lost"):
            asyncio.run_coroutine_threadsafe(self._fail(kind, str(payload)), self._loop)

    async def _fail(self, kind: str, message: str) -> None:
        logger.warning("stt.decode_failed", error=message)
        if kind == "lost":
            self._session = None  # opened again at the caller's next utterance
        await self.push_frame(ErrorFrame(error=f"offline STT failed: {message}"))

    async def _push_transcript(self, text: str) -> None:
        if not text:
            # Noise or a cough: there is no turn to answer (and an agent paused for the
            # caller's words speaks on).
            logger.debug("stt.empty_utterance")
            await self.push_frame(NoWordsFrame())
            return
        frame = TranscriptionFrame(text, self._user_id, time_now_iso8601(), finalized=True)
        await self.push_frame(frame)
