"""Offline streaming speech-to-text: PocketSphinx with the English model in its wheel,
decoding in the recogniser process (``recogniser.py``).

Streaming, not segmented: audio is decoded while the caller speaks, so at the end of speech
only the final search remains (tens of milliseconds, not a whole-utterance decode). The
acoustic model is trained on 16 kHz audio, so 8 kHz telephone audio is upsampled first;
the missing upper band costs some accuracy but keeps one model for every caller.
"""

import asyncio
from collections import deque
from collections.abc import AsyncGenerator

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

from knowledge.text import key_terms
from media_plane.providers.recogniser import RECOGNISER, Session

# VAD confirms speech ~0.2 s after it starts, and its decision reaches this service later
# still (VAD runs downstream, in the user aggregator), more so on a loaded machine: at 0.6 s
# a busy process clipped "goodbye" to "the bag". Pipecat's segmented STT keeps 1 s too.
PRE_ROLL_SECS = 1.0
RANK_PENALTY = 0.05  # a key term is worth moving up twenty places in the n-best list


def rerank(hypotheses: list[str], terms: frozenset[str]) -> str:
    """Contextual biasing, like a cloud STT's keyword boosting: among the recogniser's
    n-best hypotheses prefer the one that uses more of the agent's key terms (its
    documents' distinctive words, the intents it listens for), unless it ranks far down."""
    if not hypotheses:
        return ""
    if not terms:
        return hypotheses[0]
    return max(
        enumerate(hypotheses),
        key=lambda ih: len(key_terms(ih[1]) & terms) - RANK_PENALTY * ih[0],
    )[1]


def decode_pcm(pcm: bytes, sample_rate: int) -> str:
    """Whole-recording recognition (used by the simulated caller to hear the agent)."""
    return RECOGNISER.transcribe(pcm, sample_rate)


class OfflineSTTService(STTService):
    """Emits a final TranscriptionFrame per caller utterance, like a cloud STT would.

    Streaming, through the recogniser process: the caller's audio is sent there as it
    arrives (from a second of pre-roll before the VAD heard speech begin), so at the end of
    speech only the final search remains."""

    def __init__(self, *, key_terms: frozenset[str] = frozenset(), **kwargs):
        super().__init__(settings=STTSettings(model=None, language=None), **kwargs)
        self._key_terms = key_terms
        self._session: Session | None = None
        self._pre_roll: deque[bytes] = deque()
        self._pre_roll_bytes = 0
        self._in_utterance = False
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
        self._session = RECOGNISER.open(self.sample_rate, self._on_result)

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
        if isinstance(frame, VADUserStartedSpeakingFrame) and not self._in_utterance:
            if self._session is None and self._loop is not None:
                self._open()  # the first utterance, or the recogniser process was lost
            self._in_utterance = True
            if self._session is not None:
                self._session.start(b"".join(self._pre_roll))
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
        if kind == "hypotheses":
            text = rerank(list(payload), self._key_terms).strip()  # type: ignore[call-overload]
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
            # Noise or a cough: there is no turn to answer.
            logger.debug("stt.empty_utterance")
            return
        frame = TranscriptionFrame(text, self._user_id, time_now_iso8601(), finalized=True)
        await self.push_frame(frame)
