"""Tenant-scoped chunk storage and retrieval.

Every point carries its tenant id in a tenant-indexed payload field, and every query is
filtered by it inside the store: a caller of ``search`` cannot forget the filter.
"""

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import qdrant_edge as qe

from knowledge.chunking import Chunk
from knowledge.text import key_terms

BM25 = "bm25"


@dataclass(frozen=True, slots=True)
class Hit:
    document_id: str
    section: str
    text: str
    score: float


class KnowledgeStore(Protocol):
    def upsert(self, tenant_id: str, document_id: str, chunks: list[Chunk]) -> None: ...

    def delete_document(self, tenant_id: str, document_id: str) -> None: ...

    def search(self, tenant_id: str, query: str, k: int) -> list[Hit]: ...

    def key_terms(self, tenant_id: str) -> frozenset[str]: ...

    def close(self) -> None: ...


def _point_id(tenant_id: str, document_id: str, position: int) -> str:
    # Deterministic ids make a re-upload overwrite rather than duplicate.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{document_id}/{position}"))


def _tenant_filter(tenant_id: str, *more: qe.FieldCondition) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition("tenant_id", match=qe.MatchValue(tenant_id)), *more])


class EdgeKnowledgeStore:
    """Qdrant Edge: the in-process Qdrant engine, with its built-in BM25."""

    def __init__(self, path: Path):
        path.mkdir(parents=True, exist_ok=True)
        self._bm25 = qe.Bm25(qe.Bm25Config(language="english"))
        # The shard is not documented as safe for concurrent writers; searches are
        # sub-millisecond, so one lock costs nothing and removes the question.
        self._lock = threading.Lock()
        # Every call asks for its tenant's key terms; they change only with its documents.
        self._terms: dict[str, frozenset[str]] = {}
        # Changes per tenant: terms worked out while a document changed are not kept.
        self._changes: dict[str, int] = {}
        if any(path.iterdir()):
            self._shard = qe.EdgeShard.load(str(path))
        else:
            config = qe.EdgeConfig(
                sparse_vectors={BM25: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}
            )
            self._shard = qe.EdgeShard.create(str(path), config)
            self._shard.update(
                qe.UpdateOperation.create_field_index(
                    "tenant_id", qe.KeywordIndexParams(is_tenant=True)
                )
            )
            self._shard.update(
                qe.UpdateOperation.create_field_index("document_id", qe.KeywordIndexParams())
            )

    def upsert(self, tenant_id: str, document_id: str, chunks: list[Chunk]) -> None:
        points = [
            qe.Point(
                _point_id(tenant_id, document_id, c.position),
                {BM25: self._bm25.embed_document(f"{c.section}\n{c.text}")},
                {
                    "tenant_id": tenant_id,
                    "document_id": document_id,
                    "section": c.section,
                    "text": c.text,
                    "position": c.position,
                },
            )
            for c in chunks
        ]
        with self._lock:
            # Replace the document whole: chunks of an older version must not linger.
            self._shard.update(
                qe.UpdateOperation.delete_points_by_filter(
                    _tenant_filter(
                        tenant_id,
                        qe.FieldCondition("document_id", match=qe.MatchValue(document_id)),
                    )
                )
            )
            if points:
                self._shard.update(qe.UpdateOperation.upsert_points(points))
            self._shard.flush()
            self._forget_terms(tenant_id)

    def delete_document(self, tenant_id: str, document_id: str) -> None:
        with self._lock:
            self._shard.update(
                qe.UpdateOperation.delete_points_by_filter(
                    _tenant_filter(
                        tenant_id,
                        qe.FieldCondition("document_id", match=qe.MatchValue(document_id)),
                    )
                )
            )
            self._shard.flush()
            self._forget_terms(tenant_id)

    def _forget_terms(self, tenant_id: str) -> None:
        self._terms.pop(tenant_id, None)
        self._changes[tenant_id] = self._changes.get(tenant_id, 0) + 1

    def search(self, tenant_id: str, query: str, k: int) -> list[Hit]:
        request = qe.QueryRequest(
            limit=k,
            query=qe.Query.Nearest(self._bm25.embed_query(query), using=BM25),
            filter=_tenant_filter(tenant_id),
            with_payload=True,
        )
        with self._lock:
            points = self._shard.query(request)
        return [
            Hit(
                document_id=p.payload["document_id"],
                section=p.payload.get("section", ""),
                text=p.payload["text"],
                score=p.score,
            )
            for p in points
            if p.payload
        ]

    def key_terms(self, tenant_id: str, max_chunks: int = 2000) -> frozenset[str]:
        """The distinctive words of a tenant's documents (speech recognition bias),
        worked out once and kept until one of the tenant's documents changes."""
        cached = self._terms.get(tenant_id)
        if cached is not None:
            return cached
        generation = self._changes.get(tenant_id, 0)
        terms: set[str] = set()
        offset = None
        seen = 0
        while seen < max_chunks:
            request = qe.ScrollRequest(
                offset=offset, limit=256, filter=_tenant_filter(tenant_id), with_payload=True
            )
            with self._lock:
                records, offset = self._shard.scroll(request)
            for record in records:
                payload = record.payload or {}
                terms |= key_terms(f"{payload.get('section', '')} {payload.get('text', '')}")
            seen += len(records)
            if offset is None or not records:
                break
        result = frozenset(terms)
        with self._lock:
            if self._changes.get(tenant_id, 0) == generation:
                self._terms[tenant_id] = result
        return result

    def close(self) -> None:
        with self._lock:
            self._shard.flush()
            self._shard.close()


def open_store(qdrant_url: str | None, edge_path: Path) -> KnowledgeStore:
    """The one place the vector backend is chosen."""
    if qdrant_url:
        # The Qdrant server path (qdrant-client, Voyage + BM25 hybrid) is the knowledge
        # issue's work; refuse clearly rather than silently falling back to the edge store.
        raise RuntimeError(
            "SWITCHBOARD_QDRANT_URL is set, but this build has only the embedded Qdrant Edge "
            "store; unset it to use the embedded default"
        )
    return EdgeKnowledgeStore(edge_path)
