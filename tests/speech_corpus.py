"""Short caller answers as a phone line carries them, made here and made again the same.

Single words and short phrases ("yes", "no", "two", "okay", "four five six") in the
platform's offline voice and in espeak-ng's voices (Debian's ``espeak-ng``), band-limited
to the telephone band and resampled to 8 kHz with sox (Debian's ``sox``), set to a speech
level between -20 and -45 dBFS and passed through mu-law, as a carrier would deliver them.
Each clip is a 16-bit WAV the simulated caller plays (``Utterance(audio=...)``), cached
under a directory by its parameters. Used by the hearing tests and ``benchmarks/hearing.py``.
"""

import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media_plane.pcm import audioop
from switchboard.line_conditions import speech_level_dbfs, with_gain

RATE = 8000
WORDS = ("yes", "no", "two", "okay", "sure", "nine", "hello", "stop", "yeah", "eight")
PHRASES = ("yes please", "no thanks", "four five six", "that's right")
DIGITS = ("zero", "one", "three", "four", "five", "six", "seven")  # WORDS has two, eight, nine
# espeak-ng voices and variants: accents, and female and male pitch.
ESPEAK_VOICES = ("en-us", "en-us+f3", "en-gb", "en-gb-scotland+f2", "en-029+m3", "en-us+klatt4")
OFFLINE_VOICE = "en_US-joe-medium"
LEVELS_DBFS = (-20, -25, -30, -35, -40, -45)


@dataclass(frozen=True)
class Clip:
    text: str
    voice: str  # an espeak-ng voice, or the offline voice's id
    level_dbfs: float  # the speech's RMS level (its voiced part), dBFS
    path: Path

    @property
    def words(self) -> int:
        return len(self.text.split())


def tools_missing() -> list[str]:
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


def require_tools() -> None:
    """For a test: espeak-ng and sox are required in CI, and skipped loudly elsewhere."""
    if missing := tools_missing():
        import pytest

        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} required in CI (Debian packages)")
        pytest.skip(f"needs {', '.join(missing)} (Debian packages)")


def at_level(pcm: np.ndarray, level_dbfs: float) -> np.ndarray:
    return with_gain(pcm, level_dbfs - speech_level_dbfs(pcm))


def telephone_channel(pcm: bytes) -> bytes:
    """Through mu-law and back, as the carrier delivers it."""
    return audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)


def over_the_line(pcm: np.ndarray) -> np.ndarray:
    return np.frombuffer(telephone_channel(pcm.tobytes()), np.int16)


def _spoken(text: str, voice: str, work: Path) -> np.ndarray:
    """The text in the voice, in the telephone band at 8 kHz."""
    raw = work / "raw.wav"
    if voice == OFFLINE_VOICE:
        from media_plane.providers.offline_tts import synthesize

        speech = synthesize(voice, text, 22050, repeatable=True)
        write_wav(raw, np.frombuffer(speech, np.int16), 22050)
    else:
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    return _band(raw, work)


def _band(raw: Path, work: Path) -> np.ndarray:
    band = work / "band.wav"
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-b", "16", "-c", "1", str(band),
         "gain", "-6", "sinc", "300-3400", "gain", "-n", "-6"],
        check=True,
    )  # fmt: skip
    return read_wav(band)


def paused_clip(parts: tuple[str, ...], voice: str, pause_secs: float, cache: Path) -> Path:
    """One sentence said with pauses between its ``parts`` ("My number is ... four five
    ... six"), at -25 dBFS. espeak-ng's SSML breaks keep the sentence's intonation across
    them (a part said alone would end falling, as a finished sentence does)."""
    name = f"{voice}_{'_'.join(parts)}_{pause_secs:g}".replace(" ", "-").replace("+", "_")
    path = cache / "paused" / f"{name}.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pause = f' <break time="{int(pause_secs * 1000)}ms"/> '
        with tempfile.TemporaryDirectory() as work:
            raw = Path(work) / "raw.wav"
            ssml = f"<speak>{pause.join(parts)}</speak>"
            subprocess.run(["espeak-ng", "-m", "-v", voice, "-w", str(raw), ssml], check=True)
            pcm = _band(raw, Path(work))
        write_wav(path, over_the_line(at_level(pcm, -25)), RATE)
    return path


def clip(text: str, voice: str, level_dbfs: float, cache: Path) -> Clip:
    name = f"{voice}_{text}_{level_dbfs:g}".replace(" ", "-").replace("+", "_")
    path = cache / f"{name}.wav"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as work:
            pcm = _spoken(text, voice, Path(work))
        write_wav(path, over_the_line(at_level(pcm, level_dbfs)), RATE)
    return Clip(text, voice, level_dbfs, path)


def corpus(cache: Path, levels=LEVELS_DBFS, voices=None, texts=None) -> list[Clip]:
    voices = voices or (OFFLINE_VOICE, *ESPEAK_VOICES)
    texts = texts or (*WORDS, *PHRASES)
    return [clip(t, v, lv, cache) for lv in levels for v in voices for t in texts]


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype(np.int16).tobytes())
