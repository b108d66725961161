from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile, status

from control_plane.kit.auth import TenantScope
from control_plane.kit.deps import SessionDep
from control_plane.kit.errors import error_responses
from control_plane.kit.pagination import Page, PageParams, page_params
from control_plane.knowledge import service
from control_plane.knowledge.schemas import DocumentOut, HitOut
from control_plane.tenants.service import get_tenant

router = APIRouter(
    prefix="/v1/tenants/{tenant_id}",
    tags=["knowledge"],
    responses=error_responses(401, 403, 404, 422),
)


@router.post(
    "/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    responses=error_responses(413),
)
async def upload_document(
    tenant_id: str, file: UploadFile, request: Request, session: SessionDep, _: TenantScope
) -> DocumentOut:
    data = await file.read(service.MAX_BYTES + 1)
    doc = await service.add_document(
        session, request.app.state.knowledge, tenant_id, file.filename or "", data
    )
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


@router.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(
    tenant_id: str, document_id: str, request: Request, session: SessionDep, _: TenantScope
) -> None:
    await service.delete_document(session, request.app.state.knowledge, tenant_id, document_id)


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
    hits = request.app.state.knowledge.search(tenant_id, q, k)
    return [HitOut(**asdict(h)) for h in hits]
