"""Documents are read in a child process whose limits hold whatever the file does; the
reasons reach the user; a reader that dies is reported as such, never as a result."""

import asyncio

import pytest

from knowledge import sandbox as sandbox_module
from knowledge.extract import MAX_INFLATED_BYTES, ExtractionError
from knowledge.sandbox import Limits, ParserDied, Sandbox
from tests import formats
from tests.conftest import kill_every_reader


@pytest.fixture
async def reader():
    box = Sandbox(Limits(cpu_secs=10, memory_mb=512, wall_secs=60))
    yield box
    await box.close()


async def test_a_document_is_read_in_a_child_and_the_next_child_waits_ready(reader):
    first = await reader.chunks("parking.md", b"# Parking\n\nOn Mill Lane.")
    assert [(c.section, c.text) for c in first] == [("Parking", "On Mill Lane.")]
    for _ in range(100):  # the spare starts in the background
        if reader._spare is not None:
            break
        await asyncio.sleep(0.05)
    spare = reader._spare
    assert spare is not None and spare.returncode is None
    second = await reader.chunks("hours.md", b"# Hours\n\nNine to five.")
    assert [c.text for c in second] == ["Nine to five."]
    assert spare.returncode == 0  # it read the second document and ended


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (Limits(cpu_secs=1, wall_secs=60), "more than 1 s of CPU"),
        (Limits(memory_mb=40, wall_secs=60), "more than 40 MB of memory"),
        (Limits(cpu_secs=60, wall_secs=0.5), r"longer than 0\.5 s"),  # killed at the deadline
    ],
    ids=["cpu", "memory", "clock"],
)
async def test_a_document_past_a_limit_is_stopped_with_the_reason(limits, reason):
    # Seconds of CPU and tens of MB to read, from a file of a few KB.
    box = Sandbox(limits)
    try:
        with pytest.raises(ExtractionError, match=reason):
            await box.chunks("drawing.pdf", formats.heavy_pdf(3))
    finally:
        await box.close()


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("bomb.docx", formats.docx_bomb(200), f"the limit is {MAX_INFLATED_BYTES // 2**20} MB"),
        ("broken.docx", formats.docx_malformed(), "the DOCX could not be read"),
        ("faq.csv", formats.csv_long_field(200_000), "a field is longer than 131,072"),
    ],
)
async def test_hostile_files_are_refused_with_the_reason(reader, filename, data, reason):
    with pytest.raises(ExtractionError, match=reason):
        await reader.chunks(filename, data)


async def test_markup_nested_fifty_thousand_deep_is_read_within_the_limits(reader):
    # Inserting breaks into the tree was quadratic: this took minutes of CPU.
    chunks = await reader.chunks("deep.html", formats.nested_html(50_000))
    assert [c.text for c in chunks] == ["deep"]


async def test_a_reader_that_dies_is_a_parser_death_not_an_answer(monkeypatch):
    kill_every_reader(monkeypatch)
    box = Sandbox()
    try:
        with pytest.raises(ParserDied, match=r"died while parsing the document \(signal 9\)"):
            await box.chunks("parking.md", b"# Parking\n\nOn Mill Lane.")
    finally:
        await box.close()


async def test_a_read_given_up_by_its_caller_ends_its_reader(monkeypatch):
    spawned: list[asyncio.subprocess.Process] = []
    real = sandbox_module._spawn

    async def recorded() -> asyncio.subprocess.Process:
        spawned.append(await real())
        return spawned[-1]

    monkeypatch.setattr(sandbox_module, "_spawn", recorded)
    box = Sandbox(Limits(cpu_secs=60, wall_secs=60))
    try:
        reading = asyncio.create_task(box.chunks("drawing.pdf", formats.heavy_pdf(3)))
        await asyncio.sleep(1.0)  # the child is reading: seconds of CPU to go
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        reader = spawned[0]
        await asyncio.wait_for(reader.wait(), 5)
        assert reader.returncode == -9  # killed, not left to read on
    finally:
        await box.close()
