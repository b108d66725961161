"""Upload → ready → a simulated call answers from it, for every supported format."""

import asyncio

import httpx
import pytest

from switchboard.caller import Utterance, place_call
from tests import formats
from tests.conftest import AUTH, TOKEN, make_tenant
from tests.e2e.test_call import wait_for_end

pytestmark = pytest.mark.e2e

FACT = "Free parking for patients is on Mill Lane, behind the building."
HOURS = "We are open from nine in the morning until five in the afternoon."
DOCUMENTS = {
    "clinic.pdf": lambda: formats.pdf("Parking", FACT),
    "clinic.docx": lambda: formats.docx_file("Parking", FACT),
    "clinic.html": lambda: formats.html("Parking", FACT),
    "clinic.csv": lambda: formats.qa_csv(
        [("Where can I park?", FACT), ("When are you open?", HOURS)]
    ),
    "clinic.md": lambda: f"# Opening hours\n\n{HOURS}\n\n# Parking\n\n{FACT}".encode(),
    "clinic.txt": lambda: f"{HOURS}\n\n{FACT}".encode(),
}


def tenant_with(platform: str, filename: str) -> dict:
    with httpx.Client(base_url=platform) as api:
        tenant = make_tenant(api)
        r = api.post(
            f"/v1/tenants/{tenant['id']}/documents",
            files={"file": (filename, DOCUMENTS[filename]())},
            headers=AUTH,
        )
        assert r.status_code == 201 and r.json()["status"] == "ready", r.text
    return tenant


async def answered_from(platform: str, filename: str) -> list[str]:
    tenant = tenant_with(platform, filename)
    report = await place_call(
        platform, tenant["number"], [Utterance("Where can I park?")], token=TOKEN
    )
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    return [e["data"]["text"] for e in events if e["kind"] == "turn.agent"]


async def test_a_call_answers_from_a_document_of_every_format(platform):
    # Three calls at a time: the formats are independent tenants, and the suite stays short.
    names = list(DOCUMENTS)
    spoken: dict[str, list[str]] = {}
    for batch in (names[:3], names[3:]):
        answers = await asyncio.gather(*(answered_from(platform, n) for n in batch))
        spoken |= dict(zip(batch, answers, strict=True))
    for filename, said in spoken.items():
        assert any("Mill Lane" in text for text in said), (filename, said)
