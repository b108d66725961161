"""The platform as a fleet, for real: a control-plane process and two media processes
behind nginx (``infra/nginx/``, consistent hashing on the call key), coordinated in a real
Redis. Every request and the stream of each call land on one process; a tenant's lines,
a provider's retries and a call's outcome hold across processes."""

import asyncio
import json
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from switchboard.caller import Utterance, place_call
from switchboard.fleet import Fleet, nginx_binary
from switchboard.phones import ExotelPhone, TwilioPhone, signed_by_twilio
from switchboard.settings import DEV_TWILIO_AUTH_TOKEN
from tests.conftest import TESTS_REFUSE_FREELY, TOKEN, make_tenant
from tests.e2e.test_call import wait_for_end
from tests.unit.test_plans import put_on_plan
from tests.usage import a_call_earlier

pytestmark = pytest.mark.e2e

CALLS = 100  # Twilio's and Exotel's together


@pytest.fixture(scope="module")
def fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    try:
        nginx_binary()
    except RuntimeError as e:
        if os.environ.get("CI"):
            pytest.fail(f"nginx is required in CI: {e}")
        pytest.skip(str(e))
    mine = uuid.uuid4().hex[:8]  # names of our own: other tests share this Redis
    env = {
        "SWITCHBOARD_ADMIN_TOKEN": TOKEN,
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_TELEPHONY_REFUSALS_FREE": str(TESTS_REFUSE_FREELY),
        "SWITCHBOARD_CALLS_PREFIX": f"test:calls:{mine}",
        "SWITCHBOARD_EVENTS_STREAM": f"test:events:{mine}",
        "SWITCHBOARD_AGENT_CHANGES_CHANNEL": f"test:changes:{mine}",
        "SWITCHBOARD_KNOWLEDGE_JOBS": f"test:jobs:{mine}",
    }
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), media_processes=2, redis_url=redis_url, env=env)
    try:
        yield fleet
    finally:
        fleet.stop()


async def short_call(phone, number: str) -> str | None:
    """A whole call, briefly: the webhook, the stream until the greeting's first audio,
    the hang-up, and the provider's follow-up request. Its call id."""
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await phone.dial(http, number, "+15550100999")
        assert answer.stream_url, answer
        async with websockets.connect(
            answer.stream_url, additional_headers=answer.headers, max_size=2**22
        ) as ws:
            for message in phone.opening():
                await ws.send(json.dumps(message))
            while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("event") != "media":
                pass  # the greeting's first audio: the call runs
            await ws.send(json.dumps(phone.stop()))
        await phone.after_stream(http)
        return answer.call_id


def where(fleet: Fleet, pattern: str) -> dict[str, set[int]]:
    """call id -> the media processes (by index) whose log has ``pattern`` for it."""
    found: dict[str, set[int]] = defaultdict(set)
    for n, process in enumerate(fleet.media):
        for line in process.log_path.read_text().splitlines():
            if pattern in line and (m := re.search(r"'call_id': '([^']+)'", line)):
                found[m.group(1)].add(n)
    return found


async def test_every_request_and_stream_of_a_call_reach_one_process(fleet):
    with httpx.Client(base_url=fleet.url) as api:
        twilio = make_tenant(api)
        exotel = make_tenant(api, telephony="exotel")
    sem = asyncio.Semaphore(8)

    async def one(n: int) -> tuple[str, str | None]:
        async with sem:
            if n % 2:
                return "exotel", await short_call(ExotelPhone(fleet.url), exotel["number"])
            return "twilio", await short_call(TwilioPhone(fleet.url), twilio["number"])

    calls = await asyncio.gather(*(one(n) for n in range(CALLS)))
    await asyncio.sleep(1)  # the last follow-ups are logged
    started = where(fleet, "call.started")
    announced = where(fleet, "call.announced")
    ended = {
        "twilio": where(fleet, "twilio.stream_ended"),
        "exotel": where(fleet, "exotel.stream_ended"),
    }
    for provider, call_id in calls:
        assert call_id is not None
        owner = started[call_id]
        assert len(owner) == 1, (provider, call_id, owner)  # the stream: one process
        assert ended[provider][call_id] == owner  # the follow-up: the same one
        if provider == "exotel":  # its first request too: it carries the CallSid
            assert announced[call_id] == owner
    # Both processes took calls: the ring spreads them.
    assert {n for owners in started.values() for n in owners} == {0, 1}
    # What the fleet's metrics say of it: every call admitted once (by whichever process
    # took its first request), each lasted, none is live any more.
    samples = [metric_samples(process.url) for process in fleet.media]
    admitted = sum(s.get(("switchboard_calls_total", "other", "admitted"), 0) for s in samples)
    assert admitted == CALLS
    durations = ("switchboard_call_duration_seconds_count", "other", "")
    lasted = sum(s.get(durations, 0) for s in samples)
    assert lasted == CALLS
    assert all(s[("switchboard_live_calls", "", "")] == 0 for s in samples)
    headroom = [s[("switchboard_call_headroom", "", "")] for s in samples]
    assert headroom == [s[("switchboard_call_capacity", "", "")] for s in samples]


def metric_samples(url: str) -> dict[tuple[str, str, str], float]:
    """A media process's /metrics: (name, tenant label, outcome label) -> value."""
    text = httpx.get(f"{url}/metrics").raise_for_status().text
    return {
        (s.name, s.labels.get("tenant", ""), s.labels.get("outcome", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def one_line_tenant(url: str) -> dict:
    """A tenant whose plan has one line."""
    with httpx.Client(base_url=url) as api:
        tenant = make_tenant(api)
        put_on_plan(api, tenant["id"], max_concurrent_calls=1, monthly_minutes=100)
    return tenant


async def test_a_retry_on_the_other_process_gets_the_same_call_and_lines_hold_fleet_wide(
    fleet,
):
    tenant = await asyncio.to_thread(one_line_tenant, fleet.url)

    async def ring(http: httpx.AsyncClient, sid: str, base: str) -> str:
        form = {"CallSid": sid, "AccountSid": "AC" + "1" * 32, "From": "+15550100999"}
        form["To"] = tenant["number"]
        # Twilio signs the URL it calls: the public one (nginx's), wherever it lands.
        public = f"{fleet.url}/twilio/voice"
        r = await http.post(
            f"{base}/twilio/voice",
            data=form,
            headers=signed_by_twilio(DEV_TWILIO_AUTH_TOKEN, public, form),
        )
        assert r.status_code == 200, r.text
        return r.text

    first, other = fleet.media
    async with httpx.AsyncClient(timeout=30) as http:
        sid = "CA" + uuid.uuid4().hex
        answers = [await ring(http, sid, first.url), await ring(http, sid, other.url)]
        assert "<Stream" in answers[0] and answers[0] == answers[1]  # the same call
        # 20 webhooks for other calls at once, through nginx, to either process: the
        # tenant's one line is held already, so none is admitted.
        rivals = await asyncio.gather(
            *(ring(http, "CA" + uuid.uuid4().hex, fleet.url) for _ in range(20))
        )
    assert all("<Stream" not in answer and "busy" in answer for answer in rivals)


async def test_calls_under_way_together_share_the_months_last_minutes(fleet):
    with httpx.Client(base_url=fleet.url) as api:
        tenant = make_tenant(api)
        put_on_plan(api, tenant["id"], max_concurrent_calls=5, monthly_minutes=1)
    await a_call_earlier(fleet.control.data, tenant["id"], 48)  # 12 s of the minute left
    calls = await asyncio.gather(
        *(
            place_call(
                fleet.url, tenant["number"], [Utterance("Where can I park?")],
                token=TOKEN, tenant_id=tenant["id"], hang_up=False,
            )
            for _ in range(3)
        )
    )  # fmt: skip
    limits = []
    for report in calls:
        assert report.hung_up_by == "agent"
        events = await wait_for_end(fleet.url, tenant["id"], report.call_id)
        assert events[-1]["data"]["reason"] == "time_limit"
        limits += [e["data"] for e in events if e["kind"] == "call.time_limit"]
    # Together they ran out the 12 s once (each used to be allowed all 12).
    assert [limit["limit"] for limit in limits] == ["minutes"] * 3
    assert sum(limit["secs"] for limit in limits) <= 12 + 1.5
