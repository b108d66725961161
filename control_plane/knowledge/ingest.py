"""Large documents are indexed in the background: a queue of jobs and one worker.

The upload stores the original and a ``queued`` row, pushes a job and returns at once. The
worker moves the document through ``processing`` to ``ready``, or to ``failed`` with the
reason. A document that cannot be read fails at once (retrying will not help); any other
failure is retried with backoff, and after the last attempt the job goes to the dead-letter
list, where an admin can inspect it and replay it.

Documents are read in the sandbox (``knowledge/sandbox.py``), so a file that kills its
reader costs an attempt, not the worker. A worker that dies itself mid-job costs one too:
with Redis the jobs live in lists (``<jobs>``, ``<jobs>:processing``, ``<jobs>:dead``), a
job is moved atomically to processing while it runs, and the next worker to start puts it
back in the queue with its attempt counted. Without Redis (one process) the queue lives in
memory and the documents' rows are the record: the next start queues again every document
left ``queued`` or ``processing``, counting from the attempts the row holds. Either way a
job past its last attempt is dead-lettered, never retried for ever.
"""

import asyncio
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from loguru import logger
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.kit.db import session_scope
from control_plane.knowledge.models import Document
from control_plane.objects.store import ObjectNotFound, ObjectStore
from knowledge.extract import ExtractionError
from knowledge.sandbox import Parse, ParserDied
from knowledge.store import KnowledgeStore

MAX_ATTEMPTS = 3
RECOVER_SECS = 30.0


@dataclass(frozen=True, slots=True)
class Job:
    tenant_id: str
    document_id: str
    attempt: int = 1
    # The job as the queue holds it, for taking it off the processing list exactly.
    raw: str = field(default="", compare=False, repr=False)

    def encode(self) -> str:
        if self.raw:
            return self.raw
        fields = {"tenant_id": self.tenant_id, "document_id": self.document_id}
        return json.dumps(fields | {"attempt": self.attempt}, separators=(",", ":"))

    @staticmethod
    def decode(raw: str) -> "Job":
        fields = json.loads(raw)
        return Job(fields["tenant_id"], fields["document_id"], int(fields["attempt"]), raw)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    tenant_id: str
    document_id: str
    attempts: int
    reason: str
    at: float


class IngestQueue(Protocol):
    # Whether jobs outlive this process; if not, the worker queues again on start what
    # the documents' rows say was left unfinished.
    durable: bool

    async def push(self, job: Job) -> None: ...

    async def take(self) -> Job | None:
        """The next job (None if none came within a second); it is now in progress."""
        ...

    async def done(self, job: Job) -> None: ...

    async def bury(self, job: Job, reason: str) -> None:
        """Out of progress, onto the dead-letter list."""
        ...

    async def dead_letters(self) -> list[DeadLetter]: ...

    async def revive(self, document_id: str) -> DeadLetter | None:
        """Take the document's dead letter off the list (None if it has none)."""
        ...

    async def recover(self) -> None:
        """Put back in the queue what a worker was doing when it stopped, each job with
        the attempt it cost counted."""
        ...


# One job from processing back to the queue, its attempt counted, in one step: a worker
# that dies while recovering loses nothing.
_RECOVER_ONE = """
local raw = redis.call('RPOP', KEYS[1])
if not raw then return 0 end
local job = cjson.decode(raw)
job['attempt'] = job['attempt'] + 1
redis.call('RPUSH', KEYS[2], cjson.encode(job))
return 1
"""


class RedisIngestQueue:
    """Needs a client created with ``decode_responses=True``.

    Each worker (``consumer``) has its own processing list and a heartbeat key that lives
    ``alive_secs`` past its last take, longer than any job runs (the sandbox's deadline and
    the embedding after it). Recovery takes up only the lists of workers whose heartbeat
    has gone: with several control-plane replicas, one restarting must not take the jobs
    another is working on."""

    durable = True

    def __init__(self, redis: Redis, key: str, consumer: str = "worker", alive_secs: int = 300):
        self._redis = redis
        self._key, self._jobs, self._dead = key, key, f"{key}:dead"
        self._processing = f"{key}:processing:{consumer}"
        self._alive = f"{key}:alive:{consumer}"
        self._alive_ms = alive_secs * 1000

    async def push(self, job: Job) -> None:
        await self._redis.lpush(self._jobs, replace(job, raw="").encode())

    async def take(self) -> Job | None:
        await self._redis.set(self._alive, "1", px=self._alive_ms)
        raw = await self._redis.blmove(self._jobs, self._processing, 1, "RIGHT", "LEFT")
        return Job.decode(str(raw)) if raw else None

    async def done(self, job: Job) -> None:
        await self._redis.lrem(self._processing, 1, job.encode())

    async def bury(self, job: Job, reason: str) -> None:
        letter = DeadLetter(job.tenant_id, job.document_id, job.attempt, reason, time.time())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self._processing, 1, job.encode())
            pipe.rpush(self._dead, json.dumps(asdict(letter)))
            await pipe.execute()

    async def dead_letters(self) -> list[DeadLetter]:
        return [
            DeadLetter(**json.loads(raw)) for raw in await self._redis.lrange(self._dead, 0, -1)
        ]

    async def revive(self, document_id: str) -> DeadLetter | None:
        for raw in await self._redis.lrange(self._dead, 0, -1):
            letter = DeadLetter(**json.loads(raw))
            if letter.document_id == document_id and await self._redis.lrem(
                self._dead, 1, str(raw)
            ):
                return letter
        return None

    async def recover(self) -> None:
        prefix = f"{self._key}:processing:"
        # The one processing list of versions before per-worker lists, if it is there.
        while await self._redis.eval(_RECOVER_ONE, 2, f"{self._key}:processing", self._jobs):
            pass
        async for processing in self._redis.scan_iter(match=f"{prefix}*"):
            consumer = str(processing).removeprefix(prefix)
            if await self._redis.exists(f"{self._key}:alive:{consumer}"):
                continue  # a live worker's jobs are its own
            while await self._redis.eval(_RECOVER_ONE, 2, processing, self._jobs):
                pass


class LocalIngestQueue:
    durable = False

    def __init__(self) -> None:
        self._jobs: asyncio.Queue[Job] = asyncio.Queue()
        self._dead: list[DeadLetter] = []

    async def push(self, job: Job) -> None:
        self._jobs.put_nowait(job)

    async def take(self) -> Job | None:
        try:
            return await asyncio.wait_for(self._jobs.get(), 1)
        except TimeoutError:
            return None

    async def done(self, job: Job) -> None:
        pass

    async def bury(self, job: Job, reason: str) -> None:
        self._dead.append(
            DeadLetter(job.tenant_id, job.document_id, job.attempt, reason, time.time())
        )

    async def dead_letters(self) -> list[DeadLetter]:
        return list(self._dead)

    async def revive(self, document_id: str) -> DeadLetter | None:
        for letter in self._dead:
            if letter.document_id == document_id:
                self._dead.remove(letter)
                return letter
        return None

    async def recover(self) -> None:
        pass


class IngestWorker:
    def __init__(
        self,
        queue: IngestQueue,
        sessions: async_sessionmaker[AsyncSession],
        knowledge: KnowledgeStore,
        objects: ObjectStore,
        parse: Parse,
        backoff_secs: float = 0.5,
    ):
        self._queue = queue
        self._sessions = sessions
        self._knowledge = knowledge
        self._objects = objects
        self._parse = parse
        self._backoff = backoff_secs

    async def run(self) -> None:
        """Until cancelled; an outage of Redis or the database is waited out, not fatal.
        What a dead worker left is taken up at start and then every ``RECOVER_SECS``
        (another replica may die while this one runs)."""
        recovered_at: float | None = None
        while True:
            try:
                now = time.monotonic()
                if recovered_at is None:
                    await self.recover()  # and, in process, what the rows say was left
                    recovered_at = now
                elif self._queue.durable and now - recovered_at > RECOVER_SECS:
                    await self._queue.recover()
                    recovered_at = now
                job = await self._queue.take()
                if job is not None:
                    await self.process(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A job cut short stays on the processing list and is recovered on the
                # next start; meanwhile the worker keeps serving the queue.
                logger.exception("knowledge.worker_error")
                await asyncio.sleep(self._backoff * 4)

    async def recover(self) -> None:
        """Take up what the last worker left unfinished."""
        await self._queue.recover()
        if self._queue.durable:
            return
        async with session_scope(self._sessions) as session:
            unfinished = await session.scalars(
                select(Document)
                .where(Document.status.in_(("queued", "processing")))
                .order_by(Document.created_at)
            )
            jobs = [Job(d.tenant_id, d.id, attempt=d.attempts + 1) for d in unfinished]
        for job in jobs:
            await self._queue.push(job)
        if jobs:
            logger.info("knowledge.resumed", jobs=len(jobs))

    async def _index(self, job: Job, filename: str, data: bytes) -> int:
        chunks = await self._parse(filename, data)
        if not chunks:
            raise ExtractionError("document has no extractable text")
        # Embedding a large document is seconds of CPU: not on the loop.
        await asyncio.to_thread(self._knowledge.upsert, job.tenant_id, job.document_id, chunks)
        return len(chunks)

    async def process(self, job: Job) -> None:
        """Index the document's upload. A replacement waits under the document's pending
        name while the previous version keeps answering; it takes the original's place
        only once indexed, and if it cannot be, the previous version stays whole."""
        log = logger.bind(tenant_id=job.tenant_id, document_id=job.document_id)
        if job.attempt > MAX_ATTEMPTS:
            # Every attempt so far ended with its worker: the file is the likely cause.
            reason = f"the worker died while parsing the document, {MAX_ATTEMPTS} times"
            log.error("knowledge.dead_letter", attempts=MAX_ATTEMPTS, reason=reason)
            doc = await self._set(job, status="failed", error=reason)
            if doc is not None:
                await self._objects.delete(job.tenant_id, doc.pending_name)
            await self._queue.bury(replace(job, attempt=MAX_ATTEMPTS), reason)
            return
        doc = await self._set(job, status="processing", error=None, attempts=job.attempt)
        if doc is None:  # deleted while it waited
            await self._queue.done(job)
            return
        try:
            data = await self._objects.get(job.tenant_id, doc.pending_name)
            replacing = True
        except ObjectNotFound:
            data, replacing = await self._objects.get(job.tenant_id, doc.original_name), False
        try:
            chunks = await self._index(job, doc.filename, data)
        except ExtractionError as e:
            # The file itself is the problem: a retry would fail the same way.
            error = str(e)
            if replacing:
                await self._objects.delete(job.tenant_id, doc.pending_name)
                error += "; the previous version is still in use"
            await self._set(job, status="failed", error=error)
            await self._queue.done(job)
            log.info("knowledge.failed", reason=str(e))
        except Exception as e:
            if replacing:
                await self._restore(job, doc)
            reason = str(e) if isinstance(e, ParserDied) else f"{type(e).__name__}: {e}"
            if job.attempt < MAX_ATTEMPTS:
                log.warning("knowledge.retry", attempt=job.attempt, reason=reason)
                await self._set(job, status="queued", error=f"retrying after: {reason}")
                await asyncio.sleep(self._backoff * 2 ** (job.attempt - 1))
                await self._queue.push(replace(job, attempt=job.attempt + 1))
                await self._queue.done(job)
            else:
                log.error("knowledge.dead_letter", attempts=job.attempt, reason=reason)
                # A replacement's upload stays pending, for a replay to finish.
                await self._set(
                    job,
                    status="failed",
                    error=f"could not be indexed after {job.attempt} attempts: {reason}"
                    + ("; the previous version is still in use" if replacing else ""),
                )
                await self._queue.bury(job, reason)
        else:
            if replacing:
                await self._objects.put(job.tenant_id, doc.original_name, data, doc.content_type)
                await self._objects.delete(job.tenant_id, doc.pending_name)
            await self._set(
                job,
                status="ready",
                error=None,
                chunks=chunks,
                sha256=hashlib.sha256(data).hexdigest(),
            )
            await self._queue.done(job)
            log.info("knowledge.ready", chunks=chunks)

    async def _restore(self, job: Job, doc: Document) -> None:
        """Index the previous version again: a write that failed part-way may have taken
        its chunks out. Best effort; the failure that brought us here is what is reported."""
        try:
            previous = await self._objects.get(job.tenant_id, doc.original_name)
            await self._index(job, doc.filename, previous)
        except Exception:
            logger.bind(tenant_id=job.tenant_id, document_id=job.document_id).exception(
                "knowledge.restore_failed"
            )

    async def _set(self, job: Job, **values: object) -> Document | None:
        async with session_scope(self._sessions) as session:
            doc = await session.scalar(
                select(Document).where(
                    Document.tenant_id == job.tenant_id, Document.id == job.document_id
                )
            )
            if doc is not None:
                for name, value in values.items():
                    setattr(doc, name, value)
            return doc
