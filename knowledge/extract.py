"""Text out of an uploaded document, as Markdown the chunker splits by its structure.

Each format goes through a well-kept parser: pypdf, python-docx, Beautiful Soup, the csv
module. Headings become Markdown headings (so chunks keep their section for citations),
and each row of a question-and-answer sheet becomes its own section, so a question and its
answer are never split apart. Anything that cannot be read raises ``ExtractionError``
with a reason a user can act on.
"""

import csv
import io
import zipfile
from pathlib import PurePath

import docx
import pypdf
from bs4 import BeautifulSoup
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
_HTML_NOISE = ["script", "style", "noscript", "nav", "header", "footer", "template", "svg"]


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
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except ExtractionError:
        raise
    except Exception as e:  # pypdf raises many kinds on a damaged file
        raise ExtractionError(f"the PDF could not be read ({type(e).__name__}: {e})") from e
    # Page numbers as sections: an answer can be cited as "page 3".
    return "\n\n".join(f"# Page {i}\n\n{text}" for i, text in enumerate(pages, 1) if text)


def _docx(data: bytes) -> str:
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
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
    for tag in soup.find_all(_HTML_NOISE):
        tag.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            title = " ".join(heading.get_text(" ").split())
            heading.replace_with(f"\n\n{'#' * level} {title}\n\n" if title else "")
    for block in soup.find_all(_HTML_BLOCKS):
        block.insert_after("\n\n")
    body = soup.body or soup
    lines = [" ".join(line.split()) for line in body.get_text().splitlines()]
    return "\n".join(lines).strip()


def _csv(data: bytes) -> str:
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
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
