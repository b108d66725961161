from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    max_concurrent_calls: int = Field(ge=0, le=100_000)
    monthly_minutes: int = Field(ge=0, le=100_000_000)
    recording_retention_days: int = Field(
        default=30, ge=0, le=3650, description="days recordings are kept; 0: calls not recorded"
    )


class PlanOut(PlanIn):
    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: datetime


class TenantPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str | None


class UsageOut(BaseModel):
    plan: PlanOut | None
    month_start: datetime
    minutes_used: float
