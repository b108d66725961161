from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from control_plane.kit.times import UtcDateTime


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Literal["tenant-admin", "tenant-viewer"] = "tenant-viewer"


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    tenant_id: str
    name: str
    role: str
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. Shown once: only its hash is stored.")
