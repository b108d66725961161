"""Text out of every supported format, by structure, and clear reasons when there is none."""

import pytest

from knowledge.chunking import chunk_document
from knowledge.extract import ExtractionError, extract
from tests import formats

PARKING = "Free parking for patients is on Mill Lane, behind the building."


def sections(filename: str, data: bytes) -> dict[str, str]:
    return {c.section: c.text for c in chunk_document(extract(filename, data))}


def test_pdf_pages_become_sections():
    assert sections("parking.pdf", formats.pdf("Parking", PARKING)) == {
        "Page 1": f"Parking {PARKING}"
    }


def test_docx_headings_paragraphs_and_tables():
    data = formats.docx_file("Parking", PARKING, table=[["Day", "Hours"], ["Saturday", "9 to 1"]])
    chunks = chunk_document(extract("parking.docx", data))
    assert [(c.section, c.text) for c in chunks] == [
        ("Parking", PARKING),
        ("Parking", "Day; Hours"),
        ("Parking", "Saturday; 9 to 1"),
    ]


def test_html_keeps_the_content_and_drops_scripts_styles_and_navigation():
    text = extract("parking.html", formats.html("Parking", PARKING))
    assert sections("parking.html", formats.html("Parking", PARKING)) == {"Parking": PARKING}
    assert "tracking" not in text and "color" not in text and "Home" not in text
    assert "Copyright" not in text


def test_a_qa_sheet_keeps_each_question_with_its_answer():
    data = formats.qa_csv(
        [("Where can I park?", PARKING), ("Do you see children?", "Yes, from age three.")]
    )
    assert sections("faq.csv", data) == {
        "Where can I park?": PARKING,
        "Do you see children?": "Yes, from age three.",
    }


def test_other_sheets_name_each_value_by_its_column():
    data = b"Treatment;Price\nCleaning;95 dollars\nWhitening;300 dollars\n"
    chunks = chunk_document(extract("prices.csv", data))
    assert [c.text for c in chunks] == [
        "Treatment: Cleaning; Price: 95 dollars.",
        "Treatment: Whitening; Price: 300 dollars.",
    ]


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("locked.pdf", formats.encrypted_pdf("Parking", PARKING), "password-protected"),
        ("scan.pdf", formats.image_only_pdf(), "needs OCR"),
        ("broken.pdf", b"%PDF-1.7\nthis is not really a pdf", "could not be read"),
        ("broken.docx", b"PK\x03\x04 not a real archive", "could not be read"),
        ("empty.txt", b"  \n\t", "empty"),
        ("script-only.html", b"<html><script>x()</script></html>", "no extractable text"),
        ("header-only.csv", b"Question,Answer\n", "no extractable text"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not valid UTF-8"),
        ("slides.pptx", b"PK\x03\x04", "unsupported file type '.pptx'"),
    ],
)
def test_documents_without_readable_text_say_why(filename, data, reason):
    with pytest.raises(ExtractionError, match=reason):
        extract(filename, data)
