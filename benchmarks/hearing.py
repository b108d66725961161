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
import queue
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState  # noqa: E402

from benchmarks.doc_table import write_between  # noqa: E402
from knowledge.text import words  # noqa: E402
from media_plane.barge_in import is_backchannel  # noqa: E402
from media_plane.pcm import audioop  # noqa: E402
from media_plane.pipeline import SPEECH_TIMEOUT_SECS, VAD_STOP_SECS  # noqa: E402
from media_plane.providers.offline_stt import decode_pcm  # noqa: E402
from media_plane.providers.recogniser import RECOGNISER  # noqa: E402
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
    ESPEAK_VOICES,
    OFFLINE_VOICE,
    PHRASES,
    WORDS,
    Clip,
    at_level,
    clip,
    corpus,
    over_the_line,
    paused_clip,
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


# A caller's 20 ms frames fall at eight offsets into the VAD's 32 ms windows, and a short
# word's score depends on which: each clip is placed at one of them in turn.
PHASES = 8


def over(pcm: np.ndarray, line: LineConditions, speech_dbfs: float, phase: int = 0) -> list[bytes]:
    """The clip inside a second of line (and ``phase`` frames more) before and 1.5 s
    after, as 20 ms frames of PCM that reach the platform over ``line``."""
    before = np.zeros(RATE + phase % PHASES * 160, np.int16)
    audio = np.concatenate([before, pcm, np.zeros(RATE * 3 // 2, np.int16)])
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
        for i, c in enumerate(clips):
            pcm = read_wav(c.path)
            frames = over(pcm, line, speech_level_dbfs(pcm), phase=i)
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
        found[(c.voice, c.level_dbfs)].append(words(c.text) == heard)
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


# What callers say over the agent. The barge-in section places calls with the first few
# (a call takes ~10 s); the recogniser alone hears them all.
ACKNOWLEDGEMENTS = ("okay", "yeah", "right", "uh huh", "mm hmm", "mhm", "yep", "I see", "got it")
INTERRUPTIONS = (
    "no, wait", "stop, stop", "sorry, I meant Tuesday", "hold on a second", "no", "wait",
    "yes", "two", "excuse me", "what", "hang on", "actually, no",
)  # fmt: skip


def over_the_agent(cache: Path) -> str:
    """The offline recogniser alone on what callers say over the agent, every voice, at -25
    and -40 dBFS: decoded as an utterance that began while the agent spoke (with the
    prompt, ``recogniser.OVER_AGENT_PROMPT``) and as any other. An acknowledgement counts
    when it comes back as one or as nothing (the agent goes on either way); an
    interruption, when it comes back as words that are not an acknowledgement."""
    rows = [
        "| said over the agent | clips | heard right: as over the agent | as any other |",
        "| --- | --- | --- | --- |",
    ]
    for kind, texts in (("acknowledgement", ACKNOWLEDGEMENTS), ("interruption", INTERRUPTIONS)):
        clips = corpus(cache, levels=(-25, -40), texts=texts)
        right = {True: [], False: []}
        for c in clips:
            for over in right:
                heard = _heard(read_wav(c.path), over)
                ack = is_backchannel(heard) or not heard.strip()
                right[over].append(ack if kind == "acknowledgement" else not ack)
        rows.append(f"| {kind} | {len(clips)} | {_share(right[True])} | {_share(right[False])} |")
    return "\n".join(rows)


def _heard(pcm: np.ndarray, over_agent: bool) -> str:
    """One utterance through a recogniser session, as a call streams it."""
    results: queue.SimpleQueue = queue.SimpleQueue()
    session = RECOGNISER.open(RATE, lambda kind, payload: results.put((kind, payload)))
    line = np.concatenate([np.zeros(RATE // 2, np.int16), pcm, np.zeros(RATE // 4, np.int16)])
    session.start(line.tobytes(), over_agent=over_agent)
    session.end()
    _, text = results.get(timeout=60)
    session.close()
    return str(text)


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
    for i, (name, pcm) in enumerate(noises()):
        frames = over(pcm, LINES["clean"], -20.0, phase=i)
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
    return ["okay" if w == "ok" else w for w in words(transcript)]


LONG_GREETING = (
    "Hello, and thank you for calling Sunrise Dental. We are open from nine to five on "
    "weekdays and from nine to one on Saturdays. How can I help you today?"
)


async def barge_in(platform: Platform, cache: Path) -> str:
    """The caller speaks over the agent's greeting, 1.2 s into it: a backchannel, a knock,
    or a real interruption. Whether the agent was cut off (the provider got ``clear``),
    how soon after the caller began its audio stopped (cut off, or paused while their
    words were awaited; how many of the calls it stopped in), and how soon ``clear``
    came."""
    voices = (OFFLINE_VOICE, "en-us", "en-us+f3", "en-gb")
    sounds = {
        "backchannel": [clip(t, v, -25, cache).path for t in ACKNOWLEDGEMENTS[:5] for v in voices],
        "interruption": [clip(t, v, -25, cache).path for t in INTERRUPTIONS[:4] for v in voices],
        "knock or cough burst": knocks(cache, 8),
    }
    rows = [
        "| over the agent | clips | the agent cut off | median speech start → agent silent "
        "| median speech start → `clear` | judged the other way |"
    ]
    rows.append("| --- | --- | --- | --- | --- | --- |")
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
        wrong = [
            p.stem for p, r in zip(paths, results, strict=True) if r[0] != (kind == "interruption")
        ]
        rows.append(
            f"| {kind} | {len(paths)} | {cut} ({cut / len(paths):.0%}) | "
            f"{_median(silent)} ({len(silent)}) | {_median(cleared)} | "
            f"{', '.join(wrong) or '-'} |"
        )
    return "\n".join(rows)


# Sentences a caller pauses in (reading a number, thinking), and ones said straight through.
PAUSED = (
    ("My number is", "four five", "six two one."),
    ("I'd like to book an appointment for", "Tuesday."),
    ("Can I", "um", "change my booking?"),
    ("The order number is", "seven three", "nine."),
    ("I was wondering if", "you are open on Saturday."),
    ("My date of birth is the fourth of", "June."),
)
WHOLE = (
    "I'd like to book an appointment.", "What time do you close today?", "No.",
    "That works for me.", "My number is four five six two one.", "Thank you very much.",
)  # fmt: skip
PAUSES_SECS = (0.5, 0.9)
SMART_TURN_STOP_SECS = 3.0  # Smart Turn's own silence limit when it judges a turn unfinished


def _speech_events(pcm: np.ndarray) -> list[tuple[str, float]]:
    """The platform VAD's starts and stops over the clip, with a second of line before it
    and 3.5 s after, as (kind, seconds)."""
    vad = platform_vad()
    vad.set_sample_rate(RATE)
    line = np.concatenate([np.zeros(RATE, np.int16), pcm, np.zeros(int(RATE * 3.5), np.int16)])
    events, speaking = [], False
    for i in range(0, len(line) - 159, 160):
        now = vad._run_analyzer(line[i : i + 160].tobytes()) == VADState.SPEAKING
        if now != speaking:
            events.append(("start" if now else "stop", (i + 160) / RATE))
        speaking = now
    return events


def _turn_end(pcm: np.ndarray, smart) -> tuple[bool, float, float]:
    """Whether the caller's turn is taken to end at the last of the VAD's stops (not at a
    pause before it), how long after the end of speech it ends (the VAD's stop, less its
    stop time), and how long the decision took. ``smart``: Smart Turn v3 asked at each
    VAD stop (Pipecat's strategy; unfinished, it waits for its own silence limit), else
    the platform's VAD stop + speech timeout. Either way, not before the words come."""
    line16 = np.concatenate([np.zeros(RATE, np.int16), pcm])
    line = line16.astype(np.float32) / 32768
    events = _speech_events(pcm)
    stops = [k for k, (kind, _) in enumerate(events) if kind == "stop"]
    first_start = events[0][1]
    spent = 0.0
    for k in stops:
        t = events[k][1]
        resumes = events[k + 1][1] if k + 1 < len(events) else float("inf")
        # Either way the turn waits for the recogniser's words (Pipecat's strategies need
        # a transcript): the offline recogniser decodes the utterance at the VAD's stop.
        started = time.perf_counter()
        decode_pcm(line16[int(first_start * RATE) - RATE // 2 : int(t * RATE)].tobytes(), RATE)
        words_at = t + time.perf_counter() - started
        if smart is None:
            end = max(t + SPEECH_TIMEOUT_SECS, words_at)
        else:
            begin = max(0, int((first_start - 0.6) * RATE))  # 0.5 s before speech, as Pipecat
            started = time.perf_counter()
            complete = smart._predict_endpoint(line[begin : int(t * RATE)])["prediction"] == 1
            spent = max(spent, time.perf_counter() - started)
            end = max(t + spent, words_at) if complete else t - VAD_STOP_SECS + SMART_TURN_STOP_SECS
        if end < resumes:
            return k == stops[-1], end - (events[stops[-1]][1] - VAD_STOP_SECS), spent
    raise AssertionError("the VAD never stopped")


def end_of_turn(cache: Path) -> str:
    """Smart Turn v3 (Pipecat's bundled model, fed the call's 8 kHz audio) against the
    platform's VAD silence + speech timeout, on the platform's VAD events: how often a
    caller who pauses mid-sentence is cut off, how often one who said a whole sentence is
    taken to be unfinished (and waited on), and how long after the end of their speech
    the turn ends (the reply comes after either)."""
    from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

    smart = LocalSmartTurnAnalyzerV3()
    smart.set_sample_rate(RATE)
    paused = [
        (read_wav(paused_clip(parts, voice, pause, cache)), pause)
        for parts in PAUSED for voice in ESPEAK_VOICES for pause in PAUSES_SECS
    ]  # fmt: skip
    whole = [
        read_wav(clip(t, v, -25, cache).path)
        for t in WHOLE
        for v in (OFFLINE_VOICE, *ESPEAK_VOICES)
    ]
    rows = [
        "| turn end decided by | paused 0.5 s mid-sentence: cut off | paused 0.9 s: cut off "
        f"| whole sentences ({len(whole)}): cut off | taken as unfinished "
        "| median end of speech → turn end | slowest decision |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, analyzer in (("VAD silence + speech timeout (now)", None), ("Smart Turn v3", smart)):
        cut = defaultdict(list)
        for pcm, pause in paused:
            cut[pause].append(not _turn_end(pcm, analyzer)[0])
        ends = [_turn_end(pcm, analyzer) for pcm in whole]
        waits = [wait for at_end, wait, _ in ends if at_end]
        rows.append(
            f"| {name} | {_share(cut[0.5])} of {len(cut[0.5])} | {_share(cut[0.9])} of "
            f"{len(cut[0.9])} | {_share([not at_end for at_end, *_ in ends])} | "
            f"{_share([w > VAD_STOP_SECS + 1.0 for w in waits])} | "
            f"{np.median(waits) * 1000:.0f} ms | {max(took for *_, took in ends) * 1000:.0f} ms |"
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


SECTIONS = ["vad", "end-of-turn", "recognition", "answers", "barge-in"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-doc", action="store_true")
    parser.add_argument("--cache", type=Path, default=ROOT / ".switchboard" / "hearing-corpus")
    parser.add_argument(
        "--only", nargs="+", default=[*SECTIONS], choices=SECTIONS, help="sections to run",
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
    if "end-of-turn" in args.only:
        sections += ["", "**End of turn** (the VAD's events over each clip, offline)", ""]
        sections.append(end_of_turn(args.cache))
    if "recognition" in args.only:
        sections += ["", "**Recognition (the offline recogniser alone)**", ""]
        sections.append(recognition(args.cache))
        sections += ["", "**Said over the agent** (the offline recogniser alone)", ""]
        sections.append(over_the_agent(args.cache))
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
