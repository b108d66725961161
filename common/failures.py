"""Failed attempts counted per key, with backoff: how sign-in, telephony signatures and
stream upgrades stop a stranger who keeps guessing, across the whole fleet.

A key (a username, a client address) may fail ``free`` times; after that each further
failure blocks it for twice as long as the one before (1 s, 2 s, 4 s, ... at most
``max_block_secs``), and while it is blocked it is refused at once, before the work a
guess costs (a password hash, a signature check, a lookup). A success may clear the key.
Counts are forgotten ``window_secs`` after the last failure. Keys are stored as digests:
neither usernames nor addresses sit in Redis in the clear.

With Redis the counts live there (``RedisFailures``), so a limit holds however many
processes serve; without it, in this process (``LocalFailures``, the embedded default).
"""

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError


@dataclass(frozen=True)
class Policy:
    name: str
    free: int  # failures allowed before any backoff
    window_secs: float = 900.0
    max_block_secs: float = 900.0

    def wait(self, failures: int, last_at: float, now: float) -> float:
        """Seconds the key must wait after ``failures``, the last at ``last_at``."""
        if failures <= self.free:
            return 0.0
        block = min(self.max_block_secs, 2.0 ** (failures - self.free - 1))
        return max(0.0, last_at + block - now)


# A person mistypes a password a few times; a script tries thousands.
SIGN_IN_USER = Policy("sign-in-user", free=5)
SIGN_IN_ADDRESS = Policy("sign-in-address", free=20)  # an office behind one NAT
# Twilio and Exotel never fail their own signatures or open streams that do not exist
# (``free``: SWITCHBOARD_TELEPHONY_REFUSALS_FREE).
TELEPHONY_ADDRESS = Policy("telephony-address", free=20)


class Failures(Protocol):
    async def wait(self, policy: Policy, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        ...

    async def failed(self, policy: Policy, key: str) -> None: ...

    async def cleared(self, policy: Policy, key: str) -> None: ...


def _digest(policy: Policy, key: str) -> str:
    return policy.name + ":" + hashlib.sha256(key.encode()).hexdigest()[:32]


class LocalFailures:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}

    async def wait(self, policy: Policy, key: str) -> float:
        failures, last_at = self._counts.get(_digest(policy, key), (0, 0.0))
        now = self._clock()
        if now - last_at > policy.window_secs:
            return 0.0
        return policy.wait(failures, last_at, now)

    async def failed(self, policy: Policy, key: str) -> None:
        now = self._clock()
        self._forget_older_than(now - policy.window_secs)
        digest = _digest(policy, key)
        failures, last_at = self._counts.get(digest, (0, 0.0))
        fresh = now - last_at <= policy.window_secs
        self._counts[digest] = ((failures if fresh else 0) + 1, now)

    async def cleared(self, policy: Policy, key: str) -> None:
        self._counts.pop(_digest(policy, key), None)

    def _forget_older_than(self, cutoff: float) -> None:
        # Bounded memory under a spray of keys: at most one window's worth is kept.
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if v[1] >= cutoff}


class RedisFailures:
    """Counted in Redis, fleet-wide. While Redis cannot be reached nothing is counted and
    nobody is backed off (logged once a minute): a backoff is a defence, and a Redis outage
    must not turn every sign-in or call into an error."""

    PREFIX = "switchboard:failures:"
    OUTAGE_LOG_SECS = 60.0

    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._outage_logged = float("-inf")

    async def wait(self, policy: Policy, key: str) -> float:
        try:
            failures, last_at = await self._redis.hmget(
                self.PREFIX + _digest(policy, key), "n", "at"
            )
        except (RedisError, OSError):
            self._outage()
            return 0.0
        if failures is None:
            return 0.0
        return policy.wait(int(failures), float(last_at or 0), self._clock())

    async def failed(self, policy: Policy, key: str) -> None:
        name = self.PREFIX + _digest(policy, key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:  # MULTI/EXEC: one step
                pipe.hincrby(name, "n", 1)
                pipe.hset(name, "at", repr(self._clock()))
                pipe.pexpire(name, int(policy.window_secs * 1000))
                await pipe.execute()
        except (RedisError, OSError):
            self._outage()

    async def cleared(self, policy: Policy, key: str) -> None:
        try:
            await self._redis.delete(self.PREFIX + _digest(policy, key))
        except (RedisError, OSError):
            self._outage()

    def _outage(self) -> None:
        if self._clock() - self._outage_logged >= self.OUTAGE_LOG_SECS:
            self._outage_logged = self._clock()
            logger.warning("failures.redis_unavailable")


def open_failures(redis: Redis | None) -> Failures:
    return RedisFailures(redis) if redis is not None else LocalFailures()
