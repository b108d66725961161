"""Word-level text helpers shared by retrieval-side consumers (dialogue engine, STT bias)."""

import re

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
NUMBER_WORDS = frozenset(
    [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "first",
        "second",
        "third",
    ]
)


def stem(word: str) -> str:
    """A light suffix strip: enough to match "costs" with "cost", "opening" with "open"."""
    for suffix in ("ings", "ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def content_words(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOPWORDS}


def key_terms(text: str) -> set[str]:
    """Distinctive words of a text (no stopwords, numbers or short words), stemmed."""
    return {stem(w) for w in words(text) if len(w) >= 4 and w not in STOPWORDS | NUMBER_WORDS}
