"""The attacks of docs/security.md against ``switchboard up`` (embedded defaults, one
process), each while another tenant's call is answered in the same process.

For each attack: what the attacker got, and the victim's reply latency (end of its
question to the first audio of the answer) against the victim's own baseline measured in
the same run, before the attacks, as a ratio. While the attack runs, ``/healthz`` is
polled every 50 ms and its p99 reported. Every loop is bounded in count and time; every
address is on loopback.

    .venv/bin/python benchmarks/attacks.py               # print the table
    .venv/bin/python benchmarks/attacks.py --write-doc   # and put it in docs/security.md
"""

import argparse
import asyncio
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.doc_table import write_between  # noqa: E402  # the platform's packages, not this folder's scripts
from switchboard.caller import Utterance, place_call  # noqa: E402
from switchboard.demo.run import free_port, wait_ready  # noqa: E402
from switchboard.phones import TwilioPhone  # noqa: E402
from tests import formats  # noqa: E402 (the hostile documents the tests send too)
from tests.usage import a_call_earlier  # noqa: E402

TOKEN = "attack-bench-operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC = Path(__file__).parents[1] / "docs" / "security.md"
BEGIN, END = "<!-- attacks:begin -->", "<!-- attacks:end -->"
DOCUMENT = "# Parking\n\nFree parking for patients is on Mill Lane, behind the building.\n"
SILENCE = b"\xff" * 160


class Platform:
    def __init__(self, data: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.data = data
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")} | {
            "SWITCHBOARD_DATA_DIR": str(data),
            "SWITCHBOARD_PORT": self.url.rsplit(":", 1)[1],
            "SWITCHBOARD_ADMIN_TOKEN": TOKEN,
            "SWITCHBOARD_ENVIRONMENT": "test",
        }
        self.log = (data / "platform.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "switchboard.cli", "up"],
            env=env, stdout=self.log, stderr=self.log, cwd=data,
        )  # fmt: skip
        wait_ready(self.url, self.proc)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self.log.close()


def tenant(api: httpx.Client, document: str | None = None, **plan: int) -> dict:
    r = api.post(
        "/v1/tenants",
        json={"name": "t", "agent": {"name": "a", "greeting": "Hello, the clinic."}},
        headers=AUTH,
    )
    t = r.json()
    number = "+1555" + str(uuid.uuid4().int)[:7]
    api.post(
        f"/v1/tenants/{t['id']}/numbers",
        json={"e164": number, "agent_id": t["agent"]["id"]},
        headers=AUTH,
    )
    if document:
        api.post(
            f"/v1/tenants/{t['id']}/documents",
            files={"file": ("facts.md", document.encode())},
            headers=AUTH,
        )
    if plan:
        p = api.post("/v1/plans", json={"name": uuid.uuid4().hex, **plan}, headers=AUTH).json()
        api.put(f"/v1/tenants/{t['id']}/plan", json={"plan_id": p["id"]}, headers=AUTH)
    return {"id": t["id"], "number": number, "agent_id": t["agent"]["id"]}


async def victim_latency_ms(url: str, victim: dict) -> float | None:
    report = await place_call(
        url, victim["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=victim["id"],
    )  # fmt: skip
    return report.turns[1].latency_ms if len(report.turns) > 1 else None


async def healthz_p99(url: str, stop: asyncio.Event) -> float:
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(2000):  # bounded: 100 s at most
            if stop.is_set():
                break
            started = time.monotonic()
            await http.get("/healthz")
            samples.append((time.monotonic() - started) * 1000)
            await asyncio.sleep(0.05)
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 2 else samples[0]


async def stream(url: str, number: str, *, start: bool = True, **connect):
    phone = TwilioPhone(url)
    async with httpx.AsyncClient() as http:
        answer = await phone.dial(http, number, "+15550100777")
    if answer.stream_url is None:
        return None, phone, answer.spoken
    ws = await websockets.connect(
        answer.stream_url, additional_headers=answer.headers, max_size=None, **connect
    )
    if start:
        for message in phone.opening():
            await ws.send(json.dumps(message))
    return ws, phone, answer.call_id


async def send_until_closed(ws, messages: Iterable[dict], secs: float = 30) -> int:
    """Send as fast as the socket takes them, until it closes or ``secs`` pass: how many."""
    sent, deadline = 0, time.monotonic() + secs
    try:
        for message in messages:
            if time.monotonic() > deadline:
                break
            await ws.send(json.dumps(message))
            sent += 1
            if sent % 50 == 0:
                await asyncio.sleep(0)  # let the client's reader see a close
    except websockets.ConnectionClosed:
        pass
    return sent


async def closed_code(ws) -> int | None:
    try:
        async with asyncio.timeout(15):
            while True:
                await ws.recv()
    except (websockets.ConnectionClosed, TimeoutError):
        pass
    return ws.close_code


# Each attack: (what was sent, a coroutine that sends it and says what happened).
async def huge_message(p: Platform, t: dict, mb: int) -> str:
    ws, phone, _ = await stream(p.url, t["attacker"]["number"])
    started = time.monotonic()
    await ws.send(json.dumps(phone.media(b"\xff" * (mb * 3 * 2**18), 1, 20)))
    code = await closed_code(ws)
    return f"closed {code} after {(time.monotonic() - started) * 1000:.0f} ms"


async def flood(p: Platform, t: dict) -> str:
    ws, phone, _ = await stream(p.url, t["attacker"]["number"])
    frames = (phone.media(SILENCE, n, n * 20) for n in range(250_000))  # 500x real time
    sent = await send_until_closed(ws, frames, secs=10)
    code = await closed_code(ws)
    return f"closed {code} 2 s of audio ahead (the client had sent {sent} frames when it saw it)"


async def binary_before_start(p: Platform, t: dict) -> str:
    for _ in range(3):  # a plan of 2 lines
        ws, _phone, _ = await stream(p.url, t["attacker"]["number"], start=False)
        await ws.send(b"\x00 binary")
        await ws.close()
    await asyncio.sleep(1)
    ws, _phone, call_id = await stream(p.url, t["attacker"]["number"])
    if ws is None:
        return f"a later call refused: {call_id}"
    await ws.close()
    return "all 3 released: a later call on the plan's 2 lines is admitted"


async def malformed(p: Platform, t: dict) -> str:
    ws, phone, _ = await stream(p.url, t["attacker"]["number"])
    for bad in ({"event": "mark", "mark": "x"}, {"event": "dtmf", "dtmf": "5"}):
        await ws.send(json.dumps(bad))
    await ws.send("[" * 7000 + "]" * 7000)
    await ws.send(json.dumps(phone.media(SILENCE, 1, 20)))
    await asyncio.sleep(1)
    up = ws.close_code is None
    await ws.close()
    return "skipped; the call stayed up" if up else f"call closed {ws.close_code}"


async def concurrent_webhooks(p: Platform, t: dict) -> str:
    async def ring() -> bool:
        async with httpx.AsyncClient() as http:
            answer = await TwilioPhone(p.url).dial(http, t["one_line"]["number"], "+15550100777")
        return answer.stream_url is not None

    admitted = await asyncio.gather(*(ring() for _ in range(20)))
    return f"{sum(admitted)} of 20 admitted (plan: 1)"


async def answer_to_headers(p: Platform, path: str, size: int) -> tuple[int | None, float]:
    """The status answered to a request whose headers promise ``size`` bytes of body,
    before any of it is sent (None: the server waits for the body), and how soon."""
    host, port = p.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    started = time.monotonic()
    writer.write(("\r\n".join([*head, f"Content-Length: {size}"]) + "\r\n\r\n").encode())
    try:
        line = await asyncio.wait_for(reader.readline(), 5)
        status = int(line.split()[1]) if line else None
    except TimeoutError:
        status = None
    finally:
        writer.close()
    return status, (time.monotonic() - started) * 1000


async def big_unauthenticated_body(p: Platform, t: dict) -> str:
    before = p.rss_mb()
    status, ms = await answer_to_headers(p, "/internal/v1/events", 128 * 2**20)
    return f"{status} in {ms:.0f} ms, before a byte of body; RSS {before:.0f} → {p.rss_mb():.0f} MB"


async def many_bodies(p: Platform, t: dict) -> str:
    results = await asyncio.gather(
        *(answer_to_headers(p, "/v1/tenants", 5 * 2**20) for _ in range(12))
    )
    return f"answered {sorted({s for s, _ in results})} before any body"


async def password_guessing(p: Platform, t: dict) -> str:
    form = {"grant_type": "password", "client_id": "switchboard", "password": "wrong"}
    path = "/realms/switchboard/protocol/openid-connect/token"
    statuses: dict[int, int] = {}
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    async with httpx.AsyncClient(base_url=p.url, timeout=30) as http:
        deadline = time.monotonic() + 20
        for n in range(260):
            if time.monotonic() > deadline:
                break
            who = "known" if n % 2 else "unknown"
            username = "admin" if who == "known" else f"nobody{n}"
            started = time.monotonic()
            r = await http.post(path, data=form | {"username": username})
            if r.status_code == 401:
                timings[who].append((time.monotonic() - started) * 1000)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    known = statistics.median(timings["known"]) if timings["known"] else 0
    unknown = statistics.median(timings["unknown"]) if timings["unknown"] else 0
    answers = dict(sorted(statuses.items()))
    return f"answers {answers}; 401 median: known {known:.0f} ms, unknown {unknown:.0f} ms"


async def llm_url_internal(p: Platform, t: dict) -> str:
    agent = {
        "name": "a", "greeting": "hi", "providers": {"llm": "openai"},
        "llm_url": f"{p.url}/admin/users/delete/?id=42&rest=",
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=p.url) as http:
        r = await http.post("/v1/tenants", json={"name": "x", "agent": agent}, headers=AUTH)
    return (
        f"{r.status_code} when saved: {r.json()['detail'][0]['msg'].removeprefix('Value error, ')}"
    )


async def redos_schema(p: Platform, t: dict) -> str:
    from common.json_schemas import first_problem

    schema = {"type": "object", "properties": {"c": {"type": "string", "pattern": "^(a+)+$"}}}
    started = time.monotonic()
    problem = first_problem(schema, {"c": "a" * 5000 + "!"})
    ms = (time.monotonic() - started) * 1000
    return f"checked on RE2 in {ms:.1f} ms: {'no match' if problem else 'matched'}"


async def mark_flood(p: Platform, t: dict) -> str:
    ws, phone, call_id = await stream(p.url, t["attacker"]["number"])
    sent = await send_until_closed(ws, (phone.mark("x" * 4000 + str(n)) for n in range(5000)))
    code = await closed_code(ws)
    await asyncio.sleep(1)
    async with httpx.AsyncClient(base_url=p.url, headers=AUTH) as http:
        r = await http.get(
            f"/v1/tenants/{t['attacker']['id']}/calls/{call_id}/events", params={"limit": 200}
        )
    stored = r.json()["total"] if r.status_code == 200 else 0
    return f"closed {code} after {sent} sent; {stored} timeline events stored"


async def absurd_inputs(p: Platform, t: dict) -> str:
    nested = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode().rstrip("=")
    schema: dict = {"type": "object"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"x": schema}}
    tool = {"name": "deep", "description": "d", "url": "https://x.example/t", "parameters": schema}
    agent = {"name": "a", "greeting": "hi", "http_tools": [tool]}
    async with httpx.AsyncClient(base_url=p.url) as http:
        jwt = await http.get("/v1/tenants", headers={"Authorization": f"Bearer {nested}.e30.x"})
        deep = await http.post("/v1/tenants", json={"name": "x", "agent": agent}, headers=AUTH)
    return f"JWT header: {jwt.status_code}; schema 600 levels deep: {deep.status_code}"


async def forged_upgrades(p: Platform, t: dict) -> str:
    codes: dict[int, int] = {}
    ws_base = p.url.replace("http://", "ws://")
    started = time.monotonic()
    for n in range(1000):
        try:
            await websockets.connect(
                f"{ws_base}/twilio/stream?call_id=call_forged{n}", local_addr=("127.0.0.9", 0)
            )
        except websockets.InvalidStatus as refused:
            code = refused.response.status_code
            codes[code] = codes.get(code, 0) + 1
    secs = time.monotonic() - started
    return f"all refused {dict(codes)} in {secs:.1f} s"


async def held_open(p: Platform, t: dict) -> str:
    ws, phone, call_id = await stream(p.url, t["short"]["number"])
    started = time.monotonic()
    try:
        for n in range(4500):  # 90 s of silence at real time, at most
            await ws.send(json.dumps(phone.media(SILENCE, n, n * 20)))
            await asyncio.sleep(max(0.0, started + (n + 1) * 0.02 - time.monotonic()))
    except websockets.ConnectionClosed:
        pass
    await asyncio.sleep(1)
    async with httpx.AsyncClient(base_url=p.url, headers=AUTH) as http:
        r = await http.get(
            f"/v1/tenants/{t['short']['id']}/calls/{call_id}/events", params={"limit": 200}
        )
    ended = [e["data"] for e in r.json()["items"] if e["kind"] == "call.ended"]
    if not ended:
        return "not ended"
    reason, secs = ended[0]["reason"], ended[0]["secs"]
    return f"15 s of minutes left: ended by the platform, `{reason}`, {secs:.0f} s with the goodbye"


# --- the data path ------------------------------------------------------------------------


async def upload(http: httpx.AsyncClient, tenant_id: str, name: str, data: bytes):
    return await http.post(
        f"/v1/tenants/{tenant_id}/documents", files={"file": (name, data)}, headers=AUTH
    )


def answers(responses) -> str:
    counts: dict[int, int] = {}
    for r in responses:
        counts[r.status_code] = counts.get(r.status_code, 0) + 1
    return str(dict(sorted(counts.items())))


async def concurrent_uploads(p: Platform, t: dict) -> str:
    pdf = formats.heavy_pdf(3)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=p.url, timeout=120) as http:
        done = await asyncio.gather(
            *(upload(http, t["attacker"]["id"], f"p{n}.pdf", pdf) for n in range(8))
        )
    secs = time.monotonic() - started
    return f"answers {answers(done)} ({len(pdf) // 1024} KB each) in {secs:.1f} s"


async def one_hostile_upload(p: Platform, t: dict, name: str, data: bytes) -> str:
    """Upload it as a fresh tenant's document and follow it until it settles (a large one
    goes to the background worker)."""
    before, peak = p.rss_mb(), 0.0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=p.url, timeout=300) as http:
        owner = (await asyncio.to_thread(set_up_tenant, p.url))["id"]
        r = await upload(http, owner, name, data)
        doc = r.json()
        for _ in range(600):  # 5 minutes at most
            peak = max(peak, p.rss_mb())
            if r.status_code != 202 or doc.get("status") in ("ready", "failed"):
                break
            await asyncio.sleep(0.5)
            doc = (
                await http.get(f"/v1/tenants/{owner}/documents/{doc['id']}", headers=AUTH)
            ).json()
    secs = time.monotonic() - started
    outcome = doc.get("detail") or f"{doc['status']}: {doc.get('error') or 'indexed'}"
    return (
        f"{r.status_code}, settled in {secs:.1f} s: {str(outcome)[:110]}; "
        f"RSS {before:.0f} → at most {max(peak, p.rss_mb()):.0f} MB"
    )


def set_up_tenant(url: str) -> dict:
    with httpx.Client(base_url=url, timeout=30) as api:
        return tenant(api)


async def malformed_files(p: Platform, t: dict) -> str:
    async with httpx.AsyncClient(base_url=p.url, timeout=60) as http:
        csv = await upload(http, t["attacker"]["id"], "faq.csv", formats.csv_long_field(200_000))
        docx = await upload(http, t["attacker"]["id"], "bad.docx", formats.docx_malformed())
    return f"CSV {csv.status_code}, DOCX {docx.status_code}, each with the parser's reason"


async def search_scores(http: httpx.AsyncClient, tenant_id: str) -> list[float]:
    r = await http.get(
        f"/v1/tenants/{tenant_id}/knowledge/search", params={"q": "free parking"}, headers=AUTH
    )
    return [h["score"] for h in r.json()]


async def cross_tenant_scores(p: Platform, t: dict) -> str:
    async with httpx.AsyncClient(base_url=p.url, timeout=60) as http:
        before = await search_scores(http, t["victim"]["id"])
        words = "".join(
            f"# Parking {n}\n\nFree parking, parking, parking {n}.\n\n" for n in range(200)
        )
        await upload(http, t["bystander"]["id"], "parking.md", words.encode())
        after = await search_scores(http, t["victim"]["id"])
    same = "identical" if before == after else f"changed {before} → {after}"
    return f"the victim's scores before and after another tenant's 200 parking sections: {same}"


async def refusal_ms(http: httpx.AsyncClient, number: str) -> float:
    form = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32,
            "From": "+15550100999", "To": number}  # fmt: skip
    started = time.monotonic()
    await http.post("/twilio/voice", data=form)  # unsigned: refused
    return (time.monotonic() - started) * 1000


async def many_secrets(p: Platform, t: dict) -> str:
    async with httpx.AsyncClient(base_url=p.url, timeout=60) as http:
        before = statistics.median(
            [await refusal_ms(http, t["victim"]["number"]) for _ in range(20)]
        )
        for n in range(1000):  # 1,000 writes over 50 secrets (20 versions each)
            await http.put(
                f"/v1/tenants/{t['attacker']['id']}/secrets/key-{n % 50}",
                json={"value": "x" * 40}, headers=AUTH,
            )  # fmt: skip
        after = statistics.median(
            [await refusal_ms(http, t["victim"]["number"]) for _ in range(20)]
        )
    files = sum(1 for _ in (p.data / "secrets").rglob("*.secret"))
    return (
        f"an unsigned webhook's refusal, median of 20: {before:.0f} ms before, {after:.0f} ms "
        f"after 1,000 writes to 50 secrets; {files} files, one per secret"
    )


async def internal_api(p: Platform, t: dict) -> str:
    service = {"Authorization": "Bearer dev-service-token"}
    async with httpx.AsyncClient(base_url=p.url) as http:
        r = await http.get(f"/internal/v1/tenants/{t['victim']['id']}/secrets/x", headers=service)
    return f"{r.status_code}: a process running both planes does not serve `/internal/`"


async def claim_a_number(p: Platform, t: dict) -> str:
    user = {
        "username": f"u{uuid.uuid4().hex[:8]}",
        "password": "correct horse",
        "role": "tenant-admin",
    }
    token_url = "/realms/switchboard/protocol/openid-connect/token"
    async with httpx.AsyncClient(base_url=p.url, timeout=30) as http:
        made = await http.post(f"/v1/tenants/{t['attacker']['id']}/users", json=user, headers=AUTH)
        form = {"grant_type": "password", "client_id": "switchboard"}
        login = {"username": made.json()["sign_in_name"], "password": user["password"]}
        token = (await http.post(token_url, data=form | login)).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        claim = await http.post(
            f"/v1/tenants/{t['attacker']['id']}/numbers",
            json={"e164": "+15550123456", "agent_id": t["attacker"]["agent_id"]},
            headers=admin,
        )
        users = await http.get(f"/v1/tenants/{t['attacker']['id']}/users", headers=AUTH)
        uid = next(u["id"] for u in users.json()["items"] if u["username"] == user["username"])
        await http.patch(
            f"/v1/tenants/{t['attacker']['id']}/users/{uid}", json={"disabled": True}, headers=AUTH
        )
        after = await http.get(f"/v1/tenants/{t['attacker']['id']}", headers=admin)
    return (
        f"claiming a platform-account number: {claim.status_code}; the user disabled, its "
        f"token's next request: {after.status_code}"
    )


async def reader_killed_every_time(p: Platform, t: dict) -> str:
    """A background-path document whose reader is killed (SIGKILL, as the kernel's OOM
    killer does) every time it starts; then an ordinary upload of the same tenant."""
    owner = (await asyncio.to_thread(set_up_tenant, p.url))["id"]
    big = ("# Notes\n\n" + "Parking is on Mill Lane behind the building. " * 8000).encode()
    kills = 0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=p.url, timeout=60, headers=AUTH) as http:
        r = await upload(http, owner, "notes.md", big)
        doc = r.json()
        for _ in range(3000):  # 60 s at most
            kills += kill_readers(p.proc.pid)
            doc = (await http.get(f"/v1/tenants/{owner}/documents/{doc['id']}")).json()
            if doc["status"] in ("ready", "failed"):
                break
            await asyncio.sleep(0.02)
        secs = time.monotonic() - started
        after = (await upload(http, owner, "hours.md", b"# Hours\n\nOpen 9 to 5.\n")).json()
    return (
        f"{r.status_code}, {kills} readers killed: {doc['status']} in {secs:.1f} s "
        f"({doc.get('error')}); the next upload: {after.get('status')}"
    )


def kill_readers(parent: int) -> int:
    """SIGKILL every document reader (``python -m knowledge.sandbox``) the platform runs."""
    killed = 0
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"knowledge.sandbox" in cmdline:
            try:
                os.kill(int(proc.name), 9)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


async def timeline_poison_and_flood(p: Platform, t: dict) -> str:
    """The timeline writer's own code against the real Redis (the platform here runs
    without it): one event the store refuses, and one tenant's 5,000 events ahead of
    another tenant's 10."""
    from redis.asyncio import Redis

    from control_plane.calls.writer import TimelineWriter
    from media_plane.agent import CallEventRecord
    from media_plane.events import RedisStreamEventSink

    url = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    redis = Redis.from_url(url, decode_responses=True)
    base = f"attacks:events:{uuid.uuid4().hex}"
    written: list[str] = []

    async def store(events: list[CallEventRecord]) -> None:
        if any(e.kind == "poison" for e in events):
            raise ValueError("the store refuses this event")
        written.extend(e.event_id for e in events)

    def events(tenant: str, n: int, kind: str = "turn.user") -> list[CallEventRecord]:
        return [
            CallEventRecord(uuid.uuid4().hex, tenant, "call_1", i, kind, time.time(), {})
            for i in range(n)
        ]

    try:
        await redis.ping()
    except OSError as e:
        return f"not measured: no Redis ({e})"
    sink = RedisStreamEventSink(redis, base)
    writer = TimelineWriter(redis, base, store, consumer="bench", block_ms=50)
    flood, others = events("ten_flood", 5000), events("ten_other", 10)
    await sink.publish(events("ten_poison", 1, "poison"))
    for start in range(0, len(flood), 500):
        await sink.publish(flood[start : start + 500])
    task = asyncio.create_task(writer.run())
    try:
        for _ in range(1000):  # 20 s at most
            if written:
                break
            await asyncio.sleep(0.02)
        await sink.publish(others)
        wanted = {e.event_id for e in others}
        for _ in range(1000):
            if wanted <= set(written):
                break
            await asyncio.sleep(0.02)
        waiting = len(flood) - len(set(written) - wanted)
        for _ in range(1000):
            if len(written) >= len(flood) + len(others) and await redis.xlen(f"{base}:dead"):
                break
            await asyncio.sleep(0.02)
        dead = await redis.xlen(f"{base}:dead")
        return (
            f"poison: {dead} dead-lettered with the reason; another tenant's 10 events, sent "
            f"behind a flood of 5,000, written while {waiting:,} of the flood still waited; "
            f"{len(set(written))} of {len(flood) + len(others)} written, once each "
            f"({len(written) - len(set(written))} twice)"
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        keys = [key async for key in redis.scan_iter(match=f"{base}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def failing_provider_with_a_key(p: Platform, t: dict) -> str:
    """A tenant's Claude key stored, its agent on Claude, which cannot be reached here: the
    call retries, falls back to the offline engine and logs the failures. Is the key in the
    log? (A traceback through a frame holding a key: ``tests/unit/test_cli.py``.)"""
    key = "sk-ant-bench-" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=p.url, timeout=60, headers=AUTH) as http:
        owner = await asyncio.to_thread(set_up_tenant, p.url)
        await http.put(f"/v1/tenants/{owner['id']}/secrets/anthropic_api_key", json={"value": key})
        agent = {"name": "a", "greeting": "Hello.", "providers": {"llm": "anthropic"}}
        await http.put(f"/v1/tenants/{owner['id']}/agents/{owner['agent_id']}", json=agent)
    await place_call(
        p.url, owner["number"], [Utterance("Where can I park?")], token=TOKEN,
        tenant_id=owner["id"],
    )  # fmt: skip
    p.log.flush()
    log = (p.data / "platform.log").read_text(errors="replace")
    failures = sum(1 for line in log.splitlines() if "Anthropic" in line and "ERROR" in line)
    tracebacks = log.count("Traceback (most recent call last)")
    leaked = log.count(key)
    return f"the log: {failures} Claude failures, {tracebacks} tracebacks, the key {leaked} times"


async def username_probing(p: Platform, t: dict) -> str:
    async with httpx.AsyncClient(base_url=p.url, timeout=30, headers=AUTH) as http:
        first = await asyncio.to_thread(set_up_tenant, p.url)
        second = await asyncio.to_thread(set_up_tenant, p.url)
        user = {"username": "alice", "password": "a long enough password", "role": "tenant-admin"}
        mine = await http.post(f"/v1/tenants/{first['id']}/users", json=user)
        other = await http.post(f"/v1/tenants/{second['id']}/users", json=user)
        again = await http.post(f"/v1/tenants/{first['id']}/users", json=user)
    return (
        f"a name another tenant holds: {other.status_code}; the tenant's own name again: "
        f"{again.status_code} (first: {mine.status_code})"
    )


def production_settings() -> str:
    from pydantic import ValidationError

    from switchboard.settings import Settings

    try:
        Settings(
            _env_file=None, environment="production", admin_token="x", service_token="password",
            bootstrap_admin_password="a", tenant_outbound_allow_private=True,
            oidc_server_url="http://keycloak:8080", secrets_key=None,
        )  # fmt: skip
    except ValidationError as refused:
        named = sorted(set(re.findall(r"SWITCHBOARD_[A-Z_]+", str(refused))))
        return f"refused at start, naming {len(named)} settings: {', '.join(named)}"
    return "accepted"


async def production(p: Platform, t: dict) -> str:
    return production_settings()


ATTACKS: list[tuple[str, Callable[[Platform, dict], Awaitable[str]]]] = [
    ("one media message of 16 MB", lambda p, t: huge_message(p, t, 16)),
    ("one of 4 MB", lambda p, t: huge_message(p, t, 4)),
    ("media frames as fast as the socket takes them, for up to 10 s", flood),
    ("a binary frame before `start`, then close (x3, plan of 2)", binary_before_start),
    ("`dtmf` or `mark` as a string, deeply nested JSON", malformed),
    ("20 concurrent signed webhooks, `max_concurrent_calls=1`", concurrent_webhooks),
    ("a 128 MB body to `/internal/v1/events`, no token", big_unauthenticated_body),
    ("12 x 5 MB bodies to `/v1/tenants`, no token", many_bodies),
    ("260 wrong passwords in 20 s, known and unknown users", password_guessing),
    ("an agent whose `llm_url` is an internal admin path", llm_url_internal),
    ('a schema pattern `"^(a+)+$"` against `aaaa…!`', redos_schema),
    ("5,000 `mark` echoes of 4 KB", mark_flood),
    ("a call held open past the plan's monthly minutes", held_open),
    ("a JWT header of 5,000 nested arrays; a tool schema 600 deep", absurd_inputs),
    ("1,000 forged stream upgrades from one address", forged_upgrades),
    (
        "8 concurrent uploads of a 9 KB PDF whose page draws a 3 MB content stream",
        concurrent_uploads,
    ),
    ("that PDF alone", lambda p, t: one_hostile_upload(p, t, "draw.pdf", formats.heavy_pdf(3))),
    (
        "an HTML upload of 50k nested `<div>`s",
        lambda p, t: one_hostile_upload(p, t, "deep.html", formats.nested_html(50_000)),
    ),
    (
        "a DOCX whose `document.xml` inflates to 1.5 GB",
        lambda p, t: one_hostile_upload(p, t, "bomb.docx", formats.docx_bomb(1536)),
    ),
    ("a CSV field of 200 KB; a DOCX with malformed XML", malformed_files),
    (
        "BM25 scores of a tenant's search before and after another tenant uploads",
        cross_tenant_scores,
    ),
    ("1,000 secrets PUT", many_secrets),
    ("the internal API in single-process mode, with the service token", internal_api),
    (
        "a background document whose reader is killed (SIGKILL) every time it starts",
        reader_killed_every_time,
    ),
    (
        "one event the timeline store refuses; one tenant's flood of 5,000 events",
        timeline_poison_and_flood,
    ),
    (
        "a call whose Claude cannot be reached, holding its tenant's key",
        failing_provider_with_a_key,
    ),
    ("creating a username another tenant holds", username_probing),
    ("a tenant admin binds a number on the platform's account; then is disabled", claim_a_number),
    (
        "`production`: 1-character admin token, service token `password`, bootstrap password "
        "`a`, private tools, no public URL, Keycloak over http, no secrets key",
        production,
    ),
]


def set_up(url: str, data: Path) -> dict[str, dict]:
    with httpx.Client(base_url=url, timeout=30) as api:
        return {
            "victim": tenant(api, DOCUMENT),
            "attacker": tenant(api, max_concurrent_calls=2, monthly_minutes=1000),
            "one_line": tenant(api, max_concurrent_calls=1, monthly_minutes=1000),
            "short": short_of_minutes(api, data),
            "bystander": tenant(api),
        }


def short_of_minutes(api: httpx.Client, data: Path) -> dict:
    """A tenant whose plan has 15 s of this month's minutes left (a 45 s call used them),
    written straight into the platform's own timeline store."""
    t = tenant(api, max_concurrent_calls=5, monthly_minutes=1)
    asyncio.run(a_call_earlier(data, t["id"], 45))
    return t


async def run(only: str | None = None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        p = Platform(Path(tmp))
        try:
            t = await asyncio.to_thread(set_up, p.url, p.data)
            baseline = [await victim_latency_ms(p.url, t["victim"]) for _ in range(3)]
            base = statistics.median([b for b in baseline if b is not None])
            rows = [
                f"Victim's baseline reply latency (median of 3): {base:.0f} ms.",
                "",
                "| what was sent | what happened now | victim's reply vs baseline "
                "| `/healthz` p99 meanwhile |",
                "| --- | --- | --- | --- |",
            ]
            for sent, attack in ATTACKS:
                if only and only not in sent:
                    continue
                stop = asyncio.Event()
                health = asyncio.create_task(healthz_p99(p.url, stop))
                victim = asyncio.create_task(victim_latency_ms(p.url, t["victim"]))
                try:
                    outcome = await attack(p, t)
                except Exception as failed:  # the table says so rather than stopping
                    outcome = f"attack failed: {failed!r}"[:120]
                latency = await victim
                stop.set()
                p99 = await health
                ratio = f"{latency / base:.2f}x" if latency else "not answered"
                rows.append(f"| {sent} | {outcome} | {ratio} | {p99:.0f} ms |")
                print(rows[-1], flush=True)
            return "\n".join(rows)
        finally:
            p.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-doc", action="store_true")
    parser.add_argument("--only", help="run the attacks whose row contains this text")
    args = parser.parse_args()
    table = asyncio.run(run(args.only))
    print(table)
    if args.write_doc and not args.only:
        write_between(DOC, BEGIN, END, table)


if __name__ == "__main__":
    main()
