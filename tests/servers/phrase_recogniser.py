"""Ears for a test server in a language the offline recogniser does not speak (Hindi).

PocketSphinx's US English acoustic model, constrained by a JSGF grammar to a list of
phrases, with each word's pronunciation taken from espeak-ng's Hindi phonemes (the
phonemiser Piper ships) mapped to the nearest English phones. It decodes real audio: of
the phrases it is given, it answers with the one that sounds like what was said.
"""

import threading
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import soxr
from piper.phonemize_espeak import ESPEAK_DATA_DIR, EspeakPhonemizer
from pocketsphinx import Decoder

MODEL_RATE = 16000
# espeak-ng's Hindi IPA -> the English model's nearest phone. Aspiration and retroflexion
# have no English phone of their own; the plain stop is nearest.
PHONES = {
    "p": "P", "pʰ": "P", "b": "B", "bʱ": "B", "t": "T", "tʰ": "T", "d": "D", "dʱ": "D",
    "ʈ": "T", "ʈʰ": "T", "ɖ": "D", "ɖʱ": "D", "k": "K", "kʰ": "K", "g": "G", "ɡ": "G",
    "gʱ": "G", "ɡʱ": "G", "c": "CH", "cʰ": "CH", "tʃ": "CH", "ɟ": "JH", "ɟʱ": "JH",
    "dʒ": "JH", "m": "M", "n": "N", "ɳ": "N", "ɲ": "N", "ŋ": "NG", "s": "S", "ʃ": "SH",
    "ʂ": "SH", "h": "HH", "ɦ": "HH", "f": "F", "z": "Z", "l": "L", "r": "R", "ɾ": "R",
    "ɽ": "R", "ʋ": "V", "v": "V", "w": "W", "j": "Y", "x": "HH", "ɣ": "G", "a": "AA",
    "aː": "AA", "ɑ": "AA", "ɑː": "AA", "ə": "AH", "ʌ": "AH", "ɪ": "IH", "i": "IY",
    "iː": "IY", "ʊ": "UH", "u": "UW", "uː": "UW", "e": "EY", "eː": "EY", "ɛ": "EH",
    "ɛː": "EH", "æ": "AE", "o": "OW", "oː": "OW", "ɔ": "AO", "ɔː": "AO",
}  # fmt: skip


def _words(phrase: str) -> list[str]:
    return phrase.replace("?", " ").replace("।", " ").split()


class PhraseRecogniser:
    def __init__(self, phrases: list[str], language: str = "hi"):
        espeak = EspeakPhonemizer(ESPEAK_DATA_DIR)
        words = sorted({w for p in phrases for w in _words(p)})
        self._dir = TemporaryDirectory()
        folder = Path(self._dir.name)
        lines = [f"{w} {' '.join(self._phones(espeak, language, w))}" for w in words]
        (folder / "words.dict").write_text("\n".join(lines) + "\n")
        choices = " | ".join(f"( {' '.join(_words(p))} )" for p in phrases)
        (folder / "phrases.gram").write_text(
            f"#JSGF V1.0;\ngrammar phrases;\npublic <phrase> = {choices};\n"
        )
        self._decoder = Decoder(
            jsgf=str(folder / "phrases.gram"), dict=str(folder / "words.dict"), loglevel="FATAL"
        )
        self._lock = threading.Lock()

    @staticmethod
    def _phones(espeak: EspeakPhonemizer, language: str, word: str) -> list[str]:
        ipa = "".join(
            c for sentence in espeak.phonemize(language, word) for c in sentence if c not in "ˈˌ ̃"
        )
        phones, i = [], 0
        while i < len(ipa):
            for n in (2, 1):  # the longest symbol first: "kʰ" before "k"
                if ipa[i : i + n] in PHONES:
                    phones.append(PHONES[ipa[i : i + n]])
                    i += n
                    break
            else:
                i += 1  # length marks and the like carry no phone
        return phones

    def transcribe(self, pcm: bytes, rate: int) -> str:
        audio = soxr.resample(np.frombuffer(pcm, np.int16), rate, MODEL_RATE).astype(np.int16)
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(audio.tobytes(), full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
        return hyp.hypstr if hyp else ""
