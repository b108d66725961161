"""Shared fixtures: a real platform process for end-to-end tests, an in-process app for
API tests. Tests never read a developer's .env: every setting they need is passed in."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from switchboard.demo.run import free_port, wait_ready
from switchboard.server import create_app
from switchboard.settings import Settings

TOKEN = "test-operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None, environment="test", data_dir=tmp_path / "data", admin_token=TOKEN
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The whole app in-process, models not pre-loaded (API and webhook tests)."""
    with TestClient(create_app(settings, warm=False)) as c:
        yield c


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``switchboard up``: uvicorn on a loopback port, as a user runs it."""
    port = free_port()
    data = tmp_path_factory.mktemp("platform")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")} | {
        "SWITCHBOARD_DATA_DIR": str(data),
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_ADMIN_TOKEN": TOKEN,
        "SWITCHBOARD_ENVIRONMENT": "test",
    }
    log = (data / "platform.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "up"], env=env, stdout=log, stderr=log, cwd=data
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def unique_number() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


def make_tenant(
    api: httpx.Client | TestClient, document: str | None = None, **agent: object
) -> dict:
    """A tenant with an agent, a bound number and optionally one document."""
    body = {
        "name": "Test Clinic",
        "agent": {"name": "Reception", "greeting": "Hello, you have reached the test clinic."}
        | agent,
    }
    r = api.post("/v1/tenants", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
    tenant = r.json()
    number = unique_number()
    r = api.post(
        f"/v1/tenants/{tenant['id']}/numbers",
        json={"e164": number, "agent_id": tenant["agent"]["id"]},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    if document is not None:
        r = api.post(
            f"/v1/tenants/{tenant['id']}/documents",
            files={"file": ("facts.md", document.encode())},
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
    return {"id": tenant["id"], "agent_id": tenant["agent"]["id"], "number": number}
