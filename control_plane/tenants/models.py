from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.kit.db import Base, Timestamped, utcnow


class Tenant(Timestamped, Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan_id: Mapped[str | None] = mapped_column(
        ForeignKey("plans.id", ondelete="RESTRICT"), nullable=True
    )


class Agent(Timestamped, Base):
    """The live configuration of an agent; every change is also kept as an AgentVersion."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    persona: Mapped[str] = mapped_column(Text)
    greeting: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(20))
    voice: Mapped[str] = mapped_column(String(100))
    tools: Mapped[list[str]] = mapped_column(JSON)
    transfer_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    providers: Mapped[dict[str, str]] = mapped_column(JSON)
    llm_model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    llm_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    http_tools: Mapped[list[dict]] = mapped_column(JSON, default=list)
    speech: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class AgentVersion(Timestamped, Base):
    """An immutable snapshot: what the agent was from this version until the next."""

    __tablename__ = "agent_versions"

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    config: Mapped[dict] = mapped_column(JSON)
