"""Word-level text helpers shared by retrieval-side consumers (dialogue engine, STT bias)."""

import re
import unicodedata

# A word is letters and digits with the marks that belong to them: in Indian scripts the
# vowel signs are combining marks, and without them "खुलती" would fall apart into letters.
_MARKS = "".join(
    chr(c) for c in range(0x300, 0x10000) if unicodedata.category(chr(c)).startswith("M")
)
_WORD = re.compile(f"(?:[^\\W_]|[{re.escape(_MARKS)}])+")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "doing",
        "i",
        "you",
        "your",
        "we",
        "our",
        "us",
        "me",
        "my",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "and",
        "or",
        "but",
        "if",
        "so",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "there",
        "here",
        "have",
        "has",
        "had",
        "please",
        "tell",
        "know",
        "like",
        "want",
        "just",
        "any",
        "some",
        "get",
        "got",
        "much",
        "many",
    ]
)
# Hindi's function words (postpositions, auxiliaries, question words), by the same rule.
STOPWORDS |= frozenset(
    {
        "है", "हैं", "था", "थे", "थी", "हो", "का", "के", "की", "को", "में", "से", "पर",
        "और", "या", "क्या", "कब", "कहाँ", "कहां", "कैसे", "कौन", "कितना", "कितने", "कितनी",
        "यह", "वह", "ये", "वे", "मैं", "मुझे", "आप", "आपका", "आपकी", "आपके", "हम", "हमें",
        "तो", "भी", "ही", "एक", "ने", "लिए", "कृपया", "बताइए", "बताएं", "बताओ",
    }
)  # fmt: skip


def stem(word: str) -> str:
    """A light suffix strip: enough to match "costs" with "cost", "opening" with "open"."""
    for suffix in ("ings", "ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased, in any script ("it's" gives "it" and "s")."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOPWORDS}
