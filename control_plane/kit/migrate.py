"""Run the schema migrations: at start-up, from ``switchboard migrate`` and in tests."""

from alembic import command
from alembic.config import Config

SCRIPT_LOCATION = "control_plane:migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # configparser interpolation: a literal % in a URL (an escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking (Alembic's env runs its own event loop): call from a thread in async code."""
    command.upgrade(alembic_config(database_url), revision)
