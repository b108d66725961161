"""Redis stopped mid-call, for real: a media process's Redis (the call ledger, the event
stream) goes away while a call is under way. The call goes on to its natural end and its
timeline is kept whole; a new call hears the apology instead of an uncounted line; once
Redis is back, calls are admitted again."""

import asyncio
import os
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest

from media_plane.telephony.session import UNAVAILABLE
from switchboard.demo.run import free_port
from tests.conftest import (
    PlatformProcess,
    a_call_under_way,
    answered_every_turn,
    make_tenant,
    post_as_twilio,
)
from tests.e2e.test_call import wait_for_end

pytestmark = pytest.mark.e2e


class RedisServer:
    """A Redis of this test's own, to stop and start."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                return
            subprocess.run(["sleep", "0.05"])
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def ring(url: str, number: str) -> str:
    form = {
        "CallSid": "CA" + uuid.uuid4().hex,
        "AccountSid": "AC" + "1" * 32,
        "From": "+15550100999",
        "To": number,
    }
    with httpx.Client(base_url=url) as http:
        r = post_as_twilio(http, "/twilio/voice", form)
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.text)
    return "stream" if root.find("Connect/Stream") is not None else root.findtext("Say") or ""


async def test_a_live_call_outlives_redis_and_new_calls_hear_an_apology(tmp_path):
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("needs redis-server (Debian: redis-server)")
    redis = RedisServer(free_port())
    redis.start()
    process = PlatformProcess(tmp_path / "platform", redis_url=redis.url)
    try:
        with httpx.Client(base_url=process.url) as api:
            tenant = make_tenant(api)
        call = await a_call_under_way(process.url, tenant)
        redis.kill()
        said = await asyncio.to_thread(ring, process.url, tenant["number"])
        assert said == UNAVAILABLE
        report = await call
        assert answered_every_turn(report)
        # Its timeline went straight to the store while Redis was away: nothing lost.
        events = await wait_for_end(process.url, tenant["id"], report.call_id)
        assert [e["kind"] for e in events].count("turn.user") == 2
        redis.start()  # back, empty: calls are admitted again
        for _ in range(50):
            if await asyncio.to_thread(ring, process.url, tenant["number"]) == "stream":
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("calls were not admitted once Redis was back")
    finally:
        process.stop()
        redis.kill()
