from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.kit.db import Base, Timestamped


class PhoneNumber(Timestamped, Base):
    """A number is unique platform-wide and bound to one tenant's agent."""

    __tablename__ = "phone_numbers"

    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
