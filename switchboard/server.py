"""The platform's ASGI app. Embedded mode runs both planes in one process."""

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import prometheus_client
from fastapi import FastAPI, Response
from loguru import logger
from motor.motor_asyncio import AsyncIOMotorClient
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import Redis

from control_plane.api_keys.routes import router as api_keys_router
from control_plane.calls import recordings
from control_plane.calls.routes import router as calls_router
from control_plane.calls.store import MongoTimelineStore, SqlTimelineStore
from control_plane.calls.writer import TimelineWriter
from control_plane.identity.issuer import router as issuer_router
from control_plane.identity.setup import start_identity
from control_plane.internal.routes import MAX_RECORDING_BYTES
from control_plane.internal.routes import router as internal_router
from control_plane.kit import migrate
from control_plane.kit.body_limit import BodySizeLimit
from control_plane.kit.db import create_engine, session_factory
from control_plane.kit.errors import document_body_limit, install_error_handlers
from control_plane.knowledge.ingest import IngestWorker, LocalIngestQueue, RedisIngestQueue
from control_plane.knowledge.routes import dead_letters_router
from control_plane.knowledge.routes import router as knowledge_router
from control_plane.numbers.routes import router as numbers_router
from control_plane.objects.routes import router as objects_router
from control_plane.objects.store import open_object_store
from control_plane.plans.routes import router as plans_router
from control_plane.port import LocalControlPlane
from control_plane.secrets.routes import router as secrets_router
from control_plane.secrets.store import open_secret_store
from control_plane.tenants.routes import router as tenants_router
from control_plane.users.routes import router as users_router
from knowledge.dense import Embedder, open_embedder
from knowledge.store import KnowledgeStore, open_store
from media_plane.calls import CallRegistry
from media_plane.control_plane_client import HttpControlPlane
from media_plane.events import DirectEventSink, RedisStreamEventSink
from media_plane.providers.factory import warm_greeting
from media_plane.telephony.twilio import router as twilio_router
from switchboard.settings import Settings, get_settings


def warm_models(voices: tuple[str, ...] = ("en_US-joe-medium",)) -> None:
    """Load the offline models before the first call rather than during it."""
    from media_plane.providers import calibration, offline_tts, vad
    from media_plane.providers.offline_engine import OfflineDialogueEngine

    # Pipecat's LLM base class imports its context adapter (and the OpenAI SDK behind it)
    # on first construction: ~0.8 s that would otherwise delay the first call's greeting.
    OfflineDialogueEngine()
    vad.warm_up()
    for voice in voices:
        offline_tts.load_voice(voice)
    calibration.calibrate_recogniser()


async def _sweep_recordings(sessions, objects, settings: Settings) -> None:
    """Recordings past their plan's retention are deleted on a schedule, from startup on."""
    while True:
        try:
            await recordings.sweep(sessions, objects, settings.recording_retention_days)
        except Exception:
            logger.exception("recordings.sweep_failed")  # tried again next round
        await asyncio.sleep(settings.retention_sweep_secs)


async def _background(stack: AsyncExitStack, coro, name: str) -> None:
    """Run a task for the app's lifetime; cancelled and awaited at shutdown."""
    task = asyncio.create_task(coro, name=name)

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stack.push_async_callback(stop)


def _redis(app: FastAPI, settings: Settings, stack: AsyncExitStack) -> Redis | None:
    """One client per process, shared by both planes when they run together."""
    if not settings.redis_url:
        return None
    if getattr(app.state, "redis", None) is None:
        client = app.state.redis = Redis.from_url(settings.redis_url, decode_responses=True)

        async def close() -> None:
            app.state.redis = None
            await client.aclose()

        stack.push_async_callback(close)
    return app.state.redis


def _knowledge_store(settings: Settings) -> KnowledgeStore:
    retrieval = settings.resolved_knowledge_retrieval
    embedder: Embedder | None = None
    if retrieval != "bm25" and settings.voyage_api_key:
        from knowledge.voyage import VoyageEmbedder  # its client takes half a second to import

        embedder = VoyageEmbedder(
            settings.voyage_api_key,
            settings.voyage_model,
            settings.voyage_dimensions,
            str(settings.voyage_url) if settings.voyage_url else None,
        )
    elif retrieval != "bm25":
        embedder = open_embedder(settings.model_cache_dir)
    return open_store(
        settings.qdrant_edge_path,
        embedder,
        retrieval,
        str(settings.qdrant_url) if settings.qdrant_url else None,
        settings.qdrant_api_key,
        settings.qdrant_collection,
    )


async def start_control_plane(app: FastAPI, settings: Settings, stack: AsyncExitStack) -> None:
    """Tenancy, identity, secrets, knowledge, timelines, objects; the timeline writer."""
    # Migrations are the only way the schema is made; a fresh database is brought to
    # the latest revision, an up-to-date one is left alone.
    await asyncio.to_thread(migrate.upgrade, settings.resolved_database_url)
    redis = _redis(app, settings, stack)
    engine = create_engine(settings.resolved_database_url)
    stack.push_async_callback(engine.dispose)
    announce = None
    if redis is not None:
        # Media processes drop a tenant's cached agent configs when told it changed.
        async def announce(tenant_id: str) -> None:
            await redis.publish(settings.agent_changes_channel, tenant_id)

    app.state.sessions = session_factory(engine, announce)
    # Loading the embedding model (and building it, the first time) is seconds of CPU.
    app.state.knowledge = knowledge = await asyncio.to_thread(_knowledge_store, settings)
    stack.callback(knowledge.close)
    app.state.identity = await start_identity(settings, app.state.sessions)
    app.state.secrets = open_secret_store(
        vault_url=str(settings.vault_url) if settings.vault_url else None,
        vault_token=settings.vault_token,
        vault_mount=settings.vault_mount,
        secrets_key=settings.secrets_key,
        data_dir=settings.data_dir,
    )
    if settings.mongodb_url:
        mongo: AsyncIOMotorClient = AsyncIOMotorClient(settings.mongodb_url, tz_aware=True)
        stack.callback(mongo.close)
        timeline_store = MongoTimelineStore(mongo[settings.mongodb_database])
        await timeline_store.ensure_indexes()
        app.state.timeline = timeline_store
    else:
        app.state.timeline = SqlTimelineStore(app.state.sessions)
    app.state.objects = await open_object_store(
        minio_url=str(settings.minio_url) if settings.minio_url else None,
        access_key=settings.minio_access_key,
        secret_key=settings.minio_secret_key,
        bucket=settings.minio_bucket,
        region=settings.minio_region,
        data_dir=settings.data_dir,
        base_url=settings.base_url,
    )
    app.state.port = LocalControlPlane(
        app.state.sessions,
        knowledge,
        app.state.timeline,
        app.state.objects,
        settings.recording_retention_days,
    )
    await _background(
        stack,
        _sweep_recordings(app.state.sessions, app.state.objects, settings),
        "recording-retention",
    )
    app.state.ingest = (
        RedisIngestQueue(redis, settings.knowledge_jobs) if redis else LocalIngestQueue()
    )
    worker = IngestWorker(app.state.ingest, app.state.sessions, knowledge, app.state.objects)
    await _background(stack, worker.run(), "knowledge-ingest")
    if redis is not None:
        # Call events go media plane -> Redis stream -> this writer -> the timeline store.
        writer = TimelineWriter(
            redis,
            settings.events_stream,
            app.state.port.record_events,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
        )
        await writer.ensure_group()
        await _background(stack, writer.run(), "timeline-writer")


async def start_media_plane(
    app: FastAPI, settings: Settings, stack: AsyncExitStack, warm: bool
) -> None:
    """Calls: the telephony webhooks and media streams, one pipeline per call."""
    app.state.calls = CallRegistry()
    if settings.plane == "media":
        port = HttpControlPlane(
            str(settings.control_plane_url), settings.service_token, settings.agent_cache_secs
        )
        stack.push_async_callback(port.aclose)
        app.state.port = port
    redis = _redis(app, settings, stack)
    if redis is not None:
        app.state.event_sink = RedisStreamEventSink(redis, settings.events_stream)
        if settings.plane == "media":
            await _background(
                stack,
                port.follow_changes(redis, settings.agent_changes_channel, warm_greeting),
                "agent-changes",
            )
    else:
        app.state.event_sink = DirectEventSink(app.state.port)
    if warm:
        warm_models()


def create_app(settings: Settings | None = None, *, warm: bool = True) -> FastAPI:
    """The platform's app: both planes (the default), or one (``SWITCHBOARD_PLANE``)."""
    settings = settings or get_settings()
    control = settings.plane in ("all", "control")
    media = settings.plane in ("all", "media")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.state.settings = settings
        async with AsyncExitStack() as stack:
            if control:
                await start_control_plane(app, settings, stack)
            if media:
                await start_media_plane(app, settings, stack, warm)
            logger.info("platform.ready", plane=settings.plane)
            yield

    app = FastAPI(title="Switchboard", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    document_body_limit(app)
    app.add_middleware(
        BodySizeLimit,
        default_bytes=settings.max_request_bytes,
        # Service-authenticated: the media plane hands over whole call recordings.
        by_prefix={"/internal/": MAX_RECORDING_BYTES},
    )
    routers = []
    if control:
        routers += [
            tenants_router,
            numbers_router,
            knowledge_router,
            dead_letters_router,
            calls_router,
            users_router,
            api_keys_router,
            secrets_router,
            plans_router,
            issuer_router,
            objects_router,
            internal_router,
        ]
    if media:
        routers.append(twilio_router)
    for router in routers:
        app.include_router(router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, object]:
        health: dict[str, object] = {"status": "ok", "plane": settings.plane}
        if media:
            health["live_calls"] = app.state.calls.live_count
        return health

    if media:

        @app.get("/metrics", tags=["ops"], response_class=Response)
        async def metrics() -> Response:
            # Process-wide figures only (no tenant's data), for Prometheus to scrape.
            return Response(prometheus_client.generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
