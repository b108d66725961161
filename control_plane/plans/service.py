from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.calls.store import TimelineStore
from control_plane.kit import changes
from control_plane.kit.db import new_id
from control_plane.kit.errors import Conflict, NotFound
from control_plane.kit.pagination import PageParams, paginate
from control_plane.plans.models import Plan
from control_plane.plans.schemas import PlanIn
from control_plane.tenants.service import get_tenant
from media_plane.agent import Admission, MonthlyMinutes


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def create_plan(session: AsyncSession, data: PlanIn) -> Plan:
    if await session.scalar(select(Plan).where(Plan.name == data.name)):
        raise Conflict(f"a plan named {data.name!r} exists")
    plan = Plan(id=new_id("pln"), **data.model_dump())
    session.add(plan)
    await session.flush()
    return plan


async def list_plans(session: AsyncSession, paging: PageParams) -> tuple[list[Plan], int]:
    return await paginate(session, select(Plan).order_by(Plan.created_at), paging)


async def set_tenant_plan(session: AsyncSession, tenant_id: str, plan_id: str | None) -> None:
    tenant = await get_tenant(session, tenant_id)
    if plan_id is not None and await session.get(Plan, plan_id) is None:
        raise NotFound(f"plan {plan_id} does not exist")
    tenant.plan_id = plan_id
    changes.tenant_changed(session, tenant_id)  # whether its calls are recorded may change


async def tenant_plan(session: AsyncSession, tenant_id: str) -> Plan | None:
    tenant = await get_tenant(session, tenant_id)
    return await session.get(Plan, tenant.plan_id) if tenant.plan_id else None


async def admission(plan: Plan | None, timeline: TimelineStore, tenant_id: str) -> Admission:
    """Whether a new call for the tenant on ``plan`` is admitted now: refused once the
    month's minutes are used up (unless the plan allows overage). An admitted call may run
    the plan's longest call, while the month's minutes last: the media plane's call ledger
    meters them as calls run, fleet-wide, so calls under way together share what is left.
    The plan's concurrent calls are the ledger's to hold too, in the same step that admits
    the call."""
    if plan is None:
        return Admission()
    concurrent = plan.max_concurrent_calls
    longest = plan.max_call_minutes * 60.0 if plan.max_call_minutes else None
    if plan.overage_allowed:
        return Admission(max_secs=longest, max_concurrent_calls=concurrent)
    start = month_start()
    used = await timeline.minutes_used(tenant_id, start)
    if used >= plan.monthly_minutes:
        return Admission(refusal="monthly_minutes", max_concurrent_calls=concurrent)
    minutes = MonthlyMinutes(start.strftime("%Y-%m"), plan.monthly_minutes * 60.0, used * 60.0)
    return Admission(max_secs=longest, max_concurrent_calls=concurrent, minutes=minutes)
