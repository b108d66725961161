"""One contract for every knowledge backend: Qdrant Edge in process (the embedded default),
and the production path (qdrant-client against the Qdrant test server, Voyage's client
against the Voyage test server), each in the retrieval modes it serves; plus a real
Qdrant and Voyage when SWITCHBOARD_TEST_QDRANT_URL (+ _API_KEY) and
SWITCHBOARD_TEST_VOYAGE_API_KEY are set."""

import os
import uuid
from collections.abc import Iterator

import pytest
import voyageai.error
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient

from knowledge.chunking import chunk_document
from knowledge.dense import MiniLmEmbedder
from knowledge.qdrant_server import CollectionMismatch, QdrantServerStore
from knowledge.store import EdgeKnowledgeStore, KnowledgeStore, Retrieval
from knowledge.voyage import VoyageEmbedder
from switchboard.demo.run import free_port
from switchboard.server import create_app
from switchboard.settings import Settings
from tests.conftest import AUTH, TOKEN, make_tenant
from tests.servers import LiveServer
from tests.servers.qdrant import qdrant_app
from tests.servers.voyage import voyage_app

QDRANT_KEY, VOYAGE_KEY = "qdrant-test-key", "voyage-test-key"

BACKENDS = [
    ("edge", Retrieval.BM25),
    ("edge", Retrieval.DENSE),
    ("edge", Retrieval.HYBRID),
    ("qdrant-test-server", Retrieval.HYBRID),
    ("qdrant-test-server", Retrieval.DENSE),
    ("qdrant-test-server", Retrieval.BM25),
]
if os.environ.get("SWITCHBOARD_TEST_QDRANT_URL"):
    BACKENDS.append(("qdrant", Retrieval.HYBRID))

FAQ = (
    "# Parking\n\nThere are free spaces behind the clinic.\n\n"
    "# Payment\n\nWe take Visa and Mastercard.\n\n"
    "# Whitening\n\nWhitening costs 250 dollars and takes an hour."
)


@pytest.fixture(scope="module")
def servers(embedder: MiniLmEmbedder) -> Iterator[tuple[LiveServer, LiveServer]]:
    with (
        LiveServer(qdrant_app(QDRANT_KEY), free_port()) as qdrant,
        LiveServer(voyage_app(VOYAGE_KEY, embedder), free_port()) as voyage,
    ):
        yield qdrant, voyage


def voyage_embedder(voyage: LiveServer) -> VoyageEmbedder:
    if key := os.environ.get("SWITCHBOARD_TEST_VOYAGE_API_KEY"):
        return VoyageEmbedder(key)
    return VoyageEmbedder(VOYAGE_KEY, dimensions=512, base_url=f"{voyage.url}/v1")


@pytest.fixture(params=BACKENDS, ids=lambda b: f"{b[0]}-{b[1].value}")
def store(request, tmp_path, embedder, servers) -> Iterator[KnowledgeStore]:
    backend, retrieval = request.param
    qdrant, voyage = servers
    collection = f"test_{uuid.uuid4().hex[:8]}"
    if backend == "edge":
        built: KnowledgeStore = EdgeKnowledgeStore(tmp_path / "edge", embedder, retrieval)
    elif backend == "qdrant-test-server":
        client = QdrantClient(url=qdrant.url, api_key=QDRANT_KEY)
        built = QdrantServerStore(client, collection, voyage_embedder(voyage), retrieval)
    else:
        client = QdrantClient(
            url=os.environ["SWITCHBOARD_TEST_QDRANT_URL"],
            api_key=os.environ.get("SWITCHBOARD_TEST_QDRANT_API_KEY"),
        )
        built = QdrantServerStore(client, collection, voyage_embedder(voyage), retrieval)
    yield built
    built.close()


def test_a_tenant_never_retrieves_another_tenants_chunks(store):
    store.upsert("t1", "d1", chunk_document("Our cleaning price is 95 dollars."))
    store.upsert("t2", "d2", chunk_document("Our cleaning price is 12 dollars."))
    assert [h.text for h in store.search("t1", "cleaning price", 5)] == [
        "Our cleaning price is 95 dollars."
    ]
    assert [h.text for h in store.search("t2", "cleaning price", 5)] == [
        "Our cleaning price is 12 dollars."
    ]
    assert store.search("t3", "cleaning price", 5) == []


def test_a_tenants_scores_do_not_move_when_another_tenant_uploads(store):
    """Shared collection statistics would let a tenant infer which words other tenants'
    documents hold: its scores must depend on its own documents alone."""
    store.upsert("t1", "faq", chunk_document(FAQ))
    queries = ["whitening price", "parking spaces", "do you take visa"]
    before = [[(h.text, h.score) for h in store.search("t1", q, 3)] for q in queries]
    # Another tenant's documents, full of the same words, many times over.
    for n in range(20):
        store.upsert(
            "t2", f"d{n}", chunk_document(f"# Whitening {n}\n\nWhitening price {n}, parking.")
        )
    after = [[(h.text, h.score) for h in store.search("t1", q, 3)] for q in queries]
    assert after == before


def test_the_answer_comes_first_with_its_section(store):
    store.upsert("t1", "faq", chunk_document(FAQ))
    [top, *_] = store.search("t1", "how much is whitening", 3)
    assert (top.document_id, top.section) == ("faq", "Whitening")
    assert top.text == "Whitening costs 250 dollars and takes an hour."


def test_reupload_replaces_and_delete_removes_every_chunk(store):
    store.upsert("t1", "d1", chunk_document("Alpha parking.\n\nBeta parking.\n\nGamma parking."))
    store.upsert("t1", "d1", chunk_document("Delta parking."))
    assert [h.text for h in store.search("t1", "parking", 10)] == ["Delta parking."]
    store.delete_document("t1", "d1")
    assert store.search("t1", "parking", 10) == []


def test_voyage_gets_queries_and_documents_as_such(servers):
    qdrant, voyage = servers
    before = len(voyage.app.state.requests)
    embedder = VoyageEmbedder(VOYAGE_KEY, dimensions=512, base_url=f"{voyage.url}/v1")
    store = QdrantServerStore(
        QdrantClient(url=qdrant.url, api_key=QDRANT_KEY),
        f"test_{uuid.uuid4().hex[:8]}",
        embedder,
        Retrieval.DENSE,
    )
    store.upsert("t1", "faq", chunk_document(FAQ))
    [hit] = store.search("t1", "where do I leave my car?", 1)
    assert hit.section == "Parking"  # meaning, not words: no word in common
    sent = voyage.app.state.requests[before:]
    assert [(r["input_type"], len(r["input"])) for r in sent] == [("document", 3), ("query", 1)]
    assert {(r["model"], r["output_dimension"]) for r in sent} == {("voyage-3.5", 512)}
    store.close()


def test_a_wrong_key_is_a_clear_error_not_an_empty_answer(servers):
    qdrant, voyage = servers
    bad_voyage = VoyageEmbedder("not-the-key", base_url=f"{voyage.url}/v1")
    with pytest.raises(voyageai.error.AuthenticationError):
        bad_voyage.embed_query("hello")
    with pytest.raises(Exception, match=r"401|api-key"):
        # No version check: it would be refused too, and only warn.
        refused = QdrantClient(url=qdrant.url, api_key="not-the-key", check_compatibility=False)
        QdrantServerStore(refused, "any", None, Retrieval.BM25)


def test_a_collection_made_by_another_embedder_is_refused_with_the_fix(servers, embedder):
    qdrant, _ = servers
    name = f"test_{uuid.uuid4().hex[:8]}"
    QdrantServerStore(QdrantClient(url=qdrant.url, api_key=QDRANT_KEY), name, embedder).close()
    with pytest.raises(CollectionMismatch, match="SWITCHBOARD_QDRANT_COLLECTION"):
        QdrantServerStore(
            QdrantClient(url=qdrant.url, api_key=QDRANT_KEY),
            name,
            VoyageEmbedder(VOYAGE_KEY, base_url="http://127.0.0.1:9/v1"),
        )


def test_the_platform_runs_on_qdrant_and_voyage_when_configured(tmp_path, servers):
    qdrant, voyage = servers
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "data",
        admin_token=TOKEN,
        qdrant_url=qdrant.url,
        qdrant_api_key=QDRANT_KEY,
        qdrant_collection=f"test_{uuid.uuid4().hex[:8]}",
        voyage_api_key=VOYAGE_KEY,
        voyage_url=f"{voyage.url}/v1",
    )
    before = len(qdrant.app.state.requests)
    with TestClient(create_app(settings, warm=False)) as client:
        t = make_tenant(client, FAQ)
        r = client.get(
            f"/v1/tenants/{t['id']}/knowledge/search",
            params={"q": "can I pay by card?"},
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        assert r.json()[0]["section"] == "Payment"
    assert not (tmp_path / "data" / "qdrant-edge").exists()  # nothing went to the edge store
    assert ("POST", f"/collections/{settings.qdrant_collection}/points/query") in (
        qdrant.app.state.requests[before:]
    )
