"""Offline streaming speech-to-text: PocketSphinx with the English model in its wheel.

Streaming, not segmented: audio is decoded while the caller speaks, so at the end of speech
only the final search remains (tens of milliseconds, not a whole-utterance decode). The
acoustic model is trained on 16 kHz audio, so 8 kHz telephone audio is upsampled first;
the missing upper band costs some accuracy but keeps one model for every caller.
"""

import asyncio
import itertools
import queue
import threading
from collections import deque
from collections.abc import AsyncGenerator

import numpy as np
import soxr
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
from pocketsphinx import Decoder

from knowledge.text import key_terms

MODEL_RATE = 16000
# VAD confirms speech ~0.2 s after it starts, and its decision reaches this service later
# still (VAD runs downstream, in the user aggregator), more so on a loaded machine: at 0.6 s
# a busy process clipped "goodbye" to "the bag". Pipecat's segmented STT keeps 1 s too.
PRE_ROLL_SECS = 1.0
NBEST = 40
DECODE_STEP = MODEL_RATE // 50  # samples handed to the decoder per call: 20 ms
RANK_PENALTY = 0.05  # a key term is worth moving up twenty places in the n-best list
_END = object()


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


class DecoderPool:
    """Decoders are costly to load (~0.4 s, ~90 MB), so calls borrow one for the length
    of the call and return it after.

    The one piece of state a decoder carries between utterances is its running cepstral
    mean (channel normalisation). It starts every call from a telephone-channel prior, so a
    call neither inherits the previous caller's channel nor starts from the model's
    wideband default, which mis-hears band-limited phone audio badly until it adapts.
    """

    def __init__(self) -> None:
        self._free: list[Decoder] = []
        self._lock = threading.Lock()
        self._cmn_prior: str | None = None

    def acquire(self) -> Decoder:
        with self._lock:
            decoder = self._free.pop() if self._free else None
        if decoder is None:
            decoder = Decoder(loglevel="FATAL")
        if self._cmn_prior:
            decoder.set_cmn(self._cmn_prior)
        return decoder

    @property
    def calibrated(self) -> bool:
        return self._cmn_prior is not None

    def channel_prior(self, telephone_speech: list[bytes], sample_rate: int) -> str:
        """The channel normalisation that speech through a phone channel settles on."""
        decoder = Decoder(loglevel="FATAL")
        for pcm in telephone_speech * 2:
            audio = soxr.resample(np.frombuffer(pcm, np.int16), sample_rate, MODEL_RATE)
            decoder.start_utt()
            decoder.process_raw(audio.astype(np.int16).tobytes(), full_utt=False)
            decoder.end_utt()
        prior = decoder.get_cmn()
        self.release(decoder)
        return prior

    def use_prior(self, prior: str) -> None:
        self._cmn_prior = prior

    def reserve(self, count: int) -> None:
        """Have ``count`` decoders loaded and free, so the next calls need not load one."""
        with self._lock:
            missing = count - len(self._free)
        for _ in range(missing):
            self.release(Decoder(loglevel="FATAL"))

    def release(self, decoder: Decoder) -> None:
        with self._lock:
            self._free.append(decoder)


POOL = DecoderPool()


def decode_pcm(pcm: bytes, sample_rate: int) -> str:
    """Whole-utterance recognition (used by the simulated caller to hear the agent)."""
    decoder = POOL.acquire()
    try:
        audio = np.frombuffer(pcm, dtype=np.int16)
        if sample_rate != MODEL_RATE:
            audio = soxr.resample(audio, sample_rate, MODEL_RATE).astype(np.int16)
        decoder.start_utt()
        decoder.process_raw(audio.tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp else ""
    finally:
        POOL.release(decoder)


class OfflineSTTService(STTService):
    """Emits a final TranscriptionFrame per caller utterance, like a cloud STT would."""

    def __init__(self, *, key_terms: frozenset[str] = frozenset(), **kwargs):
        super().__init__(settings=STTSettings(model=None, language=None), **kwargs)
        self._key_terms = key_terms
        self._decoder: Decoder | None = None
        self._pre_roll: deque[bytes] = deque()
        self._pre_roll_bytes = 0
        self._in_utterance = False
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, frame: StartFrame):
        await super().start(frame)
        self._loop = asyncio.get_running_loop()
        # Loading a decoder (when none is free) takes ~0.3 s: not on the event loop.
        self._decoder = await asyncio.to_thread(POOL.acquire)
        # One decoding thread per call keeps utterances in order and the event loop free.
        self._worker = threading.Thread(target=self._decode_loop, name="offline-stt", daemon=True)
        self._worker.start()

    async def stop(self, frame: EndFrame):
        await super().stop(frame)
        await self._shutdown()

    async def cancel(self, frame: CancelFrame):
        await super().cancel(frame)
        await self._shutdown()

    async def _shutdown(self) -> None:
        worker, decoder = self._worker, self._decoder
        self._worker = self._decoder = None
        if worker is None or decoder is None:
            return
        self._jobs.put(None)
        await asyncio.to_thread(worker.join, 2.0)
        # A decoder still busy in a stuck thread is dropped, never handed to another call.
        if not worker.is_alive():
            POOL.release(decoder)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        if self._in_utterance:
            self._jobs.put(audio)
        else:
            self._pre_roll.append(audio)
            self._pre_roll_bytes += len(audio)
            limit = int(PRE_ROLL_SECS * self.sample_rate) * 2
            while self._pre_roll_bytes > limit:
                self._pre_roll_bytes -= len(self._pre_roll.popleft())
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, VADUserStartedSpeakingFrame) and not self._in_utterance:
            self._in_utterance = True
            self._jobs.put(("start", b"".join(self._pre_roll)))
            self._pre_roll.clear()
            self._pre_roll_bytes = 0
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._in_utterance:
            self._in_utterance = False
            self._jobs.put(_END)
        await super().process_frame(frame, direction)

    def _decode_loop(self) -> None:
        decoder = self._decoder
        if decoder is None:
            return
        resampler: soxr.ResampleStream | None = None
        active = False
        while True:
            job = self._jobs.get()
            if job is None:
                if active:  # hung up mid-utterance: leave the decoder clean for the next call
                    decoder.end_utt()
                return
            try:
                if isinstance(job, tuple):
                    resampler = soxr.ResampleStream(self.sample_rate, MODEL_RATE, 1, dtype="int16")
                    decoder.start_utt()
                    active = True
                    job = job[1]
                if job is _END:
                    if not active or resampler is None:
                        continue
                    tail = resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
                    if len(tail):
                        decoder.process_raw(tail.tobytes())
                    decoder.end_utt()
                    active = False
                    hypotheses = [n.hypstr for n in itertools.islice(decoder.nbest(), NBEST)]
                    if not hypotheses:
                        hyp = decoder.hyp()
                        hypotheses = [hyp.hypstr] if hyp else []
                    self._deliver(rerank(hypotheses, self._key_terms).strip())
                elif active and resampler is not None and job:
                    pcm = resampler.resample_chunk(np.frombuffer(job, dtype=np.int16))
                    # PocketSphinx holds the GIL while it decodes, freezing the event loop
                    # that carries every call's audio: fed the second of pre-roll at once,
                    # it held it for hundreds of ms (the caller's frames reached the VAD
                    # that late). In 20 ms pieces the loop gets the GIL between them.
                    for i in range(0, len(pcm), DECODE_STEP):
                        decoder.process_raw(pcm[i : i + DECODE_STEP].tobytes())
            except Exception as e:  # a decoder error must not kill the call
                logger.exception("stt.decode_failed")
                active = False
                self._deliver_error(str(e))

    def _deliver(self, text: str) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._push_transcript(text), self._loop)

    def _deliver_error(self, message: str) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(
            self.push_frame(ErrorFrame(error=f"offline STT failed: {message}")), self._loop
        )

    async def _push_transcript(self, text: str) -> None:
        if not text:
            # Noise or a cough: there is no turn to answer.
            logger.debug("stt.empty_utterance")
            return
        frame = TranscriptionFrame(text, self._user_id, time_now_iso8601(), finalized=True)
        await self.push_frame(frame)
