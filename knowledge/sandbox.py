"""Documents are read in a child process with CPU, memory and time limits, never in the
process that serves the API and calls.

A hostile file costs its child, not the callers on the same machine: a PDF whose page draws
one 3 MB content stream kept a parser thread busy 78 s and gapped another tenant's call
audio by 0.7 s; a 2 KB DOCX inflated the process by 3 GB. Here each document is read by a
fresh interpreter that runs at a lower CPU priority, under an address-space limit and a
CPU-time limit, and is killed at a wall-clock deadline; it reads one document and exits, so
nothing a file did to a parser outlives it. One child is started ahead of need, so an
upload does not wait for Python to import the parsers.

The child speaks on its pipes: a JSON header line and the file's bytes in, one JSON line
out (the chunks, or the reason there are none).
"""

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

from knowledge.chunking import Chunk, chunk_document
from knowledge.extract import ExtractionError, extract

# A file's chunks from its name and bytes, read where reading cannot hurt the caller.
Parse = Callable[[str, bytes], Awaitable[list[Chunk]]]


@dataclass(frozen=True, slots=True)
class Limits:
    cpu_secs: int = 30
    # Beyond what the child holds once its parsers are imported: real documents need tens
    # of MB; the limit only has to stop a bomb before the machine feels it.
    memory_mb: int = 1024
    wall_secs: float = 90.0
    parallel: int = 1  # documents read at once by this process's children
    niceness: int = 10  # calls in the parent win the CPU when both want it


class ParserDied(RuntimeError):
    """The child ended without an answer for a reason the file may not be to blame for
    (killed by the system, a crash): worth another attempt in the background."""


class Sandbox:
    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self._gate = asyncio.Semaphore(limits.parallel)
        self._spare: asyncio.subprocess.Process | None = None
        self._spare_loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Task | None = None
        self._closed = False

    async def chunks(self, filename: str, data: bytes) -> list[Chunk]:
        """The document's chunks; ExtractionError with the reason a user can act on when
        the file has no text or breaks a limit, ParserDied when its reader was lost."""
        async with self._gate:
            child = await self._child()
            header = json.dumps({"filename": filename, "limits": self._child_limits()})
            try:
                out, _ = await asyncio.wait_for(
                    child.communicate(header.encode() + b"\n" + data), self.limits.wall_secs
                )
            except TimeoutError:
                child.kill()
                await child.wait()
                raise ExtractionError(
                    f"reading the document took longer than {self.limits.wall_secs:g} s"
                ) from None
            except BaseException:
                # The request went away (or this process is stopping): its reader goes too.
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                raise
            finally:
                self._start_spare()
        return self._answer(child.returncode, out)

    def _answer(self, code: int | None, out: bytes) -> list[Chunk]:
        if code == -signal.SIGXCPU:  # the kernel's signal at the CPU-time limit
            raise ExtractionError(
                f"reading the document took more than {self.limits.cpu_secs} s of CPU"
            )
        try:
            answer = json.loads(out.splitlines()[-1]) if out.strip() else None
        except (ValueError, IndexError):
            answer = None
        if code != 0 or not isinstance(answer, dict):
            raise ParserDied(
                "the worker died while parsing the document"
                + (f" (signal {-code})" if code is not None and code < 0 else f" (exit {code})")
            )
        if "error" in answer:
            raise ExtractionError(answer["error"])
        return [Chunk(section, text, position) for section, text, position in answer["chunks"]]

    def _child_limits(self) -> dict:
        return {
            "cpu_secs": self.limits.cpu_secs,
            "memory_mb": self.limits.memory_mb,
            "niceness": self.limits.niceness,
        }

    async def _child(self) -> asyncio.subprocess.Process:
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None and self._spare_loop is _loop():
            return spare
        if spare is not None and spare.returncode is None:
            spare.kill()  # started on another event loop (a test's): not usable here
        return await _spawn()

    def _start_spare(self) -> None:
        """Start the next child now, in the background, so it has its parsers loaded by
        the time the next document comes."""
        if self._closed or self._starting is not None:
            return
        self._spare_loop = _loop()
        self._starting = self._spare_loop.create_task(self._start())

    async def _start(self) -> None:
        try:
            child = await _spawn()
        except OSError:
            logger.exception("knowledge.sandbox_spare_failed")
            return
        finally:
            self._starting = None
        if self._spare is None and not self._closed:
            self._spare = child
        else:
            child.kill()
            await child.wait()

    async def close(self) -> None:
        self._closed = True
        if self._starting is not None:
            await self._starting  # not cancelled: a half-made process would be left behind
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None:
            spare.kill()
            await spare.wait()


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


async def _spawn() -> asyncio.subprocess.Process:
    # A fresh interpreter running this module, not a fork of a process with threads and
    # an event loop; it ends if its input closes, so it never outlives this process.
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=None,
    )


# --- the child ----------------------------------------------------------------------------


def _limit_self(cpu_secs: int, memory_mb: int, niceness: int) -> None:
    """Limits counted from now: what importing the parsers took is not the file's."""
    os.nice(niceness)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (used + cpu_secs, used + cpu_secs + 1))
    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = size + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _read(filename: str, data: bytes, memory_mb: int) -> dict:
    try:
        chunks = chunk_document(extract(filename, data))
    except ExtractionError as e:
        return {"error": str(e)}
    except MemoryError:
        return {"error": f"reading the document needed more than {memory_mb} MB of memory"}
    except RecursionError:
        return {"error": "the document is nested too deeply to read"}
    return {"chunks": [[c.section, c.text, c.position] for c in chunks]}


def _serve() -> None:
    header = sys.stdin.buffer.readline()
    if not header:
        return  # the parent went away before it needed this child
    request = json.loads(header)
    limits = request["limits"]
    data = sys.stdin.buffer.read()
    _limit_self(limits["cpu_secs"], limits["memory_mb"], limits["niceness"])
    answer = _read(request["filename"], data, limits["memory_mb"])
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":  # the child: python -m knowledge.sandbox
    _serve()
