"""The offline embedding model: meaning, not words, and the same vector every time."""

import numpy as np

from knowledge.dense import MiniLmEmbedder, model_dir


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def test_paraphrases_are_close_and_unrelated_text_is_not(embedder: MiniLmEmbedder):
    reset = embedder.embed_query("How do I reset my password?")
    paraphrase = embedder.embed_query("I forgot my password, how can I change it?")
    unrelated = embedder.embed_query("The clinic is closed on public holidays.")
    assert len(reset) == embedder.dimensions == 384
    assert abs(np.linalg.norm(reset) - 1) < 1e-4  # unit length: cosine is a dot product
    assert cosine(reset, paraphrase) > 0.7
    assert cosine(reset, unrelated) < 0.2


def test_a_text_gets_the_same_vector_alone_or_among_others(embedder: MiniLmEmbedder):
    alone = embedder.embed_documents(["Parking is on Mill Lane."])[0]
    among = embedder.embed_documents(
        [
            "A much longer text about whitening, which takes an hour and costs 250 dollars.",
            "Parking is on Mill Lane.",
            "Hi",
        ]
    )[1]
    assert alone == among == embedder.embed_query("Parking is on Mill Lane.")


def test_the_model_is_built_once_then_loaded_from_the_cache(tmp_path):
    source = model_dir()
    assert source is not None
    MiniLmEmbedder(source, tmp_path)
    [built] = list(tmp_path.iterdir())
    stamp = built.stat().st_mtime_ns
    again = MiniLmEmbedder(source, tmp_path)
    assert built.stat().st_mtime_ns == stamp and list(tmp_path.iterdir()) == [built]
    assert len(again.embed_query("hello")) == 384
