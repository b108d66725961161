"""Small real documents of every supported format, made here by the format's own library,
each stating one fact under a heading (or as one Q&A row)."""

import io
import zipfile
import zlib

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


# --- hostile documents: small on the wire, enormous or slow once opened -----------------


def nested_html(depth: int) -> bytes:
    return ("<html><body>" + "<div>" * depth + "deep" + "</div>" * depth + "</body>").encode()


def _docx_rewritten(change) -> bytes:
    """A real DOCX with ``word/document.xml`` replaced by ``change(xml)``."""
    original = zipfile.ZipFile(io.BytesIO(docx_file("Parking", "On Mill Lane.")))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "word/document.xml":
                data = change(data)
            z.writestr(item.filename, data)
    return out.getvalue()


def docx_bomb(inflated_mb: int) -> bytes:
    """A few hundred KB that unpack to ``inflated_mb`` of XML whitespace."""
    pad = b" " * (inflated_mb * 2**20)
    return _docx_rewritten(lambda xml: xml.replace(b"<w:body>", b"<w:body>" + pad, 1))


def docx_malformed() -> bytes:
    return _docx_rewritten(lambda xml: xml[: len(xml) // 2])


def heavy_pdf(content_mb: float) -> bytes:
    """One page whose (compressed) content stream draws ``content_mb`` of text operators:
    under 10 KB on the wire, seconds of CPU and tens of MB for a parser."""
    ops = b"BT /F1 1 Tf " + b"(a) Tj 0 0 Td " * int(content_mb * 2**20 // 14) + b"ET"
    stream = zlib.compress(ops, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def csv_long_field(chars: int) -> bytes:
    return b'Question,Answer\n"Where can I park?","' + b"a" * chars + b'"\n'
