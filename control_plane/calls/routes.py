from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from control_plane.calls import recordings, service
from control_plane.calls.schemas import BookingOut, CallEventOut
from control_plane.calls.store import CallFilters, TimelineStore
from control_plane.kit.auth import TenantScope
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import NotFound, error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.kit.times import DateTimeIn, UtcDateTime
from control_plane.objects.store import link
from control_plane.tenants.service import get_tenant

router = APIRouter(
    prefix="/v1/tenants/{tenant_id}",
    tags=["calls"],
    responses=error_responses(401, 403, 404, 422, 503),
)
Paging = Annotated[PageParams, Depends(page_params)]


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    call_id: str
    number: str | None
    agent_id: str | None
    agent_version: int | None
    started_at: UtcDateTime | None
    ended_at: UtcDateTime | None
    outcome: str | None


class TranscriptLine(BaseModel):
    speaker: str
    text: str
    at: UtcDateTime
    interrupted: bool = False


class CallDetail(CallOut):
    timeline: list[CallEventOut]
    transcript: list[TranscriptLine]


def _timeline(request: Request) -> TimelineStore:
    return request.app.state.timeline


@router.get("/calls", response_model=Page[CallOut])
async def list_calls(
    tenant_id: str,
    request: Request,
    session: SessionDep,
    _: TenantScope,
    paging: Paging,
    since: Annotated[DateTimeIn | None, Query(description="calls that started at or after")] = None,
    until: Annotated[DateTimeIn | None, Query(description="calls that started before")] = None,
    number: Annotated[str | None, Query(max_length=20, description="the number called")] = None,
    outcome: Annotated[str | None, Query(max_length=40, description="e.g. caller_hung_up")] = None,
) -> Page[CallOut]:
    """Calls, newest first."""
    await get_tenant(session, tenant_id)
    filters = CallFilters(since=since, until=until, number=number, outcome=outcome)
    rows, total = await _timeline(request).calls(tenant_id, filters, paging)
    return Page[CallOut].of(rows, total, paging)


@router.get("/calls/{call_id}", response_model=CallDetail)
async def get_call(
    tenant_id: str, call_id: str, request: Request, session: SessionDep, _: TenantScope
) -> CallDetail:
    """One call with its ordered timeline and its transcript."""
    await get_tenant(session, tenant_id)
    store = _timeline(request)
    summary = await store.call(tenant_id, call_id)
    if summary is None:
        raise NotFound(f"call {call_id} does not exist for tenant {tenant_id}")
    events, _total = await store.timeline(tenant_id, call_id, PageParams(limit=10_000))
    transcript = [
        TranscriptLine(
            speaker="caller" if e.kind == "turn.user" else "agent",
            text=str(e.data.get("text") or ""),
            at=e.at,
            interrupted=bool(e.data.get("interrupted", False)),
        )
        for e in events
        if e.kind in ("turn.user", "turn.agent") and e.data.get("text")
    ]
    timeline = [CallEventOut.model_validate(e) for e in events]
    return CallDetail(
        **CallOut.model_validate(summary).model_dump(), timeline=timeline, transcript=transcript
    )


@router.get("/calls/{call_id}/events", response_model=Page[CallEventOut])
async def call_events(
    tenant_id: str,
    call_id: str,
    request: Request,
    session: SessionDep,
    _: TenantScope,
    paging: Paging,
) -> Page[CallEventOut]:
    await get_tenant(session, tenant_id)
    rows, total = await _timeline(request).timeline(tenant_id, call_id, paging)
    if total == 0:
        raise NotFound(f"call {call_id} does not exist for tenant {tenant_id}")
    return Page[CallEventOut].of(rows, total, paging)


class RecordingOut(BaseModel):
    call_id: str
    url: str = Field(description="a presigned link: GET it to play or download the WAV")
    expires_at: UtcDateTime
    bytes: int
    recorded_at: UtcDateTime


@router.get("/calls/{call_id}/recording", response_model=RecordingOut)
async def call_recording(
    tenant_id: str, call_id: str, request: Request, session: SessionDep, _: TenantScope
) -> RecordingOut:
    """A short-lived link to the call's recording (stereo WAV: caller left, agent right)."""
    await get_tenant(session, tenant_id)
    if await _timeline(request).call(tenant_id, call_id) is None:
        raise NotFound(f"call {call_id} does not exist for tenant {tenant_id}")
    lifetime = timedelta(seconds=request.app.state.settings.recording_link_secs)
    found = await link(
        request.app.state.objects, tenant_id, recordings.object_name(call_id), lifetime
    )
    if found is None:
        raise NotFound(
            f"call {call_id} has no recording: its tenant's plan does not record calls, "
            "or the recording is past the plan's retention"
        )
    return RecordingOut(
        call_id=call_id,
        url=found.url,
        expires_at=found.expires_at,
        bytes=found.bytes,
        recorded_at=found.stored_at,
    )


@router.get("/bookings", response_model=Page[BookingOut])
async def bookings(
    tenant_id: str, session: SessionDep, _: TenantScope, paging: Paging
) -> Page[BookingOut]:
    await get_tenant(session, tenant_id)
    rows, total = await service.list_bookings(session, tenant_id, paging)
    return Page[BookingOut].of(rows, total, paging)
