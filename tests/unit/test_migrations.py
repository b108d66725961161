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
