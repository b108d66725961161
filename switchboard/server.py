"""The platform's ASGI app. Embedded mode runs both planes in one process.

Each plane's modules are imported only by a process that runs it: a media-only process
never loads the control plane's libraries (SQLAlchemy, Mongo, Vault, MinIO, document
parsers, the embedding model), which would otherwise be most of its memory."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from loguru import logger

from common.failures import open_failures
from control_plane.kit.authenticate_first import AuthenticateFirst, Authenticator
from control_plane.kit.body_limit import BodySizeLimit
from control_plane.kit.errors import (
    ServiceUnavailable,
    document_body_limit,
    error_responses,
    install_error_handlers,
)
from media_plane.telephony.stream_guard import MAX_MESSAGE_BYTES
from switchboard.lifetime import shared_redis
from switchboard.settings import Settings, get_settings

# How uvicorn must serve the app: the media streams' message ceiling is enforced by the
# WebSocket protocol itself, which closes the socket (1009) before buffering more.
SERVER_LIMITS = {"ws_max_size": MAX_MESSAGE_BYTES}


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
            # Failed attempts (sign-ins, telephony signatures) counted fleet-wide with Redis.
            app.state.failures = open_failures(shared_redis(app, settings, stack))
            if control:
                from switchboard.control import start_control_plane

                await start_control_plane(app, settings, stack)
            if media:
                from switchboard.media import start_media_plane

                await start_media_plane(app, settings, stack, warm)
            logger.info("platform.ready", plane=settings.plane)
            yield

    docs = settings.serves_api_docs
    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_error_handlers(app)
    document_body_limit(app)
    body_limits: dict[str, int] = {}
    authenticated: dict[str, Authenticator] = {}
    if control:
        from switchboard.control import (
            AUTHENTICATED_PREFIXES,
            add_control_routes,
            control_body_limits,
        )

        add_control_routes(app, internal=not media)
        body_limits |= control_body_limits(settings)
        authenticated |= AUTHENTICATED_PREFIXES
    if media:
        from switchboard.media import MEDIA_BODY_LIMITS, add_media_routes

        add_media_routes(app, settings)
        body_limits |= MEDIA_BODY_LIMITS
    app.add_middleware(
        BodySizeLimit, default_bytes=settings.max_request_bytes, by_route=body_limits
    )
    app.add_middleware(AuthenticateFirst, by_prefix=authenticated)  # outermost: first

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, object]:
        """Liveness: the process answers (a draining one too: its calls go on)."""
        health: dict[str, object] = {"status": "ok", "plane": settings.plane}
        if media:
            health["live_calls"] = app.state.calls.live_count
        return health

    @app.get("/readyz", tags=["ops"], responses=error_responses(503))
    async def readyz() -> dict[str, object]:
        """Readiness: whether to send this process new calls (no while it drains)."""
        if media and app.state.calls.draining:  # SIGTERM (switchboard/serve.py)
            raise ServiceUnavailable("draining: finishing its calls, taking no new ones")
        return {"status": "ready", "plane": settings.plane}

    return app
