"""The simulated caller: the platform's own test telephone.

It does what Twilio or Exotel does on a real call (``phones.py``: the first request, the
media WebSocket it is answered with, and that provider's stream messages: ``connected``,
``start``, ``media`` paced by the wall clock, ``mark`` echoes, ``stop``). Agent audio is
"played" in real time from a playback buffer, so a ``clear`` drops exactly what a phone
would not have played yet. After the call it transcribes what it heard, per turn, and
reports the latency from the end of its own speech to the first agent audio that came
back.
"""

import asyncio
import json
import time
import wave
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import soxr
import websockets

from media_plane.pcm import audioop
from switchboard.line_conditions import (
    CLEAN_LINE,
    BadLine,
    LineConditions,
    speech_level_dbfs,
    with_gain,
)
from switchboard.phones import ExotelPhone, Phone, TwilioPhone
from switchboard.settings import DEV_EXOTEL_API_KEY, DEV_EXOTEL_API_TOKEN, DEV_TWILIO_AUTH_TOKEN

RATE = 8000
FRAME = 160  # 20 ms of 8 kHz mu-law
FRAME_SECS = 0.02
SILENCE = b"\xff" * FRAME
SETTLE_SECS = 1.0  # the agent is done when nothing new has played for this long
BARGE_IN_AFTER_SECS = 1.2  # how much of a reply plays before the caller cuts in
PLAYING_GAP_SECS = 0.2
REPLY_TIMEOUT_SECS = 15.0
KEY_GAP_SECS = 0.25  # between key presses, as a person presses them


@dataclass
class Utterance:
    text: str | None = None
    audio: Path | None = None
    keys: str | None = None  # pressed on the keypad instead of spoken, e.g. "1234#"
    barge_in: bool = False  # speak over the agent's previous reply instead of waiting

    @property
    def label(self) -> str:
        if self.keys is not None:
            return f"keys {self.keys}"
        return self.text if self.text is not None else str(self.audio)


@dataclass
class Turn:
    index: int
    caller: str | None
    platform_heard: str | None = None  # the platform's transcript of the caller (timeline)
    agent_heard: str = ""
    agent_heard_secs: float = 0.0
    tools: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    interrupted_by_caller: bool = False
    clear_after_ms: float | None = None  # caller speech start -> clear received
    # Caller speech start -> the agent's audio stopped playing (cut off, or paused for the
    # caller's words), for a caller who spoke over it.
    silent_after_ms: float | None = None


@dataclass
class CallReport:
    call_id: str | None
    outcome: str
    turns: list[Turn]
    greeting_first_audio_ms: float | None = None
    hung_up_by: str | None = None
    spoken: str | None = None  # a <Say> answer instead of a stream (e.g. unknown number)
    transferred_to: str | None = None  # whom the provider was told to dial after the stream
    protocol_errors: list[str] = field(default_factory=list)  # the platform broke the protocol
    provider_call_sid: str | None = None  # the call's id at the provider (its CallSid)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _trim(pcm: np.ndarray) -> np.ndarray:
    """The sound from its first to its last sample within 40 dB of its peak: relative, so
    a quiet caller's soft onset and tail are kept (an absolute threshold cut them off)."""
    magnitude = np.abs(pcm.astype(np.int32))
    threshold = max(16, int(magnitude.max(initial=0)) // 100)
    loud = np.nonzero(magnitude > threshold)[0]
    return pcm[loud[0] : loud[-1] + 1] if len(loud) else pcm[:0]


def speech_frames(utterance: Utterance, voice: str, gain_db: float = 0.0) -> list[bytes]:
    """The utterance as 20 ms mu-law frames, trimmed so its last frame is its last sound,
    ``gain_db`` louder than recorded."""
    if utterance.audio is not None:
        with wave.open(str(utterance.audio), "rb") as w:
            raw = w.readframes(w.getnframes())
            pcm = np.frombuffer(raw, dtype=np.int16)
            if w.getsampwidth() != 2:
                raise ValueError(f"{utterance.audio}: only 16-bit PCM WAV is supported")
            if w.getnchannels() > 1:
                pcm = pcm.reshape(-1, w.getnchannels()).mean(axis=1).astype(np.int16)
            rate = w.getframerate()
        if rate != RATE:
            pcm = soxr.resample(pcm, rate, RATE).astype(np.int16)
    else:
        from media_plane.providers.offline_tts import synthesize

        speech = synthesize(voice, utterance.text or "", RATE, repeatable=True)
        pcm = np.frombuffer(speech, dtype=np.int16)
    ulaw = audioop.lin2ulaw(with_gain(_trim(pcm), gain_db).tobytes(), 2)
    ulaw += b"\xff" * (-len(ulaw) % FRAME)
    return [ulaw[i : i + FRAME] for i in range(0, len(ulaw), FRAME)]


class _Line:
    """Both directions of the phone line, ticking every 20 ms."""

    def __init__(self, ws, phone: Phone, bad_line: BadLine):
        self.ws = ws
        self.phone = phone
        self.bad_line = bad_line
        self.unsent = bytearray()  # frames waiting to make up one media message
        self.unsent_at = 0.0
        self.speech_ends_in_unsent = False
        self.outgoing: deque[bytes] = deque()
        self.playback: deque[bytes | str] = deque()  # audio frames and mark names
        self.heard: list[bytearray] = [bytearray()]  # played agent audio, per turn
        self.chunk = 0
        self.started = time.monotonic()
        self.last_speech_sent: float | None = None
        self.speech_started: float | None = None
        self.first_audio_after_speech: float | None = None
        self.last_audio_activity = 0.0
        self.first_audio: float | None = None
        self.clear_at: float | None = None
        # When the agent's audio stopped playing once the caller began (silence since).
        self.agent_silent_at: float | None = None
        self.closed = asyncio.Event()
        self.server_closed = False

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    def speak(self, frames: list[bytes]) -> None:
        self.outgoing.extend(frames)
        self.speech_started = None
        self.last_speech_sent = None
        self.speech_ends_in_unsent = False
        self.first_audio_after_speech = None
        self.agent_silent_at = None

    @property
    def speaking(self) -> bool:
        return bool(self.outgoing)

    @property
    def agent_idle_for(self) -> float:
        if self.playback:
            return 0.0
        return time.monotonic() - self.last_audio_activity

    async def tick_loop(self) -> None:
        n = 0
        try:
            while not self.closed.is_set():
                n += 1
                # Pace by the wall clock: frame n goes out at start + n * 20 ms.
                delay = self.started + n * FRAME_SECS - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._tick()
        except websockets.ConnectionClosed:
            self.server_closed = True
            self.closed.set()

    async def _tick(self) -> None:
        now = time.monotonic()
        if self.outgoing:
            frame = self.outgoing.popleft()
            if self.speech_started is None:
                self.speech_started = now
            if not self.outgoing:
                self.speech_ends_in_unsent = True
        else:
            frame = SILENCE
        frame = self.bad_line.noisy(frame)
        if not self.unsent:
            self.unsent_at = now
        self.unsent.extend(frame)
        if len(self.unsent) >= FRAME * self.phone.frames_per_message:
            self.chunk += 1
            timestamp_ms = int((self.unsent_at - self.started) * 1000)
            media = self.phone.media(bytes(self.unsent), self.chunk, timestamp_ms)
            for message in self.bad_line.send(media, now):
                await self.send(message)
            self.unsent.clear()
            if self.speech_ends_in_unsent:  # the caller's last word has left the phone
                self.last_speech_sent = now
                self.speech_ends_in_unsent = False
        else:
            for message in self.bad_line.due(now):  # late messages arriving
                await self.send(message)
        # Play one frame of agent audio; marks are echoed once everything before them played.
        while self.playback and isinstance(self.playback[0], str):
            await self.send(self.phone.mark(self.playback.popleft()))  # type: ignore[arg-type]
        if self.playback:
            self.heard[-1].extend(self.playback.popleft())  # type: ignore[arg-type]
            self.last_audio_activity = now
        elif (
            self.speech_started is not None
            and self.agent_silent_at is None
            and self.last_audio_activity >= self.speech_started
            and now - self.last_audio_activity >= PLAYING_GAP_SECS
        ):
            self.agent_silent_at = self.last_audio_activity

    async def receive_loop(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                event = message.get("event")
                now = time.monotonic()
                if event == "media":
                    payload = self.phone.agent_audio(message)
                    if self.first_audio is None:
                        self.first_audio = now
                    if (
                        self.last_speech_sent is not None
                        and self.first_audio_after_speech is None
                        and now >= self.last_speech_sent
                    ):
                        self.first_audio_after_speech = now
                    for i in range(0, len(payload), FRAME):
                        self.playback.append(payload[i : i + FRAME])
                    self.last_audio_activity = now
                elif event == "clear":
                    self.playback = deque(p for p in self.playback if isinstance(p, str))
                    self.clear_at = now
                    # Audio before a clear was the reply being cut off, not the answer.
                    self.first_audio_after_speech = None
                elif event == "mark":
                    self.playback.append(message["mark"]["name"])
        except websockets.ConnectionClosed:
            pass
        self.server_closed = True
        self.closed.set()


async def _wait(predicate, within: float, closed: asyncio.Event) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        if closed.is_set():
            return False
        await asyncio.sleep(FRAME_SECS)
    return False


async def place_call(
    base_url: str,
    to: str,
    utterances: list[Utterance],
    *,
    caller_id: str = "+15550100999",
    voice: str = "en_US-joe-medium",
    hang_up: bool = True,
    token: str | None = None,
    tenant_id: str | None = None,
    provider: str = "twilio",
    twilio_auth_token: str = DEV_TWILIO_AUTH_TOKEN,
    exotel_api_key: str = DEV_EXOTEL_API_KEY,
    exotel_api_token: str = DEV_EXOTEL_API_TOKEN,
    conditions: LineConditions = CLEAN_LINE,
) -> CallReport:
    """One call, as ``provider`` (``twilio`` or ``exotel``) would place it to the platform,
    authenticated as that provider's account the number is on (``twilio_auth_token``
    signs Twilio's requests; ``exotel_api_key`` and ``_token`` are Exotel's), over a line
    as bad as ``conditions`` say."""
    phone: Phone = (
        ExotelPhone(base_url, exotel_api_key, exotel_api_token)
        if provider == "exotel"
        else TwilioPhone(base_url, twilio_auth_token)
    )
    # Synthesised before dialling.
    frames = [[] if u.keys else speech_frames(u, voice, conditions.gain_db) for u in utterances]
    spoken = [np.frombuffer(audioop.ulaw2lin(b"".join(f), 2), np.int16) for f in frames if f]
    level = float(np.mean([speech_level_dbfs(pcm) for pcm in spoken])) if spoken else -np.inf

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        answer = await phone.dial(http, to, caller_id)
        if answer.stream_url is None:
            return CallReport(call_id=None, outcome="no_stream", turns=[], spoken=answer.spoken)
        call_id = answer.call_id

        turns = [Turn(index=0, caller=None)]
        async with websockets.connect(
            answer.stream_url, max_size=2**22, additional_headers=answer.headers
        ) as ws:
            line = _Line(ws, phone, BadLine(conditions, level))
            for message in phone.opening():
                await line.send(message)
            line.started = time.monotonic()
            tasks = [
                asyncio.create_task(line.tick_loop()),
                asyncio.create_task(line.receive_loop()),
            ]
            try:
                await _wait(lambda: line.first_audio is not None, REPLY_TIMEOUT_SECS, line.closed)
                greeting_ms = (line.first_audio - line.started) * 1000 if line.first_audio else None
                for i, (utterance, uframes) in enumerate(zip(utterances, frames, strict=True), 1):
                    if line.closed.is_set():
                        break
                    if utterance.barge_in:
                        # Wait for the agent's reply to start, let it play a little, cut in.
                        await _wait(lambda: bool(line.playback), REPLY_TIMEOUT_SECS, line.closed)
                        played = len(line.heard[-1])
                        await _wait(
                            lambda p=played: len(line.heard[-1]) - p >= BARGE_IN_AFTER_SECS * RATE,
                            REPLY_TIMEOUT_SECS,
                            line.closed,
                        )
                    else:
                        await _wait(
                            lambda: line.agent_idle_for >= SETTLE_SECS,
                            REPLY_TIMEOUT_SECS,
                            line.closed,
                        )
                    turn = Turn(index=i, caller=utterance.label)
                    # The agent's audio arrives at the pace it plays, so the buffer can be
                    # empty for an instant mid-reply: playing is "heard in the last 200 ms".
                    was_playing = line.agent_idle_for < PLAYING_GAP_SECS
                    line.clear_at = None
                    line.speak(uframes)
                    line.heard.append(bytearray())
                    if utterance.keys:
                        for digit in utterance.keys:
                            await line.send(phone.key(digit))
                            await asyncio.sleep(KEY_GAP_SECS)
                        line.last_speech_sent = time.monotonic()
                    await _wait(lambda: line.last_speech_sent is not None, 60, line.closed)
                    if utterance.barge_in and was_playing:
                        # The platform must cut its reply short; on a loaded machine the
                        # `clear` may come after the caller's last word, so wait for it.
                        cleared = await _wait(
                            lambda: line.clear_at is not None, REPLY_TIMEOUT_SECS, line.closed
                        )
                        turns[-1].interrupted_by_caller = cleared
                        if line.clear_at is not None and line.speech_started is not None:
                            turn.clear_after_ms = (line.clear_at - line.speech_started) * 1000
                        if line.agent_silent_at is not None and line.speech_started is not None:
                            turn.silent_after_ms = (
                                line.agent_silent_at - line.speech_started
                            ) * 1000
                    await _wait(
                        lambda: line.first_audio_after_speech is not None,
                        REPLY_TIMEOUT_SECS,
                        line.closed,
                    )
                    if line.first_audio_after_speech and line.last_speech_sent:
                        turn.latency_ms = (
                            line.first_audio_after_speech - line.last_speech_sent
                        ) * 1000
                    turns.append(turn)
                if not hang_up:
                    # Wait for the agent to end the call; if it does not, hang up anyway.
                    await _wait(lambda: False, REPLY_TIMEOUT_SECS, line.closed)
                if not line.closed.is_set():
                    await _wait(
                        lambda: line.agent_idle_for >= SETTLE_SECS, REPLY_TIMEOUT_SECS, line.closed
                    )
                hung_up_by = "agent"  # unless the caller gets to hang up first
                if not line.closed.is_set():
                    line.heard.append(bytearray())
                    try:
                        await line.send(phone.stop())
                        hung_up_by = "caller"
                    except websockets.ConnectionClosed:
                        pass
            finally:
                line.closed.set()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        transferred_to = await phone.after_stream(http)

        # What the caller heard, turn by turn, transcribed offline after the call.
        from media_plane.providers.offline_stt import decode_pcm

        for turn, audio in zip(turns, line.heard, strict=False):
            turn.agent_heard_secs = len(audio) / RATE
            if audio:
                pcm = audioop.ulaw2lin(bytes(audio), 2)
                turn.agent_heard = await asyncio.to_thread(decode_pcm, pcm, RATE)

        if token and tenant_id and call_id:
            await _attach_timeline(http, token, tenant_id, call_id, turns)

    return CallReport(
        call_id=call_id,
        outcome="completed",
        turns=turns,
        greeting_first_audio_ms=greeting_ms,
        hung_up_by=hung_up_by,
        transferred_to=transferred_to,
        protocol_errors=phone.protocol_errors,
        provider_call_sid=phone.call_sid,
    )


async def _attach_timeline(
    http: httpx.AsyncClient, token: str, tenant_id: str, call_id: str, turns: list[Turn]
) -> None:
    """What the platform heard and which tools it used, per turn, from the call's timeline
    (the n-th user turn and the tool calls that follow it)."""
    r = await http.get(
        f"/v1/tenants/{tenant_id}/calls/{call_id}/events",
        params={"limit": 200},
        headers={"Authorization": f"Bearer {token}"},
    )
    if r.status_code != 200:
        return
    user_turn = 0
    for event in r.json()["items"]:
        if event["kind"] == "turn.user":
            user_turn += 1
            if user_turn < len(turns):
                turns[user_turn].platform_heard = event["data"].get("text")
        elif event["kind"] == "tool.called" and user_turn < len(turns):
            turns[user_turn].tools.append(event["data"]["name"])
