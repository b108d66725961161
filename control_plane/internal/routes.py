"""The internal API the media plane calls when it runs as its own process.

Each endpoint is one method of the media plane's ``ControlPlanePort``, served by the same
in-process implementation the embedded mode uses, so both modes behave alike. Callers
authenticate with the service token (``SWITCHBOARD_SERVICE_TOKEN``), never with a user's
token; these routes belong on the cluster network, not behind the public ingress.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from control_plane.kit.crypto import same_secret
from control_plane.kit.errors import NotFound, Unauthorized, error_responses
from control_plane.kit.json_types import JsonInt
from control_plane.port import LocalControlPlane
from knowledge.hits import Hit
from media_plane.agent import Admission, AgentConfig, CallEventRecord

MAX_RECORDING_BYTES = 256 * 1024 * 1024  # 2.3 hours of stereo 8 kHz 16-bit audio
_bearer = HTTPBearer(auto_error=False)
# Ids that become object-key segments: letters, digits, '.', '_' and '-' only.
SafeId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")]


async def service_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    token = request.app.state.settings.service_token
    if credentials is None or not same_secret(credentials.credentials, token):
        raise Unauthorized("the internal API needs the service token")


async def authenticate_service(request: Request) -> None:
    """The service token from the headers alone (``kit/authenticate_first.py``)."""
    await service_caller(request, await _bearer(request))


router = APIRouter(
    prefix="/internal/v1",
    tags=["internal"],
    dependencies=[Depends(service_caller)],
    responses=error_responses(401, 422),
)


def _port(request: Request) -> LocalControlPlane:
    return request.app.state.port


class CallEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=40)
    tenant_id: str = Field(min_length=1, max_length=40)
    call_id: str = Field(min_length=1, max_length=64)
    seq: JsonInt = Field(ge=0, le=2**31 - 1)
    kind: str = Field(min_length=1, max_length=40)
    at: float = Field(ge=0, lt=253_402_300_800, description="Unix time (before year 10000)")
    data: dict


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(max_length=64)
    when: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)


class Created(BaseModel):
    id: str


class Secret(BaseModel):
    value: str


# The port's own dataclasses are the wire schemas: one definition for both sides.
@router.get("/numbers/{e164}/agent", response_model=AgentConfig, responses=error_responses(404))
async def agent_for_number(e164: str, request: Request) -> AgentConfig:
    """The live agent config a call to this number starts with."""
    agent = await _port(request).agent_for_number(e164)
    if agent is None:
        raise NotFound(f"{e164} is not bound to any agent")
    return agent


@router.post("/events", status_code=204)
async def record_events(events: list[CallEventIn], request: Request) -> None:
    """Call timeline events, when no Redis stream carries them."""
    await _port(request).record_events([CallEventRecord(**e.model_dump()) for e in events])


@router.post(
    "/tenants/{tenant_id}/bookings",
    status_code=201,
    response_model=Created,
    responses=error_responses(404),
)
async def create_booking(tenant_id: str, body: BookingIn, request: Request) -> Created:
    booking_id = await _port(request).create_booking(tenant_id, body.call_id, body.when, body.name)
    return Created(id=booking_id)


@router.get("/tenants/{tenant_id}/knowledge/search", response_model=list[Hit])
async def search_knowledge(
    tenant_id: str,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    k: Annotated[int, Query(ge=1, le=20)] = 3,
) -> list[Hit]:
    return await _port(request).search_knowledge(tenant_id, q, k)


@router.get("/tenants/{tenant_id}/admission", response_model=Admission)
async def admission(tenant_id: str, request: Request) -> Admission:
    return await _port(request).admission(tenant_id)


@router.get(
    "/tenants/{tenant_id}/secrets/{name}", response_model=Secret, responses=error_responses(404)
)
async def secret(tenant_id: str, name: str, request: Request) -> Secret:
    """A tenant's secret in clear, for the calls that use it (provider keys, the
    telephony token that signs its webhooks). Only the service token reaches this."""
    value = await _port(request).secret(tenant_id, name)
    if value is None:
        raise NotFound(f"secret {name} is not set for tenant {tenant_id}")
    return Secret(value=value)


@router.put(
    "/tenants/{tenant_id}/recordings/{call_id}",
    status_code=201,
    response_model=Created,
    responses=error_responses(413),
    openapi_extra={"requestBody": {"required": True, "content": {"audio/wav": {"schema": {}}}}},
)
async def store_recording(tenant_id: SafeId, call_id: SafeId, request: Request) -> Created:
    """A finished call's recording (a WAV file as the body). Its size is held to
    MAX_RECORDING_BYTES by the body-size limit, before the body is read."""
    wav = await request.body()
    name = await _port(request).store_recording(tenant_id, call_id, wav)
    return Created(id=name)
