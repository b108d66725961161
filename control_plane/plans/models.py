from sqlalchemy import Boolean, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.kit.db import Base, Timestamped


class Plan(Timestamped, Base):
    """Quotas a tenant's calls are admitted under. A tenant without a plan has no limits."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    max_concurrent_calls: Mapped[int] = mapped_column(Integer)
    monthly_minutes: Mapped[int] = mapped_column(Integer)
    # Days a call recording is kept; 0: the tenant's calls are not recorded.
    recording_retention_days: Mapped[int] = mapped_column(Integer, server_default="30")
    # The longest a call may last; None: the platform's limit (SWITCHBOARD_MAX_CALL_MINUTES).
    max_call_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # False: a call is ended (politely) when the month's minutes run out; True: it goes on.
    overage_allowed: Mapped[bool] = mapped_column(Boolean, server_default=false())
