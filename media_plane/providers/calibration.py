"""Telephone-channel calibration for the offline recogniser.

The recogniser's model is wideband (16 kHz); phone audio is band-limited to 4 kHz and
mu-law coded. Its channel normalisation therefore starts far from where phone audio puts
it. At start-up we pass a few sentences of speech from the offline voice through the same
channel a call uses (8 kHz mu-law) and take the normalisation they settle on as the prior
every call starts from. This calibrates the channel, not the words: the sentences share no
text with any agent's script.
"""

from media_plane.pcm import audioop
from media_plane.providers.offline_stt import POOL
from media_plane.providers.offline_tts import synthesize

RATE = 8000
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore on a bright summer morning.",
    "Please remember to bring the red umbrella when it rains tonight.",
    "Numbers like seven, forty one and one thousand are read aloud slowly.",
)


def telephone_channel(pcm: bytes) -> bytes:
    return audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)


def calibrate_recogniser(voice: str = "en_US-joe-medium") -> None:
    speech = [telephone_channel(synthesize(voice, s, RATE, repeatable=True)) for s in SENTENCES]
    POOL.calibrate(speech, RATE)
