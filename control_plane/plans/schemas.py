from pydantic import BaseModel, ConfigDict, Field

from control_plane.kit.times import UtcDateTime


class PlanIn(BaseModel):
    # Strict: a count is a JSON number, not true, false or "3".
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=100)
    max_concurrent_calls: int = Field(ge=0, le=100_000)
    monthly_minutes: int = Field(ge=0, le=100_000_000)
    recording_retention_days: int = Field(
        default=30, ge=0, le=3650, description="days recordings are kept; 0: calls not recorded"
    )
    max_call_minutes: int | None = Field(
        default=None, ge=1, le=24 * 60, description="the longest call; unset: the platform's"
    )
    overage_allowed: bool = Field(
        default=False,
        description="false: a call is told and ended when the month's minutes run out",
    )


class PlanOut(PlanIn):
    model_config = ConfigDict(from_attributes=True, strict=False)

    id: str
    created_at: UtcDateTime


class TenantPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str | None


class UsageOut(BaseModel):
    plan: PlanOut | None
    month_start: UtcDateTime
    minutes_used: float
