"""Text out of an uploaded document, as Markdown the chunker splits by its structure.

Each format goes through a well-kept parser: pypdf, python-docx, Beautiful Soup, the csv
module. Headings become Markdown headings (so chunks keep their section for citations),
and each row of a question-and-answer sheet becomes its own section, so a question and its
answer are never split apart. Anything that cannot be read raises ``ExtractionError``
with a reason a user can act on.

What a file may cost is bounded here where a format states it (pages, inflated size, field
length, text length); what only running the parser reveals (CPU, memory) is bounded by the
sandbox that runs this module (``knowledge/sandbox.py``).
"""

import csv
import io
import zipfile
from pathlib import PurePath

import docx
import pypdf
from bs4 import BeautifulSoup, CData, NavigableString, Tag
from docx.table import Table
from docx.text.paragraph import Paragraph

SUPPORTED = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
    ".csv": "text/csv",
}
_QUESTION = {"question", "questions", "q", "faq", "query"}
_ANSWER = {"answer", "answers", "a", "response", "reply"}
_HTML_BLOCKS = [
    "p", "div", "li", "dt", "dd", "tr", "br", "section", "article", "blockquote", "pre",
    "table", "ul", "ol", "dl",
]  # fmt: skip
_HTML_HEADINGS = {f"h{level}" for level in range(1, 7)}
_HTML_NOISE = ["script", "style", "noscript", "nav", "header", "footer", "template", "svg"]


# A 5 MB upload of real prose is well under these; each one stops a file that is small on
# the wire and enormous once opened.
MAX_TEXT_CHARS = 2_000_000
MAX_PAGES = 2_000
MAX_INFLATED_BYTES = 64 * 1024 * 1024  # a DOCX's members, as its zip directory declares them
MAX_CSV_FIELD_CHARS = 131_072  # the csv module's own default limit


class ExtractionError(ValueError):
    pass


def content_type(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED:
        raise ExtractionError(
            f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED)}"
        )
    return SUPPORTED[suffix]


def extract(filename: str, data: bytes) -> str:
    """The document's text as Markdown; ExtractionError if there is none to be had."""
    suffix = PurePath(filename).suffix.lower()
    content_type(filename)
    if not data.strip():
        raise ExtractionError("document is empty")
    readers = {".pdf": _pdf, ".docx": _docx, ".html": _html, ".htm": _html, ".csv": _csv}
    text = readers.get(suffix, _decode)(data)
    if len(text) > MAX_TEXT_CHARS:
        raise ExtractionError(
            f"the document's text is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}"
            " (split it into smaller documents)"
        )
    if not text.strip():
        raise ExtractionError(
            "document has no extractable text"
            + (" (a scanned PDF is images of text: it needs OCR first)" if suffix == ".pdf" else "")
        )
    return text


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExtractionError(f"document is not valid UTF-8 text: {e.reason}") from e


def _pdf(data: bytes) -> str:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("the PDF is password-protected; upload it without a password")
        if len(reader.pages) > MAX_PAGES:
            raise ExtractionError(
                f"the PDF has {len(reader.pages):,} pages; the limit is {MAX_PAGES:,}"
            )
        pages, chars = [], 0
        for page in reader.pages:
            pages.append((page.extract_text() or "").strip())
            chars += len(pages[-1])
            if chars > MAX_TEXT_CHARS:
                break  # extract() refuses it; reading the rest would only cost time
    except (ExtractionError, MemoryError):
        raise
    except Exception as e:  # pypdf raises many kinds on a damaged file
        raise ExtractionError(f"the PDF could not be read ({type(e).__name__}: {e})") from e
    # Page numbers as sections: an answer can be cited as "page 3".
    return "\n\n".join(f"# Page {i}\n\n{text}" for i, text in enumerate(pages, 1) if text)


def _docx(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # zipfile never inflates a member past the size the directory declares, so
            # the declared sizes bound what parsing can unpack.
            inflated = sum(member.file_size for member in archive.infolist())
        if inflated > MAX_INFLATED_BYTES:
            raise ExtractionError(
                f"the DOCX unpacks to {inflated / 2**20:,.0f} MB; the limit is "
                f"{MAX_INFLATED_BYTES // 2**20} MB"
            )
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except (ExtractionError, MemoryError):
        raise
    except Exception as e:  # a damaged zip, a missing part, malformed XML
        raise ExtractionError(f"the DOCX could not be read ({type(e).__name__}: {e})") from e
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            text = block.text.strip()
            style = (block.style.name if block.style is not None else "") or ""
            if not text:
                continue
            if style == "Title":
                lines.append(f"# {text}")
            elif style.startswith("Heading") and style.split()[-1].isdigit():
                lines.append(f"{'#' * min(int(style.split()[-1]), 6)} {text}")
            else:
                lines.append(text)
        elif isinstance(block, Table):
            for row in block.rows:
                cells = [c.text.strip() for c in row.cells if c.text.strip()]
                if cells:
                    lines.append("; ".join(dict.fromkeys(cells)))  # merged cells repeat
    return "\n\n".join(lines)


def _html(data: bytes) -> str:
    soup = BeautifulSoup(data, "html.parser")
    body = soup.body or soup
    pieces: list[str] = []
    # One pass in document order with an explicit stack: linear in the size of the page
    # however deeply it nests (inserting breaks into the tree was quadratic: 50,000
    # nested <div>s took minutes), and no recursion to exhaust.
    stack: list[tuple[object, bool]] = [(body, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            pieces.append("\n\n")
        elif type(node) in (NavigableString, CData):
            pieces.append(str(node))
        elif isinstance(node, Tag) and node.name not in _HTML_NOISE:
            if node.name in _HTML_HEADINGS:
                title = " ".join(node.get_text(" ").split())
                pieces.append(f"\n\n{'#' * int(node.name[1])} {title}\n\n" if title else "")
                continue
            if node.name in _HTML_BLOCKS:
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    lines = [" ".join(line.split()) for line in "".join(pieces).splitlines()]
    return "\n".join(lines).strip()


def _csv(data: bytes) -> str:
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    try:
        rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    except csv.Error as e:
        # The reader's limit is its own default (MAX_CSV_FIELD_CHARS); say it in words.
        reason = (
            f"a field is longer than {MAX_CSV_FIELD_CHARS:,} characters"
            if "field larger than field limit" in str(e)
            else str(e)
        )
        raise ExtractionError(f"the CSV could not be read: {reason}") from e
    if not rows:
        return ""
    header = [h.strip().lower() for h in rows[0]]
    q = next((i for i, h in enumerate(header) if h in _QUESTION), None)
    a = next((i for i, h in enumerate(header) if h in _ANSWER), None)
    sections = []
    if q is not None and a is not None:
        # A Q&A sheet: each question heads its own answer, never split from it.
        for row in rows[1:]:
            question = row[q].strip() if q < len(row) else ""
            answer = row[a].strip() if a < len(row) else ""
            if question and answer:
                sections.append(f"## {' '.join(question.split())}\n\n{answer}")
    else:
        # Any other sheet: one paragraph per row, each value named by its column.
        for row in rows[1:]:
            pairs = [
                f"{rows[0][i].strip()}: {value.strip()}"
                for i, value in enumerate(row)
                if value.strip() and i < len(rows[0])
            ]
            if pairs:
                sections.append("; ".join(pairs) + ".")
    return "\n\n".join(sections)
