"""Split a text or Markdown document into retrieval chunks.

Chunks follow the document's own structure: a Markdown heading starts a new section, a
blank line ends a paragraph, and a paragraph longer than the budget is cut at sentence
boundaries with one sentence of overlap, so an answer that straddles a cut survives in one
of the two chunks. Each chunk keeps its section heading for citations and for retrieval
(the heading's words often carry the topic the caller asks about).
"""

import re
from dataclasses import dataclass

MAX_CHARS = 600
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
# A sentence ends at . ! ? before a capital, a digit or a script without capitals (Hindi),
# and at the Devanagari danda (। and ॥), with or without a space after it.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(]|[^\x00-\x7f])|(?<=[।॥])\s*(?=\S)")


@dataclass(frozen=True, slots=True)
class Chunk:
    section: str
    text: str
    position: int


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _paragraphs(text: str) -> list[tuple[str, str]]:
    """(section, paragraph) pairs in document order."""
    section = ""
    out: list[tuple[str, str]] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            para = " ".join(line.strip() for line in buf).strip()
            if para:
                out.append((section, para))
            buf.clear()

    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            flush()
            section = heading.group(1).strip()
        elif not line.strip():
            flush()
        else:
            # Markdown list markers carry no meaning for a spoken answer.
            buf.append(re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line))
    flush()
    return out


def _pack(sentences: list[str]) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        if current and len(" ".join([*current, sentence])) > MAX_CHARS:
            pieces.append(" ".join(current))
            current = [current[-1]]  # one sentence of overlap
        current.append(sentence)
    if current:
        pieces.append(" ".join(current))
    return pieces


def chunk_document(text: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section, para in _paragraphs(text):
        pieces = [para] if len(para) <= MAX_CHARS else _pack(split_sentences(para))
        for piece in pieces:
            chunks.append(Chunk(section=section, text=piece, position=len(chunks)))
    return chunks
