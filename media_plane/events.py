"""Where a call's timeline events go when they leave the call.

Embedded mode writes them straight through the control-plane port. With Redis configured
they are appended to a Redis stream; the control plane's timeline writer consumes it with a
consumer group (at-least-once, idempotent by event id), so a control-plane restart or a
timeline-store outage loses nothing: events wait in the stream.
"""

import json
from dataclasses import asdict
from typing import Protocol

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from media_plane.agent import CallEventRecord, ControlPlanePort

FIELD = "event"
MAX_STREAM_LEN = 1_000_000  # bound memory if no writer runs for a long time (approximate trim)


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


class RedisStreamEventSink:
    def __init__(self, redis: Redis, stream: str):
        self._redis = redis
        self._stream = stream

    async def publish(self, events: list[CallEventRecord]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(self._stream, encode(event), maxlen=MAX_STREAM_LEN, approximate=True)
            await pipe.execute()
