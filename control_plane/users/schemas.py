from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from control_plane.identity.models import sign_in_name
from control_plane.kit.json_types import JsonBool
from control_plane.kit.times import UtcDateTime


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=200, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=8, max_length=200)
    role: Literal["tenant-admin", "tenant-viewer"]


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: JsonBool


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    role: str
    tenant_id: str | None
    disabled_at: UtcDateTime | None  # set: refused at sign-in, its tokens refused
    created_at: UtcDateTime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sign_in_name(self) -> str:
        """What the user signs in with: ``username@tenant_id``."""
        return sign_in_name(self.username, self.tenant_id)
