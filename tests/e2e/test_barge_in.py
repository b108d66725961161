"""The caller speaking over the agent: it falls silent at once; "mhm" lets it go on, "no,
wait" cuts it off."""

import httpx
import pytest

from switchboard.caller import Utterance, place_call
from tests.conftest import TOKEN, make_tenant
from tests.e2e.test_call import DOCUMENT, timeline

pytestmark = pytest.mark.e2e

LONG_GREETING = (
    "Hello, and thank you for calling Sunrise Dental. We are open from nine to five on "
    "weekdays and from nine to one on Saturdays. How can I help you today?"
)


@pytest.fixture(scope="module")
def tenant(platform: str) -> dict:
    with httpx.Client(base_url=platform) as api:
        return make_tenant(api, DOCUMENT, greeting=LONG_GREETING)


async def test_a_backchannel_over_the_agent_lets_it_go_on(platform, tenant):
    report = await place_call(
        platform, tenant["number"], [Utterance("Okay.", barge_in=True)], token=TOKEN,
        tenant_id=tenant["id"],
    )  # fmt: skip
    greeting, okay = report.turns
    assert not greeting.interrupted_by_caller  # no `clear`: the agent was not cut off
    # It paused for the caller's words, then spoke on from where it stopped: the whole
    # greeting (~9 s) was heard, 1.2 s of it before the "okay" and the rest after.
    assert okay.silent_after_ms is not None, okay
    assert okay.agent_heard_secs > 6, okay
    events = await timeline(platform, tenant["id"], report.call_id)
    kinds = [e["kind"] for e in events]
    assert "turn.backchannel" in kinds and "turn.user" not in kinds, kinds
    (spoken,) = [e["data"] for e in events if e["kind"] == "turn.agent"]
    assert not spoken["interrupted"]


async def test_words_over_the_agent_cut_it_off(platform, tenant):
    report = await place_call(
        platform, tenant["number"], [Utterance("No, wait. Where can I park?", barge_in=True)],
        token=TOKEN, tenant_id=tenant["id"],
    )  # fmt: skip
    greeting, question = report.turns
    assert greeting.interrupted_by_caller
    # The agent fell silent as the caller began, well before their words (which the
    # offline recogniser has only once the caller has spoken ~0.9 s) cut the reply off.
    # Without the pause it went on until the `clear`, a frame or two before it.
    assert question.silent_after_ms is not None and question.clear_after_ms is not None
    assert question.clear_after_ms - question.silent_after_ms >= 300, question
    assert question.tools == ["search_knowledge"]  # and what they said is answered
