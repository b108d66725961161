"""Migrations are the only way the schema is made: they must build exactly the models."""

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from control_plane.kit.db import Base, create_engine, import_models
from control_plane.kit.migrate import alembic_config, upgrade


async def _diff(url: str) -> list:
    import_models()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()


async def test_migrations_build_exactly_the_models(database_url):
    await asyncio.to_thread(upgrade, database_url)
    assert await _diff(database_url) == []


async def test_migrations_go_down_and_up_again(database_url):
    config = alembic_config(database_url)
    await asyncio.to_thread(upgrade, database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    gone = {d[0] for d in await _diff(database_url)}
    assert gone and gone <= {"add_table", "add_index"}  # every table is gone
    await asyncio.to_thread(upgrade, database_url)
    assert await _diff(database_url) == []


async def test_existing_agents_become_version_1_on_upgrade(database_url):
    from sqlalchemy import text

    await asyncio.to_thread(upgrade, database_url, "0001")
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'T', CURRENT_TIMESTAMP)")
        )
        await conn.execute(
            text(
                "INSERT INTO agents (id, tenant_id, name, persona, greeting, language, voice, "
                "tools, transfer_number, providers, updated_at, created_at) VALUES ('a1', 't1', "
                "'A', 'p', 'Hello', 'en-US', 'en_US-joe-medium', '[\"end_call\"]', NULL, "
                '\'{"stt": "offline", "llm": "offline", "tts": "offline"}\', '
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    await asyncio.to_thread(upgrade, database_url)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT version FROM agents"))).scalar() == 1
        row = (await conn.execute(text("SELECT version, config FROM agent_versions"))).one()
    await engine.dispose()
    config = row.config if isinstance(row.config, dict) else __import__("json").loads(row.config)
    assert row.version == 1
    assert config["greeting"] == "Hello" and config["tools"] == ["end_call"]
    assert config["providers"]["tts"] == "offline"


async def test_calls_that_ended_before_durations_were_kept_get_theirs(database_url):
    from sqlalchemy import text

    await asyncio.to_thread(upgrade, database_url, "0007")
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'T', CURRENT_TIMESTAMP)")
        )
        await conn.execute(
            text(
                "INSERT INTO calls (call_id, tenant_id, started_at, ended_at) VALUES "
                "('ended', 't1', '2026-11-02 10:00:00', '2026-11-02 10:02:30'), "
                "('live', 't1', '2026-11-02 11:00:00', NULL)"
            )
        )
    await asyncio.to_thread(upgrade, database_url)
    async with engine.connect() as conn:
        rows = dict((await conn.execute(text("SELECT call_id, duration_secs FROM calls"))).all())
    await engine.dispose()
    assert rows == {"ended": 150.0, "live": None}
