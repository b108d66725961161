"""A limited number of slots per key, held at once, across the whole fleet: how many
uploads a tenant may have being read at the same moment.

A slot is a lease: taken with a deadline, given back when the work ends, and gone by itself
at the deadline if its holder died without giving it back, so a crash never uses a slot up
for ever. With Redis the slots of a key are a sorted set of holder -> deadline, counted and
taken in one script (two processes taking a key's last slot at once: exactly one wins);
without it, the same in this process.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis


class Full(Exception):
    """Every slot of the key is held."""

    def __init__(self, key: str, limit: int):
        super().__init__(f"all {limit} slots of {key} are held")


class Slots(Protocol):
    async def take(self, key: str, limit: int, lease_secs: float) -> str | None:
        """A holder id, or None if ``limit`` slots of ``key`` are held."""
        ...

    async def give_back(self, key: str, holder: str) -> None: ...


@asynccontextmanager
async def slot(slots: Slots, key: str, limit: int, lease_secs: float) -> AsyncIterator[None]:
    """Hold one of ``key``'s slots for the block; ``Full`` if none is free."""
    holder = await slots.take(key, limit, lease_secs)
    if holder is None:
        raise Full(key, limit)
    try:
        yield
    finally:
        await asyncio.shield(slots.give_back(key, holder))


class LocalSlots:
    def __init__(self) -> None:
        self._held: dict[str, dict[str, float]] = {}

    async def take(self, key: str, limit: int, lease_secs: float) -> str | None:
        now = time.monotonic()
        held = {h: d for h, d in self._held.get(key, {}).items() if d > now}
        if len(held) >= limit:
            self._held[key] = held
            return None
        holder = uuid.uuid4().hex
        held[holder] = now + lease_secs
        self._held[key] = held
        return holder

    async def give_back(self, key: str, holder: str) -> None:
        held = self._held.get(key, {})
        held.pop(holder, None)
        if not held:
            self._held.pop(key, None)


# KEYS[1] the key's sorted set; ARGV: limit, lease in ms, holder. Redis's own clock, so
# every process agrees on when a lease ends.
_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


class RedisSlots:
    def __init__(self, redis: Redis, prefix: str):
        self._redis = redis
        self._prefix = prefix

    async def take(self, key: str, limit: int, lease_secs: float) -> str | None:
        holder = uuid.uuid4().hex
        taken = await self._redis.eval(
            _TAKE, 1, f"{self._prefix}:{key}", limit, int(lease_secs * 1000), holder
        )
        return holder if taken else None

    async def give_back(self, key: str, holder: str) -> None:
        await self._redis.zrem(f"{self._prefix}:{key}", holder)
