"""Document upload: extract the text, chunk, keep the original, index."""

import asyncio
import hashlib
from pathlib import PurePath

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.kit.db import after_commit, new_id
from control_plane.kit.errors import NotFound, PayloadTooLarge, Unprocessable
from control_plane.kit.pagination import PageParams, paginate
from control_plane.knowledge.ingest import IngestQueue, Job
from control_plane.knowledge.models import Document
from control_plane.objects.store import ObjectStore
from control_plane.tenants.service import get_tenant
from knowledge.chunking import Chunk
from knowledge.extract import ExtractionError, content_type
from knowledge.sandbox import Parse, ParserDied
from knowledge.store import KnowledgeStore

MAX_BYTES = 5 * 1024 * 1024


async def _chunks(parse: Parse, filename: str, data: bytes) -> tuple[list[Chunk], str]:
    """The document's chunks and content type; 422 with the reason when it has no text, is
    malformed or breaks a limit."""
    try:
        kind = content_type(filename)
        chunks = await parse(filename, data)
    except ExtractionError as e:
        raise Unprocessable(str(e)) from e
    except ParserDied as e:
        raise Unprocessable(f"{e}; if it happens again the file is likely damaged") from e
    if not chunks:
        raise Unprocessable("document has no extractable text")
    return chunks, kind


async def add_document(
    session: AsyncSession,
    store: KnowledgeStore,
    objects: ObjectStore,
    parse: Parse,
    tenant_id: str,
    filename: str,
    data: bytes,
    queue: IngestQueue | None = None,
    inline_bytes: int = 0,
) -> tuple[Document, bool]:
    """The tenant's document for this upload, and whether it is new.

    The same content again is the document already there (nothing re-indexed); a file
    with the name of one already there replaces it in place (same id, new content). A
    file larger than ``inline_bytes`` is stored and queued for the background worker.
    """
    await get_tenant(session, tenant_id)
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"document is {len(data)} bytes; the limit is {MAX_BYTES}")
    sha256 = hashlib.sha256(data).hexdigest()
    mine = select(Document).where(Document.tenant_id == tenant_id)
    if same := await session.scalar(mine.where(Document.sha256 == sha256)):
        return same, False
    name = PurePath(filename).name
    if queue is not None and len(data) > inline_bytes:
        return await _enqueue(session, objects, queue, tenant_id, name, data, sha256)
    chunks, kind = await _chunks(parse, filename, data)
    if previous := await session.scalar(mine.where(Document.filename == name)):
        await _replace(store, objects, parse, previous, data, kind, chunks)
        previous.sha256, previous.chunks, previous.content_type = sha256, len(chunks), kind
        previous.status, previous.error = "ready", None
        # An older upload still waiting for the worker must not overwrite this newer one:
        # without its pending file, a queued job re-indexes the original, which is this.
        await objects.delete(tenant_id, previous.pending_name)
        await session.flush()
        return previous, False
    doc = _new_document(session, tenant_id, name, kind, sha256, status="ready", chunks=len(chunks))
    await session.flush()
    # The original is kept, then indexed, after the row is staged: if either fails the
    # request fails, the row is rolled back and what was written is removed, so nothing
    # is half-written.
    await objects.put(tenant_id, doc.original_name, data, kind)
    try:
        await asyncio.to_thread(store.upsert, tenant_id, doc.id, chunks)
    except Exception:
        await asyncio.to_thread(store.delete_document, tenant_id, doc.id)
        await objects.delete(tenant_id, doc.original_name)
        raise
    return doc, True


def _new_document(
    session: AsyncSession, tenant_id: str, name: str, kind: str, sha256: str, **state: object
) -> Document:
    doc = Document(
        id=new_id("doc"),
        tenant_id=tenant_id,
        filename=name,
        content_type=kind,
        sha256=sha256,
        **state,
    )
    session.add(doc)
    return doc


async def _enqueue(
    session: AsyncSession,
    objects: ObjectStore,
    queue: IngestQueue,
    tenant_id: str,
    name: str,
    data: bytes,
    sha256: str,
) -> tuple[Document, bool]:
    """Keep the upload, mark the document queued, and hand it to the worker once that is
    committed (a worker reading it sooner would not find it). A new document's upload is
    its original; a replacement waits under the pending name, and the version it replaces
    (original, chunks, hash) stays as it is until the worker has indexed the new one."""
    try:
        kind = content_type(name)
    except ExtractionError as e:
        raise Unprocessable(str(e)) from e
    previous = await session.scalar(
        select(Document).where(Document.tenant_id == tenant_id, Document.filename == name)
    )
    if previous is None:
        doc = _new_document(session, tenant_id, name, kind, sha256, status="queued", chunks=0)
    else:
        doc = previous
    doc.status, doc.error, doc.attempts = "queued", None, 0
    await session.flush()
    await objects.put(tenant_id, doc.pending_name if previous else doc.original_name, data, kind)
    after_commit(session, lambda: queue.push(Job(tenant_id, doc.id)))
    return doc, previous is None


async def _replace(
    store: KnowledgeStore,
    objects: ObjectStore,
    parse: Parse,
    previous: Document,
    data: bytes,
    kind: str,
    chunks: list[Chunk],
) -> None:
    """New chunks, then the new original. If either fails, the previous version is
    indexed again from its original (still stored), so the document stays whole."""
    try:
        await asyncio.to_thread(store.upsert, previous.tenant_id, previous.id, chunks)
        await objects.put(previous.tenant_id, previous.original_name, data, kind)
    except Exception:
        old = await objects.get(previous.tenant_id, previous.original_name)
        old_chunks, _ = await _chunks(parse, previous.filename, old)
        await asyncio.to_thread(store.upsert, previous.tenant_id, previous.id, old_chunks)
        raise


async def list_documents(
    session: AsyncSession, tenant_id: str, paging: PageParams
) -> tuple[list[Document], int]:
    await get_tenant(session, tenant_id)
    query = select(Document).where(Document.tenant_id == tenant_id)
    return await paginate(session, query.order_by(Document.created_at), paging)


async def get_document(session: AsyncSession, tenant_id: str, document_id: str) -> Document:
    doc = await session.scalar(
        select(Document).where(Document.tenant_id == tenant_id, Document.id == document_id)
    )
    if doc is None:
        raise NotFound(f"document {document_id} does not exist for tenant {tenant_id}")
    return doc


async def delete_document(
    session: AsyncSession,
    store: KnowledgeStore,
    objects: ObjectStore,
    tenant_id: str,
    document_id: str,
) -> None:
    doc = await get_document(session, tenant_id, document_id)
    await session.delete(doc)
    await session.flush()
    await asyncio.to_thread(store.delete_document, tenant_id, document_id)
    await objects.delete(tenant_id, doc.original_name)
    await objects.delete(tenant_id, doc.pending_name)
