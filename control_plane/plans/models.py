from sqlalchemy import Integer, String
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
