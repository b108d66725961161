from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from control_plane.kit.json_types import JsonBool, JsonInt
from control_plane.kit.times import UtcDateTime


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    max_concurrent_calls: JsonInt = Field(ge=0, le=100_000)
    monthly_minutes: JsonInt = Field(ge=0, le=100_000_000)
    recording_retention_days: JsonInt = Field(
        default=30, ge=0, le=3650, description="days recordings are kept; 0: calls not recorded"
    )
    max_call_minutes: Annotated[JsonInt, Field(ge=1, le=24 * 60)] | None = Field(
        default=None, description="the longest call; unset: the platform's"
    )
    overage_allowed: JsonBool = Field(
        default=False,
        description="false: a call is told and ended when the month's minutes run out",
    )


class PlanOut(PlanIn):
    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: UtcDateTime


class TenantPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str | None


class UsageOut(BaseModel):
    plan: PlanOut | None
    month_start: UtcDateTime
    minutes_used: float
