"""Load benchmark: concurrent calls per core and the latency the platform adds to a turn.

    .venv/bin/python benchmarks/calls.py [--quick] [--calls 10,20,40]

Starts the media plane as its own process (``switchboard up`` with
``SWITCHBOARD_PLANE=media``, the production entry point) pinned to core 0 with ``taskset``,
its control plane beside this process on core 1 (the planes talk over the internal API and
Redis, ``SWITCHBOARD_BENCH_REDIS_URL``; without Redis one process carries both), and drives
N concurrent simulated Twilio calls from this process, pinned to core 1, over real loopback
WebSockets: 20 ms mu-law frames paced by the wall clock, speech turns separated by silence,
``mark`` echoed when the audio before it has played, ``clear`` honoured. The agent uses the
benchmark provider set (instant STT, LLM and TTS with fixed content), so what is timed is
the platform. Silero VAD stays real.

The same load, in the same run, goes to a baseline: a stock Pipecat telephony bot
(``benchmarks/stock_bot.py``: Pipecat's defaults, the same instant providers, no platform
code), on the same core.

Per N and stack: platform-added latency per turn (the end of the caller's speech as the VAD
decides it -> first agent audio on the wire; each stack's configured silence wait is taken
out of the caller's measure), the greeting's first audio, and the CPU and RSS of the
measured process (the media plane, or the stock bot).

Still to come (issue 5): inbound frame delay and dropped frames, calls per core,
docs/performance.md and a plot.
"""

import argparse
import asyncio
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import websockets  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VAD_STOP_SECS as PIPECAT_VAD_STOP_SECS  # noqa: E402

from media_plane.pipeline import SPEECH_TIMEOUT_SECS, VAD_STOP_SECS  # noqa: E402
from switchboard.caller import FRAME_SECS, SILENCE, Utterance, speech_frames  # noqa: E402
from switchboard.demo.run import free_port, wait_ready  # noqa: E402

TOKEN = "bench-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPLY_TIMEOUT_SECS = 10.0
AGENT_DONE_SECS = 0.3  # no agent audio for this long: the reply is over
PAUSE_SECS = 0.5  # between the end of a reply and the caller's next turn


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), linearly interpolated between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class CallResult:
    greeting_ms: float | None = None
    turn_ms: list[float] = field(default_factory=list)  # raw: last speech frame -> audio
    error: str | None = None


class Phone:
    """One caller's line: a frame every 20 ms (speech when speaking, else silence), agent
    audio 'played' in real time so marks are echoed when a phone would echo them."""

    def __init__(self, ws, stream_sid: str):
        self.ws = ws
        self.stream_sid = stream_sid
        self.outgoing: list[bytes] = []
        self.speech_ended_at: float | None = None
        self.last_audio_at = 0.0
        self.first_audio_after: float | None = None
        self.playback_end = 0.0
        self.seq = 0

    async def send(self, message: dict) -> None:
        self.seq += 1
        await self.ws.send(json.dumps({"sequenceNumber": str(self.seq), **message}))

    async def talk(self, started: float) -> None:
        n = 0
        while True:
            n += 1
            delay = started + n * FRAME_SECS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = self.outgoing.pop(0) if self.outgoing else SILENCE
            payload = base64.b64encode(frame).decode()
            await self.send(
                {"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}}
            )
            if frame is not SILENCE and not self.outgoing:
                self.speech_ended_at = time.monotonic()

    async def listen(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            now = time.monotonic()
            if message.get("event") == "media":
                self.last_audio_at = now
                if self.first_audio_after is None:
                    self.first_audio_after = now
                self.playback_end = max(self.playback_end, now) + FRAME_SECS
            elif message.get("event") == "clear":
                self.playback_end = now
            elif message.get("event") == "mark":
                asyncio.get_running_loop().call_at(
                    self.playback_end,
                    lambda m=message: asyncio.ensure_future(
                        self.send(
                            {"event": "mark", "streamSid": self.stream_sid, "mark": m["mark"]}
                        )
                    ),
                )

    async def wait(self, predicate, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.005)
        return False


@dataclass
class Stack:
    """A server under test: how it starts, how a call reaches it, and the silence it waits
    for after the caller stops before it decides the turn is over (taken out of the
    caller's measure to leave what the stack adds)."""

    name: str
    command: list[str]
    end_of_turn_wait_ms: float
    webhook: bool  # Twilio's voice webhook first (the platform), or straight to /ws


async def dial(base_url: str, stack: Stack, number: str, call_sid: str) -> tuple[str, dict]:
    """The media stream's URL and parameters, as Twilio would get them."""
    if not stack.webhook:
        return base_url.replace("http://", "ws://") + "/ws", {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        r = await http.post(
            "/twilio/voice",
            data={"CallSid": call_sid, "AccountSid": "AC" + secrets.token_hex(16),
                  "From": "+15550100999", "To": number, "CallStatus": "ringing"},
        )  # fmt: skip
    stream = ET.fromstring(r.text).find("./Connect/Stream") if r.status_code == 200 else None
    if stream is None:
        raise RuntimeError(f"no stream: {r.status_code} {r.text[:200]}")
    return stream.get("url", ""), {
        p.get("name"): p.get("value") for p in stream.findall("Parameter")
    }


async def one_call(
    base_url: str, stack: Stack, number: str, speech: list[bytes], turns: int
) -> CallResult:
    result = CallResult()
    call_sid, stream_sid = "CA" + secrets.token_hex(16), "MZ" + secrets.token_hex(16)
    try:
        url, params = await dial(base_url, stack, number, call_sid)
    except (RuntimeError, httpx.HTTPError) as e:
        result.error = str(e)
        return result
    async with websockets.connect(url, max_size=2**22) as ws:
        phone = Phone(ws, stream_sid)
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await phone.send(
            {
                "event": "start",
                "streamSid": stream_sid,
                "start": {
                    "streamSid": stream_sid,
                    "callSid": call_sid,
                    "customParameters": params,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        started = time.monotonic()
        tasks = [asyncio.create_task(phone.talk(started)), asyncio.create_task(phone.listen())]
        try:
            if await phone.wait(lambda: phone.first_audio_after is not None, REPLY_TIMEOUT_SECS):
                result.greeting_ms = (phone.first_audio_after - started) * 1000
            for _ in range(turns):
                # Let the agent finish, pause, then speak.
                await phone.wait(
                    lambda: time.monotonic() - phone.last_audio_at > AGENT_DONE_SECS,
                    REPLY_TIMEOUT_SECS,
                )
                await asyncio.sleep(PAUSE_SECS)
                phone.speech_ended_at = None
                phone.outgoing = list(speech)
                await phone.wait(lambda: phone.speech_ended_at is not None, 30)
                phone.first_audio_after = None
                if await phone.wait(
                    lambda: phone.first_audio_after is not None, REPLY_TIMEOUT_SECS
                ):
                    result.turn_ms.append((phone.first_audio_after - phone.speech_ended_at) * 1000)
            await phone.send({"event": "stop", "streamSid": stream_sid, "stop": {}})
        except websockets.ConnectionClosed as e:
            result.error = f"connection closed: {e}"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return result


def cpu_secs(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def measure(
    base_url: str, stack: Stack, number: str, speech: list[bytes], n: int, turns: int, pid: int
) -> dict:
    # Calls start spread over one second, as a real ramp would, not in one burst.
    async def staggered(i: int) -> CallResult:
        await asyncio.sleep(i / n)
        return await one_call(base_url, stack, number, speech, turns)

    cpu_before, wall_before = cpu_secs(pid), time.monotonic()
    results = await asyncio.gather(*(staggered(i) for i in range(n)))
    cpu = (cpu_secs(pid) - cpu_before) / (time.monotonic() - wall_before) * 100
    raw = [ms for r in results for ms in r.turn_ms]
    added = [ms - stack.end_of_turn_wait_ms for ms in raw]
    greetings = [r.greeting_ms for r in results if r.greeting_ms is not None]
    expected = n * turns
    return {
        "stack": stack.name,
        "calls": n,
        "turns": len(raw),
        "turns_unanswered": expected - len(raw),
        "errors": [r.error for r in results if r.error],
        "added_ms": {p: round(percentile(added, p), 1) for p in (50, 95, 99)} if added else None,
        "greeting_first_audio_ms_p50": round(percentile(greetings, 50), 1) if greetings else None,
        "cpu_percent": round(cpu, 1),
        "rss_mb": round(rss_mb(pid), 1),
    }


STACKS = [
    Stack(
        "switchboard",
        [sys.executable, "-m", "switchboard.cli", "up"],
        (VAD_STOP_SECS + SPEECH_TIMEOUT_SECS) * 1000,
        webhook=True,
    ),
    Stack(
        "stock pipecat",
        [sys.executable, str(ROOT / "benchmarks" / "stock_bot.py")],
        # Smart Turn v3 (Pipecat's default) decides at the VAD's stop.
        PIPECAT_VAD_STOP_SECS * 1000,
        webhook=False,
    ),
]
# The planes run apart as a cluster runs them when this Redis answers (db 15: away from
# the tests' data); without it, one process carries both.
REDIS_URL = os.environ.get("SWITCHBOARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


@dataclass
class Served:
    calls_url: str  # where Twilio's webhook and media stream go
    api_url: str  # the REST API (tenants, numbers)
    pid: int  # the process under measurement, on core 0
    planes: str


def _spawn(command: list[str], data: Path, core: int, **settings: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")} | {
        "SWITCHBOARD_DATA_DIR": str(data),
        "SWITCHBOARD_ADMIN_TOKEN": TOKEN,
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    env |= {f"SWITCHBOARD_{k.upper()}": v for k, v in settings.items()}
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(core), *command]
    data.mkdir(parents=True, exist_ok=True)
    log = (data / "server.log").open("w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=data)


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def serve(stack: Stack, data: Path) -> Iterator[Served]:
    """The stack under test, its measured process on core 0 (the same core for each)."""
    processes: list[subprocess.Popen] = []
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if not stack.webhook:
            processes.append(_spawn([*stack.command, str(port)], data, core=0))
            wait_ready(url, processes[-1])
            yield Served(url, url, processes[-1].pid, "one process")
        elif _redis_answers():
            # The control plane beside the callers on core 1; the media plane alone on 0.
            control_port = free_port()
            control_url = f"http://127.0.0.1:{control_port}"
            shared = {"redis_url": REDIS_URL, "service_token": "bench-service-token"}
            processes.append(
                _spawn(stack.command, data / "control", 1, plane="control",
                       port=str(control_port), **shared)
            )  # fmt: skip
            wait_ready(control_url, processes[-1])
            processes.append(
                _spawn(stack.command, data / "media", 0, plane="media", port=str(port),
                       control_plane_url=control_url, **shared)
            )  # fmt: skip
            wait_ready(url, processes[-1])
            yield Served(url, control_url, processes[-1].pid, "control and media apart")
        else:
            processes.append(_spawn(stack.command, data, 0, port=str(port)))
            wait_ready(url, processes[-1])
            yield Served(url, url, processes[-1].pid, "one process (no Redis)")
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def set_up_tenant(base_url: str) -> str:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as api:
        r = api.post(
            "/v1/tenants",
            json={
                "name": "Benchmark",
                "agent": {
                    "name": "Bench",
                    "greeting": "Hello.",
                    "providers": {"stt": "benchmark", "llm": "benchmark", "tts": "benchmark"},
                },
            },
        )
        r.raise_for_status()
        tenant = r.json()
        number = "+1555" + str(secrets.randbelow(10**7)).zfill(7)
        r = api.post(
            f"/v1/tenants/{tenant['id']}/numbers",
            json={"e164": number, "agent_id": tenant["agent"]["id"]},
        )
        r.raise_for_status()
    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer levels and turns")
    parser.add_argument("--calls", help="comma-separated numbers of concurrent calls")
    parser.add_argument(
        "--stack", choices=[s.name for s in STACKS], help="run one stack only (e.g. to profile)"
    )
    args = parser.parse_args()
    levels = [int(n) for n in args.calls.split(",")] if args.calls else (
        [5, 20] if args.quick else [5, 10, 20, 40, 60, 80]
    )  # fmt: skip
    turns = 2 if args.quick else 4
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the callers stay off the platform's core
    speech = speech_frames(Utterance("What are your opening hours?"), "en_US-joe-medium")
    rows = []
    for stack in STACKS:
        if args.stack and stack.name != args.stack:
            continue
        with tempfile.TemporaryDirectory() as tmp, serve(stack, Path(tmp)) as served:
            number = set_up_tenant(served.api_url) if stack.webhook else ""
            for n in levels:
                row = asyncio.run(
                    measure(served.calls_url, stack, number, speech, n, turns, served.pid)
                )
                rows.append({**row, "planes": served.planes})
                print(json.dumps(rows[-1]))
    out = ROOT / "benchmarks" / "results" / "calls.json"
    out.write_text(json.dumps({"levels": rows, "turns_per_call": turns}, indent=2))


if __name__ == "__main__":
    main()
