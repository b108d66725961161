"""One contract for every object store: the local directory (with this platform serving its
presigned links), MinIO's client against the S3 test server, and a real MinIO when
SWITCHBOARD_TEST_MINIO_URL (+ _ACCESS_KEY, _SECRET_KEY) is set."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI

from control_plane.objects.routes import router as objects_router
from control_plane.objects.store import (
    LocalObjectStore,
    MinioObjectStore,
    ObjectNotFound,
    ObjectStore,
    tenant_key,
)
from switchboard.demo.run import free_port
from tests.servers import LiveServer
from tests.servers.s3 import s3_app

BACKENDS = ["local", "s3-test-server"]
if os.environ.get("SWITCHBOARD_TEST_MINIO_URL"):
    BACKENDS.append("minio")


@pytest.fixture(params=BACKENDS)
async def store(request, tmp_path) -> Iterator[ObjectStore]:
    if request.param == "local":
        port = free_port()
        local = LocalObjectStore(tmp_path / "objects", b"k" * 32, f"http://127.0.0.1:{port}")
        app = FastAPI()
        app.include_router(objects_router)
        app.state.objects = local
        with LiveServer(app, port):
            yield local
    elif request.param == "s3-test-server":
        with LiveServer(s3_app("test-access", "test-secret-key"), free_port()) as s3:
            minio = MinioObjectStore(s3.url, "test-access", "test-secret-key", "recordings")
            await minio.ensure_bucket()
            await minio.ensure_bucket()  # idempotent: a second start finds the bucket
            yield minio
    else:
        minio = MinioObjectStore(
            os.environ["SWITCHBOARD_TEST_MINIO_URL"],
            os.environ["SWITCHBOARD_TEST_MINIO_ACCESS_KEY"],
            os.environ["SWITCHBOARD_TEST_MINIO_SECRET_KEY"],
            f"switchboard-test-{uuid.uuid4().hex[:8]}",
        )
        await minio.ensure_bucket()
        yield minio


@pytest.fixture
def tenant() -> str:
    return f"ten_{uuid.uuid4().hex[:12]}"


async def test_put_get_stat_list_delete(store, tenant):
    await store.put(tenant, "recordings/call_1.wav", b"RIFF-one", "audio/wav")
    await store.put(tenant, "documents/doc_1.md", b"# Prices", "text/markdown")
    assert await store.get(tenant, "recordings/call_1.wav") == b"RIFF-one"
    info = await store.stat(tenant, "recordings/call_1.wav")
    assert info is not None and (info.name, info.size) == ("recordings/call_1.wav", 8)
    assert [o.name for o in await store.list(tenant)] == [
        "documents/doc_1.md",
        "recordings/call_1.wav",
    ]
    assert [o.name for o in await store.list(tenant, "recordings/")] == ["recordings/call_1.wav"]

    await store.put(tenant, "recordings/call_1.wav", b"RIFF-two", "audio/wav")  # replaces
    assert await store.get(tenant, "recordings/call_1.wav") == b"RIFF-two"

    await store.delete(tenant, "recordings/call_1.wav")
    await store.delete(tenant, "recordings/call_1.wav")  # idempotent
    assert await store.stat(tenant, "recordings/call_1.wav") is None
    with pytest.raises(ObjectNotFound):
        await store.get(tenant, "recordings/call_1.wav")
    assert [o.name for o in await store.list(tenant)] == ["documents/doc_1.md"]


async def test_tenants_never_reach_each_others_objects(store, tenant):
    other = f"ten_{uuid.uuid4().hex[:12]}"
    await store.put(tenant, "recordings/call_1.wav", b"mine", "audio/wav")
    assert await store.list(other) == []
    assert await store.stat(other, "recordings/call_1.wav") is None
    with pytest.raises(ObjectNotFound):
        await store.get(other, "recordings/call_1.wav")
    # A tenant id that is a prefix of another's still sees only its own objects.
    await store.put(tenant + "x", "recordings/call_2.wav", b"theirs", "audio/wav")
    assert [o.name for o in await store.list(tenant)] == ["recordings/call_1.wav"]


@pytest.mark.parametrize("name", ["../other/recordings/x.wav", "a//b", "", "recordings/..", "a b"])
async def test_keys_that_could_escape_are_refused(store, tenant, name):
    with pytest.raises(ValueError):
        await store.put(tenant, name, b"x", "audio/wav")


def test_keys_are_tenant_prefixed():
    assert tenant_key("ten_1", "recordings/c.wav") == "tenants/ten_1/recordings/c.wav"
    with pytest.raises(ValueError):
        tenant_key("../ten_2", "recordings/c.wav")


async def test_presigned_url_serves_the_object_and_nothing_else(store, tenant):
    await store.put(tenant, "recordings/call_1.wav", b"RIFF-audio", "audio/wav")
    await store.put(tenant, "recordings/call_2.wav", b"RIFF-other", "audio/wav")
    url = await store.presigned_url(tenant, "recordings/call_1.wav", timedelta(minutes=5))
    async with httpx.AsyncClient() as http:
        ok = await http.get(url)
        assert ok.status_code == 200 and ok.content == b"RIFF-audio"

        # The same signature on another object's URL is refused.
        parts = urlsplit(url)
        other = urlunsplit(parts._replace(path=parts.path.replace("call_1", "call_2")))
        assert (await http.get(other)).status_code == 403

        # So is a link whose expiry was pushed out, and one that has expired.
        query = dict(parse_qsl(parts.query))
        for field in ("expires", "X-Amz-Expires"):
            if field in query:
                query[field] = str(int(query[field]) + 3600)
        stretched = urlunsplit(parts._replace(query=urlencode(query)))
        assert (await http.get(stretched)).status_code == 403

        short = await store.presigned_url(tenant, "recordings/call_1.wav", timedelta(seconds=1))
        await asyncio.sleep(2.1)
        assert (await http.get(short)).status_code == 403


@pytest.mark.parametrize("expires", [timedelta(0), timedelta(days=8)])
async def test_link_lifetimes_are_s3s(store, tenant, expires):
    with pytest.raises(ValueError):
        await store.presigned_url(tenant, "recordings/call_1.wav", expires)


async def test_wrong_credentials_are_refused():
    with LiveServer(s3_app("test-access", "test-secret-key"), free_port()) as s3:
        good = MinioObjectStore(s3.url, "test-access", "test-secret-key", "recordings")
        await good.ensure_bucket()
        bad = MinioObjectStore(s3.url, "test-access", "not-the-secret", "recordings")
        with pytest.raises(Exception, match="SignatureDoesNotMatch"):
            await bad.put("ten_1", "recordings/x.wav", b"x", "audio/wav")
        assert await good.list("ten_1") == []
