"""Does the agent hear the caller? Short and quiet answers, over clean and bad lines.

    .venv/bin/python benchmarks/hearing.py --write-doc     # docs/call-quality.md

The corpus (``tests/speech_corpus.py``): single words and short phrases in the offline
voice and six espeak-ng voices, telephone band, 8 kHz, mu-law, at -20 to -45 dBFS. Needs
Debian's espeak-ng and sox.

1. Turn starts, by the VAD alone, for every clip: the platform's VAD (``phone_vad_params``)
   and stock Pipecat's Silero VAD with its defaults, in the same run; on a clean line and
   on two bad ones (noise at 15 dB SNR; noise at 5 dB SNR with 3% of packets lost).
2. False starts on noise alone: steady white, pink and brown noise at -55 to -25 dBFS,
   short bursts (a knock, a door, a cough's burst) and clicks.
3. Through the platform: a subset of clips, each one caller turn of a real call to
   ``switchboard up`` (the simulated caller over a real WebSocket): whether the agent
   answered the turn, whether the platform's transcript holds the word, and how long the
   caller waited from the end of their speech to the agent's first audio.
"""

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState  # noqa: E402

from benchmarks.doc_table import write_between  # noqa: E402
from media_plane.pcm import audioop  # noqa: E402
from media_plane.pipeline import VAD_STOP_SECS  # noqa: E402
from media_plane.providers.offline_stt import decode_pcm  # noqa: E402
from media_plane.providers.vad import (  # noqa: E402
    SharedSileroVADAnalyzer,
    _CallSileroModel,
    _shared_session,
    phone_vad_params,
)
from switchboard.caller import Utterance, place_call  # noqa: E402
from switchboard.fleet import Process  # noqa: E402
from switchboard.line_conditions import BadLine, LineConditions, speech_level_dbfs  # noqa: E402
from tests.speech_corpus import (  # noqa: E402
    DIGITS,
    OFFLINE_VOICE,
    PHRASES,
    WORDS,
    Clip,
    at_level,
    clip,
    corpus,
    over_the_line,
    read_wav,
    tools_missing,
    write_wav,
)

DOC = ROOT / "docs" / "call-quality.md"
BEGIN, END = "<!-- hearing:begin -->", "<!-- hearing:end -->"
RATE = 8000
TOKEN = "hearing-bench-operator-token"
LINES = {
    "clean": LineConditions(),
    "noise 15 dB": LineConditions(noise_snr_db=15, seed=1),
    "noise 5 dB, 3% lost": LineConditions(noise_snr_db=5, loss_pct=3, seed=2),
}


def platform_vad() -> VADAnalyzer:
    return SharedSileroVADAnalyzer(sample_rate=RATE, params=phone_vad_params(VAD_STOP_SECS))


def stock_vad() -> VADAnalyzer:
    """Stock Pipecat's Silero VAD with its defaults, on the process's one copy of the model
    (a stock analyzer loads its own: most of this section's time, once per clip)."""
    vad = SileroVADAnalyzer.__new__(SileroVADAnalyzer)
    VADAnalyzer.__init__(vad, sample_rate=RATE, params=VADParams())
    vad._model = _CallSileroModel(_shared_session())
    vad._windows_since_reset = vad._low_confidence_windows = 0
    return vad


def over(pcm: np.ndarray, line: LineConditions, speech_dbfs: float) -> list[bytes]:
    """The clip inside a second of line before and 1.5 s after, as 20 ms frames of PCM
    that reach the platform over ``line``."""
    audio = np.concatenate([np.zeros(RATE, np.int16), pcm, np.zeros(RATE * 3 // 2, np.int16)])
    bad = BadLine(line, speech_dbfs)
    frames = []
    for k in range(len(audio) // 160):
        ulaw = bad.noisy(audioop.lin2ulaw(audio[k * 160 : (k + 1) * 160].tobytes(), 2))
        frames += [audioop.ulaw2lin(m["audio"], 2) for m in bad.send({"audio": ulaw}, 0.0)]
    return frames


def starts(vad: VADAnalyzer, frames: list[bytes]) -> bool:
    vad.set_sample_rate(RATE)
    return any(vad._run_analyzer(frame) == VADState.SPEAKING for frame in frames)


def turn_starts(clips: list[Clip]) -> str:
    rows = ["| line | level (dBFS) | words | phrases | all | stock Pipecat VAD, all |"]
    rows.append("| --- | --- | --- | --- | --- | --- |")
    for name, line in LINES.items():
        found: dict[tuple[float, bool, str], list[bool]] = defaultdict(list)
        for c in clips:
            pcm = read_wav(c.path)
            frames = over(pcm, line, speech_level_dbfs(pcm))
            single = c.words == 1
            found[(c.level_dbfs, single, "platform")].append(starts(platform_vad(), frames))
            found[(c.level_dbfs, single, "stock")].append(starts(stock_vad(), frames))
        levels = sorted({c.level_dbfs for c in clips}, reverse=True)
        for level in [*levels, None]:
            rates = [
                _rate(found, level, single, vad)
                for single, vad in ((True, "platform"), (False, "platform"), (None, "platform"),
                                    (None, "stock"))
            ]  # fmt: skip
            label = "all" if level is None else f"{level:g}"
            rows.append(f"| {name} | {label} | " + " | ".join(rates) + " |")
    return "\n".join(rows)


def _rate(found: dict, level: float | None, single: bool | None, vad: str) -> str:
    """The share of turns started among clips at ``level`` (None: all), single words or
    phrases (None: both), by ``vad``."""
    hits = [
        hit
        for (lv, one, v), results in found.items()
        for hit in results
        if v == vad and level in (None, lv) and single in (None, one)
    ]
    return f"{np.mean(hits):.1%}"


def recognition(cache: Path) -> str:
    """The offline recogniser alone on every word, phrase and digit, each voice, at -25 and
    -40 dBFS: a second of line before the clip and half a second after, decoded whole. A
    clip counts when its words, and nothing else, come back."""
    found: dict[tuple[str, float], list[bool]] = defaultdict(list)
    clips = corpus(cache, levels=(-25, -40), texts=(*WORDS, *PHRASES, *DIGITS))
    for c in clips:
        pcm = read_wav(c.path)
        line = np.concatenate([np.zeros(RATE, np.int16), pcm, np.zeros(RATE // 2, np.int16)])
        heard = said(decode_pcm(line.tobytes(), RATE))
        found[(c.voice, c.level_dbfs)].append(c.text.split() == heard)
    levels = (-25, -40)
    rows = ["| voice | -25 dBFS | -40 dBFS |", "| --- | --- | --- |"]
    for voice in dict.fromkeys(v for v, _ in found):
        rows.append(
            f"| {voice} | " + " | ".join(_share(found[(voice, lv)]) for lv in levels) + " |"
        )
    by_level = [
        [h for (_, lv), hits in found.items() if lv == level for h in hits] for level in levels
    ]
    rows.append(f"| all ({len(clips)} clips) | " + " | ".join(map(_share, by_level)) + " |")
    return "\n".join(rows)


def _share(hits: list[bool]) -> str:
    return f"{np.mean(hits):.0%}"


def noises() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    found = []
    with tempfile.TemporaryDirectory() as work:
        for kind in ("whitenoise", "pinknoise", "brownnoise"):
            path = Path(work) / f"{kind}.wav"
            subprocess.run(
                ["sox", "-n", "-r", str(RATE), "-b", "16", "-c", "1", str(path),
                 "synth", "3", kind, "sinc", "300-3400"],
                check=True, capture_output=True,
            )  # fmt: skip
            base = read_wav(path)
            for level in (-55, -45, -35, -25):
                found.append((f"{kind} {level} dBFS", over_the_line(at_level(base, level))))
    for n in range(20):  # a knock, a door, a cough's burst: 40-150 ms, decaying
        length = int(RATE * rng.uniform(0.04, 0.15))
        burst = rng.normal(0, 1, length) * np.exp(-np.linspace(0, rng.uniform(3, 8), length))
        pcm = np.zeros(2 * RATE)
        pcm[RATE // 2 : RATE // 2 + length] = burst
        peak = 32767 * 10 ** (rng.uniform(-20, -3) / 20)
        scaled = (pcm / np.abs(pcm).max() * peak).astype(np.int16)
        found.append((f"burst {n}", over_the_line(scaled)))
    for n in range(5):  # clicks on the line
        pcm = np.zeros(2 * RATE, np.int16)
        for k in range(5):
            start = RATE // 4 + k * (RATE // 4) + n * 37
            pcm[start : start + 40] = 20000 * (-1) ** k
        found.append((f"clicks {n}", over_the_line(pcm)))
    return found


def false_starts() -> str:
    rows = ["| noise | clips | false starts: platform | stock Pipecat VAD |"]
    rows.append("| --- | --- | --- | --- |")
    by_kind: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for name, pcm in noises():
        frames = over(pcm, LINES["clean"], -20.0)
        kind = name.split()[0]
        by_kind[kind].append((starts(platform_vad(), frames), starts(stock_vad(), frames)))
    for kind, results in by_kind.items():
        rows.append(
            f"| {kind} | {len(results)} | {sum(p for p, _ in results)} "
            f"| {sum(s for _, s in results)} |"
        )
    return "\n".join(rows)


class Platform(Process):
    """``switchboard up`` on embedded defaults, in a process of its own."""

    def __init__(self, data: Path):
        super().__init__(data, {}, admin_token=TOKEN, environment="test")
        self._numbers = 0

    def tenant(self, **agent) -> tuple[str, str]:
        """A tenant with an agent and a number: (number, tenant id)."""
        self._numbers += 1
        number = f"+1555014{self._numbers:04d}"
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            body = {"name": "hearing", "agent": {"name": "a", "greeting": "Hi."} | agent}
            tenant = api.post("/v1/tenants", json=body).raise_for_status().json()
            api.post(
                f"/v1/tenants/{tenant['id']}/numbers",
                json={"e164": number, "agent_id": tenant["agent"]["id"]},
            ).raise_for_status()
        return number, tenant["id"]


async def answers(platform: Platform, clips: list[Clip]) -> str:
    number, tenant_id = platform.tenant()
    rows = [
        "| line | level (dBFS) | calls | turn answered | word in the transcript "
        "| median end of speech → first audio |"
    ]
    rows.append("| --- | --- | --- | --- | --- | --- |")
    limit = asyncio.Semaphore(3)
    for name in LINES:

        async def one(clip: Clip, name=name) -> tuple[float, bool, bool, float | None]:
            async with limit:
                report = await place_call(
                    platform.url, number, [Utterance(audio=clip.path)], token=TOKEN,
                    tenant_id=tenant_id, conditions=LINES[name],
                )  # fmt: skip
            turn = report.turns[1] if len(report.turns) > 1 else None  # after the greeting
            answered = turn is not None and turn.latency_ms is not None
            heard = said(turn.platform_heard or "") if turn else []
            latency = turn.latency_ms if turn else None
            return clip.level_dbfs, answered, clip.text in heard, latency

        results = await asyncio.gather(*(one(c) for c in clips))
        for level in sorted({r[0] for r in results}, reverse=True):
            mine = [r for r in results if r[0] == level]
            rows.append(
                f"| {name} | {level:g} | {len(mine)} | "
                f"{np.mean([r[1] for r in mine]):.0%} | {np.mean([r[2] for r in mine]):.0%} | "
                f"{_median([r[3] for r in mine if r[3] is not None])} |"
            )
    return "\n".join(rows)


def said(transcript: str) -> list[str]:
    """The transcript's words, as the corpus spells them (Whisper writes "OK" as often as
    "okay", and punctuates)."""
    words = re.findall(r"[a-z']+", transcript.lower())
    return ["okay" if w == "ok" else w for w in words]


LONG_GREETING = (
    "Hello, and thank you for calling Sunrise Dental. We are open from nine to five on "
    "weekdays and from nine to one on Saturdays. How can I help you today?"
)
BACKCHANNELS = ("okay", "yeah", "right", "uh huh", "mm hmm")
INTERRUPTIONS = ("no, wait", "stop, stop", "sorry, I meant Tuesday", "hold on a second")


async def barge_in(platform: Platform, cache: Path) -> str:
    """The caller speaks over the agent's greeting, 1.2 s into it: a backchannel, a knock,
    or a real interruption. Whether the agent was cut off (the provider got ``clear``),
    how soon after the caller began its audio stopped (cut off, or paused while their
    words were awaited; how many of the calls it stopped in), and how soon ``clear``
    came."""
    voices = (OFFLINE_VOICE, "en-us", "en-us+f3", "en-gb")
    sounds = {
        "backchannel": [clip(t, v, -25, cache).path for t in BACKCHANNELS for v in voices],
        "interruption": [clip(t, v, -25, cache).path for t in INTERRUPTIONS for v in voices],
        "knock or cough burst": knocks(cache, 8),
    }
    rows = [
        "| over the agent | clips | the agent cut off | median speech start → agent silent "
        "| median speech start → `clear` |"
    ]
    rows.append("| --- | --- | --- | --- | --- |")
    number, tenant_id = platform.tenant(greeting=LONG_GREETING)
    limit = asyncio.Semaphore(3)

    async def one(path: Path) -> tuple[bool, float | None, float | None]:
        async with limit:
            report = await place_call(
                platform.url, number, [Utterance(audio=path, barge_in=True)], token=TOKEN,
                tenant_id=tenant_id,
            )  # fmt: skip
        over = report.turns[1] if len(report.turns) > 1 else None
        if over is None:
            return report.turns[0].interrupted_by_caller, None, None
        return report.turns[0].interrupted_by_caller, over.silent_after_ms, over.clear_after_ms

    for kind, paths in sounds.items():
        results = await asyncio.gather(*(one(p) for p in paths))
        cut = sum(r[0] for r in results)
        silent = [r[1] for r in results if r[1] is not None]
        cleared = [r[2] for r in results if r[0] and r[2] is not None]
        rows.append(
            f"| {kind} | {len(paths)} | {cut} ({cut / len(paths):.0%}) | "
            f"{_median(silent)} ({len(silent)}) | {_median(cleared)} |"
        )
    return "\n".join(rows)


def _median(values: list[float]) -> str:
    return f"{np.median(values):.0f} ms" if values else "-"


def knocks(cache: Path, n: int) -> list[Path]:
    """Short decaying noise bursts at -20 to -6 dBFS peak, as WAVs the caller plays."""
    rng = np.random.default_rng(23)
    paths = []
    for k in range(n):
        length = int(RATE * rng.uniform(0.04, 0.2))
        burst = rng.normal(0, 1, length) * np.exp(-np.linspace(0, rng.uniform(2, 8), length))
        peak = 32767 * 10 ** (rng.uniform(-20, -6) / 20)
        path = cache / f"knock-{k}.wav"
        write_wav(path, over_the_line((burst / np.abs(burst).max() * peak).astype(np.int16)), RATE)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-doc", action="store_true")
    parser.add_argument("--cache", type=Path, default=ROOT / ".switchboard" / "hearing-corpus")
    parser.add_argument(
        "--only", nargs="+", default=["vad", "recognition", "answers", "barge-in"],
        choices=["vad", "recognition", "answers", "barge-in"], help="sections to run",
    )  # fmt: skip
    args = parser.parse_args()
    if missing := tools_missing():
        sys.exit(f"needs {', '.join(missing)} (Debian packages)")
    clips = corpus(args.cache)
    subset = [
        c for c in clips
        if c.level_dbfs in (-25, -35, -45) and c.words == 1
        and c.voice in (OFFLINE_VOICE, "en-us+f3", "en-gb", "en-029+m3")
        and c.text in ("yes", "no", "two", "okay", "stop", "nine", "eight")
    ]  # fmt: skip
    sections = [
        f"Corpus: {len(clips)} clips ({len({c.voice for c in clips})} voices, "
        f"{len({c.text for c in clips})} words and phrases, "
        f"{len({c.level_dbfs for c in clips})} levels).",
    ]
    if "vad" in args.only:
        sections += ["", "**Turn starts (the VAD alone)**", "", turn_starts(clips)]
        sections += ["", "**False starts on noise alone**", "", false_starts()]
    if "recognition" in args.only:
        sections += ["", "**Recognition (the offline recogniser alone)**", ""]
        sections.append(recognition(args.cache))
    with tempfile.TemporaryDirectory() as data:
        platform = Platform(Path(data))
        try:
            if "answers" in args.only:
                sections += ["", "**Through the platform** (one caller turn per call)", ""]
                sections.append(asyncio.run(answers(platform, subset)))
            if "barge-in" in args.only:
                sections += ["", "**Barge-in** (the caller over the agent's greeting)", ""]
                sections.append(asyncio.run(barge_in(platform, args.cache)))
        finally:
            platform.stop()
    text = "\n".join(sections)
    print(text)
    if args.write_doc:
        write_between(DOC, BEGIN, END, text)


if __name__ == "__main__":
    main()
