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
import json
import re
import time
from typing import Annotated
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Form, Query, Request, Response, WebSocket
from fastapi.websockets import WebSocketDisconnect
from loguru import logger
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.workers.runner import WorkerRunner

from control_plane.kit.errors import DomainError
from media_plane.agent import AgentConfig, ControlPlanePort, ControlPlaneUnavailable
from media_plane.calls import Call, Prepared
from media_plane.pipeline import build_call_worker
from media_plane.providers.credentials import credentials_for
from media_plane.providers.factory import ready_agent
from media_plane.providers.offline_engine import INTENT_KEY_TERMS
from media_plane.telephony import twilio_auth

router = APIRouter(tags=["twilio"])

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
START_TIMEOUT_SECS = 10.0
NOT_IN_SERVICE = "Sorry, the number you have called is not in service. Goodbye."
POLICY_VIOLATION = 1008
UNAVAILABLE = "Sorry, we cannot take your call right now. Please try again in a few minutes."
REFUSALS = {
    "concurrent_calls": "Sorry, all our lines are busy right now. Please call again shortly.",
    "monthly_minutes": "Sorry, we cannot take your call right now. Please try again later.",
}


class BadWebhook(DomainError):
    error = "bad_webhook"


def twiml(body: str) -> Response:
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
    return Response(content=xml, media_type="application/xml")


@router.post("/twilio/voice", response_class=Response)
async def voice_webhook(
    request: Request,
    call_sid: Annotated[str, Form(alias="CallSid", min_length=2, max_length=64)],
    account_sid: Annotated[str, Form(alias="AccountSid", min_length=2, max_length=64)],
    to: Annotated[str, Form(alias="To", max_length=32)],
    from_: Annotated[str, Form(alias="From", max_length=64)],
) -> Response:
    if not E164.match(to):
        raise BadWebhook(f"'To' must be an E.164 number, got {to[:32]!r}")
    try:
        return await _answer(request, call_sid, to)
    except ControlPlaneUnavailable:
        # The caller hears an apology, not silence or a provider error tone.
        logger.exception("twilio.control_plane_unavailable")
        return twiml(f"<Say>{escape(UNAVAILABLE)}</Say><Hangup/>")


async def _answer(request: Request, call_sid: str, to: str) -> Response:
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

    calls = request.app.state.calls
    if calls.announced(call_sid) is None:  # a provider retry of an admitted call passes
        reason = await request.app.state.port.admission(
            agent.tenant_id, calls.active_for(agent.tenant_id)
        )
        if reason is not None:
            logger.bind(tenant_id=agent.tenant_id).info("call.refused", reason=reason)
            return twiml(f"<Say>{escape(REFUSALS[reason])}</Say><Hangup/>")
    call = calls.announce(call_sid, agent, to)
    logger.bind(tenant_id=agent.tenant_id, call_id=call.call_id).info("call.announced")
    # The stream opens a moment after this answer: use that moment to have what the call
    # needs ready, so the greeting starts as soon as the stream does.
    call.prepared = asyncio.create_task(
        prepare(agent, request.app.state.port, request.app.state.settings)
    )
    base = twilio_auth.public_base(request)
    ws_base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    stream_url = f"{ws_base}/twilio/stream?call_id={call.call_id}"
    action_url = f"{base}/twilio/stream-ended?call_id={call.call_id}"
    return twiml(
        f"<Connect action={quoteattr(action_url)}>"
        f"<Stream url={quoteattr(stream_url)}>"
        f'<Parameter name="call_id" value={quoteattr(call.call_id)}/>'
        f"</Stream></Connect>"
    )


async def prepare(agent: AgentConfig, port: ControlPlanePort, settings) -> Prepared:
    """What a call needs before its stream opens: its models loaded and the greeting's
    audio ready, the words its recogniser should listen for (the tenant's documents' key
    terms), and its cloud providers' keys."""
    terms, credentials, warmed = await asyncio.gather(
        port.key_terms(agent.tenant_id),
        credentials_for(agent, port, settings),
        ready_agent(agent, settings.model_cache_dir),
        return_exceptions=True,
    )
    if isinstance(warmed, BaseException):
        # The call goes ahead: its services load what they need when asked (or fail then,
        # with a spoken fallback), just not ahead of time.
        logger.bind(tenant_id=agent.tenant_id).opt(exception=warmed).warning("call.not_ready_ahead")
    for failed in (terms, credentials):
        if isinstance(failed, BaseException):
            raise failed
    return Prepared(terms | INTENT_KEY_TERMS, credentials)


@router.post("/twilio/stream-ended", response_class=Response)
async def stream_ended(request: Request, call_id: Annotated[str, Query(max_length=80)]) -> Response:
    call: Call | None = request.app.state.calls.finished(call_id)
    port = request.app.state.port
    await twilio_auth.verify(request, port, call.tenant_id if call else None, await request.form())
    if call is not None and call.transfer_to:
        return twiml(f"<Dial>{escape(call.transfer_to)}</Dial>")
    return twiml("<Hangup/>")


async def _await_start(websocket: WebSocket) -> dict | None:
    """Twilio sends ``connected`` then ``start``; nothing before ``start`` carries audio."""
    while True:
        raw = await websocket.receive_text()
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(message, dict) and message.get("event") == "start":
            return message
        if isinstance(message, dict) and message.get("event") == "stop":
            return None


@router.websocket("/twilio/stream")
async def media_stream(websocket: WebSocket, call_id: str = "") -> None:
    app = websocket.app
    # Admitted only for an announced call, with an upgrade Twilio signed for that call's
    # URL (so with its unguessable id), and once. All refusals come before the handshake
    # completes: no pipeline, no audio.
    announced = app.state.calls.pending(call_id) if call_id else None
    try:
        if announced is None:
            raise DomainError("no such call waiting for its stream")
        await twilio_auth.verify(websocket, app.state.port, announced.tenant_id)
        call = app.state.calls.claim(call_id)
        if call is None:
            raise DomainError("the call's stream was already opened")
    except (DomainError, ControlPlaneUnavailable) as refused:
        logger.warning("twilio.stream_refused", why=str(refused))
        await websocket.close(code=POLICY_VIOLATION)
        return
    log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)
    await websocket.accept()
    try:
        start = await asyncio.wait_for(_await_start(websocket), START_TIMEOUT_SECS)
    except (TimeoutError, WebSocketDisconnect):
        start = None
    details = (start or {}).get("start") or {}
    stream_sid = details.get("streamSid") or (start or {}).get("streamSid")
    if not stream_sid or details.get("callSid") != call.provider_call_sid:
        log.warning("twilio.bad_start")
        app.state.calls.finish(call)
        await websocket.close(code=POLICY_VIOLATION)
        return

    await run_call(call, websocket, stream_sid)


async def _keep_recording(call: Call, port: ControlPlanePort, log) -> None:
    if call.recorder is None:
        return
    wav = await asyncio.to_thread(call.recorder.finish)  # reads back a spooled file
    if wav is None:
        return
    try:
        name = await port.store_recording(call.tenant_id, call.call_id, wav)
    except Exception:
        # The call itself went fine; losing its recording is logged and on the timeline.
        log.exception("call.recording_failed")
        call.record("call.recording_failed")
        return
    call.record("call.recorded", name=name, bytes=len(wav), secs=round(call.recorder.seconds, 2))


async def run_call(call: Call, websocket: WebSocket, stream_sid: str) -> None:
    app = websocket.app
    port = app.state.port
    log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)
    writer = asyncio.create_task(
        call.write_events(app.state.event_sink), name=f"events-{call.call_id}"
    )
    started = time.monotonic()
    call.record(
        "call.started",
        agent_id=call.agent.agent_id,
        agent_version=call.agent.version,
        to=call.number,
    )
    log.info("call.started")
    end_reason = "agent_ended"
    try:
        prepared = await (call.prepared or prepare(call.agent, port, app.state.settings))
        worker, transport = build_call_worker(call, websocket, stream_sid, port, prepared)

        @transport.event_handler("on_client_connected")
        async def _connected(_transport, _ws):
            await worker.queue_frames([TTSSpeakFrame(call.agent.greeting, append_to_context=True)])

        @transport.event_handler("on_client_disconnected")
        async def _disconnected(_transport, _ws):
            nonlocal end_reason
            end_reason = "caller_hung_up"
            await worker.cancel(reason="caller hung up")

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
    except Exception:
        end_reason = "error"
        log.exception("call.failed")
    finally:
        if call.transfer_to:
            end_reason = "transferred"
        app.state.calls.finish(call)
        call.audio_in.close()
        await _keep_recording(call, port, log)
        # The call's length as billed against the plan's monthly minutes.
        call.record("call.ended", reason=end_reason, secs=round(time.monotonic() - started, 2))
        call.close_timeline()
        await writer
        log.info("call.ended", reason=end_reason)
