from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class CallEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    call_id: str
    seq: int
    kind: str
    at: datetime
    data: dict[str, Any]


class BookingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    call_id: str
    when: str
    name: str | None
    created_at: datetime
