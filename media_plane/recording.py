"""A call's recording: stereo WAV, the caller on the left channel and the agent on the right.

Pipecat's AudioBufferProcessor keeps the two tracks aligned in time (silence where a side
is quiet); this writes its output a few seconds at a time into a spooled file, so a long
call costs a bounded amount of memory rather than its whole length in RAM.
"""

import tempfile
import wave

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.processors.frame_processor import FrameDirection

CHANNELS = 2  # caller left, agent right: each side can be listened to (or transcribed) alone
FLUSH_SECS = 5
SPOOL_BYTES = 1 << 20  # past this the recording moves from memory to a temporary file


class _RecordingProcessor(AudioBufferProcessor):
    """The caller's audio is handed to the recorder directly (pipeline.CallerAudioEnds)
    and ends here: nothing after the recorder needs it."""

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        if not isinstance(frame, InputAudioRawFrame):
            await super().push_frame(frame, direction)


class CallRecorder:
    def __init__(self, sample_rate: int):
        self._sample_rate = sample_rate
        # Both stay open for the call's length and are closed by finish().
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self._wav = wave.open(self._file, "wb")  # noqa: SIM115
        self._wav.setnchannels(CHANNELS)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._frames = 0
        self.processor = _RecordingProcessor(
            sample_rate=sample_rate,
            num_channels=CHANNELS,
            buffer_size=FLUSH_SECS * sample_rate * 2,  # bytes of one track
            auto_start_recording=True,
        )
        self.processor.add_event_handler("on_audio_data", self._write)

    async def _write(self, _processor, audio: bytes, _sample_rate: int, _channels: int) -> None:
        self._wav.writeframes(audio)
        self._frames += len(audio) // (2 * CHANNELS)

    @property
    def seconds(self) -> float:
        return self._frames / self._sample_rate

    def finish(self) -> bytes | None:
        """The whole recording as a WAV file, or None if nothing was heard or said."""
        self._wav.close()  # writes the final header sizes; the spooled file stays open
        try:
            if self._frames == 0:
                return None
            self._file.seek(0)
            return self._file.read()
        finally:
            self._file.close()
