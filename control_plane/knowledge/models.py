from pathlib import PurePath

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.kit.db import Base, Timestamped


class Document(Timestamped, Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    # Background indexing started this many times for the current upload: what a worker
    # that restarts counts on, so a file that kills its worker is given up, not retried
    # for ever.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def original_name(self) -> str:
        """Where the uploaded file itself is kept, under the tenant's prefix."""
        return f"documents/{self.id}{PurePath(self.filename).suffix.lower()}"

    @property
    def pending_name(self) -> str:
        """Where a replacement waits for the background worker; the original (and its
        chunks) keep answering until it is indexed."""
        return f"documents/{self.id}.pending{PurePath(self.filename).suffix.lower()}"
