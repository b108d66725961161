"""A Qdrant test server: the REST API's collection and point calls that ``qdrant-client``
makes for the knowledge store, as Qdrant documents them, with Qdrant Edge (the same engine,
in process) doing the storing, filtering, BM25/IDF, prefetch and fusion.

Covered: service info, collection exists/get/create, payload index, upsert, delete by
filter, scroll, and the query API (nearest dense or sparse, prefetch, RRF). Requests carry
the ``api-key`` header, checked as the server does. Anything else, or a construct it does
not translate, is answered 400 naming it, never silently ignored.
"""

import tempfile
import uuid
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

VERSION = "1.20.0"  # the API qdrant-client 1.20 speaks


def _ok(result: Any) -> dict:
    return {"result": result, "status": "ok", "time": 0.0}


def _unsupported(what: str) -> HTTPException:
    return HTTPException(400, f"the Qdrant test server does not support {what}")


def _filter(raw: dict | None) -> qe.Filter | None:
    if not raw:
        return None
    if set(raw) - {"must"}:
        raise _unsupported(f"filter clauses {sorted(set(raw) - {'must'})}")
    conditions = []
    for c in raw["must"]:
        if set(c) == {"key", "match"} and set(c["match"]) == {"value"}:
            conditions.append(qe.FieldCondition(c["key"], match=qe.MatchValue(c["match"]["value"])))
        elif set(c) == {"key", "range"} and set(c["range"]) <= {"gte", "gt", "lte", "lt"}:
            conditions.append(qe.FieldCondition(c["key"], range=qe.RangeFloat(**c["range"])))
        else:
            raise _unsupported(f"condition {c}")
    return qe.Filter(must=conditions)


def _vector(raw: Any) -> Any:
    if isinstance(raw, list):
        return [float(x) for x in raw]
    if isinstance(raw, dict) and set(raw) == {"indices", "values"}:
        return qe.SparseVector(raw["indices"], raw["values"])
    raise _unsupported(f"vector {str(raw)[:80]}")


def _scoring(body: dict) -> Any:
    query = body.get("query")
    if isinstance(query, dict) and "rrf" in query:
        return qe.Fusion.Rrf(k=int(query["rrf"].get("k", 60)))
    if isinstance(query, dict) and query.get("fusion") == "rrf":
        return qe.Fusion.Rrf(k=60)
    if isinstance(query, dict) and "nearest" in query:
        query = query["nearest"]
    return qe.Query.Nearest(_vector(query), using=body.get("using"))


def _prefetch(raw: dict) -> qe.Prefetch:
    if raw.get("prefetch"):
        raise _unsupported("nested prefetch")
    return qe.Prefetch(
        limit=int(raw.get("limit", 10)), query=_scoring(raw), filter=_filter(raw.get("filter"))
    )


def _point_id(raw: Any) -> Any:
    return str(uuid.UUID(raw)) if isinstance(raw, str) else raw


class _Collection:
    def __init__(self, path: Path, body: dict):
        vectors = body.get("vectors") or {}
        sparse = body.get("sparse_vectors") or {}
        if "size" in vectors:
            raise _unsupported("an unnamed dense vector")
        self.body = body
        self.shard = qe.EdgeShard.create(
            str(path),
            qe.EdgeConfig(
                vectors={
                    name: qe.EdgeVectorParams(
                        size=v["size"], distance=getattr(qe.Distance, v["distance"])
                    )
                    for name, v in vectors.items()
                }
                or None,
                sparse_vectors={
                    name: qe.EdgeSparseVectorParams(
                        modifier=qe.Modifier.Idf if s.get("modifier") == "idf" else None
                    )
                    for name, s in sparse.items()
                },
            ),
        )
        self.indexes: dict[str, dict] = {}

    def info(self) -> dict:
        return {
            "status": "green",
            "optimizer_status": "ok",
            "segments_count": self.shard.info().segments_count,
            "points_count": self.shard.info().points_count,
            "config": {
                "params": {
                    "vectors": self.body.get("vectors") or {},
                    "sparse_vectors": self.body.get("sparse_vectors") or {},
                },
                "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
                "optimizer_config": {"default_segment_number": 0, "flush_interval_sec": 5},
            },
            "payload_schema": {
                name: {"data_type": schema.get("type", "keyword"), "points": 0}
                for name, schema in self.indexes.items()
            },
        }


def qdrant_app(api_key: str) -> FastAPI:
    app = FastAPI()
    root = Path(tempfile.mkdtemp(prefix="qdrant-test-"))
    collections: dict[str, _Collection] = {}
    # What the client sent, for tests to inspect.
    app.state.requests = []

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if request.headers.get("api-key") != api_key:
            return JSONResponse({"status": {"error": "Invalid api-key"}}, status_code=401)
        app.state.requests.append((request.method, request.url.path))
        return await call_next(request)

    def collection(name: str) -> _Collection:
        if name not in collections:
            raise HTTPException(404, f"Collection `{name}` doesn't exist!")
        return collections[name]

    @app.get("/")
    async def service() -> dict:
        return {"title": "qdrant - vector search engine", "version": VERSION}

    @app.get("/collections/{name}/exists")
    async def exists(name: str) -> dict:
        return _ok({"exists": name in collections})

    @app.get("/collections/{name}")
    async def get_collection(name: str) -> dict:
        return _ok(collection(name).info())

    @app.put("/collections/{name}")
    async def create_collection(name: str, request: Request) -> dict:
        if name in collections:
            raise HTTPException(409, f"Collection `{name}` already exists!")
        collections[name] = _Collection(root / name, await request.json())
        return _ok(True)

    @app.put("/collections/{name}/index")
    async def create_index(name: str, request: Request) -> dict:
        body = await request.json()
        schema = body["field_schema"]
        schema = {"type": schema} if isinstance(schema, str) else schema
        if schema.get("type") == "keyword":
            params: Any = qe.KeywordIndexParams(is_tenant=bool(schema.get("is_tenant")))
        elif schema.get("type") == "integer":
            params = qe.IntegerIndexParams(
                lookup=bool(schema.get("lookup", True)), range=bool(schema.get("range", True))
            )
        else:
            raise _unsupported(f"index schema {schema}")
        c = collection(name)
        c.shard.update(qe.UpdateOperation.create_field_index(body["field_name"], params))
        c.indexes[body["field_name"]] = schema
        return _ok({"operation_id": 0, "status": "completed"})

    @app.put("/collections/{name}/points")
    async def upsert(name: str, request: Request) -> dict:
        body = await request.json()
        if "points" not in body:
            raise _unsupported("batch upserts")
        points = [
            qe.Point(
                _point_id(p["id"]),
                {k: _vector(v) for k, v in p["vector"].items()},
                p.get("payload") or {},
            )
            for p in body["points"]
        ]
        collection(name).shard.update(qe.UpdateOperation.upsert_points(points))
        return _ok({"operation_id": 0, "status": "completed"})

    @app.post("/collections/{name}/points/delete")
    async def delete(name: str, request: Request) -> dict:
        body = await request.json()
        if "filter" not in body:
            raise _unsupported("deleting by id")
        collection(name).shard.update(
            qe.UpdateOperation.delete_points_by_filter(_filter(body["filter"]))
        )
        return _ok({"operation_id": 0, "status": "completed"})

    @app.post("/collections/{name}/points/query")
    async def query(name: str, request: Request) -> dict:
        body = await request.json()
        points = collection(name).shard.query(
            qe.QueryRequest(
                limit=int(body.get("limit", 10)),
                query=_scoring(body),
                prefetches=[_prefetch(p) for p in body.get("prefetch") or []],
                filter=_filter(body.get("filter")),
                with_payload=bool(body.get("with_payload", True)),
            )
        )
        return _ok(
            {
                "points": [
                    {"id": str(p.id), "version": 0, "score": p.score, "payload": p.payload}
                    for p in points
                ]
            }
        )

    @app.post("/collections/{name}/points/count")
    async def count(name: str, request: Request) -> dict:
        body = await request.json()
        request_ = qe.CountRequest(filter=_filter(body.get("filter")), exact=True)
        return _ok({"count": collection(name).shard.count(request_)})

    @app.post("/collections/{name}/points/scroll")
    async def scroll(name: str, request: Request) -> dict:
        body = await request.json()
        offset = body.get("offset")
        records, next_offset = collection(name).shard.scroll(
            qe.ScrollRequest(
                offset=_point_id(offset) if offset is not None else None,
                limit=int(body.get("limit", 10)),
                filter=_filter(body.get("filter")),
                with_payload=True,
            )
        )
        return _ok(
            {
                "points": [{"id": str(r.id), "payload": r.payload} for r in records],
                "next_page_offset": str(next_offset) if next_offset is not None else None,
            }
        )

    return app
