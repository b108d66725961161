"""The timeline writer: consumes call events from the tenants' Redis streams into the store.

At-least-once and idempotent: entries are acknowledged only after their batch is written,
and writes are keyed by event id, so a redelivered entry is a no-op. On start (and on every
pass) the writer first re-reads entries it was given but never acknowledged (a crash or a
failed write), then claims entries another consumer abandoned, then reads new ones.

Fair across tenants: every tenant has its own stream (``media_plane.events``), and each read
takes at most ``PER_STREAM`` entries from each of them, so a tenant flooding its stream gets
the same share of a pass as a tenant with ten events, and waits behind its own events only.
The stream of earlier versions (``<base>`` itself, every tenant in one) is read too until it
is drained.

A store outage (the store cannot be reached: ``outages``) is retried with backoff and loses
nothing. Any other failure is the data's: the batch is written one event at a time, and an
event the store keeps refusing (``MAX_ENTRY_ATTEMPTS`` passes) goes to the dead-letter
stream (``<base>:dead``, with its stream and the reason), as does one that cannot be
decoded, so one bad entry never holds up the events behind it, whoever's they are.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import cast

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from media_plane.agent import CallEventRecord
from media_plane.events import decode, stream_registry

Write = Callable[[list[CallEventRecord]], Awaitable[None]]
Entry = tuple[str, str, dict[str, str]]  # stream, entry id, fields

GROUP = "timeline-writers"
PER_STREAM = 100  # entries taken from each tenant's stream per read
MAX_ENTRY_ATTEMPTS = 3
REFRESH_SECS = 30.0  # how often the tenant streams are listed anew (a new one shows at once)


class TimelineWriter:
    def __init__(
        self,
        redis: Redis,
        base: str,
        write: Write,
        *,
        consumer: str,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        max_backoff_secs: float = 5.0,
        outages: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError),
    ):
        self._redis = redis
        self._base = base
        self._dead = f"{base}:dead"
        self._write = write
        self._consumer = consumer
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._max_backoff = max_backoff_secs
        self._outages = outages
        self._refusals: dict[tuple[str, str], int] = {}  # (stream, entry id) -> refusals
        self._streams: list[str] = []
        self._registered = 0  # tenant streams in the registry when last listed
        self._refreshed = float("-inf")
        self._claimed = float("-inf")

    async def ensure_group(self) -> None:
        """Finds every tenant stream and makes sure the writers' group reads it."""
        names = cast(set[str], await self._redis.smembers(stream_registry(self._base)))
        self._registered = len(names)
        if await self._redis.exists(self._base):
            names.add(self._base)  # the single stream of earlier versions, until drained
        for name in names.difference(self._streams):
            try:
                await self._redis.xgroup_create(name, GROUP, id="0", mkstream=True)
            except ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise
        self._streams = sorted(names)
        self._refreshed = time.monotonic()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._discover()
                entries = await self._next_batch()
                if entries:
                    await self._handle(entries)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    logger.exception("timeline.writer_failed", retry_in=backoff)
                    await asyncio.sleep(backoff)
                self._streams = []  # a stream was deleted under us: find them all again
                self._refreshed = float("-inf")
            except Exception:
                logger.exception("timeline.writer_failed", retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    async def _discover(self) -> None:
        """A new tenant's stream is read from the next pass on: the registry only grows, so
        its size (one cheap SCARD a pass) tells when to list it again."""
        registered = await self._redis.scard(stream_registry(self._base))
        if registered != self._registered or time.monotonic() - self._refreshed >= REFRESH_SECS:
            await self.ensure_group()

    async def _read(self, start: str, block: int | None) -> list[Entry]:
        if not self._streams:
            if block:
                await asyncio.sleep(block / 1000)
            return []
        response = await self._redis.xreadgroup(
            GROUP,
            self._consumer,
            dict.fromkeys(self._streams, start),
            count=PER_STREAM,  # per stream: the fairness
            block=block,
        )
        if not response:
            return []
        # RESP2: [[stream, entries]]; RESP3: {stream: [entries]}.
        streams = cast(
            list[tuple[str, list[tuple[str, dict[str, str]]]]],
            list(response.items()) if isinstance(response, dict) else response,
        )
        return [
            (stream, entry_id, fields)
            for stream, entries in streams
            for entry_id, fields in (entries or [])
        ]

    async def _next_batch(self) -> list[Entry]:
        mine = await self._read("0", None)  # delivered to me earlier, never acknowledged
        if mine:
            return mine
        if time.monotonic() - self._claimed >= self._claim_idle_ms / 2000:
            self._claimed = time.monotonic()
            claimed: list[Entry] = []
            for stream in self._streams:
                _, entries, _ = await self._redis.xautoclaim(
                    stream, GROUP, self._consumer, self._claim_idle_ms, "0-0", count=PER_STREAM
                )
                claimed += [(stream, entry_id, fields) for entry_id, fields in entries]
            if claimed:
                return claimed
        return await self._read(">", self._block_ms)

    async def _handle(self, entries: list[Entry]) -> None:
        events: list[tuple[str, str, CallEventRecord]] = []
        for stream, entry_id, fields in entries:
            try:
                events.append((stream, entry_id, decode(fields)))
            except (KeyError, TypeError, ValueError) as e:
                await self._dead_letter(stream, entry_id, fields, f"undecodable: {e}")
        if not events:
            return
        if len(events) > 1:
            try:
                await self._write([event for _, _, event in events])
            except self._outages:
                raise  # kept pending; run() waits and tries again
            except Exception:
                pass  # the store refused something in it: find what, one by one
            else:
                await self._ack([(stream, entry_id) for stream, entry_id, _ in events])
                return
        await self._write_one_by_one(events)

    async def _ack(self, entries: list[tuple[str, str]]) -> None:
        by_stream: dict[str, list[str]] = defaultdict(list)
        for stream, entry_id in entries:
            by_stream[stream].append(entry_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, GROUP, *ids)
            await pipe.execute()

    async def _write_one_by_one(self, events: list[tuple[str, str, CallEventRecord]]) -> None:
        """Each event on its own (a lone event, or a batch the store refused)."""
        for stream, entry_id, event in events:
            key = (stream, entry_id)
            try:
                await self._write([event])
            except self._outages:
                raise  # the store went away part-way: what is left stays pending
            except Exception as e:
                refusals = self._refusals[key] = self._refusals.get(key, 0) + 1
                if refusals >= MAX_ENTRY_ATTEMPTS:
                    del self._refusals[key]
                    fields = {"event_id": event.event_id, "tenant_id": event.tenant_id}
                    await self._dead_letter(stream, entry_id, fields, repr(e))
                # else it stays pending and is tried again on the next pass
            else:
                self._refusals.pop(key, None)
                await self._ack([key])

    async def _dead_letter(
        self, stream: str, entry_id: str, fields: dict[str, str], reason: str
    ) -> None:
        logger.error("timeline.dead_letter", stream=stream, entry_id=entry_id, reason=reason[:200])
        record: dict[FieldT, EncodableT] = {
            "stream": stream,
            "entry_id": entry_id,
            "reason": reason[:1000],
        }
        for key, value in fields.items():
            record[key] = value
        await self._redis.xadd(self._dead, record)
        await self._redis.xack(stream, GROUP, entry_id)
