import itertools
import logging

from knowledge.chunking import MAX_CHARS, chunk_document
from knowledge.dense import MiniLmEmbedder
from knowledge.store import EdgeKnowledgeStore, Retrieval


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


def test_reupload_replaces_and_delete_removes_every_chunk(tmp_path):
    store = EdgeKnowledgeStore(tmp_path / "edge")
    store.upsert("t1", "d1", chunk_document("Alpha parking.\n\nBeta parking.\n\nGamma parking."))
    store.upsert("t1", "d1", chunk_document("Delta parking."))
    assert [h.text for h in store.search("t1", "parking", 10)] == ["Delta parking."]
    store.delete_document("t1", "d1")
    assert store.search("t1", "parking", 10) == []
    store.close()


def test_the_index_survives_a_restart(tmp_path):
    store = EdgeKnowledgeStore(tmp_path / "edge")
    store.upsert("t1", "d1", chunk_document("Parking is on Mill Lane."))
    store.close()
    reopened = EdgeKnowledgeStore(tmp_path / "edge")
    assert reopened.search("t1", "where is parking", 1)[0].text == "Parking is on Mill Lane."
    reopened.close()


def test_dense_retrieval_finds_what_the_caller_means_not_only_what_they_say(
    tmp_path, embedder: MiniLmEmbedder
):
    faq = "# Parking\n\nThere are free spaces behind the clinic.\n\n# Payment\n\nWe take Visa."
    lexical = EdgeKnowledgeStore(tmp_path / "bm25")
    dense = EdgeKnowledgeStore(tmp_path / "dense", embedder, Retrieval.DENSE)
    for store in (lexical, dense):
        store.upsert("t1", "faq", chunk_document(faq))
    question = "where do I leave my car?"
    assert lexical.search("t1", question, 1) == []  # not one word in common
    assert dense.search("t1", question, 1)[0].section == "Parking"
    lexical.close()
    dense.close()


def test_a_store_reopened_with_an_embedder_reindexes_its_chunks_once(
    tmp_path, embedder: MiniLmEmbedder, caplog
):
    path = tmp_path / "edge"
    old = EdgeKnowledgeStore(path)  # written before the model was installed: BM25 only
    old.upsert("t1", "faq", chunk_document("# Parking\n\nFree spaces behind the clinic."))
    old.upsert("t2", "faq", chunk_document("# Payment\n\nWe take Visa."))
    old.close()
    caplog.set_level(logging.INFO, logger="knowledge.store")
    store = EdgeKnowledgeStore(path, embedder, Retrieval.DENSE)
    assert "re-indexed 2 knowledge chunks" in caplog.text
    [hit] = store.search("t1", "where do I leave my car?", 5)
    assert (hit.document_id, hit.section, hit.text) == (
        "faq",
        "Parking",
        "Free spaces behind the clinic.",
    )
    assert [h.text for h in store.search("t2", "can I pay by card", 5)] == ["We take Visa."]
    store.close()
    caplog.clear()
    EdgeKnowledgeStore(path, embedder, Retrieval.DENSE).close()
    assert "re-index" not in caplog.text  # same vector space: loaded as it is


def test_a_reindex_cut_off_between_its_renames_keeps_the_old_shard(tmp_path):
    path = tmp_path / "edge"
    store = EdgeKnowledgeStore(path)
    store.upsert("t1", "faq", chunk_document("Parking is on Mill Lane."))
    store.close()
    path.rename(tmp_path / "edge.previous")  # swapped out, the new one never swapped in
    reopened = EdgeKnowledgeStore(path)
    assert reopened.search("t1", "parking", 1)[0].text == "Parking is on Mill Lane."
    reopened.close()


def test_hindi_text_splits_at_the_danda_and_keeps_whole_words():
    from knowledge.chunking import split_sentences
    from knowledge.text import content_words

    text = "दुकान सुबह नौ बजे खुलती है। रविवार को दुकान बंद रहती है।पार्किंग मुफ़्त है॥ Open at 9."
    assert split_sentences(text) == [
        "दुकान सुबह नौ बजे खुलती है।",
        "रविवार को दुकान बंद रहती है।",
        "पार्किंग मुफ़्त है॥",
        "Open at 9.",
    ]
    # Vowel signs are combining marks: they stay in their word. Function words are dropped.
    assert content_words("दुकान कितने बजे खुलती है?") == {"दुकान", "बजे", "खुलती"}
