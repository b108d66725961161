"""Silero VAD with one ONNX session shared by every call in the process.

Pipecat's SileroVADAnalyzer opens an ONNX session per instance (~10 MB each) and runs each
frame on a thread. Here the session is loaded once; each call keeps only its own recurrent
state, and inference runs inline (a 32 ms window costs well under a millisecond, far less
than the thread hand-off it would otherwise pay).

Windows too quiet to be speech skip the model: on a phone line the caller is silent much
of the time (listening to the agent), and the model was the media plane's largest
per-frame cost. Such a window could never count as speech anyway (the VAD also requires
``min_volume``); the model's recurrent state is reset on entering the quiet stretch, as
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

# RMS of 16-bit samples below which a window is not speech: about -56 dBFS, the level of a
# quiet line. Speech on a phone call sits around -30 to -10 dBFS.
SILENCE_RMS = 50


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
        self._model = _CallSileroModel(_shared_session())
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._meter = meter
        self._quiet = False  # inside a stretch of windows too quiet to run the model on

    def voice_confidence(self, buffer) -> float:
        if audioop.rms(buffer, 2) < SILENCE_RMS:
            if not self._quiet:
                self._quiet = True
                self._model.reset_states()
            return 0.0
        self._quiet = False
        return super().voice_confidence(buffer)

    async def analyze_audio(self, buffer: bytes) -> VADState:
        state = self._run_analyzer(buffer)
        if self._meter is not None:
            self._meter.analysed(buffer)  # the caller has now been heard
        return state


def warm_up() -> None:
    """Load the model before the first call arrives."""
    model = _CallSileroModel(_shared_session())
    model(np.zeros(256, dtype=np.float32), 8000)
