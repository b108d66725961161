"""What a knowledge search returns. Its own module: the media plane passes hits to the
LLM without importing the store, its embedding model or Qdrant."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hit:
    document_id: str
    section: str
    text: str
    score: float
