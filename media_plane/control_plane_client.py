"""The media plane's port to a control plane in another process: its internal HTTP API.

Resolving a called number happens on every webhook, so answers are cached per number.
The control plane announces, after committing, every tenant whose agents, numbers or plan
changed on a Redis channel; each media process drops that tenant's entries at once. The
cache's TTL only bounds staleness if an announcement is missed (Redis restarting, say),
and while the control plane is unreachable an expired entry is served rather than
refusing callers.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import partial
from typing import Generic, TypeVar
from urllib.parse import quote

import httpx
from loguru import logger
from redis.asyncio import Redis

from knowledge.hits import Hit
from media_plane.agent import (
    Admission,
    AgentConfig,
    CallEventRecord,
    ControlPlaneUnavailable,
    agent_from_dict,
)

K = TypeVar("K")
V = TypeVar("V")
MISS_TTL_SECS = 5.0  # an unknown number is asked about again soon: it may be bound any time


class TtlCache(Generic[K, V]):
    """What the control plane last answered, by key: fresh for a TTL, and kept after it so
    it can be served stale while the control plane cannot answer."""

    def __init__(self, ttl_secs: float):
        self._ttl = ttl_secs
        self._entries: dict[K, tuple[V, float]] = {}

    def fresh(self, key: K) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    def stale(self, key: K) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        return (True, entry[0]) if entry else (False, None)

    def put(self, key: K, value: V, ttl_secs: float | None = None) -> None:
        ttl = self._ttl if ttl_secs is None else ttl_secs
        self._entries[key] = (value, time.monotonic() + ttl)

    def drop(self, forget: Callable[[K, V], bool]) -> list[K]:
        """Forget the entries ``forget`` picks; returns their keys."""
        dropped = [key for key, (value, _) in self._entries.items() if forget(key, value)]
        for key in dropped:
            del self._entries[key]
        return dropped

    def clear(self) -> None:
        self._entries.clear()


class AgentCache(TtlCache[str, AgentConfig | None]):
    """Numbers' agent configs (None: not bound)."""

    def put_agent(self, e164: str, agent: AgentConfig | None) -> None:
        self.put(e164, agent, None if agent is not None else min(self._ttl, MISS_TTL_SECS))

    def drop_tenant(self, tenant_id: str) -> list[str]:
        """Forget the tenant's numbers, and every miss: one may just have been bound.
        Returns the tenant's numbers that were dropped."""
        mine = self.drop(lambda _, agent: agent is not None and agent.tenant_id == tenant_id)
        self.drop(lambda _, agent: agent is None)
        return mine


class HttpControlPlane:
    def __init__(
        self,
        base_url: str,
        service_token: str,
        cache_ttl_secs: float,
        timeout_secs: float = 5.0,
    ):
        self.cache = AgentCache(cache_ttl_secs)
        # Tenants' secrets by (tenant, name), dropped with the tenant's other entries: a
        # number whose agent is cached still rings through, its signature still checked.
        self.secrets: TtlCache[tuple[str, str], str | None] = TtlCache(cache_ttl_secs)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/internal/v1",
            headers={"Authorization": f"Bearer {service_token}"},
            timeout=timeout_secs,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ControlPlaneUnavailable(f"{method} {path}: {e!r}") from e
        if response.status_code >= 500 or response.status_code in (401, 403):
            raise ControlPlaneUnavailable(f"{method} {path}: HTTP {response.status_code}")
        return response

    async def agent_for_number(self, e164: str) -> AgentConfig | None:
        hit, agent = self.cache.fresh(e164)
        if hit:
            return agent
        try:
            response = await self._request("GET", f"/numbers/{quote(e164)}/agent")
        except ControlPlaneUnavailable:
            _, stale = self.cache.stale(e164)
            if stale is None:
                raise
            logger.bind(tenant_id=stale.tenant_id).warning("control_plane.serving_cached_agent")
            return stale
        if response.status_code == 404:
            agent = None
        else:
            response.raise_for_status()
            agent = agent_from_dict(response.json())
        self.cache.put_agent(e164, agent)
        return agent

    async def record_events(self, events: list[CallEventRecord]) -> None:
        response = await self._request("POST", "/events", json=[asdict(e) for e in events])
        response.raise_for_status()

    async def create_booking(
        self, tenant_id: str, call_id: str, when: str, name: str | None
    ) -> str:
        response = await self._request(
            "POST",
            f"/tenants/{quote(tenant_id)}/bookings",
            json={"call_id": call_id, "when": when, "name": name},
        )
        response.raise_for_status()
        return response.json()["id"]

    async def search_knowledge(self, tenant_id: str, query: str, k: int) -> list[Hit]:
        response = await self._request(
            "GET", f"/tenants/{quote(tenant_id)}/knowledge/search", params={"q": query, "k": k}
        )
        response.raise_for_status()
        return [Hit(**h) for h in response.json()]

    async def admission(self, tenant_id: str) -> Admission:
        try:
            response = await self._request("GET", f"/tenants/{quote(tenant_id)}/admission")
        except ControlPlaneUnavailable:
            # Quotas are billing; a caller of a known number is not turned away because
            # the control plane is briefly down. Logged so the gap can be accounted for.
            logger.bind(tenant_id=tenant_id).warning("control_plane.admitted_unchecked")
            return Admission()
        response.raise_for_status()
        return Admission.from_dict(response.json())

    async def secret(self, tenant_id: str, name: str) -> str | None:
        hit, value = self.secrets.fresh((tenant_id, name))
        if hit:
            return value
        path = f"/tenants/{quote(tenant_id)}/secrets/{quote(name)}"
        try:
            response = await self._request("GET", path)
        except ControlPlaneUnavailable:
            known, value = self.secrets.stale((tenant_id, name))
            if not known:
                raise
            return value
        if response.status_code == 404:
            value = None
        else:
            response.raise_for_status()
            value = response.json()["value"]
        self.secrets.put((tenant_id, name), value)
        return value

    async def store_recording(self, tenant_id: str, call_id: str, wav: bytes) -> str:
        response = await self._request(
            "PUT",
            f"/tenants/{quote(tenant_id)}/recordings/{quote(call_id)}",
            content=wav,
            headers={"Content-Type": "audio/wav"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()["id"]

    async def _refresh(
        self, number: str, on_changed: Callable[[AgentConfig], Awaitable[None]] | None
    ) -> None:
        try:
            agent = await self.agent_for_number(number)
            if agent is not None and on_changed is not None:
                await on_changed(agent)
        except Exception:
            # The next webhook for the number resolves it (and readies it) anyway.
            logger.exception("control_plane.refresh_failed")

    async def follow_changes(
        self,
        redis: Redis,
        channel: str,
        on_changed: Callable[[AgentConfig], Awaitable[None]] | None = None,
    ) -> None:
        """Drop cached configs as the control plane announces changes, until cancelled.
        The numbers this process was serving are resolved again at once and handed to
        ``on_changed`` (which readies the new greeting before the next caller rings)."""
        refreshing: set[asyncio.Task] = set()
        backoff = 0.5
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    # Announcements may have been missed while unsubscribed.
                    self.cache.clear()
                    self.secrets.clear()
                    backoff = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        tenant_id = str(message["data"])
                        self.secrets.drop(partial(_of_tenant, tenant_id))
                        for number in self.cache.drop_tenant(tenant_id):
                            task = asyncio.create_task(self._refresh(number, on_changed))
                            refreshing.add(task)  # held until done: tasks are weakly kept
                            task.add_done_callback(refreshing.discard)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                logger.warning("control_plane.changes_unavailable", error=repr(e))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)


def _of_tenant(tenant_id: str, key: tuple[str, str], _value: object) -> bool:
    return key[0] == tenant_id
