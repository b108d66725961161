"""Platform settings: one pydantic-settings class, env prefix ``SWITCHBOARD_``.

Every backend is chosen here. Unset means the embedded default, so a fresh checkout runs
with no servers and no API keys.
"""

import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_ADMIN_PASSWORD = "admin"
DEV_SERVICE_TOKEN = "dev-service-token"
DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"
DEV_EXOTEL_API_KEY = "dev-exotel-api-key"
DEV_EXOTEL_API_TOKEN = "dev-exotel-api-token"


MAKE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def strong(secret: str, chars: int, bits: float) -> bool:
    """At least ``chars`` long, at least ``bits`` of entropy by its own character
    frequencies, and not a pattern repeated (three of four of its three-character runs
    distinct). "password" four times over is 32 characters, 88 bits and 8 distinct runs of
    30; 32 random hex digits estimate 95 bits or more, token_urlsafe(32) over 200."""
    if len(secret) < chars:
        return False
    counts = Counter(secret)
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    runs = {secret[i : i + 3] for i in range(len(secret) - 2)}
    return per_char * len(secret) >= bits and len(runs) >= 0.75 * (len(secret) - 2)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Which planes this process runs: both (embedded, the default), or one of them for a
    # split deployment. A media-only process reaches the control plane's internal API at
    # control_plane_url with the service token, and caches each number's agent config for
    # agent_cache_secs (dropped at once when the control plane announces a change over
    # Redis, so the TTL only bounds staleness if an announcement is missed).
    plane: Literal["all", "control", "media"] = "all"
    control_plane_url: AnyHttpUrl | None = None
    service_token: str = DEV_SERVICE_TOKEN
    agent_cache_secs: float = Field(default=60, ge=0)
    agent_changes_channel: str = "switchboard:agent-changes"
    # Where embedded backends keep their files (SQLite, Qdrant Edge shard, ...).
    data_dir: Path = Path(".switchboard")
    # Unset: a SQLite file under data_dir.
    database_url: str | None = None
    # Unset: coordination and call events stay in-process (one process, embedded mode).
    # Set: call events travel through a Redis stream to the control plane's timeline writer.
    redis_url: str | None = None
    events_stream: str = "switchboard:call-events"
    # Set with Redis: the call ledger's keys (media_plane/ledger.py); `<prefix>:live` is the
    # live-call gauge KEDA's Redis scaler counts.
    calls_prefix: str = "switchboard:calls"
    # Calls one media process is sized for (its calls per core, docs/performance.md, times
    # its cores): /metrics reports the headroom left; KEDA's target per pod derives from it.
    call_capacity: int = Field(default=30, ge=1)
    # Tenants whose /metrics series carry their id, comma-separated; the rest are `other`.
    metrics_tenants: str = ""
    # SIGTERM drains a media process: no new calls, live ones run to their end, at most
    # this long (a call's own limit is SWITCHBOARD_MAX_CALL_MINUTES); then it exits.
    drain_secs: float = Field(default=3600.0, ge=0)
    # Call timelines. Set: MongoDB (motor). Unset: tables in the relational store.
    mongodb_url: str | None = None
    mongodb_database: str = "switchboard"
    # Per-tenant secrets. Vault URL set: HashiCorp Vault KV v2 (hvac). Unset: an encrypted
    # file under data_dir, keyed by secrets_key (a Fernet key); development generates one.
    vault_url: AnyHttpUrl | None = None
    vault_token: str | None = None
    vault_mount: str = "secret"
    secrets_key: str | None = None
    # Call recordings and original documents. MinIO URL set: MinIO (or any S3 API) through
    # the minio client. Unset: a directory under data_dir, with presigned links served here.
    minio_url: AnyHttpUrl | None = None
    minio_access_key: str | None = None
    minio_secret_key: str | None = None
    minio_bucket: str = "switchboard"
    minio_region: str = "us-east-1"
    # How long recordings are kept for tenants whose plan does not say (0: calls are not
    # recorded), how long a playback link works, and how often expired recordings go.
    recording_retention_days: int = Field(default=30, ge=0)
    recording_link_secs: int = Field(default=3600, ge=1, le=7 * 24 * 3600)  # S3's bounds
    retention_sweep_secs: float = Field(default=3600, gt=0)
    # Documents larger than this are indexed by the background worker (upload answers 202
    # at once); smaller ones in the upload request. Jobs: a Redis list under this key
    # when redis_url is set, else an in-memory queue.
    knowledge_inline_bytes: int = Field(default=256 * 1024, ge=0)
    knowledge_jobs: str = "switchboard:knowledge:jobs"
    # Every document is read in a child process with these limits (knowledge/sandbox.py):
    # CPU seconds and memory (MB) the reading may take, and how many a tenant may have
    # being read inline at once (more: 429).
    knowledge_parse_cpu_secs: int = Field(default=30, ge=1, le=3600)
    knowledge_parse_memory_mb: int = Field(default=1024, ge=64)
    uploads_per_tenant: int = Field(default=2, ge=1)
    # Unset: Qdrant Edge, in-process, under data_dir. Set: a Qdrant server (one collection
    # for every tenant, tenant_id its tenant key).
    qdrant_url: AnyHttpUrl | None = None
    qdrant_api_key: str | None = None
    qdrant_collection: str = "switchboard_knowledge"
    # Dense embeddings: Voyage when its key is set, else the offline model if installed.
    voyage_api_key: str | None = None
    voyage_model: str = "voyage-3.5"
    voyage_dimensions: int = 1024
    voyage_url: AnyHttpUrl | None = None  # unset: Voyage's own endpoint
    # How knowledge queries are answered: dense, hybrid (dense and BM25 fused by RRF in one
    # Qdrant query) or bm25 (no model). Unset: dense with the embedded store, where it
    # measured best (docs/knowledge.md); hybrid with a Qdrant server, the production design,
    # where tenants' names and codes need BM25 beside the embedding. No embedder: BM25.
    knowledge_retrieval: Literal["dense", "hybrid", "bm25"] | None = None
    # Whether a media process loads the offline providers' models (recogniser, voices;
    # ~300 MB) at start, or when the first call of an agent that uses them arrives. A pod
    # whose agents all run cloud providers sets this false and never loads them.
    warm_offline_models: bool = True
    # Where models built from installed packages are cached (the int8 ONNX encoder), shared
    # by every data_dir on the machine.
    model_cache_dir: Path = Path.home() / ".cache" / "switchboard" / "models"
    # Cloud providers (docs/providers.md): the platform's API key for each, used for
    # tenants that have not stored their own (secret "<provider>_api_key"), and where each
    # is reached (unset: the provider's own endpoint; set: a self-hosted or test server).
    deepgram_api_key: str | None = None
    deepgram_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_url: str | None = None
    openai_api_key: str | None = None
    openai_url: str | None = None
    cartesia_api_key: str | None = None
    cartesia_url: str | None = None
    # A streamed LLM reply that goes quiet this long fails the attempt (the SDK retries,
    # then the call says "one moment" and tries again): a live turn cannot wait longer.
    llm_stall_secs: float = Field(default=5.0, gt=0, le=60)
    sarvam_api_key: str | None = None
    sarvam_url: str | None = None
    # Twilio signs every webhook and media stream with an account's auth token. A tenant
    # with its own Twilio account stores its token as the secret "twilio_auth_token";
    # numbers on the platform's account are checked with this one. Empty: the platform
    # has no Twilio account, and only tenants' own numbers are answered.
    twilio_auth_token: str = DEV_TWILIO_AUTH_TOKEN
    # Twilio's REST API: when the agent transfers or ends a call, the live call is updated
    # through it (with the account's token: the tenant's own, or the platform's unless it
    # is the development placeholder). Should that fail, the <Connect action> does it.
    twilio_api_url: AnyHttpUrl = AnyHttpUrl("https://api.twilio.com")
    # Exotel presents an API key and token (HTTP Basic) on every request for a call. A
    # tenant with its own Exotel account stores them as the secrets "exotel_api_key" and
    # "exotel_api_token"; numbers on the platform's account are checked with these. Empty:
    # only tenants' own Exotel numbers are answered.
    exotel_api_key: str = DEV_EXOTEL_API_KEY
    exotel_api_token: str = DEV_EXOTEL_API_TOKEN
    # Exotel writes numbers in national form (080...): the country they are in.
    exotel_country_code: str = Field(default="91", pattern=r"^[1-9]\d{0,2}$")
    # Servers a tenant chooses (its HTTP tools, its own LLM endpoint) are reached only at
    # public addresses, never the platform's own network (its control plane, Vault, a
    # cloud metadata service): common/outbound.py. True for development only.
    tenant_outbound_allow_private: bool = False
    # Refused telephony requests (bad signatures, streams for no call) an address may make
    # before it is backed off (media_plane/telephony/strangers.py). Carriers make none.
    telephony_refusals_free: int = Field(default=20, ge=0)
    # The longest any call may last (a plan may set less): the caller is told, then the
    # call ends. A line left open is otherwise billed and holds a pod forever.
    max_call_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # The URL providers reach us at (webhooks, media WebSockets). Unset: taken from the
    # incoming webhook's Host header, which is right behind a proxy that preserves it.
    public_url: AnyHttpUrl | None = None
    # Operator token for the REST API (break-glass platform access; see docs).
    admin_token: str = DEV_ADMIN_TOKEN
    # Identity. Unset server URL: the built-in OIDC issuer (Keycloak's URL layout) serves
    # the realm from this platform. Set: a Keycloak server, e.g. https://sso.example.com/
    oidc_server_url: AnyHttpUrl | None = None
    oidc_realm: str = "switchboard"
    oidc_client_id: str = "switchboard"
    # The built-in issuer's first platform-admin ("admin"), created when it has no users.
    bootstrap_admin_password: str = DEV_ADMIN_PASSWORD
    # Every request body's ceiling (documents are limited to 5 MB on their own).
    max_request_bytes: int = Field(default=6 * 1024 * 1024, ge=1024)
    # Who may read the operations surfaces. /metrics: anyone who presents this bearer token
    # (Prometheus's `authorization` scrape setting); unset, anyone in development and no
    # one in production. /docs and /openapi.json: served unless turned off; production
    # turns them off unless this says otherwise.
    metrics_token: str | None = None
    api_docs: bool | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> "Settings":
        if self.minio_url and not (self.minio_access_key and self.minio_secret_key):
            raise ValueError(
                "SWITCHBOARD_MINIO_URL needs SWITCHBOARD_MINIO_ACCESS_KEY and _SECRET_KEY"
            )
        if self.plane == "media" and not self.control_plane_url:
            raise ValueError("a media-only process needs SWITCHBOARD_CONTROL_PLANE_URL")
        if self.environment == "production" and (problems := self._production_problems()):
            raise ValueError("not fit for production: " + "; ".join(problems))
        return self

    def _production_problems(self) -> list[str]:
        """Every setting production cannot run with, each named: placeholders and weak
        secrets (judged by length and variety, not only by being the development value),
        private tenant servers, no public URL, an identity provider without TLS."""
        problems = []
        for name, value in (
            ("SWITCHBOARD_ADMIN_TOKEN", self.admin_token),
            ("SWITCHBOARD_SERVICE_TOKEN", self.service_token),
        ):
            if not strong(value, chars=32, bits=90):
                problems.append(f"{name} must be at least 32 random characters ({MAKE_SECRET})")
        for name, value, placeholder in (
            ("SWITCHBOARD_TWILIO_AUTH_TOKEN", self.twilio_auth_token, DEV_TWILIO_AUTH_TOKEN),
            ("SWITCHBOARD_EXOTEL_API_TOKEN", self.exotel_api_token, DEV_EXOTEL_API_TOKEN),
        ):
            if value and (value == placeholder or not strong(value, chars=16, bits=48)):
                problems.append(
                    f"{name} must be the platform account's real token (or empty if every "
                    "tenant brings its own)"
                )
        if not self.vault_url and not self.secrets_key:
            problems.append(
                "SWITCHBOARD_SECRETS_KEY must be set (or use Vault: SWITCHBOARD_VAULT_URL)"
            )
        if not self.oidc_server_url and not strong(self.bootstrap_admin_password, 12, 36):
            problems.append(
                "SWITCHBOARD_BOOTSTRAP_ADMIN_PASSWORD must be at least 12 characters and not "
                "a repetition (or use Keycloak: SWITCHBOARD_OIDC_SERVER_URL)"
            )
        if self.oidc_server_url and self.oidc_server_url.scheme != "https":
            problems.append("SWITCHBOARD_OIDC_SERVER_URL must be https: tokens travel over it")
        if self.tenant_outbound_allow_private:
            problems.append(
                "SWITCHBOARD_TENANT_OUTBOUND_ALLOW_PRIVATE must be false: tenants' tools would "
                "reach the platform's own network"
            )
        if not self.public_url:
            problems.append(
                "SWITCHBOARD_PUBLIC_URL must be set: it is the URL telephony providers reach "
                "and sign, never a request's Host header"
            )
        return problems

    @property
    def serves_api_docs(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment != "production"

    @property
    def twilio_rest_token(self) -> str | None:
        """The platform's Twilio token for REST calls: none while it is the placeholder,
        which no Twilio account has."""
        real = self.twilio_auth_token and self.twilio_auth_token != DEV_TWILIO_AUTH_TOKEN
        return self.twilio_auth_token if real else None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'switchboard.db').resolve()}"

    @property
    def base_url(self) -> str:
        """Where this platform is reached: the public URL, else its own listen address."""
        if self.public_url:
            return str(self.public_url).rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def qdrant_edge_path(self) -> Path:
        return self.data_dir / "qdrant-edge"

    @property
    def resolved_knowledge_retrieval(self) -> str:
        if self.knowledge_retrieval:
            return self.knowledge_retrieval
        return "hybrid" if self.qdrant_url else "dense"


@lru_cache
def get_settings() -> Settings:
    return Settings()
