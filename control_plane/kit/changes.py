"""Telling the media plane that what a called number resolves to has changed.

Services mark the tenant whose agents, numbers or plan they changed; once the session has
committed, the mark is announced to whoever the session factory was given (in a split
deployment: a Redis pub/sub channel that every media pod's agent cache listens on).
Announcing after the commit, never before, means a media pod that refetches at once
reads the new configuration, not the old one.
"""

from collections.abc import Awaitable, Callable

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

ANNOUNCER = "announce_tenant_change"
_PENDING = "changed_tenants"

Announcer = Callable[[str], Awaitable[None]]


def tenant_changed(session: AsyncSession, tenant_id: str) -> None:
    session.info.setdefault(_PENDING, set()).add(tenant_id)


async def announce_committed(session: AsyncSession) -> None:
    changed: set[str] = session.info.pop(_PENDING, set())
    announce: Announcer | None = session.info.get(ANNOUNCER)
    if announce is None:
        return
    for tenant_id in sorted(changed):
        try:
            await announce(tenant_id)
        except Exception:
            # The change is committed; media pods pick it up when their cache entry
            # expires instead of at once.
            logger.bind(tenant_id=tenant_id).exception("agent_changes.announce_failed")


def forget_pending(session: AsyncSession) -> None:
    session.info.pop(_PENDING, None)
