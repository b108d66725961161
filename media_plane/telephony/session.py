"""A call's life on the media plane, whichever telephony provider carries it.

A provider's first request (Twilio's voice webhook, Exotel's Voicebot bootstrap) is
admitted here (``admit``), which starts making the call ready (``prepare``) while the
provider opens its media stream. The stream's handler then hands the socket, with that
provider's serializer and ``mark`` message, to ``run_call``, which runs the call's pipeline
until hang-up, keeps the recording and closes the timeline.
"""

import asyncio
import json
import math
import re
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, WebSocket
from loguru import logger
from pipecat.frames.frames import EndFrame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner

from control_plane.kit.errors import DomainError, ServiceUnavailable
from media_plane import metrics
from media_plane.agent import AgentConfig, ControlPlanePort
from media_plane.calls import Call, CallRegistry, Prepared, new_call_id
from media_plane.http_tools import SECRET_NAME as TOOL_SECRET
from media_plane.http_tools import ToolAccess
from media_plane.ledger import GRANT_SECS, Announced, CallLedger, LedgerUnavailable, Outcome
from media_plane.phrases import TIME_UP, in_language
from media_plane.pipeline import Line, build_call_worker
from media_plane.providers.credentials import credentials_for
from media_plane.providers.factory import ready_agent
from media_plane.telephony.stream_guard import StreamGuard

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
START_TIMEOUT_SECS = 10.0  # from the stream's upgrade to the provider's ``start``
REFILL_SECS = 20.0  # a call draws more of its tenant's minutes when it has this few left
UNAVAILABLE = "Sorry, we cannot take your call right now. Please try again in a few minutes."
NOT_IN_SERVICE = "Sorry, the number you have called is not in service. Goodbye."
REFUSALS = {
    "concurrent_calls": "Sorry, all our lines are busy right now. Please call again shortly.",
    "monthly_minutes": "Sorry, we cannot take your call right now. Please try again later.",
}


class BadWebhook(DomainError):
    error = "bad_webhook"


def public_base(connection: Request | WebSocket) -> str:
    """Where providers reach us: the configured public URL, else this request's own base."""
    configured = connection.app.state.settings.public_url
    return str(configured).rstrip("/") if configured else str(connection.base_url).rstrip("/")


def as_websocket(url: str) -> str:
    """An http(s) URL's ws(s) twin, as a media stream's URL is given to a provider."""
    return url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def taking_calls(request: Request) -> None:
    """A draining process (SIGTERM) takes no new calls: 503, which the proxy in front
    retries on another process (nginx ``proxy_next_upstream http_503``; on Kubernetes the
    process has left the Service's endpoints by then, so this is only the race)."""
    if request.app.state.calls.draining:
        metrics.call_outcome(None, "draining")
        raise ServiceUnavailable("this process is draining: no new calls")


FOLLOW_UP_WAIT_SECS = 2.0


async def outcome_of(
    ledger: CallLedger, call_id: str | None, outcome: Callable[[], Awaitable[Outcome | None]]
) -> Outcome | None:
    """A call's outcome for the provider's follow-up request. The provider asks the moment
    the stream closes, which can be a moment before the call's end is written (by another
    process, even): while the call is still live, the answer is waited for, briefly."""
    found = await outcome()
    deadline = time.monotonic() + FOLLOW_UP_WAIT_SECS
    while found is None and call_id and time.monotonic() < deadline:
        if not await ledger.is_live(call_id):
            return await outcome()
        await asyncio.sleep(0.05)
        found = await outcome()
    return found


async def admit(
    request: Request,
    provider_call_sid: str,
    agent: AgentConfig,
    number: str,
    provider_account: str | None = None,
) -> Announced | str:
    """Announce the call, unless the tenant's plan refuses it: returns the call, or the
    words to say instead. A provider's retry of an admitted call, landing on any process,
    gets the same call. Raises ``LedgerUnavailable`` if the fleet's ledger cannot be
    reached (the caller hears an apology: lines cannot be counted)."""
    calls: CallRegistry = request.app.state.calls
    earlier = await calls.ledger.announced(provider_call_sid)
    if earlier is not None:
        return earlier
    admission = await request.app.state.port.admission(agent.tenant_id)
    log = logger.bind(tenant_id=agent.tenant_id)
    if admission.refusal is not None:
        log.info("call.refused", reason=admission.refusal)
        metrics.call_outcome(agent.tenant_id, admission.refusal)
        return REFUSALS[admission.refusal]
    platform = request.app.state.settings.max_call_minutes * 60.0
    candidate = Announced(
        call_id=new_call_id(),
        provider_call_sid=provider_call_sid,
        agent=agent,
        number=number,
        provider_account=provider_account,
        max_secs=min(platform, admission.max_secs or platform),
        minutes=admission.minutes,
    )
    # The tenant's lines are counted and one taken in the same step that announces the
    # call, fleet-wide: a burst of webhooks cannot all be counted before any is announced.
    announced = await calls.ledger.announce(candidate, admission.max_concurrent_calls)
    if isinstance(announced, str):
        log.info("call.refused", reason=announced)
        metrics.call_outcome(agent.tenant_id, announced)
        return REFUSALS[announced]
    if announced.call_id != candidate.call_id:
        return announced  # a retry that raced the first webhook
    log.bind(call_id=announced.call_id).info("call.announced")
    metrics.call_outcome(agent.tenant_id, "admitted")
    # The stream opens a moment after this answer: use that moment to have what the call
    # needs ready, so the greeting starts as soon as the stream does.
    call = Call(announced)
    call.prepared = asyncio.create_task(
        prepare(agent, request.app.state.port, request.app.state.settings)
    )
    # Its stream may open on another process, which makes the call ready itself: then
    # nothing here awaits this, and a failure is the stream's to meet, not the log's.
    call.prepared.add_done_callback(lambda done: done.cancelled() or done.exception())
    calls.preparing(call)
    return announced


async def await_start(guard: StreamGuard) -> dict | None:
    """The stream's ``start`` message (Twilio and Exotel both send ``connected`` first;
    nothing before ``start`` carries audio), or None if the stream stops, closes, is
    refused or stays silent for ``START_TIMEOUT_SECS`` first."""
    try:
        return await asyncio.wait_for(_event(guard, "start"), START_TIMEOUT_SECS)
    except TimeoutError:
        return None


async def _event(guard: StreamGuard, *wanted: str) -> dict | None:
    """The first message of a ``wanted`` event, or None once the stream stops or closes."""
    async for raw in guard.messages():
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            guard.skip("not_json")
            continue
        event = message.get("event") if isinstance(message, dict) else None
        if event in wanted:
            return message
        if event == "stop":
            return None
    return None


async def await_event(guard: StreamGuard, secs: float, *wanted: str) -> bool:
    """Whether a ``wanted`` event (or ``stop``) arrives within ``secs``."""
    try:
        await asyncio.wait_for(_event(guard, *wanted, "stop"), secs)
    except TimeoutError:
        return False
    return True


async def serve_stream(
    websocket: WebSocket,
    call: Call,
    stream_sid_of: Callable[[dict], str | None],
    line_for: Callable[[str, StreamGuard], Line],
) -> None:
    """A claimed call's stream: accepted, its ``start`` checked (``stream_sid_of`` gives
    the stream's id if it is this call's), then the call until hang-up. However and
    whenever the stream ends, the call is released: it no longer counts as live, against
    the tenant's concurrency or on the gauge."""
    log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)
    guard = StreamGuard(websocket, log, call)
    try:
        await websocket.accept()
        start = await await_start(guard)
        if start is None:  # closed, stopped, refused or silent before it started
            log.info("stream.no_start")
            return
        stream_sid = stream_sid_of(start)
        if stream_sid is None:  # a start for another call, or not a start at all
            await guard.refuse("bad_start")
            return
        await run_call(call, websocket, line_for(stream_sid, guard))
    finally:
        await websocket.app.state.calls.finish(call)


async def prepare(agent: AgentConfig, port: ControlPlanePort, settings) -> Prepared:
    """What a call needs before its stream opens: its models loaded and the greeting's
    audio ready, its cloud providers' keys and what its tenant's own tools need."""
    credentials, tool_secret, warmed = await asyncio.gather(
        credentials_for(agent, port, settings),
        _tool_secret(agent, port),
        ready_agent(agent),
        return_exceptions=True,
    )
    if isinstance(warmed, BaseException):
        # The call goes ahead: its services load what they need when asked (or fail then,
        # with a spoken fallback), just not ahead of time.
        logger.bind(tenant_id=agent.tenant_id).opt(exception=warmed).warning("call.not_ready_ahead")
    if isinstance(credentials, BaseException):
        raise credentials
    if isinstance(tool_secret, BaseException):
        raise tool_secret
    tools = ToolAccess(tool_secret, settings.tenant_outbound_allow_private)
    return Prepared(credentials, tools)


async def _tool_secret(agent: AgentConfig, port: ControlPlanePort) -> str | None:
    if not agent.http_tools:
        return None
    return await port.secret(agent.tenant_id, TOOL_SECRET)


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


async def _end_at_time_limit(call: Call, ledger: CallLedger, worker: PipelineWorker, log) -> None:
    """At the call's limit (its plan's longest call or the platform's, or when its tenant's
    minutes for the month run out), the caller is told and the call ends after the words.
    Minutes are drawn from the ledger as the call runs, ``GRANT_SECS`` at a time, so
    calls under way together share what is left of them, fleet-wide."""
    metered = call.announced.minutes is not None
    while True:
        if metered and call.allowed_secs() - call.elapsed() < REFILL_SECS:
            try:
                call.drawn_secs += await ledger.draw(call.announced, GRANT_SECS)
            except LedgerUnavailable:
                # A live call goes on through a Redis outage: unmetered, and logged so the
                # gap can be accounted for. (New calls are refused meanwhile.)
                call.unmetered_secs += GRANT_SECS
                log.warning("call.minutes_unmetered", secs=GRANT_SECS)
        left = call.allowed_secs() - call.elapsed()
        if left <= 0:
            break
        await asyncio.sleep(min(left, REFILL_SECS / 2))
    call.end_reason = "time_limit"
    limit = "minutes" if call.allowed_secs() < (call.announced.max_secs or math.inf) else "call"
    call.record("call.time_limit", secs=round(call.elapsed(), 1), limit=limit)
    log.info("call.time_limit", secs=round(call.elapsed(), 1), limit=limit)
    goodbye = in_language(TIME_UP, call.agent.language)
    await worker.queue_frames([TTSSpeakFrame(goodbye, append_to_context=True), EndFrame()])


async def run_call(
    call: Call,
    websocket: WebSocket,
    line: Line,
) -> None:
    """Run the call's pipeline on the provider's socket until either side hangs up."""
    app = websocket.app
    port = app.state.port
    log = logger.bind(tenant_id=call.tenant_id, call_id=call.call_id)
    writer = asyncio.create_task(
        call.write_events(app.state.event_sink), name=f"events-{call.call_id}"
    )
    call.started_at = time.monotonic()
    call.record(
        "call.started",
        agent_id=call.agent.agent_id,
        agent_version=call.agent.version,
        to=call.number,
    )
    log.info("call.started")
    end_reason = "agent_ended"
    time_limit: asyncio.Task | None = None
    try:
        prepared = await (call.prepared or prepare(call.agent, port, app.state.settings))
        worker, transport = build_call_worker(call, websocket, line, port, prepared)

        @transport.event_handler("on_client_connected")
        async def _connected(_transport, _ws):
            await worker.queue_frames([TTSSpeakFrame(call.agent.greeting, append_to_context=True)])

        @transport.event_handler("on_client_disconnected")
        async def _disconnected(_transport, _ws):
            nonlocal end_reason
            end_reason = "caller_hung_up"
            await worker.cancel(reason="caller hung up")

        time_limit = asyncio.create_task(
            _end_at_time_limit(call, app.state.calls.ledger, worker, log)
        )
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
    except Exception:
        end_reason = "error"
        log.exception("call.failed")
    finally:
        if time_limit is not None:
            time_limit.cancel()
        if call.transfer_to:
            end_reason = "transferred"
        end_reason = call.end_reason or end_reason
        call.ended_at = time.monotonic()
        await app.state.calls.finish(call)
        call.audio_in.close()
        await _keep_recording(call, port, log)
        if line.guard.skipped:
            call.record("stream.skipped", **line.guard.skipped)
        secs = call.elapsed()  # its length as billed against the plan's monthly minutes
        metrics.CALL_SECONDS.labels(metrics.tenant(call.tenant_id)).observe(secs)
        call.record(
            "call.ended",
            reason=end_reason,
            secs=round(secs, 2),
            **({"events_dropped": call.events_dropped} if call.events_dropped else {}),
        )
        call.close_timeline()
        await writer
        log.info("call.ended", reason=end_reason)
