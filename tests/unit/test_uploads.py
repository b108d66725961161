"""Uploads as an attacker sends them: hostile files are refused with the reason, never a
500; a tenant's uploads being read at once are bounded, another tenant's are not held up;
the slots that bound them hold across processes (real Redis) and free themselves."""

import asyncio
import uuid

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from common.slots import Full, LocalSlots, RedisSlots, slot
from switchboard.server import create_app
from switchboard.settings import Settings
from tests import formats
from tests.conftest import AUTH, TOKEN, make_tenant


@pytest.fixture
def client(tmp_path):
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "data",
        admin_token=TOKEN,
        knowledge_parse_cpu_secs=2,
        uploads_per_tenant=2,
    )
    with TestClient(create_app(settings, warm=False)) as c:
        yield c


def upload(client, tenant_id: str, filename: str, data: bytes):
    return client.post(
        f"/v1/tenants/{tenant_id}/documents", files={"file": (filename, data)}, headers=AUTH
    )


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("drawing.pdf", formats.heavy_pdf(3), "more than 2 s of CPU"),
        ("bomb.docx", formats.docx_bomb(200), "the limit is 64 MB"),
        ("broken.docx", formats.docx_malformed(), "the DOCX could not be read"),
        ("faq.csv", formats.csv_long_field(200_000), "a field is longer than 131,072"),
    ],
    ids=["heavy-pdf", "zip-bomb", "malformed-docx", "long-csv-field"],
)
def test_a_hostile_upload_is_refused_with_the_reason_and_nothing_is_kept(
    client, filename, data, reason
):
    t = make_tenant(client)
    r = upload(client, t["id"], filename, data)
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    listed = client.get(f"/v1/tenants/{t['id']}/documents", headers=AUTH).json()
    assert listed["total"] == 0
    assert client.portal.call(client.app.state.objects.list, t["id"]) == []
    # The process is unharmed: the next upload is read as usual.
    assert upload(client, t["id"], "parking.md", b"# Parking\n\nOn Mill Lane.").status_code == 201


def test_a_tenant_with_every_upload_slot_busy_is_told_to_wait_and_others_are_not(client):
    busy, other = make_tenant(client), make_tenant(client)
    slots = client.app.state.upload_slots
    # Two of the tenant's uploads are being read (their requests hold the slots).
    for _ in range(2):
        assert client.portal.call(slots.take, busy["id"], 2, 60.0) is not None
    r = upload(client, busy["id"], "parking.md", b"# Parking\n\nOn Mill Lane.")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "5"
    assert "already has 2 uploads being read" in r.json()["detail"]
    parking = b"# Parking\n\nOn Mill Lane."
    assert upload(client, other["id"], "parking.md", parking).status_code == 201


@pytest.fixture(params=["in-process", "redis"])
async def slots(request, redis_url):
    if request.param == "in-process":
        yield LocalSlots()
        return
    redis = Redis.from_url(redis_url, decode_responses=True)
    yield RedisSlots(redis, f"test:slots:{uuid.uuid4().hex[:8]}")
    await redis.aclose()


async def test_twenty_at_once_for_the_last_slot_exactly_one_wins(slots):
    taken = await asyncio.gather(*(slots.take("ten_1", 1, 30.0) for _ in range(20)))
    assert sum(holder is not None for holder in taken) == 1


async def test_a_slot_given_back_or_past_its_lease_is_free_again(slots):
    async with slot(slots, "ten_1", 1, 30.0):
        with pytest.raises(Full):
            async with slot(slots, "ten_1", 1, 30.0):
                pass
        assert await slots.take("ten_2", 1, 30.0) is not None  # keys are separate
    assert await slots.take("ten_1", 1, 0.2) is not None  # given back at the block's end
    assert await slots.take("ten_1", 1, 30.0) is None
    await asyncio.sleep(0.3)  # its holder died without giving it back: the lease ends
    assert await slots.take("ten_1", 1, 30.0) is not None
