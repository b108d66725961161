import asyncio
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile, status
from pydantic import BaseModel

from common.slots import Full, slot
from control_plane.kit.auth import PlatformAdmin, TenantScope
from control_plane.kit.db import after_commit
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import NotFound, TooManyRequests, error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.knowledge import service
from control_plane.knowledge.ingest import Job
from control_plane.knowledge.schemas import DocumentOut, HitOut, OriginalOut
from control_plane.objects.store import link
from control_plane.tenants.service import get_tenant

router = APIRouter(
    prefix="/v1/tenants/{tenant_id}",
    tags=["knowledge"],
    responses=error_responses(401, 403, 404, 422, 503),
)
# Longer than any upload takes (the sandbox's deadline, then indexing): a slot whose
# holder died is free again after it.
UPLOAD_LEASE_SECS = 600.0


@router.post(
    "/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    responses={
        200: {
            "description": "The same content was there already (that document is returned), "
            "or a document of this name was replaced in place (same id).",
            "model": DocumentOut,
        },
        202: {
            "description": "A large document, stored and queued: its status goes from "
            "queued through processing to ready, or to failed with the reason.",
            "model": DocumentOut,
        },
        **error_responses(413, 429),
    },
)
async def upload_document(
    tenant_id: str,
    file: UploadFile,
    request: Request,
    response: Response,
    session: SessionDep,
    _: TenantScope,
) -> DocumentOut:
    data = await file.read(service.MAX_BYTES + 1)
    state = request.app.state
    limit = state.settings.uploads_per_tenant
    try:
        # Reading a document is a child process's CPU: a tenant's share is bounded, so
        # one tenant's burst of uploads never queues another's behind it.
        async with slot(state.upload_slots, tenant_id, limit, UPLOAD_LEASE_SECS):
            doc, created = await service.add_document(
                session,
                state.knowledge,
                state.objects,
                state.sandbox.chunks,
                tenant_id,
                file.filename or "",
                data,
                queue=state.ingest,
                inline_bytes=state.settings.knowledge_inline_bytes,
            )
    except Full:
        raise TooManyRequests(
            f"tenant {tenant_id} already has {limit} uploads being read; send this one "
            "when one of them is answered",
            retry_after_secs=5,
        ) from None
    if doc.status == "queued":
        response.status_code = status.HTTP_202_ACCEPTED
    elif not created:
        response.status_code = status.HTTP_200_OK
    return DocumentOut.model_validate(doc)


@router.get("/documents", response_model=Page[DocumentOut])
async def list_documents(
    tenant_id: str,
    session: SessionDep,
    _: TenantScope,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[DocumentOut]:
    rows, total = await service.list_documents(session, tenant_id, paging)
    return Page[DocumentOut].of(rows, total, paging)


@router.get("/documents/{document_id}", response_model=DocumentOut)
async def get_document(
    tenant_id: str, document_id: str, session: SessionDep, _: TenantScope
) -> DocumentOut:
    """One document: its status (queued, processing, ready, failed) and any error."""
    return DocumentOut.model_validate(await service.get_document(session, tenant_id, document_id))


@router.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(
    tenant_id: str, document_id: str, request: Request, session: SessionDep, _: TenantScope
) -> None:
    """Removes the document, every chunk of it from the index and the stored original."""
    state = request.app.state
    await service.delete_document(session, state.knowledge, state.objects, tenant_id, document_id)


@router.get("/documents/{document_id}/original", response_model=OriginalOut)
async def document_original(
    tenant_id: str, document_id: str, request: Request, session: SessionDep, _: TenantScope
) -> OriginalOut:
    """A short-lived link to the file as it was uploaded."""
    doc = await service.get_document(session, tenant_id, document_id)
    lifetime = timedelta(seconds=request.app.state.settings.recording_link_secs)
    found = await link(request.app.state.objects, tenant_id, doc.original_name, lifetime)
    if found is None:
        raise NotFound(f"the original of document {document_id} is no longer stored")
    return OriginalOut(
        document_id=doc.id,
        filename=doc.filename,
        url=found.url,
        expires_at=found.expires_at,
        bytes=found.bytes,
    )


@router.get("/knowledge/search", response_model=list[HitOut])
async def search(
    tenant_id: str,
    request: Request,
    session: SessionDep,
    _: TenantScope,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    k: Annotated[int, Query(ge=1, le=20)] = 5,
) -> list[HitOut]:
    await get_tenant(session, tenant_id)
    hits = await asyncio.to_thread(request.app.state.knowledge.search, tenant_id, q, k)
    return [HitOut(**asdict(h)) for h in hits]


dead_letters_router = APIRouter(
    prefix="/v1/knowledge/dead-letters",
    tags=["knowledge"],
    responses=error_responses(401, 403, 422, 503),
)


class DeadLetterOut(BaseModel):
    tenant_id: str
    document_id: str
    attempts: int
    reason: str
    at: datetime


@dead_letters_router.get("", response_model=list[DeadLetterOut])
async def list_dead_letters(request: Request, _: PlatformAdmin) -> list[DeadLetterOut]:
    """Documents whose indexing failed on every attempt, oldest first."""
    letters = await request.app.state.ingest.dead_letters()
    return [
        DeadLetterOut(**asdict(letter) | {"at": datetime.fromtimestamp(letter.at, UTC)})
        for letter in letters
    ]


@dead_letters_router.post(
    "/{document_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentOut,
    responses=error_responses(404),
)
async def replay_dead_letter(
    document_id: str, request: Request, session: SessionDep, _: PlatformAdmin
) -> DocumentOut:
    """Queue the document again, from its first attempt."""
    letter = await request.app.state.ingest.revive(document_id)
    if letter is None:
        raise NotFound(f"document {document_id} has no dead letter")
    doc = await service.get_document(session, letter.tenant_id, document_id)
    doc.status, doc.error, doc.attempts = "queued", None, 0
    queue = request.app.state.ingest
    after_commit(session, lambda: queue.push(Job(letter.tenant_id, document_id)))
    return DocumentOut.model_validate(doc)
