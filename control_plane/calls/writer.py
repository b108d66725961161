"""The timeline writer: consumes call events from the Redis stream into the timeline store.

At-least-once and idempotent: entries are acknowledged only after their batch is written,
and writes are keyed by event id, so a redelivered entry is a no-op. On start (and on every
pass) the writer first re-reads entries it was given but never acknowledged (a crash or a
failed write), then claims entries another consumer abandoned, then reads new ones.

A store outage (the store cannot be reached: ``outages``) is retried with backoff and loses
nothing. Any other failure is the data's: the batch is written one event at a time, and an
event the store keeps refusing (``MAX_ENTRY_ATTEMPTS`` passes) goes to a dead-letter stream
(``<stream>:dead``) with the reason, as does one that cannot be decoded, so one bad entry
never holds up the events behind it, whoever's they are.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from media_plane.agent import CallEventRecord
from media_plane.events import decode

Write = Callable[[list[CallEventRecord]], Awaitable[None]]
Entry = tuple[str, dict[str, str]]

GROUP = "timeline-writers"
BATCH = 200
MAX_ENTRY_ATTEMPTS = 3


class TimelineWriter:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        write: Write,
        *,
        consumer: str,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        max_backoff_secs: float = 5.0,
        outages: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError),
    ):
        self._redis = redis
        self._stream = stream
        self._dead = f"{stream}:dead"
        self._write = write
        self._consumer = consumer
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._max_backoff = max_backoff_secs
        self._outages = outages
        self._refusals: dict[str, int] = {}  # entry id -> writes the store refused

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def run(self) -> None:
        await self.ensure_group()
        backoff = 0.1
        while True:
            try:
                entries = await self._next_batch()
                if entries:
                    await self._handle(entries)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("timeline.writer_failed", retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    async def _read(self, start: str, block: int | None) -> list[Entry]:
        response = await self._redis.xreadgroup(
            GROUP, self._consumer, {self._stream: start}, count=BATCH, block=block
        )
        if not response:
            return []
        # RESP2: [[stream, entries]]; RESP3: {stream: [entries]}.
        streams = response.items() if isinstance(response, dict) else response
        return cast(list[Entry], [entry for _, entries in streams for entry in (entries or [])])

    async def _next_batch(self) -> list[Entry]:
        mine = await self._read("0", None)  # delivered to me earlier, never acknowledged
        if mine:
            return mine
        _, claimed, _ = await self._redis.xautoclaim(
            self._stream, GROUP, self._consumer, self._claim_idle_ms, "0-0", count=BATCH
        )
        if claimed:
            return claimed
        return await self._read(">", self._block_ms)

    async def _handle(self, entries: list[Entry]) -> None:
        events: list[tuple[str, CallEventRecord]] = []
        for entry_id, fields in entries:
            try:
                events.append((entry_id, decode(fields)))
            except (KeyError, TypeError, ValueError) as e:
                await self._dead_letter(entry_id, fields, f"undecodable: {e}")
        if not events:
            return
        if len(events) > 1:
            try:
                await self._write([event for _, event in events])
            except self._outages:
                raise  # kept pending; run() waits and tries again
            except Exception:
                pass  # the store refused something in it: find what, one by one
            else:
                await self._redis.xack(self._stream, GROUP, *[entry_id for entry_id, _ in events])
                return
        await self._write_one_by_one(events)

    async def _write_one_by_one(self, events: list[tuple[str, CallEventRecord]]) -> None:
        """Each event on its own (a lone event, or a batch the store refused)."""
        for entry_id, event in events:
            try:
                await self._write([event])
            except self._outages:
                raise  # the store went away part-way: what is left stays pending
            except Exception as e:
                refusals = self._refusals[entry_id] = self._refusals.get(entry_id, 0) + 1
                if refusals >= MAX_ENTRY_ATTEMPTS:
                    del self._refusals[entry_id]
                    await self._dead_letter(entry_id, {"event_id": event.event_id}, repr(e))
                # else it stays pending and is tried again on the next pass
            else:
                self._refusals.pop(entry_id, None)
                await self._redis.xack(self._stream, GROUP, entry_id)

    async def _dead_letter(self, entry_id: str, fields: dict[str, str], reason: str) -> None:
        logger.error("timeline.dead_letter", entry_id=entry_id, reason=reason[:200])
        record: dict[FieldT, EncodableT] = {"entry_id": entry_id, "reason": reason[:1000]}
        for key, value in fields.items():
            record[key] = value
        await self._redis.xadd(self._dead, record)
        await self._redis.xack(self._stream, GROUP, entry_id)
