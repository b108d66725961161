"""The agent acting on a live Twilio call through Twilio's REST API (its official SDK).

When the agent transfers the call or says goodbye, the pipeline ends once that sentence
has played; just before the stream closes, the call is updated: new TwiML that
``<Dial>``s the transfer number, or ``Status=completed`` to hang up. Twilio then leaves
the ``<Connect><Stream>`` at once.

This is the first way, not the only one: if the update cannot be made (no account token,
Twilio unreachable or slow, the caller already gone), the stream still closes and Twilio
asks the ``<Connect action>``, which answers the same ``<Dial>`` or ``<Hangup/>``. Either
way the timeline says which happened (``telephony.updated`` or
``telephony.update_failed``).
"""

from dataclasses import dataclass
from xml.sax.saxutils import escape

import aiohttp
from loguru import logger
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from media_plane.calls import Call

REST_TIMEOUT_SECS = 3.0  # the caller is waiting on the line


@dataclass(frozen=True)
class TwilioAccount:
    """The account the call's number is on, and where its REST API is."""

    account_sid: str
    auth_token: str
    api_url: str = "https://api.twilio.com"


async def act_on_call(call: Call, account: TwilioAccount) -> None:
    """Dial the transfer number, or hang up, for a call the agent is ending."""
    log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)
    if call.transfer_to:
        action, change = (
            "dial",
            {"twiml": f"<Response><Dial>{escape(call.transfer_to)}</Dial></Response>"},
        )
    else:
        action, change = "hang_up", {"status": "completed"}
    http = AsyncTwilioHttpClient(timeout=REST_TIMEOUT_SECS)
    client = Client(account.account_sid, account.auth_token, http_client=http)
    client.api.base_url = account.api_url.rstrip("/")
    try:
        await (
            client.api.v2010.accounts(account.account_sid)
            .calls(call.provider_call_sid)
            .update_async(**change)
        )
    except (TwilioException, aiohttp.ClientError, TimeoutError) as failed:
        # Often the caller hung up first (404). The <Connect action> still answers.
        log.warning("twilio.update_failed", action=action, error=type(failed).__name__)
        call.record("telephony.update_failed", action=action, error=type(failed).__name__)
    else:
        log.info("twilio.updated", action=action)
        call.record("telephony.updated", action=action, to=call.transfer_to)
    finally:
        await http.close()
