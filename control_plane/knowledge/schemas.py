from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    tenant_id: str
    filename: str
    content_type: str
    sha256: str
    status: str
    chunks: int
    error: str | None
    created_at: datetime


class HitOut(BaseModel):
    document_id: str
    section: str
    text: str
    score: float
