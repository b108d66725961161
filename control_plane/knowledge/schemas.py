from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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


class OriginalOut(BaseModel):
    document_id: str
    filename: str
    url: str = Field(description="a presigned link: GET it to download the uploaded file")
    expires_at: datetime
    bytes: int


class HitOut(BaseModel):
    document_id: str
    section: str
    text: str
    score: float
