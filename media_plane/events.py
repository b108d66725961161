"""Where a call's timeline events go when they leave the call.

Embedded mode writes them straight through the control-plane port. With Redis configured
they are appended to their tenant's own Redis stream (``<base>:tenant:<tenant id>``, listed
in the set ``<base>:streams``); the control plane's timeline writer reads every tenant's
stream with a consumer group (at-least-once, idempotent by event id), so a control-plane
restart or a timeline-store outage loses nothing: events wait in the stream. One stream per
tenant is what makes the writer fair: it takes the same share from each tenant's stream per
pass, so one tenant's flood waits behind its own events only, and the length bound trims
only the flooding tenant's stream. While Redis cannot be reached, events go straight
through the port instead (``FallbackEventSink``): the timeline store is not Redis, so a
Redis outage costs no call its timeline.
"""

import json
from dataclasses import asdict
from typing import Protocol

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from media_plane.agent import CallEventRecord, ControlPlanePort

FIELD = "event"
MAX_STREAM_LEN = 1_000_000  # per tenant: bound memory if no writer runs for a long time


class EventSink(Protocol):
    async def publish(self, events: list[CallEventRecord]) -> None: ...


class DirectEventSink:
    def __init__(self, port: ControlPlanePort):
        self._port = port

    async def publish(self, events: list[CallEventRecord]) -> None:
        await self._port.record_events(events)


def encode(event: CallEventRecord) -> dict[FieldT, EncodableT]:
    return {FIELD: json.dumps(asdict(event), separators=(",", ":"))}


def decode(fields: dict[str, str]) -> CallEventRecord:
    """Raises ValueError (or KeyError/TypeError) for an entry that is not an event."""
    return CallEventRecord(**json.loads(fields[FIELD]))


def tenant_stream(base: str, tenant_id: str) -> str:
    return f"{base}:tenant:{tenant_id}"


def stream_registry(base: str) -> str:
    """The set of every tenant stream under ``base``: how the writer finds them."""
    return f"{base}:streams"


class RedisStreamEventSink:
    def __init__(self, redis: Redis, base: str):
        self._redis = redis
        self._base = base

    async def publish(self, events: list[CallEventRecord]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            # Registered before the entries are added, so the writer never misses a stream.
            for tenant_id in dict.fromkeys(event.tenant_id for event in events):
                pipe.sadd(stream_registry(self._base), tenant_stream(self._base, tenant_id))
            for event in events:
                stream = tenant_stream(self._base, event.tenant_id)
                pipe.xadd(stream, encode(event), maxlen=MAX_STREAM_LEN, approximate=True)
            await pipe.execute()


class FallbackEventSink:
    """The Redis stream, or while Redis cannot be reached, straight through the port. (The
    writer is idempotent by event id, so an event that reached both is written once.)"""

    def __init__(self, primary: EventSink, fallback: EventSink):
        self._primary = primary
        self._fallback = fallback

    async def publish(self, events: list[CallEventRecord]) -> None:
        try:
            await self._primary.publish(events)
        except (RedisError, OSError) as e:
            logger.bind(tenant_id=events[0].tenant_id, call_id=events[0].call_id).warning(
                "call.events_direct", reason=repr(e), events=len(events)
            )
            await self._fallback.publish(events)
