"""The offline recogniser, PocketSphinx with the English model in its wheel, in a process
of its own.

PocketSphinx holds the GIL while it decodes. In the media process that froze the event
loop carrying every call's audio: py-spy found the decoding thread holding the GIL in a
quarter of its samples, and a barge-in's ``clear`` came 0.3-1.1 s after the caller began.
So one child process per media process decodes, and the media process only sends it
audio and reads back hypotheses.

One socket pair carries both ways, in order, framed by ``multiprocessing``'s connection:
``(op, session, payload)`` from the media process (``open``, ``start``, ``audio``,
``end``, ``close``; ``prior`` and ``transcribe`` for whole recordings) and
``(session, kind, payload)`` back (``hypotheses``, ``prior``, ``text``, ``error``;
``lost`` if the child dies). Audio travels at the call's rate; the child upsamples it
for the 16 kHz model.
"""

import atexit
import itertools
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from loguru import logger

MODEL_RATE = 16000
NBEST = 40

OnResult = Callable[[str, object], None]  # (kind, payload), called on the reader thread


# --- the child process -------------------------------------------------------------------


@dataclass
class _Utterances:
    """One caller's stream in the child: a decoder borrowed for the length of the call."""

    decoder: Any  # PocketSphinx's Decoder and soxr's stream: imported in the child only
    rate: int
    resampler: Any = None
    active: bool = field(default=False)


def _serve(conn) -> None:  # runs in the child: numpy, soxr and PocketSphinx load here only
    import numpy as np
    import soxr
    from pocketsphinx import Decoder

    free: list = []

    def borrow(prior: str | None):
        decoder = free.pop() if free else Decoder(loglevel="FATAL")
        if prior:
            decoder.set_cmn(prior)
        return decoder

    def upsample(pcm: bytes, rate: int) -> bytes:
        audio = np.frombuffer(pcm, np.int16)
        if rate != MODEL_RATE:
            audio = soxr.resample(audio, rate, MODEL_RATE).astype(np.int16)
        return audio.tobytes()

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
                rate, prior = payload
                streams[session] = _Utterances(borrow(prior), rate)
            elif op == "reserve":
                while len(free) < payload:
                    free.append(Decoder(loglevel="FATAL"))
            elif op == "start" and session in streams:
                s = streams[session]
                s.resampler = soxr.ResampleStream(s.rate, MODEL_RATE, 1, dtype="int16")
                s.decoder.start_utt()
                s.active = True
                _feed(s, payload, np)
            elif op == "audio" and session in streams and streams[session].active:
                _feed(streams[session], payload, np)
            elif op == "end" and session in streams and streams[session].active:
                s = streams[session]
                tail = s.resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
                if len(tail):
                    s.decoder.process_raw(tail.tobytes())
                s.decoder.end_utt()
                s.active = False
                hypotheses = [n.hypstr for n in itertools.islice(s.decoder.nbest(), NBEST)]
                if not hypotheses:
                    hyp = s.decoder.hyp()
                    hypotheses = [hyp.hypstr] if hyp else []
                conn.send((session, "hypotheses", hypotheses))
            elif op == "close" and session in streams:
                s = streams.pop(session)
                if s.active:  # hung up mid-utterance: leave the decoder clean for the next
                    s.decoder.end_utt()
                free.append(s.decoder)
            elif op == "prior":
                # The channel normalisation that speech through a phone channel settles on.
                speech, rate = payload
                decoder = borrow(None)
                for pcm in speech * 2:
                    decoder.start_utt()
                    decoder.process_raw(upsample(pcm, rate), full_utt=False)
                    decoder.end_utt()
                conn.send((session, "prior", decoder.get_cmn()))
                free.append(decoder)  # each borrower sets its own starting normalisation
            elif op == "transcribe":
                pcm, rate, prior = payload
                decoder = borrow(prior)
                decoder.start_utt()
                decoder.process_raw(upsample(pcm, rate), full_utt=True)
                decoder.end_utt()
                hyp = decoder.hyp()
                free.append(decoder)
                conn.send((session, "text", hyp.hypstr if hyp else ""))
        except Exception as e:  # one stream's failure must not end everyone's recognition
            if op in ("start", "audio", "end") and session in streams:
                streams[session].active = False
            conn.send((session, "error", f"{type(e).__name__}: {e}"))


def _feed(stream: _Utterances, pcm: bytes, np) -> None:
    audio = stream.resampler.resample_chunk(np.frombuffer(pcm, dtype=np.int16))
    if len(audio):  # the resampler holds back its first few samples; PocketSphinx refuses none
        stream.decoder.process_raw(audio.tobytes())


# --- the media process's side ------------------------------------------------------------


class Session:
    """One call's stream of utterances. Every method returns at once: audio is queued for
    the child, and each finished utterance's hypotheses come back through ``on_result``."""

    def __init__(self, recogniser: "Recogniser", session: int) -> None:
        self._recogniser = recogniser
        self._id = session

    def start(self, pcm: bytes) -> None:
        self._recogniser._send("start", self._id, pcm)

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
        self.prior: str | None = None  # the telephone-channel prior (calibration.py)
        self.pid: int | None = None  # the child's, once started
        self._exiting = False

    def open(self, sample_rate: int, on_result: OnResult) -> Session:
        session = next(self._ids)
        self._listeners[session] = on_result
        self._send("open", session, (sample_rate, self.prior))
        return Session(self, session)

    def reserve(self, decoders: int) -> None:
        """Have decoders loaded and free in the child, so the next calls need not wait."""
        self._send("reserve", 0, decoders)

    def channel_prior(self, telephone_speech: list[bytes], sample_rate: int) -> str:
        """Blocking: for a worker thread (calibration), not the event loop."""
        return str(self._ask("prior", (telephone_speech, sample_rate)))

    def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        """Blocking whole-recording recognition (the simulated caller hearing the agent)."""
        return str(self._ask("transcribe", (pcm, sample_rate, self.prior)))

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
