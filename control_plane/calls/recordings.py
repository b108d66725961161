"""Call recordings in object storage: where each lives, and retention by plan.

The object store is the source of truth: a recording exists exactly as long as its object
does, so a recording past its plan's retention is gone from the API the moment the sweep
deletes it.
"""

from datetime import UTC, datetime, timedelta

from loguru import logger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.kit.db import session_scope
from control_plane.objects.store import ObjectStore
from control_plane.plans.models import Plan
from control_plane.tenants.models import Tenant

PREFIX = "recordings/"


def object_name(call_id: str) -> str:
    return f"{PREFIX}{call_id}.wav"


async def retention_by_tenant(session: AsyncSession, default_days: int) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(Tenant.id, Plan.recording_retention_days).outerjoin(Plan, Plan.id == Tenant.plan_id)
    )
    return [(tenant_id, default_days if days is None else days) for tenant_id, days in rows]


async def sweep(
    sessions: async_sessionmaker[AsyncSession],
    objects: ObjectStore,
    default_days: int,
    now: datetime | None = None,
) -> int:
    """Delete every recording older than its tenant's retention; returns how many."""
    now = now or datetime.now(UTC)
    async with session_scope(sessions) as session:
        tenants = await retention_by_tenant(session, default_days)
    total = 0
    for tenant_id, days in tenants:
        cutoff = now - timedelta(days=days)
        expired = [o for o in await objects.list(tenant_id, PREFIX) if o.modified < cutoff]
        for obj in expired:
            await objects.delete(tenant_id, obj.name)
        if expired:
            logger.bind(tenant_id=tenant_id).info(
                "recordings.expired", count=len(expired), retention_days=days
            )
        total += len(expired)
    return total
