from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from control_plane.kit.times import UtcDateTime

E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]


class NumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    e164: E164
    agent_id: str
    # Which telephony provider delivers this number's calls; its webhooks answer only for
    # numbers bound to it.
    provider: Literal["twilio", "exotel"] = "twilio"


class NumberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    e164: str
    tenant_id: str
    agent_id: str
    provider: str
    created_at: UtcDateTime
