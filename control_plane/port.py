"""The control plane's in-process face for the media plane (embedded, single-process mode)."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.calls import recordings
from control_plane.calls import service as calls
from control_plane.calls.store import TimelineStore
from control_plane.kit.db import session_scope
from control_plane.numbers.service import agent_for_number
from control_plane.objects.store import ObjectStore
from control_plane.plans import service as plans
from control_plane.secrets.store import SecretStore
from knowledge.hits import Hit
from knowledge.store import KnowledgeStore
from media_plane.agent import Admission, AgentConfig, CallEventRecord


class LocalControlPlane:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        knowledge: KnowledgeStore,
        timeline: TimelineStore,
        objects: ObjectStore,
        secrets: SecretStore,
        default_retention_days: int,
    ):
        self._sessions = sessions
        self._knowledge = knowledge
        self._timeline = timeline
        self._objects = objects
        self._secrets = secrets
        self._default_retention_days = default_retention_days

    async def agent_for_number(self, e164: str) -> AgentConfig | None:
        async with session_scope(self._sessions) as session:
            found = await agent_for_number(session, e164)
            if found is None:
                return None
            agent, telephony = found
            plan = await plans.tenant_plan(session, agent.tenant_id)
            retention = plan.recording_retention_days if plan else self._default_retention_days
            return AgentConfig(
                tenant_id=agent.tenant_id,
                agent_id=agent.id,
                name=agent.name,
                persona=agent.persona,
                greeting=agent.greeting,
                language=agent.language,
                voice=agent.voice,
                tools=tuple(agent.tools),
                transfer_number=agent.transfer_number,
                providers=dict(agent.providers),
                llm_model=agent.llm_model,
                llm_url=agent.llm_url,
                http_tools=tuple(agent.http_tools),
                speech=dict(agent.speech),
                version=agent.version,
                record_calls=retention > 0,
                telephony=telephony,
            )

    async def record_events(self, events: list[CallEventRecord]) -> None:
        await self._timeline.write(events)

    async def create_booking(
        self, tenant_id: str, call_id: str, when: str, name: str | None
    ) -> str:
        async with session_scope(self._sessions) as session:
            booking = await calls.create_booking(session, tenant_id, call_id, when, name)
            return booking.id

    async def search_knowledge(self, tenant_id: str, query: str, k: int) -> list[Hit]:
        # Embedding the query is milliseconds of CPU: off the event loop that carries the
        # calls' audio (ONNX Runtime and Qdrant release the GIL while they work).
        return await asyncio.to_thread(self._knowledge.search, tenant_id, query, k)

    async def store_recording(self, tenant_id: str, call_id: str, wav: bytes) -> str:
        name = recordings.object_name(call_id)
        await self._objects.put(tenant_id, name, wav, "audio/wav")
        return name

    async def admission(self, tenant_id: str) -> Admission:
        async with session_scope(self._sessions) as session:
            plan = await plans.tenant_plan(session, tenant_id)
        # The plan's connection is given back before the timeline store takes its own: a
        # burst of webhooks holding one connection each while waiting for a second would
        # use the pool up and wait on itself (20 at once did, for the pool's 30 s).
        return await plans.admission(plan, self._timeline, tenant_id)

    async def secret(self, tenant_id: str, name: str) -> str | None:
        return await self._secrets.reveal(tenant_id, name)
