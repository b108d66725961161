"""The agent acting on a live Twilio call through Twilio's REST API (the ``twilio`` SDK
against ``tests/servers/twilio_rest.py``): a transfer updates the call with ``<Dial>``, a
goodbye with ``Status=completed``; when the update fails, the ``<Connect action>`` still
transfers; the platform's placeholder token is never sent to Twilio."""

from collections.abc import Iterator

import httpx
import pytest

from switchboard.caller import Utterance, place_call
from switchboard.demo.run import free_port
from tests.conftest import TOKEN, PlatformProcess, make_tenant
from tests.e2e.test_call import DOCUMENT, wait_for_end
from tests.servers import LiveServer
from tests.servers.twilio_rest import twilio_rest_app

pytestmark = pytest.mark.e2e

OWN_TOKEN = "the-clinics-own-twilio-auth-token"
TRANSFER_TO = "+15550100300"


@pytest.fixture(scope="module")
def twilio() -> Iterator[LiveServer]:
    with LiveServer(twilio_rest_app({OWN_TOKEN}), free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def platform(twilio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("twilio-rest-platform")
    with PlatformProcess(data, twilio_api_url=twilio.url) as process:
        yield process.url


@pytest.fixture(scope="module")
def tenant(platform) -> dict:
    """A clinic on its own Twilio account: its token signs its calls and acts on them."""
    with httpx.Client(base_url=platform) as api:
        return make_tenant(
            api, DOCUMENT, transfer_number=TRANSFER_TO, secrets={"twilio_auth_token": OWN_TOKEN}
        )


async def call(platform: str, tenant: dict, say: str):
    return await place_call(
        platform,
        tenant["number"],
        [Utterance(say)],
        token=TOKEN,
        tenant_id=tenant["id"],
        hang_up=False,
        twilio_auth_token=OWN_TOKEN,
    )


def updates_for(twilio: LiveServer, call_sid: str | None) -> list[dict]:
    return [u for u in twilio.app.state.updates if u["call"] == call_sid]


async def test_a_transfer_updates_the_live_call_to_dial_the_agents_number(platform, twilio, tenant):
    report = await call(platform, tenant, "Can I speak to a person please?")
    assert report.turns[1].tools == ["transfer_to_human"]
    assert report.turns[1].agent_heard  # the hand-off sentence was played first
    (update,) = updates_for(twilio, report.provider_call_sid)
    assert update["form"] == {"Twiml": f"<Response><Dial>{TRANSFER_TO}</Dial></Response>"}
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    (updated,) = [e["data"] for e in events if e["kind"] == "telephony.updated"]
    assert updated == {"action": "dial", "to": TRANSFER_TO}
    assert events[-1]["data"]["reason"] == "transferred"


async def test_saying_goodbye_hangs_up_the_live_call(platform, twilio, tenant):
    report = await call(platform, tenant, "Goodbye.")
    assert report.turns[1].tools == ["end_call"] and report.hung_up_by == "agent"
    (update,) = updates_for(twilio, report.provider_call_sid)
    assert update["form"] == {"Status": "completed"}
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    assert [e["data"]["action"] for e in events if e["kind"] == "telephony.updated"] == ["hang_up"]
    assert events[-1]["data"]["reason"] == "agent_ended"


async def test_when_twilio_refuses_the_update_the_connect_action_still_transfers(
    platform, twilio, tenant
):
    twilio.app.state.fail_with = (500, 20500)
    try:
        report = await call(platform, tenant, "Can I speak to a person please?")
    finally:
        twilio.app.state.fail_with = None
    assert updates_for(twilio, report.provider_call_sid) == []
    assert report.transferred_to == TRANSFER_TO  # answered <Dial> when Twilio asked next
    events = await wait_for_end(platform, tenant["id"], report.call_id)
    (failed,) = [e["data"] for e in events if e["kind"] == "telephony.update_failed"]
    assert failed["action"] == "dial"
    assert events[-1]["data"]["reason"] == "transferred"


async def test_the_platforms_placeholder_token_is_never_sent_to_twilio(platform, twilio):
    with httpx.Client(base_url=platform) as api:
        on_platform_account = make_tenant(api, DOCUMENT, transfer_number=TRANSFER_TO)
    before = len(twilio.app.state.updates)
    report = await place_call(
        platform,
        on_platform_account["number"],
        [Utterance("Can I speak to a person please?")],
        hang_up=False,
        token=TOKEN,
        tenant_id=on_platform_account["id"],
    )
    assert report.turns[1].tools == ["transfer_to_human"]
    assert len(twilio.app.state.updates) == before  # no REST request at all
    assert report.transferred_to == TRANSFER_TO  # the <Connect action> transferred
