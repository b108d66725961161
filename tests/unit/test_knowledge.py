import itertools

from knowledge.chunking import MAX_CHARS, chunk_document
from knowledge.store import EdgeKnowledgeStore
from knowledge.text import key_terms


def test_chunks_follow_headings_and_paragraphs():
    doc = "# Hours\n\nOpen 9 to 5.\n\n## Prices\n\n- Cleaning: $95\n- Whitening: $250\n"
    chunks = chunk_document(doc)
    assert [(c.section, c.text) for c in chunks] == [
        ("Hours", "Open 9 to 5."),
        ("Prices", "Cleaning: $95 Whitening: $250"),
    ]
    assert [c.position for c in chunks] == [0, 1]


def test_long_paragraphs_split_at_sentences_with_overlap():
    sentences = [f"Sentence number {i} says something about topic {i}." for i in range(40)]
    chunks = chunk_document(" ".join(sentences))
    assert len(chunks) > 1
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    for a, b in itertools.pairwise(chunks):
        assert a.text.split(". ")[-1].rstrip(".") in b.text  # one sentence of overlap
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)  # nothing lost


def test_a_tenant_never_retrieves_another_tenants_chunks(tmp_path):
    store = EdgeKnowledgeStore(tmp_path / "edge")
    store.upsert("t1", "d1", chunk_document("Our cleaning price is 95 dollars."))
    store.upsert("t2", "d2", chunk_document("Our cleaning price is 12 dollars."))
    assert [h.text for h in store.search("t1", "cleaning price", 5)] == [
        "Our cleaning price is 95 dollars."
    ]
    assert [h.text for h in store.search("t2", "cleaning price", 5)] == [
        "Our cleaning price is 12 dollars."
    ]
    assert store.search("t3", "cleaning price", 5) == []
    assert "dollar" in store.key_terms("t1") and store.key_terms("t3") == frozenset()
    store.close()


def test_reupload_replaces_and_delete_removes_every_chunk(tmp_path):
    store = EdgeKnowledgeStore(tmp_path / "edge")
    store.upsert("t1", "d1", chunk_document("Alpha parking.\n\nBeta parking.\n\nGamma parking."))
    store.upsert("t1", "d1", chunk_document("Delta parking."))
    assert [h.text for h in store.search("t1", "parking", 10)] == ["Delta parking."]
    store.delete_document("t1", "d1")
    assert store.search("t1", "parking", 10) == []
    store.close()


def test_key_terms_follow_the_tenants_documents(tmp_path):
    store = EdgeKnowledgeStore(tmp_path / "edge")
    store.upsert("t1", "d1", chunk_document("Parking is on Mill Lane."))
    assert "mill" in store.key_terms("t1")
    store.upsert("t1", "d2", chunk_document("Whitening takes one hour."))
    assert {"mill", "whiten"} <= store.key_terms("t1")  # a new document is seen at once
    store.delete_document("t1", "d1")
    terms = store.key_terms("t1")
    assert "whiten" in terms and "mill" not in terms  # and a deleted one is gone
    store.close()


def test_the_index_survives_a_restart(tmp_path):
    store = EdgeKnowledgeStore(tmp_path / "edge")
    store.upsert("t1", "d1", chunk_document("Parking is on Mill Lane."))
    store.close()
    reopened = EdgeKnowledgeStore(tmp_path / "edge")
    assert reopened.search("t1", "where is parking", 1)[0].text == "Parking is on Mill Lane."
    reopened.close()


def test_key_terms_skip_stopwords_numbers_and_short_words():
    assert key_terms("What does the teeth whitening cost? Two hundred dollars.") == {
        "teeth",
        "whiten",
        "cost",
        "dollar",
    }
