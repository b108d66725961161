from pydantic import BaseModel, ConfigDict, Field

from control_plane.kit.times import UtcDateTime


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
    created_at: UtcDateTime


class OriginalOut(BaseModel):
    document_id: str
    filename: str
    url: str = Field(description="a presigned link: GET it to download the uploaded file")
    expires_at: UtcDateTime
    bytes: int


class HitOut(BaseModel):
    document_id: str
    section: str
    text: str
    score: float
