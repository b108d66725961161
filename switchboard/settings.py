"""Platform settings: one pydantic-settings class, env prefix ``SWITCHBOARD_``.

Every backend is chosen here. Unset means the embedded default, so a fresh checkout runs
with no servers and no API keys.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "dev-admin-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Where embedded backends keep their files (SQLite, Qdrant Edge shard, ...).
    data_dir: Path = Path(".switchboard")
    # Unset: a SQLite file under data_dir.
    database_url: str | None = None
    # Unset: coordination and call events stay in-process (one process, embedded mode).
    # Set: call events travel through a Redis stream to the control plane's timeline writer.
    redis_url: str | None = None
    events_stream: str = "switchboard:call-events"
    # Unset: Qdrant Edge, in-process, under data_dir.
    qdrant_url: AnyHttpUrl | None = None
    # The URL providers reach us at (webhooks, media WebSockets). Unset: taken from the
    # incoming webhook's Host header, which is right behind a proxy that preserves it.
    public_url: AnyHttpUrl | None = None
    # Operator token for the REST API until OIDC lands (see docs/architecture.md).
    admin_token: str = DEV_ADMIN_TOKEN
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> "Settings":
        if self.environment == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError("SWITCHBOARD_ADMIN_TOKEN must be set to a real secret in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'switchboard.db').resolve()}"

    @property
    def qdrant_edge_path(self) -> Path:
        return self.data_dir / "qdrant-edge"


@lru_cache
def get_settings() -> Settings:
    return Settings()
