"""A tenant's usage this month, written straight into a platform's own timeline store (the
embedded SQLite of its data dir): how tests and the attacks benchmark put a tenant near
the end of its plan's minutes without holding a call open for them."""

import time
import uuid
from pathlib import Path

import control_plane.tenants.models  # noqa: F401 (the timeline's rows reference tenants)
from control_plane.calls.store import SqlTimelineStore
from control_plane.kit.db import create_engine, session_factory
from media_plane.agent import CallEventRecord
from switchboard.settings import Settings


async def a_call_earlier(data: Path, tenant_id: str, secs: float) -> None:
    """A call of ``secs`` that ended just now."""
    engine = create_engine(Settings(_env_file=None, data_dir=data).resolved_database_url)
    now, call_id = time.time(), "call_" + uuid.uuid4().hex
    try:
        await SqlTimelineStore(session_factory(engine)).write([
            CallEventRecord(uuid.uuid4().hex, tenant_id, call_id, 1, "call.started",
                            now - secs, {}),
            CallEventRecord(uuid.uuid4().hex, tenant_id, call_id, 2, "call.ended", now,
                            {"secs": secs}),
        ])  # fmt: skip
    finally:
        await engine.dispose()
