"""Offline neural text-to-speech: Piper with a voice shipped in a PyPI package.

One voice model per process, shared by every call (Pipecat's PiperTTSService loads one
per service instance, i.e. per call). Audio is synthesised a sentence at a time at the
voice's native rate and resampled in one shot to the call's rate (8 kHz on the phone),
which avoids the burst latency of a streaming resampler. Finished phrases are cached per
tenant + voice + text, so a greeting is synthesised once, not once per call.
"""

import asyncio
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future
from functools import lru_cache
from importlib import resources

import numpy as np
import soxr
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from piper import PiperVoice, SynthesisConfig
from prometheus_client import Counter

from media_plane.voices import OFFLINE_VOICES as VOICES

FRAME_MS = 100
PhraseKey = tuple[str, str, int, str]
PHRASES_SPOKEN = Counter(
    "switchboard_tts_phrases",
    "Offline TTS phrases asked for, by whether they were synthesised or already cached.",
    ["outcome"],
)
_CACHED, _SYNTHESISED = PHRASES_SPOKEN.labels("cached"), PHRASES_SPOKEN.labels("synthesised")


def _package_of(voice_id: str) -> str:
    package = VOICES.get(voice_id)
    if package is None:
        raise ValueError(f"unknown offline voice {voice_id!r}; available: {', '.join(VOICES)}")
    return package


@lru_cache(maxsize=len(VOICES))
def load_voice(voice_id: str) -> PiperVoice:
    package = _package_of(voice_id)
    model = resources.files(package).joinpath(f"data/{voice_id}.onnx")
    return PiperVoice.load(str(model))


class PhraseCache:
    """LRU of synthesised phrases, keyed by (tenant, voice, rate, text).

    A phrase being synthesised is shared: the stream that opens while the webhook's
    warm-up is still synthesising the greeting waits for it instead of starting again.
    """

    def __init__(self, max_entries: int = 512):
        self._entries: OrderedDict[PhraseKey, bytes] = OrderedDict()
        self._making: dict[PhraseKey, Future[bytes]] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get_or_make(self, key: PhraseKey, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            pcm = self._entries.get(key)
            if pcm is not None:
                self._entries.move_to_end(key)
                _CACHED.inc()
                return pcm
            pending = self._making.get(key)
            if pending is None:
                mine: Future[bytes] = Future()
                self._making[key] = mine
        if pending is not None:
            _CACHED.inc()  # made once, by whoever asked first
            return pending.result()
        try:
            _SYNTHESISED.inc()
            pcm = make()
        except BaseException as e:
            mine.set_exception(e)
            raise
        finally:
            with self._lock:
                self._making.pop(key, None)
        with self._lock:
            self._entries[key] = pcm
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        mine.set_result(pcm)
        return pcm


PHRASES = PhraseCache()


# No generator noise: the same text always gives the same audio (the simulated caller).
REPEATABLE = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)


def synthesize(voice_id: str, text: str, sample_rate: int, *, repeatable: bool = False) -> bytes:
    """Blocking: 16-bit mono PCM at ``sample_rate``."""
    voice = load_voice(voice_id)
    config = REPEATABLE if repeatable else None
    pieces = [chunk.audio_int16_array for chunk in voice.synthesize(text, syn_config=config)]
    if not pieces:
        return b""
    audio = np.concatenate(pieces)
    if voice.config.sample_rate != sample_rate:
        audio = soxr.resample(audio, voice.config.sample_rate, sample_rate).astype(np.int16)
    return audio.tobytes()


def synthesize_cached(tenant_id: str, voice_id: str, text: str, sample_rate: int) -> bytes:
    return PHRASES.get_or_make(
        (tenant_id, voice_id, sample_rate, text), lambda: synthesize(voice_id, text, sample_rate)
    )


class OfflineTTSService(TTSService):
    def __init__(self, *, tenant_id: str, voice_id: str, language: str = "en-US", **kwargs):
        _package_of(voice_id)  # fail at call set-up, not mid-sentence
        # The voice itself loads (in a thread) at the first sentence: a standby behind a
        # cloud voice may never speak, and need not hold a model it never uses.
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            # The language picks where a reply is cut into sentences (। ends a Hindi one).
            settings=TTSSettings(model=None, voice=voice_id, language=language),
            **kwargs,
        )
        self._tenant_id = tenant_id
        self._voice_id = voice_id

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        text = text.strip()
        if not text:
            return
        try:
            await self.start_tts_usage_metrics(text)
            pcm = await asyncio.to_thread(
                synthesize_cached, self._tenant_id, self._voice_id, text, self.sample_rate
            )
        except Exception as e:
            yield ErrorFrame(error=f"offline TTS failed: {e}")
            return
        await self.stop_ttfb_metrics()
        step = self.sample_rate * 2 * FRAME_MS // 1000
        for i in range(0, len(pcm), step):
            yield TTSAudioRawFrame(
                audio=pcm[i : i + step],
                sample_rate=self.sample_rate,
                num_channels=1,
                context_id=context_id,
            )
