"""The scale test: a fleet under a steady load of calls while it scales out, drains and
loses a process.

    .venv/bin/python benchmarks/scaling.py --write-doc     # ~2 minutes; docs/scaling.md

A control plane, two media processes and nginx (``switchboard.fleet``, the same as
``switchboard fleet``) against the local Redis (``SWITCHBOARD_BENCH_REDIS_URL``, default
``redis://127.0.0.1:6379/0``). Simulated Twilio calls through nginx keep ``--calls`` live at
once, each ``--call-secs`` long at real time (the greeting, then the caller's line, silence
paced by the clock), each ending with the provider's follow-up request. On a timeline:

  phase 1  two processes
  phase 2  a third process joins the ring (scale out)
  phase 3  an original process is drained (it leaves the ring, then SIGTERM)
  phase 4  another is killed (SIGKILL)

Every half second the live-call gauge is read as KEDA reads it and compared with the calls
the load generator has open. Reported: calls dropped (a stream closed before the caller hung
up) by whether their process was the killed one, follow-ups that reached another process
than the call's and whether they were answered, the gauge's error at every sample, how long
it took to heal after the SIGKILL, calls started per process per phase, and the greeting's
wait by whether the stream reached the process that took the webhook. Bounded: it stops by
itself.
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import websockets  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from benchmarks.doc_table import write_between  # noqa: E402
from switchboard.fleet import Fleet  # noqa: E402
from switchboard.phones import TwilioPhone, signed_by_twilio  # noqa: E402

TOKEN = "scaling-bench-operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC = ROOT / "docs" / "scaling.md"
BEGIN, END = "<!-- scaling:begin -->", "<!-- scaling:end -->"
SILENCE = b"\xff" * 160  # 20 ms of mu-law silence
# KEDA's Redis scaler: the key counted by its type, in one script.
KEDA_COUNT = """
local kind = redis.call('type', KEYS[1]).ok
local count = {zset = 'zcard', set = 'scard', list = 'llen', hash = 'hlen', none = 'llen'}
return redis.call(count[kind], KEYS[1])
"""


@dataclass
class Load:
    open_streams: int = 0
    started: int = 0
    completed: int = 0
    dropped: list[str] = field(default_factory=list)  # call ids whose stream was cut
    failed: list[str] = field(default_factory=list)  # could not even start
    follow_ups: dict[str, int] = field(default_factory=dict)  # call id -> status
    # call id -> seconds from the stream's start to the greeting's first audio
    greeting_waits: dict[str, float] = field(default_factory=dict)


async def one_call(base: str, number: str, secs: float, load: Load) -> None:
    phone = TwilioPhone(base)
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            answer = await phone.dial(http, number, "+15550100999")
        except httpx.HTTPError as e:
            load.failed.append(repr(e))
            return
        if not answer.stream_url or not answer.call_id:
            load.failed.append(f"not admitted: {answer.spoken}")
            return
        call_id = answer.call_id
        load.started += 1
        try:
            async with websockets.connect(
                answer.stream_url, additional_headers=answer.headers, max_size=2**22
            ) as ws:
                load.open_streams += 1
                listening = asyncio.create_task(listen(ws, call_id, load))
                try:
                    for message in phone.opening():
                        await ws.send(json.dumps(message))
                    begun = time.monotonic()
                    frames = int(secs / 0.02)
                    for n in range(frames):
                        await ws.send(json.dumps(phone.media(SILENCE, n, n * 20)))
                        await asyncio.sleep(max(0.0, begun + (n + 1) * 0.02 - time.monotonic()))
                    await ws.send(json.dumps(phone.stop()))
                finally:
                    load.open_streams -= 1
                    listening.cancel()
        except (websockets.ConnectionClosed, OSError) as e:
            load.dropped.append(call_id)
            print(f"dropped {call_id}: {e!r}", file=sys.stderr)  # why, for the reader
            return
        # The provider's follow-up, as TwilioPhone.after_stream sends it, keeping the status.
        form = {"CallSid": phone.call_sid, "AccountSid": phone.account_sid}
        action = phone.action_url or ""
        r = await http.post(
            action, data=form, headers=signed_by_twilio(phone.auth_token, action, form)
        )
        load.follow_ups[call_id] = r.status_code
        load.completed += 1


async def listen(ws, call_id: str, load: Load) -> None:
    """Read what the platform sends (the greeting, marks), timing its first audio."""
    opened = time.monotonic()
    async for raw in ws:
        if call_id not in load.greeting_waits and json.loads(raw).get("event") == "media":
            load.greeting_waits[call_id] = time.monotonic() - opened


async def keep_calls(base: str, number: str, n: int, secs: float, until: float, load: Load):
    """``n`` calls at once until ``until``, each started a little apart."""
    running: set[asyncio.Task] = set()
    while time.monotonic() < until:
        while len(running) < n and time.monotonic() < until:
            task = asyncio.create_task(one_call(base, number, secs, load))
            running.add(task)
            task.add_done_callback(running.discard)
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.1)
    await asyncio.gather(*running, return_exceptions=True)


def log_owners(
    fleet: Fleet,
) -> tuple[dict[str, tuple[int, float]], dict[str, int], dict[str, int]]:
    """From the processes' own logs: call id -> (the process that ran it, when its stream
    started, wall clock), call id -> the process that answered its follow-up, and call id
    -> the process that took its first webhook (announced it)."""
    started: dict[str, tuple[int, float]] = {}
    ended: dict[str, int] = {}
    announced: dict[str, int] = {}
    for process in fleet.media + fleet.left:
        n = _n(process)
        for line in process.log_path.read_text(errors="replace").splitlines():
            m = re.search(r"'call_id': '([^']+)'", line)
            if not m:
                continue
            if "call.started" in line:
                at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()
                started[m.group(1)] = (n, at)
            elif "twilio.stream_ended" in line:
                ended[m.group(1)] = n
            elif "call.announced" in line:
                announced[m.group(1)] = n
    return started, ended, announced


def a_tenant_number(url: str) -> str:
    """A tenant with an agent and a number (no plan: no limits)."""
    with httpx.Client(base_url=url, headers=AUTH) as api:
        agent = {"name": "a", "greeting": "Hello."}
        t = api.post("/v1/tenants", json={"name": "t", "agent": agent}).json()
        number = "+1555" + str(uuid.uuid4().int)[:7]
        api.post(
            f"/v1/tenants/{t['id']}/numbers", json={"e164": number, "agent_id": t["agent"]["id"]}
        ).raise_for_status()
    return number


async def run(calls: int, call_secs: float, phase_secs: float) -> str:
    redis_url = os.environ.get("SWITCHBOARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    mine = uuid.uuid4().hex[:8]
    env = {
        "SWITCHBOARD_ADMIN_TOKEN": TOKEN,
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_CALLS_PREFIX": f"bench:calls:{mine}",
        "SWITCHBOARD_EVENTS_STREAM": f"bench:events:{mine}",
        "SWITCHBOARD_AGENT_CHANGES_CHANNEL": f"bench:changes:{mine}",
        "SWITCHBOARD_KNOWLEDGE_JOBS": f"bench:jobs:{mine}",
        "SWITCHBOARD_WARM_OFFLINE_MODELS": "false",
    }
    with tempfile.TemporaryDirectory() as tmp:
        fleet = await asyncio.to_thread(
            Fleet, Path(tmp), media_processes=2, redis_url=redis_url, env=env
        )
        redis = Redis.from_url(redis_url, decode_responses=True)
        try:
            number = await asyncio.to_thread(a_tenant_number, fleet.url)
            load = Load()
            samples: list[tuple[float, int, int]] = []  # (t, gauge, open streams)
            phases: list[tuple[str, float, float]] = []  # name, run time, wall clock
            start = time.monotonic()
            end = start + 4 * phase_secs
            generator = asyncio.create_task(
                keep_calls(fleet.url, number, calls, call_secs, end, load)
            )

            async def sample() -> None:
                while not generator.done():
                    gauge = int(await redis.eval(KEDA_COUNT, 1, f"bench:calls:{mine}:live"))
                    samples.append((time.monotonic() - start, gauge, load.open_streams))
                    await asyncio.sleep(0.5)

            sampler = asyncio.create_task(sample())
            phases.append(("two processes", 0.0, time.time()))
            await asyncio.sleep(phase_secs)
            phases.append(("a third joins", time.monotonic() - start, time.time()))
            added = await asyncio.to_thread(fleet.add_media)
            await asyncio.sleep(phase_secs)
            phases.append(("process 1 drains", time.monotonic() - start, time.time()))
            drained = fleet.media[0]
            await asyncio.to_thread(fleet.drain, drained)
            await asyncio.sleep(phase_secs)
            killed = fleet.media[0]  # process 2
            killed_at = time.monotonic() - start
            phases.append(("process 2 is killed", killed_at, time.time()))
            await asyncio.to_thread(fleet.kill, killed)
            await generator
            await asyncio.sleep(25)  # the gauge heals past the lease
            for _ in range(60):
                gauge = int(await redis.eval(KEDA_COUNT, 1, f"bench:calls:{mine}:live"))
                samples.append((time.monotonic() - start, gauge, load.open_streams))
                if gauge == 0:
                    break
                await asyncio.sleep(0.5)
            sampler.cancel()
            drain_code = await asyncio.to_thread(drained.proc.wait, 120)
            await asyncio.sleep(1)
            started, ended, announced = log_owners(fleet)
            return report(
                load, samples, phases, started, ended, announced, killed_at,
                drained=_n(drained), killed=_n(killed), added=_n(added), drain_code=drain_code,
            )  # fmt: skip
        finally:
            await redis.aclose()
            await asyncio.to_thread(fleet.stop)


def _n(process) -> int:
    return int(process.data.name.split("-")[-1])


def report(
    load, samples, phases, started, ended, announced, killed_at, *,
    drained, killed, added, drain_code,
):  # fmt: skip
    owner = {call_id: n for call_id, (n, _) in started.items()}
    # The greeting's wait, by whether the stream reached the process that took the webhook
    # (the call made ready ahead) or another (made ready when its stream opened).
    waits: dict[bool, list[float]] = {True: [], False: []}
    for call_id, wait in load.greeting_waits.items():
        if call_id in owner and call_id in announced:
            waits[owner[call_id] == announced[call_id]].append(wait * 1000)
    dropped_on = Counter(owner.get(call_id, 0) for call_id in load.dropped)
    elsewhere = {c: p for c, p in ended.items() if owner.get(c) not in (None, p)}
    answered_elsewhere = sum(1 for c in elsewhere if load.follow_ups.get(c) == 200)
    errors = [abs(g - o) for _, g, o in samples]
    before_kill = [abs(g - o) for t, g, o in samples if t < killed_at]
    after = [(t, abs(g - o)) for t, g, o in samples if t >= killed_at]
    healed = next((t - killed_at for t, e in after if e == 0 and t > killed_at + 1), None)
    # Calls started per process in each phase (by the wall-clock time of call.started).
    bounds = [at for _, _, at in phases[1:]] + [float("inf")]
    per_phase = [Counter() for _ in phases]
    for n, at in started.values():
        per_phase[next(i for i, bound in enumerate(bounds) if at < bound)][n] += 1
    lines = [
        f"Load: {load.started} calls admitted, {load.completed} completed whole, "
        f"{len(load.failed)} could not start.",
        "",
        "| measure | result |",
        "| --- | --- |",
        f"| calls dropped on the added process ({added}); on the drained one ({drained}) "
        f"| {dropped_on.get(added, 0)}; {dropped_on.get(drained, 0)} |",
        f"| calls dropped on the killed process ({killed}); on any other process "
        f"| {dropped_on.get(killed, 0)}; "
        f"{sum(v for k, v in dropped_on.items() if k != killed)} |",
        f"| the drained process's exit code | {drain_code} |",
        f"| follow-ups that reached another process than the call's (the ring changed "
        f"mid-call); answered from the ledger | {len(elsewhere)}; {answered_elsewhere} |",
        f"| gauge error against the calls open, every 0.5 s before the kill: median; max "
        f"| {statistics.median(before_kill) if before_kill else 0:.0f}; "
        f"{max(before_kill, default=0)} |",
        f"| gauge error over the whole run: max | {max(errors, default=0)} |",
        f"| the gauge healed after the SIGKILL in | "
        f"{f'{healed:.1f} s' if healed is not None else 'not within the run'} |",
        f"| the greeting's first audio after the stream opened, median: stream on the "
        f"process that took the webhook; on another | {_median_ms(waits[True])}; "
        f"{_median_ms(waits[False])} |",
    ]
    for (name, t, _), counts in zip(phases, per_phase, strict=True):
        shares = ", ".join(f"process {n}: {counts[n]}" for n in sorted(counts)) or "none"
        lines.append(f"| calls started while {name} (from {t:.0f} s) | {shares} |")
    return "\n".join(lines)


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms ({len(values)} calls)" if values else "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12, help="calls live at once")
    parser.add_argument("--call-secs", type=float, default=8.0)
    parser.add_argument("--phase-secs", type=float, default=20.0)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()
    table = asyncio.run(run(args.calls, args.call_secs, args.phase_secs))
    print(table)
    if args.write_doc:
        write_between(DOC, BEGIN, END, table)


if __name__ == "__main__":
    main()
