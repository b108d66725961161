"""SQLAlchemy 2 async engine and session handling."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import DateTime, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid4().hex}"


class Base(DeclarativeBase):
    pass


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def create_engine(url: str, *, foreign_keys: bool = True) -> AsyncEngine:
    """``foreign_keys=False`` is for migrations only: on SQLite, altering a table means
    rebuilding it, and dropping the old copy with foreign keys on would cascade-delete
    every row that references it (the migration checks the keys afterwards instead)."""
    engine = create_async_engine(url)
    if url.startswith("sqlite"):
        # SQLite ignores foreign keys unless asked, per connection.
        @event.listens_for(engine.sync_engine, "connect")
        def _fk_on(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


def import_models() -> None:
    """Import every slice's models so their tables are on Base.metadata (migrations)."""
    from control_plane.api_keys import models as _api_keys  # noqa: F401
    from control_plane.calls import models as _calls  # noqa: F401
    from control_plane.identity import models as _identity  # noqa: F401
    from control_plane.knowledge import models as _knowledge  # noqa: F401
    from control_plane.numbers import models as _numbers  # noqa: F401
    from control_plane.plans import models as _plans  # noqa: F401
    from control_plane.tenants import models as _tenants  # noqa: F401


# Session info key: who is told, after a commit, which tenants' call routing changed.
ANNOUNCER = "announce_tenant_change"
_AFTER_COMMIT = "after_commit"


def session_factory(
    engine: AsyncEngine, announce: Callable[[str], Awaitable[None]] | None = None
) -> async_sessionmaker[AsyncSession]:
    """``announce`` is told, after each commit, which tenants' call routing changed
    (see kit/changes.py)."""
    info = {ANNOUNCER: announce} if announce else {}
    return async_sessionmaker(engine, expire_on_commit=False, info=info)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session per request or job; the boundary commits, services never do.

    A context manager, so leaving the block by ``return`` commits too. Actions registered
    with ``after_commit`` run once the commit is done, never after a rollback.
    """
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        for action in session.info.pop(_AFTER_COMMIT, []):
            await action()


def after_commit(session: AsyncSession, action: Callable[[], Awaitable[None]]) -> None:
    """Run ``action`` once the session has committed (never if it rolls back): for what
    others must only see once the data they will read is there."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def install_conflict_handler(app: FastAPI) -> None:
    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced for the same unique row; the loser gets what it would have
        # got a moment later.
        return JSONResponse(
            {"error": "conflict", "detail": "the resource already exists or changed"},
            status_code=409,
        )
