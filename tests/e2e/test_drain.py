"""SIGTERM drains a real ``switchboard up`` process: readiness goes false at once, a new
call is refused with 503 (for the proxy to retry elsewhere), the call under way runs to
its natural end, whole, and the process then exits 0."""

import asyncio
import signal
import time
import uuid

import httpx
import pytest

from tests.conftest import (
    PlatformProcess,
    a_call_under_way,
    answered_every_turn,
    make_tenant,
    post_as_twilio,
)

pytestmark = pytest.mark.e2e


async def test_sigterm_finishes_the_live_call_admits_nothing_new_and_exits_0(tmp_path):
    process = PlatformProcess(tmp_path / "draining")
    try:
        tenant = await asyncio.to_thread(_tenant, process.url)
        call = await a_call_under_way(process.url, tenant)
        async with httpx.AsyncClient(base_url=process.url) as http:
            process.proc.send_signal(signal.SIGTERM)
            for _ in range(40):
                if (await http.get("/readyz")).status_code == 503:
                    break
                await asyncio.sleep(0.05)
            assert (await http.get("/readyz")).status_code == 503
            assert (await http.get("/healthz")).status_code == 200  # alive: its call goes on
            form = {
                "CallSid": "CA" + uuid.uuid4().hex,
                "AccountSid": "AC" + "1" * 32,
                "From": "+15550100999",
                "To": tenant["number"],
            }
            refused = await asyncio.to_thread(_ring, process.url, form)
            assert refused.status_code == 503, refused.text
        report = await call
        assert answered_every_turn(report), report  # whole
        started = time.monotonic()
        code = await asyncio.to_thread(process.proc.wait, 30)
        assert code == 0
        assert time.monotonic() - started < 30
        log = process.log_path.read_text()
        assert "platform.draining" in log and "platform.drained" in log
    finally:
        process.stop()


def _tenant(url: str) -> dict:
    with httpx.Client(base_url=url) as api:
        assert api.get("/readyz").json()["status"] == "ready"
        return make_tenant(api)


def _ring(url: str, form: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=url) as http:
        return post_as_twilio(http, "/twilio/voice", form)
