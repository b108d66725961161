"""Large documents through the background worker, its jobs in a real Redis: statuses,
retries, the dead-letter list and replay, and recovery of a job a dead worker left."""

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from control_plane.kit.db import session_scope
from control_plane.knowledge.ingest import MAX_ATTEMPTS, Job, RedisIngestQueue
from control_plane.knowledge.models import Document
from switchboard.server import create_app
from switchboard.settings import Settings
from tests import formats
from tests.conftest import AUTH, TOKEN, kill_every_reader, make_tenant

LARGE = b"# Parking\n\nFree parking for patients is on Mill Lane.\n\n" + b"Filler text. " * 40


@pytest.fixture
def jobs_key() -> str:
    return f"test:knowledge:{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(tmp_path, redis_url, jobs_key) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "data",
        admin_token=TOKEN,
        redis_url=redis_url,
        knowledge_jobs=jobs_key,
        knowledge_inline_bytes=100,  # every test document here goes to the worker
    )
    with TestClient(create_app(settings, warm=False)) as c:
        yield c
    redis = Redis.from_url(redis_url)
    redis.delete(jobs_key, *redis.keys(f"{jobs_key}:*"))


def upload(client, tenant_id: str, filename: str, data: bytes) -> dict:
    r = client.post(
        f"/v1/tenants/{tenant_id}/documents", files={"file": (filename, data)}, headers=AUTH
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    return r.json()


def settled(client, tenant_id: str, document_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        docs = client.get(f"/v1/tenants/{tenant_id}/documents", headers=AUTH).json()["items"]
        doc = next(d for d in docs if d["id"] == document_id)
        if doc["status"] in ("ready", "failed"):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"document {document_id} never settled: {doc}")


def found(client, tenant_id: str) -> list[str]:
    r = client.get(
        f"/v1/tenants/{tenant_id}/knowledge/search", params={"q": "parking"}, headers=AUTH
    )
    return [h["text"] for h in r.json()]


class Failing:
    """Make the index fail its next ``times`` writes, as an outage would."""

    def __init__(self, monkeypatch, store, times: int):
        self.left = times
        real = store.upsert

        def upsert(*args, **kwargs):
            if self.left > 0:
                self.left -= 1
                raise ConnectionError("index unavailable")
            return real(*args, **kwargs)

        monkeypatch.setattr(store, "upsert", upsert)


def test_a_large_document_is_indexed_in_the_background(client):
    t = make_tenant(client)
    doc = upload(client, t["id"], "parking.md", LARGE)
    ready = settled(client, t["id"], doc["id"])
    assert ready["status"] == "ready" and ready["chunks"] >= 1 and ready["error"] is None
    assert any("Mill Lane" in text for text in found(client, t["id"]))


def test_an_unreadable_document_fails_with_the_reason_without_retries(client):
    t = make_tenant(client)
    doc = upload(client, t["id"], "scan.pdf", formats.image_only_pdf())
    failed = settled(client, t["id"], doc["id"])
    assert failed["status"] == "failed" and "needs OCR" in failed["error"]
    assert client.get("/v1/knowledge/dead-letters", headers=AUTH).json() == []
    assert found(client, t["id"]) == []


def test_a_passing_outage_is_retried(client, monkeypatch):
    t = make_tenant(client)
    Failing(monkeypatch, client.app.state.knowledge, times=MAX_ATTEMPTS - 1)
    doc = upload(client, t["id"], "parking.md", LARGE)
    assert settled(client, t["id"], doc["id"])["status"] == "ready"
    assert any("Mill Lane" in text for text in found(client, t["id"]))


def test_a_lasting_outage_dead_letters_the_job_and_an_admin_replays_it(client, monkeypatch):
    t = make_tenant(client)
    outage = Failing(monkeypatch, client.app.state.knowledge, times=MAX_ATTEMPTS)
    doc = upload(client, t["id"], "parking.md", LARGE)
    failed = settled(client, t["id"], doc["id"])
    assert failed["status"] == "failed"
    assert f"after {MAX_ATTEMPTS} attempts" in failed["error"]
    assert outage.left == 0 and found(client, t["id"]) == []

    letters = client.get("/v1/knowledge/dead-letters", headers=AUTH).json()
    assert [(x["document_id"], x["attempts"]) for x in letters] == [(doc["id"], MAX_ATTEMPTS)]
    assert "index unavailable" in letters[0]["reason"]

    # The index is back: replay.
    r = client.post(f"/v1/knowledge/dead-letters/{doc['id']}/replay", headers=AUTH)
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert settled(client, t["id"], doc["id"])["status"] == "ready"
    assert client.get("/v1/knowledge/dead-letters", headers=AUTH).json() == []
    again = client.post(f"/v1/knowledge/dead-letters/{doc['id']}/replay", headers=AUTH)
    assert again.status_code == 404


MOVED = b"# Parking\n\nParking has moved to Oak Street.\n\n" + b"Filler text. " * 40


class FailingHalfway:
    """Make the index fail its next ``times`` writes of text containing ``marker`` after
    taking the document's old chunks out, as a write cut off part-way would."""

    def __init__(self, monkeypatch, store, marker: str, times: int):
        self.left = times
        real = store.upsert

        def upsert(tenant_id, document_id, chunks):
            if self.left > 0 and any(marker in c.text for c in chunks):
                self.left -= 1
                store.delete_document(tenant_id, document_id)
                raise ConnectionError("index unavailable")
            return real(tenant_id, document_id, chunks)

        monkeypatch.setattr(store, "upsert", upsert)


def original(client, tenant_id: str, document_id: str) -> bytes:
    link = client.get(
        f"/v1/tenants/{tenant_id}/documents/{document_id}/original", headers=AUTH
    ).json()["url"]
    return client.get(link.removeprefix(client.app.state.settings.base_url)).content


def stored(client, tenant_id: str) -> list[str]:
    return [o.name for o in client.portal.call(client.app.state.objects.list, tenant_id)]


def test_an_unreadable_replacement_leaves_the_previous_version_answering(client):
    t = make_tenant(client)
    first = settled(client, t["id"], upload(client, t["id"], "parking.md", LARGE)["id"])
    again = upload(client, t["id"], "parking.md", b"\n \n" * 100)  # no text at all
    assert again["id"] == first["id"] and again["chunks"] == first["chunks"]
    failed = settled(client, t["id"], first["id"])
    assert failed["status"] == "failed"
    assert failed["error"] == "document is empty; the previous version is still in use"
    assert (failed["chunks"], failed["sha256"]) == (first["chunks"], first["sha256"])
    assert any("Mill Lane" in text for text in found(client, t["id"]))
    assert original(client, t["id"], first["id"]) == LARGE
    assert stored(client, t["id"]) == [f"documents/{first['id']}.md"]  # the upload is dropped


def test_a_replacement_cut_off_by_an_outage_keeps_the_previous_version_until_replayed(
    client, monkeypatch
):
    t = make_tenant(client)
    first = settled(client, t["id"], upload(client, t["id"], "parking.md", LARGE)["id"])
    FailingHalfway(monkeypatch, client.app.state.knowledge, "Oak Street", times=MAX_ATTEMPTS)
    upload(client, t["id"], "parking.md", MOVED)
    failed = settled(client, t["id"], first["id"])
    assert failed["status"] == "failed" and f"after {MAX_ATTEMPTS} attempts" in failed["error"]
    assert failed["error"].endswith("the previous version is still in use")
    # Each cut-off write took the old chunks out; each time they were put back.
    texts = found(client, t["id"])
    assert any("Mill Lane" in x for x in texts) and not any("Oak Street" in x for x in texts)
    assert original(client, t["id"], first["id"]) == LARGE

    r = client.post(f"/v1/knowledge/dead-letters/{first['id']}/replay", headers=AUTH)
    assert r.status_code == 202
    ready = settled(client, t["id"], first["id"])
    assert ready["status"] == "ready" and ready["error"] is None
    assert ready["sha256"] != first["sha256"]
    texts = found(client, t["id"])
    assert any("Oak Street" in x for x in texts) and not any("Mill Lane" in x for x in texts)
    assert original(client, t["id"], first["id"]) == MOVED
    assert stored(client, t["id"]) == [f"documents/{first['id']}.md"]


async def test_a_job_a_dead_worker_left_is_taken_up_again_and_a_live_ones_is_not(
    redis_url, jobs_key
):
    from redis.asyncio import Redis as AsyncRedis

    redis = AsyncRedis.from_url(redis_url, decode_responses=True)
    first = RedisIngestQueue(redis, jobs_key, consumer="pod-a")
    other = RedisIngestQueue(redis, jobs_key, consumer="pod-b")
    try:
        await first.push(Job("ten_1", "doc_1"))
        taken = await first.take()
        assert taken == Job("ten_1", "doc_1")
        # Another replica starts while pod-a works on it: the job is pod-a's.
        await other.recover()
        assert await other.take() is None
        # pod-a dies: its heartbeat lapses, and the job comes back with its attempt counted.
        await redis.delete(f"{jobs_key}:alive:pod-a")
        await other.recover()
        again = await other.take()
        assert again == Job("ten_1", "doc_1", attempt=2)
        await other.done(again)
        assert await redis.llen(f"{jobs_key}:processing:pod-b") == 0
        assert await redis.llen(f"{jobs_key}:processing:pod-a") == 0
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{jobs_key}*")]
        await redis.delete(*keys)
        await redis.aclose()


def test_a_file_that_kills_its_reader_every_time_is_dead_lettered_with_the_reason(
    client, monkeypatch
):
    t = make_tenant(client)
    kill_every_reader(monkeypatch)
    doc = upload(client, t["id"], "parking.md", LARGE)
    failed = settled(client, t["id"], doc["id"])
    assert failed["status"] == "failed"
    assert failed["error"] == (
        f"could not be indexed after {MAX_ATTEMPTS} attempts: "
        "the worker died while parsing the document (signal 9)"
    )
    letters = client.get("/v1/knowledge/dead-letters", headers=AUTH).json()
    assert [(x["document_id"], x["attempts"]) for x in letters] == [(doc["id"], MAX_ATTEMPTS)]
    # The worker itself lived on: the next document is indexed.
    monkeypatch.undo()
    other = upload(client, t["id"], "hours.md", LARGE.replace(b"Parking", b"Hours"))
    assert settled(client, t["id"], other["id"])["status"] == "ready"


def left_mid_job(client, tenant_id: str, document_id: str, attempts: int) -> None:
    """The document's row as a worker killed while indexing it leaves it."""

    async def leave() -> None:
        async with session_scope(client.app.state.sessions) as session:
            doc = await session.get(Document, document_id)
            doc.status, doc.attempts = "processing", attempts

    client.portal.call(leave)


@pytest.mark.parametrize("with_redis", [False, True], ids=["in-process queue", "redis queue"])
def test_a_restarted_worker_takes_up_what_a_killed_one_left_and_gives_up_after_the_last(
    tmp_path, redis_url, jobs_key, with_redis
):
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "data",
        admin_token=TOKEN,
        redis_url=redis_url if with_redis else None,
        knowledge_jobs=jobs_key,
        knowledge_inline_bytes=100,
    )
    with TestClient(create_app(settings, warm=False)) as c:
        t = make_tenant(c)
        once = settled(c, t["id"], upload(c, t["id"], "parking.md", LARGE)["id"])
        always = settled(c, t["id"], upload(c, t["id"], "hours.md", LARGE + b"Hours.")["id"])
        # The process is killed while indexing both: one at its first attempt, the other
        # at its last (as a file that kills the worker each time would leave it).
        left_mid_job(c, t["id"], once["id"], attempts=1)
        left_mid_job(c, t["id"], always["id"], attempts=MAX_ATTEMPTS)
        if with_redis:
            redis = Redis.from_url(redis_url)
            for doc, attempt in ((once, 1), (always, MAX_ATTEMPTS)):
                redis.lpush(
                    f"{jobs_key}:processing:killed-pod", Job(t["id"], doc["id"], attempt).encode()
                )
    try:
        with TestClient(create_app(settings, warm=False)) as c:
            assert settled(c, t["id"], once["id"])["status"] == "ready"
            given_up = settled(c, t["id"], always["id"])
            assert given_up["status"] == "failed"
            assert given_up["error"] == (
                f"the worker died while parsing the document, {MAX_ATTEMPTS} times"
            )
            letters = c.get("/v1/knowledge/dead-letters", headers=AUTH).json()
            assert [(x["document_id"], x["attempts"]) for x in letters] == [
                (always["id"], MAX_ATTEMPTS)
            ]
    finally:
        redis = Redis.from_url(redis_url)
        redis.delete(jobs_key, *redis.keys(f"{jobs_key}:*"))


async def test_the_worker_waits_out_a_queue_outage():
    from control_plane.knowledge.ingest import IngestWorker, LocalIngestQueue

    class Outage(LocalIngestQueue):
        durable = True  # no database here to resume unfinished documents from

        def __init__(self):
            super().__init__()
            self.failures = 2

        async def take(self):
            if self.failures:
                self.failures -= 1
                raise ConnectionError("redis is restarting")
            return await super().take()

    queue = Outage()
    worker = IngestWorker(queue, None, None, None, None, backoff_secs=0.01)  # type: ignore[arg-type]
    processed: list[Job] = []

    async def process(job: Job) -> None:
        processed.append(job)

    worker.process = process  # type: ignore[method-assign]
    await queue.push(Job("ten_1", "doc_1"))
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if processed:
                break
            await asyncio.sleep(0.01)
        assert processed == [Job("ten_1", "doc_1")] and queue.failures == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
