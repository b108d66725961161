"""Twilio: the voice webhook, the Media Streams WebSocket and the stream's follow-up.

1. ``POST /twilio/voice`` (form-encoded, as Twilio sends it) resolves the called number to
   a tenant's agent and answers TwiML ``<Connect><Stream>``. Every URL handed out carries
   the call id in its query string so a proxy can pin all of a call's traffic to one pod.
2. ``WS /twilio/stream?call_id=...`` admits only a stream for an announced call, waits for
   Twilio's ``start`` and runs the call's pipeline until hang-up.
3. ``POST /twilio/stream-ended?call_id=...`` is the ``<Connect action>``: after the stream
   closes, Twilio asks what next. A transfer answers ``<Dial>``; anything else hangs up.
"""

import asyncio
from functools import partial
from typing import Annotated
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Form, Query, Request, Response, WebSocket
from loguru import logger

from control_plane.kit.errors import DomainError, error_responses
from media_plane import metrics
from media_plane.agent import ControlPlaneUnavailable
from media_plane.ledger import LedgerUnavailable
from media_plane.pipeline import Line
from media_plane.telephony import strangers, twilio_auth
from media_plane.telephony.session import (
    E164,
    NOT_IN_SERVICE,
    UNAVAILABLE,
    admit,
    as_websocket,
    outcome_of,
    public_base,
    serve_stream,
    taking_calls,
)
from media_plane.telephony.stream_guard import POLICY_VIOLATION, StreamGuard
from media_plane.telephony.twilio_serializer import SwitchboardTwilioSerializer

# 400: a webhook that is not Twilio's shape; 403: not signed by Twilio, or an address
# backed off for sending what Twilio never does (strangers.py).
router = APIRouter(tags=["twilio"], responses=error_responses(400, 403, 503))


def twiml(body: str) -> Response:
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
    return Response(content=xml, media_type="application/xml")


@router.post("/twilio/voice", response_class=Response)
async def voice_webhook(
    request: Request,
    # Twilio's ids are two letters and 32 hex digits; they go into REST API paths
    # (twilio_rest.py), so nothing else is taken.
    call_sid: Annotated[str, Form(alias="CallSid", pattern=r"^CA[0-9a-f]{32}$")],
    account_sid: Annotated[str, Form(alias="AccountSid", pattern=r"^AC[0-9a-f]{32}$")],
    to: Annotated[str, Form(alias="To", pattern=E164.pattern)],  # Twilio sends E.164
    from_: Annotated[str, Form(alias="From", min_length=1, max_length=64)],
) -> Response:
    taking_calls(request)
    try:
        return await _answer(request, call_sid, account_sid, to)
    except (ControlPlaneUnavailable, LedgerUnavailable) as e:
        # The caller hears an apology, not silence or a provider error tone.
        what = "control_plane" if isinstance(e, ControlPlaneUnavailable) else "ledger"
        logger.opt(exception=e).error(f"twilio.{what}_unavailable")
        metrics.call_outcome(None, "unavailable")
        return twiml(f"<Say>{escape(UNAVAILABLE)}</Say><Hangup/>")


async def _answer(request: Request, call_sid: str, account_sid: str, to: str) -> Response:
    port = request.app.state.port
    agent = await port.agent_for_number(to)
    # Signed by the account the number is on (for an unknown number, the platform's),
    # before anything is said or started: an unsigned probe learns nothing.
    await twilio_auth.verify(
        request, port, agent.tenant_id if agent else None, await request.form()
    )
    if agent is None or agent.telephony != "twilio":
        # Documented behaviour: a polite spoken message, then hang up. No pipeline starts.
        # A number bound to another provider is not Twilio's to deliver.
        logger.info("twilio.unknown_number", bound_to=agent.telephony if agent else None)
        return twiml(f"<Say>{escape(NOT_IN_SERVICE)}</Say><Hangup/>")

    # Signed by Twilio: the account is whose REST API acts on the call.
    admitted = await admit(request, call_sid, agent, to, account_sid)
    if isinstance(admitted, str):
        return twiml(f"<Say>{escape(admitted)}</Say><Hangup/>")
    call = admitted
    base = public_base(request)
    ws_base = as_websocket(base)
    stream_url = f"{ws_base}/twilio/stream?call_id={call.call_id}"
    action_url = f"{base}/twilio/stream-ended?call_id={call.call_id}"
    return twiml(
        f"<Connect action={quoteattr(action_url)}>"
        f"<Stream url={quoteattr(stream_url)}>"
        f'<Parameter name="call_id" value={quoteattr(call.call_id)}/>'
        f"</Stream></Connect>"
    )


@router.post("/twilio/stream-ended", response_class=Response)
async def stream_ended(request: Request, call_id: Annotated[str, Query(max_length=80)]) -> Response:
    ledger = request.app.state.calls.ledger
    try:
        outcome = await outcome_of(ledger, call_id, lambda: ledger.outcome(call_id))
    except LedgerUnavailable:
        logger.exception("twilio.outcome_unavailable")
        outcome = None  # whom to dial is not known: the call hangs up
    port = request.app.state.port
    tenant_id = outcome.tenant_id if outcome else None
    await twilio_auth.verify(request, port, tenant_id, await request.form())
    transfer = outcome is not None and outcome.transfer_to is not None
    logger.bind(tenant_id=tenant_id, call_id=call_id).info("twilio.stream_ended", transfer=transfer)
    if outcome is not None and outcome.transfer_to:
        return twiml(f"<Dial>{escape(outcome.transfer_to)}</Dial>")
    return twiml("<Hangup/>")


@router.websocket("/twilio/stream")
async def media_stream(websocket: WebSocket, call_id: str = "") -> None:
    app = websocket.app
    # Admitted only for an announced call, with an upgrade Twilio signed for that call's
    # URL (so with its unguessable id), and once. All refusals come before the handshake
    # completes: no pipeline, no audio.
    try:
        await strangers.check(websocket)
        announced = await app.state.calls.pending(call_id) if call_id else None
        if announced is None:
            await strangers.refused(websocket)
            raise DomainError("no such call waiting for its stream")
        await twilio_auth.verify(websocket, app.state.port, announced.tenant_id)
        call = await app.state.calls.claim(call_id, announced.tenant_id)
        if call is None:
            await strangers.refused(websocket)
            raise DomainError("the call's stream was already opened")
    except (DomainError, ControlPlaneUnavailable, LedgerUnavailable) as refused:
        logger.warning("twilio.stream_refused", why=str(refused))
        await websocket.close(code=POLICY_VIOLATION)
        return

    def stream_sid_of(start: dict) -> str | None:
        details = start.get("start")
        details = details if isinstance(details, dict) else {}
        stream_sid = details.get("streamSid") or start.get("streamSid")
        if not isinstance(stream_sid, str) or details.get("callSid") != call.provider_call_sid:
            return None
        return stream_sid

    def line_for(stream_sid: str, guard: StreamGuard) -> Line:
        # Looked up while the call goes on: only needed if the agent ends the call.
        account = asyncio.create_task(twilio_auth.rest_account(websocket, app.state.port, call))
        account.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen
        serializer = SwitchboardTwilioSerializer(
            stream_sid=stream_sid, call=call, guard=guard, account=account
        )
        return Line(serializer, partial(playback_mark, stream_sid), guard)

    await serve_stream(websocket, call, stream_sid_of, line_for)


def playback_mark(stream_sid: str, name: str) -> dict:
    """Twilio echoes a ``mark`` once the caller has heard everything sent before it."""
    return {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}
