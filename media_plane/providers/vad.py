"""Silero VAD with one ONNX session shared by every call in the process.

Pipecat's SileroVADAnalyzer opens an ONNX session per instance (~10 MB each) and runs each
frame on a thread. Here the session is loaded once; each call keeps only its own recurrent
state, and inference runs inline (a 32 ms window costs well under a millisecond, far less
than the thread hand-off it would otherwise pay).

Tuned for callers on a phone line, who answer "yes", "no", "two" in a third of a second,
often quietly (a handset held away, a soft voice, a bad line). With Pipecat's defaults 33%
of such answers were heard at all, none below -40 dBFS; with these, 99.8% from -20 to
-45 dBFS (``benchmarks/hearing.py``, docs/call-quality.md):

- **Level**: the model hears the caller through an automatic gain (fast attack, slow
  release, at most ``MAX_GAIN_DB``), so a quiet caller reaches it at a talker's level.
  Silero's confidence falls with the level: unaided, a word at -45 dBFS scored under the
  threshold more often than not.
- **No loudness gate**: Pipecat's ``min_volume`` is a smoothed loudness over 400 ms,
  meant to ignore a far-off talker in a room; on a phone line it took most of a short
  word to rise past it, and never rose for a quiet caller. What is too quiet to be speech
  is decided per window instead (``SILENCE_RMS``).
- **Start and confidence**: 0.1 s of windows at Silero's own threshold (0.5), not 0.2 s at
  0.7 — a short word has barely 0.2 s of voiced windows. Stationary noise and short bursts
  (clicks, knocks) still never start speech (the benchmark's noise rows).
- **Two phases**: Silero scores each 32 ms window and, in the same batch, the window
  straddling it and the one before; the higher score counts. A short word's score swung
  with where the word fell against the windows (the offline voice's "two" at -25 dBFS
  scored 0.91 at one offset and never above 0.43 at another). Scored once per window,
  2.6% of the corpus's clips, across the eight offsets a caller's 20 ms frames can take,
  started no turn (the answers that went unanswered through the platform); at two
  phases, 0.2%, for half again the model's time (~90 to ~140 us a window, and only on
  windows loud enough to be speech).

Windows too quiet to be speech skip the model: on a phone line the caller is silent much
of the time (listening to the agent), and the model was the media plane's largest
per-frame cost. The model's recurrent state is reset on entering the quiet stretch, as
Pipecat itself resets it during quiet periods, so speech after it starts from a clean state.
"""

from functools import lru_cache
from importlib import resources

import numpy as np
import onnxruntime
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

from media_plane.audio_meter import InboundAudioMeter
from media_plane.pcm import audioop

# RMS of 16-bit samples below which a window is not speech: about -64 dBFS, under a quiet
# caller's softest sounds (-45 dBFS speech dips to -60 between syllables; a gate at -56
# reset the model mid-word). Digital silence on a line is 0.
SILENCE_RMS = 20
START_SECS = 0.1  # of speech windows before the caller is taken to be speaking
CONFIDENCE = 0.5  # Silero's own threshold (Pipecat's default is 0.7)
TARGET_RMS = 6000  # about -15 dBFS: where the gain brings a window's level
MAX_GAIN_DB = 30.0  # lifts -45 dBFS speech to the target, and no further
RELEASE = 0.97  # per 32 ms window: the level followed falls by half in about 0.7 s
# The gain never lifts the line's noise floor above about -45 dBFS: on a noisy line a
# second of amplified noise left Silero deaf to the speech after it.
NOISE_CEILING_RMS = 180
FLOOR_RISE = 1.02  # per window: the floor follows the quietest recent windows up slowly


def phone_vad_params(stop_secs: float) -> VADParams:
    """The VAD for a phone caller: see the module's note for why these values."""
    return VADParams(
        confidence=CONFIDENCE, start_secs=START_SECS, stop_secs=stop_secs, min_volume=0.0
    )


@lru_cache(maxsize=1)
def _shared_session() -> onnxruntime.InferenceSession:
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    path = resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")
    return onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"], sess_options=opts
    )


class _CallSileroModel(SileroOnnxModel):
    """Per-call recurrent state over the shared session (InferenceSession.run is thread-safe)."""

    def __init__(self, session: onnxruntime.InferenceSession):
        self.session = session
        self.sample_rates = [8000, 16000]
        self.reset_states()


class _TwoPhaseSileroModel(SileroOnnxModel):
    """Silero on each window and on the window half a window earlier (the second half of
    the one before and the first half of this one), as a batch of two streams with their
    own recurrent state: the higher confidence of the two."""

    def __init__(self, session: onnxruntime.InferenceSession):
        self.session = session
        self.sample_rates = [8000, 16000]
        self.reset_states()

    def reset_states(self, batch_size: int = 2) -> None:
        super().reset_states(2)
        self._previous: np.ndarray | None = None

    def __call__(self, x, sr: int) -> np.ndarray:
        window = np.asarray(x, dtype=np.float32).reshape(-1)
        half = len(window) // 2
        before = self._previous[half:] if self._previous is not None else np.zeros(half, np.float32)
        straddling = np.concatenate([before, window[:half]])
        out = super().__call__(np.stack([window, straddling]), sr)
        self._previous = window  # after the call: a first call resets the state
        return out.max(axis=0, keepdims=True)


class SharedSileroVADAnalyzer(SileroVADAnalyzer):
    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        params: VADParams | None = None,
        meter: InboundAudioMeter | None = None,
    ):
        # Skip SileroVADAnalyzer.__init__: it would load a private copy of the model.
        VADAnalyzer.__init__(self, sample_rate=sample_rate, params=params)
        self._model = _TwoPhaseSileroModel(_shared_session())
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._meter = meter
        self._quiet = False  # inside a stretch of windows too quiet to run the model on
        self._level = 0.0  # the caller's recent level (RMS), followed for the gain
        self._floor: float | None = None  # the line's noise floor (RMS), followed too

    def voice_confidence(self, buffer) -> float:
        rms = audioop.rms(buffer, 2)
        # Fast attack, slow release: a loud window sets the level at once (never amplified
        # into clipping); a quiet stretch lets it fall slowly, so the gain rises slowly.
        self._level = max(float(rms), self._level * RELEASE)
        floor = self._floor if self._floor is not None else float(rms)
        self._floor = min(float(rms), floor * FLOOR_RISE)
        if rms < SILENCE_RMS:
            if not self._quiet:
                self._quiet = True
                self._model.reset_states()
            return 0.0
        self._quiet = False
        ceiling = NOISE_CEILING_RMS / max(self._floor, 1.0)
        gain = min(TARGET_RMS / max(self._level, 1.0), _MAX_GAIN, max(ceiling, 1.0))
        if gain > 1.0:
            buffer = audioop.mul(buffer, 2, gain)
        return super().voice_confidence(buffer)

    async def analyze_audio(self, buffer: bytes) -> VADState:
        state = self._run_analyzer(buffer)
        if self._meter is not None:
            self._meter.analysed(buffer)  # the caller has now been heard
        return state


_MAX_GAIN = 10 ** (MAX_GAIN_DB / 20)


def warm_up() -> None:
    """Load the model before the first call arrives."""
    model = _TwoPhaseSileroModel(_shared_session())
    model(np.zeros(256, dtype=np.float32), 8000)
