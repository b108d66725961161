"""The control plane's part of the app: tenancy, identity, secrets, knowledge, timelines,
objects, and the timeline writer."""

import asyncio
import os
import socket
from contextlib import AsyncExitStack

from fastapi import FastAPI
from loguru import logger
from motor.motor_asyncio import AsyncIOMotorClient

from common.slots import LocalSlots, RedisSlots
from control_plane.api_keys.routes import router as api_keys_router
from control_plane.calls import recordings
from control_plane.calls.routes import router as calls_router
from control_plane.calls.store import STORE_OUTAGES, MongoTimelineStore, SqlTimelineStore
from control_plane.calls.writer import TimelineWriter
from control_plane.identity.issuer import router as issuer_router
from control_plane.identity.setup import start_identity
from control_plane.internal.routes import MAX_RECORDING_BYTES, authenticate_service
from control_plane.internal.routes import router as internal_router
from control_plane.kit import migrate
from control_plane.kit.auth import authenticate
from control_plane.kit.db import create_engine, install_conflict_handler, session_factory
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
from knowledge.sandbox import Limits, Sandbox
from knowledge.store import KnowledgeStore, open_store
from switchboard.lifetime import background, shared_redis
from switchboard.settings import Settings

# What each route takes, at most (kit/body_limit.py); document uploads take the process's
# ceiling, SWITCHBOARD_MAX_REQUEST_BYTES (``control_body_limits``).
DOCUMENT_UPLOADS = "/v1/tenants/{tenant_id}/documents"
CONTROL_BODY_LIMITS = {
    # Service-authenticated: the media plane hands over whole call recordings.
    "/internal/v1/tenants/{tenant_id}/recordings/{call_id}": MAX_RECORDING_BYTES,
    "/internal/": 4 * 1024 * 1024,  # event batches (EVENT_BATCH events of a few KB at most)
    "/v1/": 256 * 1024,  # JSON: an agent with all its HTTP tools' schemas is under 100 KB
    "/realms/": 16 * 1024,  # a token request's form
}


def control_body_limits(settings: Settings) -> dict[str, int]:
    # A template rule: it wins over the /v1/ prefix (the prefix alone refused every upload
    # over 256 KB, so the background worker's documents never arrived).
    return CONTROL_BODY_LIMITS | {DOCUMENT_UPLOADS: settings.max_request_bytes}


# Bodies under these prefixes are read only once their credentials are good.
AUTHENTICATED_PREFIXES = {"/v1/": authenticate, "/internal/": authenticate_service}


def add_control_routes(app: FastAPI, *, internal: bool) -> None:
    """``internal``: the API media processes use (every tenant's agents and secrets to the
    service token), only where a separate media process needs it: in one process the media
    plane calls the control plane in memory, and the route would be surface for nothing."""
    install_conflict_handler(app)
    for router in (
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
    ):
        app.include_router(router)
    if internal:
        app.include_router(internal_router)


async def _sweep_recordings(sessions, objects, settings: Settings) -> None:
    """Recordings past their plan's retention are deleted on a schedule, from startup on."""
    while True:
        try:
            await recordings.sweep(sessions, objects, settings.recording_retention_days)
        except Exception:
            logger.exception("recordings.sweep_failed")  # tried again next round
        await asyncio.sleep(settings.retention_sweep_secs)


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
    redis = shared_redis(app, settings, stack)
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
        app.state.secrets,
        settings.recording_retention_days,
    )
    await background(
        stack,
        _sweep_recordings(app.state.sessions, app.state.objects, settings),
        "recording-retention",
    )
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    app.state.ingest = (
        RedisIngestQueue(redis, settings.knowledge_jobs, consumer) if redis else LocalIngestQueue()
    )
    app.state.sandbox = sandbox = Sandbox(
        Limits(
            cpu_secs=settings.knowledge_parse_cpu_secs,
            memory_mb=settings.knowledge_parse_memory_mb,
            # Twice the CPU allowed: a child starved of CPU by calls still gets to finish.
            wall_secs=2.0 * settings.knowledge_parse_cpu_secs,
        )
    )
    stack.push_async_callback(sandbox.close)
    app.state.upload_slots = (
        RedisSlots(redis, "switchboard:uploads") if redis is not None else LocalSlots()
    )
    worker = IngestWorker(
        app.state.ingest, app.state.sessions, knowledge, app.state.objects, sandbox.chunks
    )
    await background(stack, worker.run(), "knowledge-ingest")
    if redis is not None:
        # Call events go media plane -> Redis stream -> this writer -> the timeline store.
        writer = TimelineWriter(
            redis,
            settings.events_stream,
            app.state.port.record_events,
            consumer=consumer,
            outages=STORE_OUTAGES,
        )
        await writer.ensure_group()
        await background(stack, writer.run(), "timeline-writer")
