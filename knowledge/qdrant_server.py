"""The production knowledge store: a Qdrant server, through the official qdrant-client.

One collection for every tenant. Each point carries ``tenant_id`` in a payload field
indexed as the tenant key (``is_tenant``: Qdrant keeps each tenant's points together), and
every query, scroll and delete is filtered by it here, inside the store. Each chunk has a
dense vector from the configured embedder (Voyage in production) and a BM25 sparse vector;
hybrid queries fuse the two in Qdrant's query API (prefetch + RRF). BM25 is computed with
Qdrant Edge's own BM25 (tokenizer, stemmer, hashing), so a chunk's sparse vector is the
same in the embedded store and here. IDF is counted over the tenant's own chunks
(``knowledge.store.tenant_idf``, a count query per query term on the indexed
``bm25_terms``), never the collection's: the server's IDF modifier would mix every tenant's
statistics into each one's scores.
"""

from functools import partial

import qdrant_edge as qe
from qdrant_client import QdrantClient
from qdrant_client import models as m

from knowledge.chunking import Chunk
from knowledge.dense import Embedder
from knowledge.store import (
    BM25,
    DENSE,
    RRF_K,
    TERMS,
    Hit,
    Retrieval,
    chunk_body,
    hits,
    point_id,
    tenant_idf,
)


class CollectionMismatch(RuntimeError):
    """The collection holds vectors another embedder made; they are not comparable."""


def _tenant(tenant_id: str, document_id: str | None = None, *more: m.FieldCondition) -> m.Filter:
    fields = {"tenant_id": tenant_id, "document_id": document_id}
    return m.Filter(
        must=[
            *(
                m.FieldCondition(key=key, match=m.MatchValue(value=value))
                for key, value in fields.items()
                if value is not None
            ),
            *more,
        ]
    )


class QdrantServerStore:
    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        embedder: Embedder | None,
        retrieval: Retrieval = Retrieval.HYBRID,
    ):
        self._client = client
        self._collection = collection
        self._embedder = embedder
        self._retrieval = retrieval if embedder else Retrieval.BM25
        self._bm25 = qe.Bm25(qe.Bm25Config(language="english"))
        self._ensure_collection()

    def _ensure_collection(self) -> None:
        size = self._embedder.dimensions if self._embedder else None
        if self._client.collection_exists(self._collection):
            vectors = self._client.get_collection(self._collection).config.params.vectors
            stored = vectors.get(DENSE) if isinstance(vectors, dict) else None
            sparse = self._client.get_collection(self._collection).config.params.sparse_vectors
            bm25 = (sparse or {}).get(BM25)
            if bm25 is not None and bm25.modifier == m.Modifier.IDF:
                raise CollectionMismatch(
                    f"Qdrant collection {self._collection!r} weighs BM25 by IDF over every "
                    "tenant's chunks (an earlier version's layout): set "
                    "SWITCHBOARD_QDRANT_COLLECTION to a new collection and upload again"
                )
            if (stored.size if stored else None) != size:
                raise CollectionMismatch(
                    f"Qdrant collection {self._collection!r} holds dense vectors of size "
                    f"{stored.size if stored else 'none'}, but the configured embedder "
                    f"({self._embedder.name if self._embedder else 'none'}) makes {size}: "
                    "set SWITCHBOARD_QDRANT_COLLECTION to a new collection and upload again"
                )
            return
        self._client.create_collection(
            self._collection,
            vectors_config=(
                {DENSE: m.VectorParams(size=size, distance=m.Distance.COSINE)} if size else {}
            ),
            sparse_vectors_config={BM25: m.SparseVectorParams()},
        )
        self._client.create_payload_index(
            self._collection,
            "tenant_id",
            m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True),
        )
        self._client.create_payload_index(
            self._collection, "document_id", m.PayloadSchemaType.KEYWORD
        )
        self._client.create_payload_index(
            self._collection,
            TERMS,
            m.IntegerIndexParams(type=m.IntegerIndexType.INTEGER, lookup=True, range=False),
        )

    def _sparse(self, vector: qe.SparseVector) -> m.SparseVector:
        return m.SparseVector(indices=list(vector.indices), values=list(vector.values))

    def upsert(self, tenant_id: str, document_id: str, chunks: list[Chunk]) -> None:
        bodies = [chunk_body(c.section, c.text) for c in chunks]
        dense = self._embedder.embed_documents(bodies) if self._embedder and bodies else None
        sparse = [self._bm25.embed_document(body) for body in bodies]
        points = [
            m.PointStruct(
                id=point_id(tenant_id, document_id, c.position),
                vector={BM25: self._sparse(sparse[i]), **({DENSE: dense[i]} if dense else {})},
                payload={
                    "tenant_id": tenant_id,
                    "document_id": document_id,
                    "section": c.section,
                    "text": c.text,
                    "position": c.position,
                    TERMS: list(sparse[i].indices),
                },
            )
            for i, c in enumerate(chunks)
        ]
        # Point ids follow the position, so the new version overwrites the old in place and
        # only the old version's extra chunks are deleted after: searches running meanwhile
        # never find the document missing.
        if points:
            self._client.upsert(self._collection, points, wait=True)
        beyond = m.FieldCondition(key="position", range=m.Range(gte=len(points)))
        self._client.delete(
            self._collection,
            m.FilterSelector(filter=_tenant(tenant_id, document_id, beyond)),
            wait=True,
        )

    def delete_document(self, tenant_id: str, document_id: str) -> None:
        self._client.delete(
            self._collection,
            m.FilterSelector(filter=_tenant(tenant_id, document_id)),
            wait=True,
        )

    def _count(self, tenant_id: str, term: int | None) -> int:
        holding = (
            () if term is None else (m.FieldCondition(key=TERMS, match=m.MatchValue(value=term)),)
        )
        return self._client.count(
            self._collection, count_filter=_tenant(tenant_id, None, *holding), exact=True
        ).count

    def search(self, tenant_id: str, query: str, k: int) -> list[Hit]:
        tenant = _tenant(tenant_id)
        bm25 = self._sparse(
            tenant_idf(self._bm25.embed_query(query), partial(self._count, tenant_id))
        )
        if self._retrieval is Retrieval.BM25 or not self._embedder:
            response = self._client.query_points(
                self._collection, query=bm25, using=BM25, query_filter=tenant, limit=k
            )
        else:
            dense = self._embedder.embed_query(query)
            if self._retrieval is Retrieval.DENSE:
                response = self._client.query_points(
                    self._collection, query=dense, using=DENSE, query_filter=tenant, limit=k
                )
            else:
                # Each side proposes more candidates than asked for, so fusion can reorder.
                wide = max(4 * k, 20)
                response = self._client.query_points(
                    self._collection,
                    prefetch=[
                        m.Prefetch(query=dense, using=DENSE, filter=tenant, limit=wide),
                        m.Prefetch(query=bm25, using=BM25, filter=tenant, limit=wide),
                    ],
                    query=m.RrfQuery(rrf=m.Rrf(k=RRF_K)),
                    query_filter=tenant,
                    limit=k,
                )
        return hits(response.points)

    def close(self) -> None:
        self._client.close()
