from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.kit.db import Base, Timestamped


class User(Timestamped, Base):
    """A user of the built-in OIDC issuer. With Keycloak, users live in Keycloak instead."""

    __tablename__ = "identity_users"
    # Unique within a tenant only: a name another tenant uses must not answer differently.
    __table_args__ = (
        UniqueConstraint("tenant_id", "username", name="uq_identity_users_tenant_username"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    username: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True, index=True
    )
    # Disabled: refused at sign-in, and every token it holds is refused from that moment.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def sign_in_name(username: str, tenant_id: str | None) -> str:
    """What the user types to sign in: a tenant's users are named within their tenant."""
    return f"{username}@{tenant_id}" if tenant_id else username


def named(sign_in: str) -> tuple[str, str | None]:
    """(username, tenant id) from a sign-in name; a platform user's has no tenant."""
    username, _, tenant_id = sign_in.rpartition("@")
    if username and tenant_id.startswith("ten_"):
        return username, tenant_id
    return sign_in, None
