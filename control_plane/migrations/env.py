"""Alembic environment: async engine from the URL the caller configured."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from control_plane.kit.db import Base, create_engine, import_models

import_models()
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copy; batch mode makes that work
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    # `alembic -x url=...` (developers) wins over the configured URL (the platform, tests).
    return context.get_x_argument(as_dictionary=True).get("url") or (
        context.config.get_main_option("sqlalchemy.url") or ""
    )


async def _run_online() -> None:
    engine = create_engine(_url(), foreign_keys=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
