"""Voyage embeddings (production), through Voyage's official client.

Voyage embeds a query and a document differently (``input_type``: each gets its own
prompt), which is why the ``Embedder`` protocol keeps the two apart.
"""

import voyageai

# Voyage's limit is 1,000 texts and 320k tokens (voyage-3.5) per request; chunks are at
# most ~600 characters, so 128 per request stays far inside both.
_BATCH = 128


class VoyageEmbedder:
    def __init__(
        self,
        api_key: str,
        model: str = "voyage-3.5",
        dimensions: int = 1024,
        base_url: str | None = None,
        timeout_secs: float = 10,
    ):
        self.name = f"voyage/{model}/{dimensions}"
        self.dimensions = dimensions
        self._model = model
        self._client = voyageai.Client(
            api_key=api_key, max_retries=2, timeout=timeout_secs, base_url=base_url
        )

    def _embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        result = self._client.embed(
            texts,
            model=self._model,
            input_type=input_type,
            output_dimension=self.dimensions,
        )
        return [list(map(float, e)) for e in result.embeddings]

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], "query")[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            out += self._embed(texts[start : start + _BATCH], "document")
        return out
