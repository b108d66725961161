"""A Voyage AI test server: ``POST /v1/embeddings`` as Voyage documents it (bearer key,
``input``, ``model``, ``input_type``, ``output_dimension``; a list of embeddings with their
index, and the token usage), for the ``voyageai`` client.

The vectors come from the offline MiniLM model, zero-padded to the requested dimension
(which leaves every cosine similarity as it was), so retrieval through this server finds
what a real embedding model would. Every request is kept for tests to inspect (which
input type the client sent for queries and for documents).
"""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from knowledge.dense import MiniLmEmbedder

DIMENSIONS = {256, 512, 1024, 2048}  # voyage-3.5's output dimensions
MAX_INPUTS = 1000


def voyage_app(api_key: str, embedder: MiniLmEmbedder) -> FastAPI:
    app = FastAPI()
    app.state.requests = []

    def error(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        if request.headers.get("authorization") != f"Bearer {api_key}":
            return error(401, "Provided API key is invalid.")
        body = await request.json()
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or len(texts) > MAX_INPUTS:
            return error(400, f"input must be a list of 1 to {MAX_INPUTS} texts")
        if body.get("input_type") not in (None, "query", "document"):
            return error(400, "input_type must be null, 'query' or 'document'")
        dimension = body.get("output_dimension") or 1024
        if dimension not in DIMENSIONS:
            return error(400, f"output_dimension must be one of {sorted(DIMENSIONS)}")
        app.state.requests.append(body)
        padding = [0.0] * (dimension - embedder.dimensions)
        vectors = [embedder.embed_query(t) + padding for t in texts]
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)
            ],
            "model": body.get("model"),
            "usage": {"total_tokens": sum(len(t.split()) for t in texts)},
        }

    return app
