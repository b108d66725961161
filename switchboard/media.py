"""The media plane's part of the app: the telephony webhooks and media streams, one
pipeline per call, and the process's metrics."""

from contextlib import AsyncExitStack
from typing import Annotated

import prometheus_client
from fastapi import FastAPI, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST

from control_plane.kit.crypto import same_secret
from control_plane.kit.errors import Unauthorized, error_responses
from media_plane import metrics
from media_plane.calls import CallRegistry
from media_plane.control_plane_client import HttpControlPlane
from media_plane.events import DirectEventSink, FallbackEventSink, RedisStreamEventSink
from media_plane.ledger import LocalLedger, RedisLedger
from media_plane.providers import vad
from media_plane.providers.factory import import_cloud_sdks, ready_agent
from media_plane.providers.offline_engine import OfflineDialogueEngine
from media_plane.providers.offline_tts import VOICES, load_voice
from media_plane.providers.recogniser import RECOGNISER
from media_plane.telephony.exotel import Announcements
from media_plane.telephony.exotel import router as exotel_router
from media_plane.telephony.twilio import router as twilio_router
from switchboard.lifetime import background, shared_redis
from switchboard.settings import Settings


def warm_models(settings: Settings) -> None:
    """Load the models before the first call rather than during it: the cloud providers'
    SDKs, the VAD every call uses and, unless this process is set to load them on demand,
    the offline providers' (~300 MB; on demand, an agent on them loads them when its first
    call's webhook arrives)."""
    # Pipecat's LLM base class imports its context adapter (and the OpenAI SDK behind it)
    # on first construction: ~0.8 s that would otherwise delay the first call's greeting.
    OfflineDialogueEngine()
    import_cloud_sdks()
    vad.warm_up()
    if settings.warm_offline_models:
        for voice in VOICES:
            load_voice(voice)
        RECOGNISER.load()


# A provider's webhook is a small form (Twilio's is under 2 KB): its signature covers the
# body, so it is read, but no more than this (kit/body_limit.py).
MEDIA_BODY_LIMITS = {"/twilio/": 64 * 1024, "/exotel/": 64 * 1024}


def add_media_routes(app: FastAPI, settings: Settings) -> None:
    app.include_router(twilio_router)
    app.include_router(exotel_router)
    token = settings.metrics_token
    if token is None and settings.environment == "production":
        return  # call volumes are the business's figures: not served to anyone

    @app.get("/metrics", tags=["ops"], response_class=Response, responses=error_responses(401))
    async def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        # Process-wide figures only (no tenant's data), for Prometheus to scrape.
        if token is not None and not same_secret(authorization or "", f"Bearer {token}"):
            raise Unauthorized("/metrics needs the metrics bearer token")
        return Response(prometheus_client.generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def start_media_plane(
    app: FastAPI, settings: Settings, stack: AsyncExitStack, warm: bool
) -> None:
    """Calls: the telephony webhooks and media streams, one pipeline per call."""
    redis = shared_redis(app, settings, stack)
    # What the fleet must agree on about calls: in Redis when there is one (many media
    # processes), else in this process.
    ledger = RedisLedger(redis, settings.calls_prefix) if redis is not None else LocalLedger()
    app.state.calls = calls = CallRegistry(ledger, settings.call_capacity)
    metrics.label_tenants(t.strip() for t in settings.metrics_tenants.split(",") if t.strip())
    await background(stack, calls.keep_leases(), "call-leases")
    app.state.announcements = Announcements()  # Exotel calls the platform cannot take
    if settings.plane == "media":
        port = HttpControlPlane(
            str(settings.control_plane_url), settings.service_token, settings.agent_cache_secs
        )
        stack.push_async_callback(port.aclose)
        app.state.port = port
    if redis is not None:
        app.state.event_sink = FallbackEventSink(
            RedisStreamEventSink(redis, settings.events_stream), DirectEventSink(app.state.port)
        )
        if settings.plane == "media":
            await background(
                stack,
                port.follow_changes(
                    redis,
                    settings.agent_changes_channel,
                    ready_agent,
                ),
                "agent-changes",
            )
    else:
        app.state.event_sink = DirectEventSink(app.state.port)
    if warm:
        warm_models(settings)
