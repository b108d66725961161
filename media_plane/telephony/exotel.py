"""Exotel: the Voicebot applet's bootstrap, its media WebSocket and the flow's follow-ups.

An Exotel number's call flow (App Bazaar) for a Switchboard agent is
``Voicebot → Passthru → Connect | Hangup``:

1. ``GET /exotel/voicebot`` is the Voicebot applet's URL (its dynamic form: an HTTPS
   endpoint that answers ``{"url": "wss://..."}``). Exotel passes ``CallSid``, ``CallFrom``
   and ``CallTo`` in the query. The called number picks the tenant's agent; the answer is
   the call's stream URL, carrying the call id (single use, unguessable, short-lived: what
   admits the stream) and ``CallSid`` (what a proxy hashes on: every request Exotel makes
   for the call carries it, so all of them reach the pod that owns the call).
2. ``WS /exotel/stream`` admits only that stream, with Exotel's credentials, once. Exotel
   sends ``connected``, ``start`` (``stream_sid``, ``call_sid``), then ``media`` as base64
   16-bit PCM at 8 kHz; see ``exotel_serializer.py`` for what goes back. A call the platform
   cannot take (unknown number, a plan's limit, the control plane down) still gets a stream
   URL: it speaks the apology and closes, so the caller never meets silence.
3. When the agent ends the call or transfers it, the platform closes the stream and Exotel
   moves on to the Passthru applet, ``GET /exotel/stream-ended``: 200 when the caller is
   to be transferred (the flow's Connect applet follows), 302 otherwise (Hangup).
4. ``GET /exotel/transfer`` is that Connect applet's dynamic URL: the number to dial.

Every request is authenticated as Exotel documents (``exotel_auth.py``).
"""

import asyncio
import contextlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from functools import partial
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, WebSocket
from fastapi.websockets import WebSocketDisconnect
from loguru import logger

from control_plane.kit.errors import DomainError, NotFound, error_responses
from media_plane import metrics
from media_plane.agent import ControlPlaneUnavailable
from media_plane.calls import Call
from media_plane.ledger import LedgerUnavailable, Outcome
from media_plane.pipeline import Line
from media_plane.providers.factory import CALL_SAMPLE_RATE
from media_plane.providers.offline_tts import synthesize_cached
from media_plane.telephony import exotel_auth, strangers
from media_plane.telephony.exotel_serializer import (
    AUDIO_CHUNK_10MS,
    MIN_CHUNK_BYTES,
    SwitchboardExotelSerializer,
    media_message,
)
from media_plane.telephony.session import (
    E164,
    NOT_IN_SERVICE,
    UNAVAILABLE,
    BadWebhook,
    admit,
    as_websocket,
    await_event,
    await_start,
    outcome_of,
    public_base,
    serve_stream,
    taking_calls,
)
from media_plane.telephony.stream_guard import POLICY_VIOLATION, StreamGuard
from media_plane.voices import DEFAULT_VOICES

# 400: a request that is not Exotel's shape; 403: without Exotel's credentials, or an
# address backed off for sending what Exotel never does (strangers.py).
router = APIRouter(tags=["exotel"], responses=error_responses(400, 403, 503))

CALL_SID = Annotated[str, Query(alias="CallSid", min_length=2, max_length=64)]
# A number as Exotel writes it, in a form ``e164`` reads as E.164 whatever the country
# code (1-3 digits): international (+ or 00), national (0...), or bare digits.
CALL_TO = r"^(\+[1-9][0-9]{6,14}|00[1-9][0-9]{6,14}|0[1-9][0-9]{5,11}|[1-9][0-9]{6,14})$"
ANNOUNCEMENT_TTL_SECS = 60.0
MARK_WAIT_SECS = 2.0  # after an apology's audio, for Exotel to say it has played it


def e164(number: str, country_code: str) -> str:
    """A number as Exotel writes it (``08047491899``, ``+918047491899``,
    ``918047491899``) in E.164, as the platform binds numbers."""
    digits = re.sub(r"[\s()-]", "", number)
    if digits.startswith("+"):
        candidate = digits
    elif digits.startswith("00"):
        candidate = "+" + digits[2:]
    elif digits.startswith("0"):
        candidate = f"+{country_code}{digits[1:]}"
    elif len(digits) == 10:
        candidate = f"+{country_code}{digits}"
    else:
        candidate = "+" + digits
    if not E164.match(candidate):
        raise BadWebhook(f"'CallTo' must be a phone number, got {number[:32]!r}")
    return candidate


@dataclass(frozen=True)
class Announcement:
    """What a call the platform cannot take hears before its stream closes."""

    text: str
    provider_call_sid: str
    tenant_id: str | None  # whose Exotel credentials open its stream


class Announcements:
    """Announcements issued by the bootstrap, each claimed once by its stream."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[float, Announcement]] = {}

    def issue(self, announcement: Announcement) -> str:
        now = time.monotonic()
        for key, (at, _) in list(self._pending.items()):
            if now - at > ANNOUNCEMENT_TTL_SECS:
                del self._pending[key]
        key = "say_" + secrets.token_urlsafe(24)
        self._pending[key] = (now, announcement)
        return key

    def pending(self, key: str) -> Announcement | None:
        entry = self._pending.get(key)
        return entry[1] if entry else None

    def claim(self, key: str) -> Announcement | None:
        entry = self._pending.pop(key, None)
        return entry[1] if entry else None


def _stream_url(request: Request, key: str, call_sid: str) -> dict[str, str]:
    ws_base = as_websocket(public_base(request))
    query = urlencode({"call_id": key, "CallSid": call_sid})  # Exotel's id, quoted
    return {"url": f"{ws_base}/exotel/stream?{query}"}


@router.get("/exotel/voicebot")
async def voicebot(
    request: Request,
    call_sid: CALL_SID,
    call_to: Annotated[str, Query(alias="CallTo", pattern=CALL_TO)],
) -> dict[str, str]:
    taking_calls(request)
    to = e164(call_to, request.app.state.settings.exotel_country_code)
    port = request.app.state.port

    def say(text: str, tenant_id: str | None) -> dict[str, str]:
        key = request.app.state.announcements.issue(Announcement(text, call_sid, tenant_id))
        return _stream_url(request, key, call_sid)

    try:
        agent = await port.agent_for_number(to)
        # Authenticated as the account the number is on (for an unknown number, the
        # platform's) before anything is said or started: a probe learns nothing.
        await exotel_auth.verify(request, port, agent.tenant_id if agent else None)
        if agent is None or agent.telephony != "exotel":
            logger.info("exotel.unknown_number", bound_to=agent.telephony if agent else None)
            return say(NOT_IN_SERVICE, agent.tenant_id if agent else None)
        admitted = await admit(request, call_sid, agent, to)
    except (ControlPlaneUnavailable, LedgerUnavailable) as e:
        what = "control_plane" if isinstance(e, ControlPlaneUnavailable) else "ledger"
        logger.opt(exception=e).error(f"exotel.{what}_unavailable")
        metrics.call_outcome(None, "unavailable")
        return say(UNAVAILABLE, None)
    if isinstance(admitted, str):
        return say(admitted, agent.tenant_id)
    return _stream_url(request, admitted.call_id, call_sid)


def _stream_sid_of(start: dict, provider_call_sid: str) -> str | None:
    """The stream's id from Exotel's ``start``, if it is the expected call's stream."""
    details = start.get("start")
    if not isinstance(details, dict) or details.get("call_sid") != provider_call_sid:
        return None
    stream_sid = start.get("stream_sid") or details.get("stream_sid")
    return stream_sid if isinstance(stream_sid, str) and stream_sid else None


@router.websocket("/exotel/stream")
async def media_stream(websocket: WebSocket, call_id: str = "") -> None:
    app = websocket.app
    # Admitted only for a stream the bootstrap issued, with Exotel's credentials, once.
    # Every refusal comes before the handshake completes: no pipeline, no audio.
    try:
        await strangers.check(websocket)
        # An announcement is this process's own: every Exotel request carries the CallSid
        # the proxy pins a call's requests by.
        announcement = app.state.announcements.pending(call_id) if call_id else None
        announced = None
        if announcement is None and call_id:
            announced = await app.state.calls.pending(call_id)
        if announced is None and announcement is None:
            await strangers.refused(websocket)
            raise DomainError("no such call waiting for its stream")
        tenant_id = announced.tenant_id if announced else (announcement and announcement.tenant_id)
        await exotel_auth.verify(websocket, app.state.port, tenant_id)
        claimed: Call | Announcement | None = (
            await app.state.calls.claim(call_id, announced.tenant_id)
            if announced
            else app.state.announcements.claim(call_id)
        )
        if claimed is None:
            await strangers.refused(websocket)
            raise DomainError("the call's stream was already opened")
    except (DomainError, ControlPlaneUnavailable, LedgerUnavailable) as refused:
        logger.warning("exotel.stream_refused", why=str(refused))
        await websocket.close(code=POLICY_VIOLATION)
        return
    if isinstance(claimed, Announcement):
        await _announce_on(websocket, claimed)
        return
    call: Call = claimed

    def line_for(stream_sid: str, guard: StreamGuard) -> Line:
        serializer = SwitchboardExotelSerializer(stream_sid=stream_sid, call=call, guard=guard)
        return Line(serializer, partial(playback_mark, stream_sid), guard, AUDIO_CHUNK_10MS)

    await serve_stream(
        websocket, call, partial(_stream_sid_of, provider_call_sid=call.provider_call_sid), line_for
    )


def playback_mark(stream_sid: str, name: str) -> dict:
    """Exotel echoes a ``mark`` once the caller has heard everything sent before it."""
    return {"event": "mark", "stream_sid": stream_sid, "mark": {"name": name}}


async def _announce_on(websocket: WebSocket, announcement: Announcement) -> None:
    """An announcement's stream: its ``start``, the words, then closed."""
    guard = StreamGuard(websocket, logger.bind(tenant_id=announcement.tenant_id))
    await websocket.accept()
    start = await await_start(guard)
    stream_sid = _stream_sid_of(start, announcement.provider_call_sid) if start else None
    if stream_sid is not None:
        await _announce(websocket, guard, stream_sid, announcement.text)
    with contextlib.suppress(RuntimeError):  # the caller may have hung up already
        await websocket.close()


async def _announce(websocket: WebSocket, guard: StreamGuard, stream_sid: str, text: str) -> None:
    """Speak ``text`` (the offline voice, cached) at the pace it plays, then wait for
    Exotel's word that it has been heard before the stream closes."""
    voice = DEFAULT_VOICES["offline"]
    pcm = await asyncio.to_thread(synthesize_cached, "platform", voice, text, CALL_SAMPLE_RATE)
    chunk_secs = MIN_CHUNK_BYTES / 2 / CALL_SAMPLE_RATE
    started = time.monotonic()
    try:
        for n, at in enumerate(range(0, len(pcm), MIN_CHUNK_BYTES)):
            await websocket.send_text(media_message(stream_sid, pcm[at : at + MIN_CHUNK_BYTES]))
            # Two chunks ahead of the caller's ear, no more.
            await asyncio.sleep(max(0.0, started + (n - 1) * chunk_secs - time.monotonic()))
        await websocket.send_text(json.dumps(playback_mark(stream_sid, "announcement")))
    except (WebSocketDisconnect, RuntimeError):
        return  # the caller hung up (a send on a closed socket raises RuntimeError)
    await await_event(guard, len(pcm) / 2 / CALL_SAMPLE_RATE + MARK_WAIT_SECS, "mark")


@router.get(
    "/exotel/stream-ended",
    response_class=Response,
    responses={
        200: {"description": "transfer: the flow goes on to its Connect applet"},
        302: {"description": "no transfer: the flow goes on to its Hangup applet"},
    },
)
async def stream_ended(request: Request, call_sid: CALL_SID) -> Response:
    """The Passthru applet after the Voicebot: 200 sends the caller on to the Connect
    applet (a transfer), 302 to Hangup."""
    outcome = await _outcome(request, call_sid)
    tenant_id = outcome.tenant_id if outcome else None
    await exotel_auth.verify(request, request.app.state.port, tenant_id)
    logger.bind(tenant_id=tenant_id, call_id=outcome.call_id if outcome else None).info(
        "exotel.stream_ended", transfer=bool(outcome and outcome.transfer_to)
    )
    if outcome is not None and outcome.transfer_to:
        return Response(status_code=200)
    return Response(status_code=302)


@router.get("/exotel/transfer", responses=error_responses(404))
async def transfer(request: Request, call_sid: CALL_SID) -> dict:
    """The Connect applet's dynamic URL: whom to dial for this call (Exotel's documented
    response: the destination numbers, tried in order)."""
    outcome = await _outcome(request, call_sid)
    tenant_id = outcome.tenant_id if outcome else None
    await exotel_auth.verify(request, request.app.state.port, tenant_id)
    if outcome is None or not outcome.transfer_to:
        raise NotFound("this call is not being transferred")
    return {"fetch_after_attempt": False, "destination": {"numbers": [outcome.transfer_to]}}


async def _outcome(request: Request, call_sid: str) -> Outcome | None:
    """How the call Exotel knows by this id ended, wherever it ran."""
    ledger = request.app.state.calls.ledger
    try:
        announced = await ledger.announced(call_sid)  # until the call ends
        call_id = announced.call_id if announced else None
        return await outcome_of(ledger, call_id, lambda: ledger.outcome_for(call_sid))
    except LedgerUnavailable:
        logger.exception("exotel.outcome_unavailable")
        return None  # whom to dial is not known: the flow hangs up
