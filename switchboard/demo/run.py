"""``make demo``: the platform on embedded defaults, a tenant set up from nothing through
the API, and one simulated phone call, printed turn by turn."""

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from keycloak import KeycloakOpenID

from switchboard.caller import Utterance, place_call
from switchboard.cli import _print_turn
from switchboard.settings import DEV_ADMIN_PASSWORD, DEV_TWILIO_AUTH_TOKEN

DOCUMENT = Path(__file__).with_name("sunrise-dental.md")
NUMBER = "+15550100200"
SCRIPT = [
    Utterance("What time do you open on Saturday?"),
    Utterance("Tell me about teeth whitening."),
    Utterance("How much does a cleaning cost?", barge_in=True),
    Utterance("I would like to book an appointment for tomorrow at ten am."),
    Utterance("Thank you. Goodbye."),
]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until the platform at ``url`` answers its health check; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the platform exited during start-up (code {proc.returncode})")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError("the platform did not become ready in time")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _save_recording(url: str, auth: dict, tenant_id: str, call_id: str, into: Path) -> Path | None:
    """Fetch the call's recording through its presigned link, once the call has ended."""
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=url, headers=auth, timeout=30) as api:
        while time.monotonic() < deadline:
            r = api.get(f"/v1/tenants/{tenant_id}/calls/{call_id}/recording")
            if r.status_code == 200:
                path = into / f"{call_id}.wav"
                path.write_bytes(httpx.get(r.json()["url"], timeout=30).content)
                return path
            time.sleep(0.2)
    return None


def run_demo(port: int | None = None) -> None:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tempfile.mkdtemp(prefix="switchboard-demo-")
    env = {
        **os.environ,
        "SWITCHBOARD_DATA_DIR": data_dir,
        "SWITCHBOARD_PORT": str(port),
        # The simulated caller signs the call as Twilio would, with the platform's token.
        "SWITCHBOARD_TWILIO_AUTH_TOKEN": DEV_TWILIO_AUTH_TOKEN,
    }
    print(f"starting the platform on {url} (embedded defaults, data in {data_dir}) ...")
    proc = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "up"], env=env)
    try:
        try:
            wait_ready(url, proc)
        except RuntimeError as e:
            raise SystemExit(f"switchboard demo: {e}") from e
        # Log the admin in through the platform's own OIDC issuer, as a console would.
        oidc = KeycloakOpenID(server_url=url, realm_name="switchboard", client_id="switchboard")
        token = oidc.token("admin", DEV_ADMIN_PASSWORD)["access_token"]
        print("logged in as admin (platform-admin) through the built-in OIDC issuer")
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=30) as api:
            tenant = (
                api.post(
                    "/v1/tenants",
                    json={
                        "name": "Sunrise Dental",
                        "agent": {
                            "name": "Sunrise reception",
                            "greeting": "Hello, thank you for calling Sunrise Dental. "
                            "How can I help you today?",
                            "persona": "You are the friendly receptionist of Sunrise Dental.",
                            "transfer_number": "+15550100300",
                        },
                    },
                )
                .raise_for_status()
                .json()
            )
            tenant_id, agent_id = tenant["id"], tenant["agent"]["id"]
            api.post(
                f"/v1/tenants/{tenant_id}/numbers", json={"e164": NUMBER, "agent_id": agent_id}
            ).raise_for_status()
            with DOCUMENT.open("rb") as f:
                doc = (
                    api.post(
                        f"/v1/tenants/{tenant_id}/documents", files={"file": (DOCUMENT.name, f)}
                    )
                    .raise_for_status()
                    .json()
                )
        print(f"tenant Sunrise Dental ({tenant_id}), agent {agent_id}, number {NUMBER}")
        print(f"knowledge: {doc['filename']} -> {doc['chunks']} chunks, {doc['status']}")
        print(f"placing a simulated call to {NUMBER} ...\n")
        report = asyncio.run(
            place_call(
                url,
                NUMBER,
                SCRIPT,
                token=token,
                tenant_id=tenant_id,
                hang_up=False,
                twilio_auth_token=DEV_TWILIO_AUTH_TOKEN,
            )
        )
        print(f"call {report.call_id}")
        if report.greeting_first_audio_ms is not None:
            first = report.greeting_first_audio_ms
            print(f"  greeting's first audio {first:.0f} ms after the stream opened")
        for turn in report.turns:
            _print_turn(turn)
        print(f"  hung up by the {report.hung_up_by}")
        latencies = [t.latency_ms for t in report.turns if t.latency_ms is not None]
        if latencies:
            print(
                f"\nturn latency (end of caller speech -> first agent audio): "
                f"p50 {statistics.median(latencies):.0f} ms over {len(latencies)} turns"
            )
        saved = report.call_id and _save_recording(
            url, auth, tenant_id, report.call_id, Path(data_dir)
        )
        if saved:
            print(f"recording (stereo: caller left, agent right): {saved}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
