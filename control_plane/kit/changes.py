"""Telling the media plane that what a called number resolves to has changed.

Services mark the tenant whose agents, numbers, plan or secrets they changed (media pods
cache all four); once the session has committed, the mark is announced to whoever the
session factory was given (in a split deployment: a Redis pub/sub channel that every
media pod's agent cache listens on).
Announcing after the commit, never before, means a media pod that refetches at once
reads the new configuration, not the old one.
"""

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.kit.db import ANNOUNCER, after_commit

_PENDING = "changed_tenants"


def tenant_changed(session: AsyncSession, tenant_id: str) -> None:
    pending: set[str] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = set()
        after_commit(session, lambda: _announce(session, pending))
    pending.add(tenant_id)


async def _announce(session: AsyncSession, tenants: set[str]) -> None:
    announce = session.info.get(ANNOUNCER)
    if announce is None:
        return
    for tenant_id in sorted(tenants):
        try:
            await announce(tenant_id)
        except Exception:
            # The change is committed; media pods pick it up when their cache entry
            # expires instead of at once.
            logger.bind(tenant_id=tenant_id).exception("agent_changes.announce_failed")
