"""Benchmarks write their figures into docs/ between two markers, leaving the rest."""

from pathlib import Path


def write_between(doc: Path, begin: str, end: str, text: str) -> None:
    head, _, rest = doc.read_text().partition(begin)
    _, _, tail = rest.partition(end)
    doc.write_text(f"{head}{begin}\n{text}\n{end}{tail}")
