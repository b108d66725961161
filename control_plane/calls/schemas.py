from typing import Any

from pydantic import BaseModel, ConfigDict

from control_plane.kit.times import UtcDateTime


class CallEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    call_id: str
    seq: int
    kind: str
    at: UtcDateTime
    data: dict[str, Any]


class BookingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    call_id: str
    when: str
    name: str | None
    created_at: UtcDateTime
