"""Telephone-channel calibration for the offline recogniser.

The recogniser's model is wideband (16 kHz); phone audio is band-limited to 4 kHz and
mu-law coded. Its channel normalisation therefore starts far from where phone audio puts
it. We pass a few sentences of speech from the offline voice through the same channel a
call uses (8 kHz mu-law) and take the normalisation they settle on as the prior every call
starts from. This calibrates the channel, not the words: the sentences share no text with
any agent's script.

It costs ~5 s of CPU (synthesis and eight decodes) and its result depends only on the
installed models, so it is computed once per machine and kept in the model cache, keyed
by what it depends on.
"""

import hashlib
import os
import threading
from importlib import metadata
from pathlib import Path

from media_plane.pcm import audioop
from media_plane.providers.offline_tts import synthesize
from media_plane.providers.recogniser import RECOGNISER, Recogniser

RATE = 8000
VOICE = "en_US-joe-medium"
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore on a bright summer morning.",
    "Please remember to bring the red umbrella when it rains tonight.",
    "Numbers like seven, forty one and one thousand are read aloud slowly.",
)
_lock = threading.Lock()


def telephone_channel(pcm: bytes) -> bytes:
    return audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)


def _prior_file(cache_dir: Path) -> Path:
    depends_on = [metadata.version(p) for p in ("pocketsphinx", "piper-tts")]
    digest = hashlib.sha256("\n".join([*depends_on, VOICE, *SENTENCES]).encode()).hexdigest()
    return cache_dir / f"telephone-cmn-{digest[:16]}.txt"


def calibrate_recogniser(cache_dir: Path, recogniser: Recogniser = RECOGNISER) -> None:
    """Give the recogniser its telephone-channel prior, once per process."""
    with _lock:
        if recogniser.prior is not None:
            return
        cached = _prior_file(cache_dir)
        try:
            prior = cached.read_text().strip()
        except OSError:
            speech = [
                telephone_channel(synthesize(VOICE, s, RATE, repeatable=True)) for s in SENTENCES
            ]
            prior = recogniser.channel_prior(speech, RATE)
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(prior)
            os.replace(partial, cached)  # whole or absent, if processes race
        recogniser.prior = prior
