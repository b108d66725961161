"""What the media plane needs from the control plane, and nothing more."""

from dataclasses import dataclass, field
from typing import Protocol

from knowledge.hits import Hit


@dataclass(frozen=True, slots=True)
class AgentConfig:
    tenant_id: str
    agent_id: str
    name: str
    persona: str
    greeting: str
    language: str
    voice: str
    tools: tuple[str, ...]
    transfer_number: str | None = None
    providers: dict[str, str] = field(default_factory=dict)
    llm_model: str | None = None  # unset: the LLM provider's default model
    llm_url: str | None = None  # the tenant's own OpenAI-compatible endpoint
    http_tools: tuple[dict, ...] = ()  # the tenant's own tools (control_plane HttpTool)
    speech: dict = field(default_factory=dict)  # how it listens (SpeechOptions)
    version: int = 1
    record_calls: bool = False  # the tenant's plan keeps recordings (retention > 0 days)
    telephony: str = "twilio"  # the provider the called number is bound to


def agent_from_dict(data: dict) -> AgentConfig:
    """An agent from its JSON form (the internal API's, the call ledger's)."""
    tuples = {"tools": tuple(data["tools"]), "http_tools": tuple(data["http_tools"])}
    return AgentConfig(**data | tuples)


@dataclass(frozen=True, slots=True)
class CallEventRecord:
    event_id: str
    tenant_id: str
    call_id: str
    seq: int
    kind: str
    at: float
    data: dict


@dataclass(frozen=True, slots=True)
class MonthlyMinutes:
    """A tenant's minutes for the month, which its live calls draw on as they run (the
    call ledger meters them fleet-wide)."""

    month: str  # "2026-12": calls draw on the month they started in
    allowance_secs: float  # the plan's monthly minutes
    used_secs: float  # by the month's ended calls, as the timeline has them so far


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a new call may start, and how long it may run."""

    refusal: str | None = None  # None: admit; else why not (the tenant's monthly minutes)
    max_secs: float | None = None  # the plan's longest call (None: the platform's)
    # The plan's concurrent calls (None: no limit), held fleet-wide by the call ledger.
    max_concurrent_calls: int | None = None
    minutes: MonthlyMinutes | None = None  # None: not metered (no plan, or overage allowed)

    @classmethod
    def from_dict(cls, data: dict) -> "Admission":
        minutes = data.get("minutes")
        return cls(**data | {"minutes": MonthlyMinutes(**minutes) if minutes else None})


class ControlPlaneUnavailable(RuntimeError):
    """The control plane could not answer (unreachable, failing, or refusing our token)."""


class ControlPlanePort(Protocol):
    """The media plane's view of the control plane.

    Embedded mode implements it in-process (control_plane.port); a split deployment
    implements it over the control plane's internal API.
    """

    async def agent_for_number(self, e164: str) -> AgentConfig | None: ...

    async def record_events(self, events: list[CallEventRecord]) -> None: ...

    async def create_booking(
        self, tenant_id: str, call_id: str, when: str, name: str | None
    ) -> str: ...

    async def search_knowledge(self, tenant_id: str, query: str, k: int) -> list[Hit]: ...

    async def store_recording(self, tenant_id: str, call_id: str, wav: bytes) -> str:
        """Keep a finished call's recording; returns its object name."""
        ...

    async def admission(self, tenant_id: str) -> Admission:
        """Whether a new call is admitted under the tenant's plan, and for how long."""
        ...

    async def secret(self, tenant_id: str, name: str) -> str | None:
        """The tenant's secret (a provider key, a telephony token), or None if it has
        not set one. The value is never logged."""
        ...
