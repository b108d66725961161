"""What both planes' start-up shares: tasks that live as long as the app, and one Redis
client per process."""

import asyncio
from contextlib import AsyncExitStack

from fastapi import FastAPI
from redis.asyncio import Redis

from switchboard.settings import Settings


async def background(stack: AsyncExitStack, coro, name: str) -> None:
    """Run a task for the app's lifetime; cancelled and awaited at shutdown."""
    task = asyncio.create_task(coro, name=name)

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stack.push_async_callback(stop)


def shared_redis(app: FastAPI, settings: Settings, stack: AsyncExitStack) -> Redis | None:
    """One client per process, shared by both planes when they run together."""
    if not settings.redis_url:
        return None
    if getattr(app.state, "redis", None) is None:
        client = app.state.redis = Redis.from_url(settings.redis_url, decode_responses=True)

        async def close() -> None:
            app.state.redis = None
            await client.aclose()

        stack.push_async_callback(close)
    return app.state.redis
