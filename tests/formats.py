"""Small real documents of every supported format, made here by the format's own library,
each stating one fact under a heading (or as one Q&A row)."""

import io

import docx
import pypdf
from fpdf import FPDF


def pdf(heading: str, body: str) -> bytes:
    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", "B", 16)
    doc.cell(text=heading, new_x="LMARGIN", new_y="NEXT")
    doc.set_font("helvetica", size=12)
    doc.multi_cell(0, 8, body)
    return bytes(doc.output())


def encrypted_pdf(heading: str, body: str) -> bytes:
    reader = pypdf.PdfReader(io.BytesIO(pdf(heading, body)))
    writer = pypdf.PdfWriter(clone_from=reader)
    writer.encrypt("a password", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_only_pdf() -> bytes:
    """What a scanner makes: a page with marks on it and no text layer."""
    doc = FPDF()
    doc.add_page()
    doc.rect(20, 20, 100, 40, style="F")
    return bytes(doc.output())


def docx_file(heading: str, body: str, table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    document.add_heading(heading, level=1)
    document.add_paragraph(body)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def html(heading: str, body: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Clinic</title>"
        "<style>p { color: red }</style><script>var tracking = 1;</script></head>"
        "<body><nav><a href='/'>Home</a> <a href='/book'>Book</a></nav>"
        f"<h2>{heading}</h2><p>{body}</p>"
        "<footer>Copyright the clinic</footer></body></html>"
    ).encode()


def qa_csv(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    out.write("Question,Answer\n")
    for question, answer in rows:
        out.write(f'"{question}","{answer}"\n')
    return out.getvalue().encode()
