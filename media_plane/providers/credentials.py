"""What a call's cloud providers are reached with: each provider's API key (the tenant's
own, its secret ``<provider>_api_key``, else the platform's ``SWITCHBOARD_<PROVIDER>_API_KEY``),
where the operator set one its base URL (a self-hosted or test server), and how long a
streamed LLM reply may go quiet."""

import asyncio
from dataclasses import dataclass, field

from media_plane.agent import AgentConfig, ControlPlanePort

CLOUD_PROVIDERS = ("deepgram", "anthropic", "openai", "cartesia", "sarvam")


@dataclass(frozen=True)
class Credentials:
    keys: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    # Whose key (or endpoint) each provider is reached with: "platform" or the tenant's
    # id. Each has its own circuit breaker (breakers.py).
    owners: dict[str, str] = field(default_factory=dict)
    llm_stall_secs: float = 5.0  # SWITCHBOARD_LLM_STALL_SECS
    # A tenant's own endpoint (its llm_url) may be at a private address: the operator said
    # so (SWITCHBOARD_TENANT_OUTBOUND_ALLOW_PRIVATE, common/outbound.py).
    tenant_private_ok: bool = False

    def __repr__(self) -> str:  # keys never reach a log line
        return f"Credentials(providers={sorted(self.keys)}, urls={self.urls})"


async def credentials_for(agent: AgentConfig, port: ControlPlanePort, settings) -> Credentials:
    """Only for the providers the agent uses, looked up when its call is announced."""
    used = sorted({p for p in agent.providers.values() if p in CLOUD_PROVIDERS})
    own = await asyncio.gather(*(port.secret(agent.tenant_id, f"{p}_api_key") for p in used))
    keys, urls, owners = {}, {}, {}
    for provider, key in zip(used, own, strict=True):
        url = getattr(settings, f"{provider}_url", None)
        owner = agent.tenant_id if key else "platform"
        if provider == "openai" and agent.llm_url:
            # The tenant's own endpoint gets the tenant's own key or none: the platform's
            # key never goes to a server a tenant chose.
            url, owner = agent.llm_url, agent.tenant_id
        else:
            key = key or getattr(settings, f"{provider}_api_key", None)
        if key:
            keys[provider] = key
        if url:
            urls[provider] = str(url)
        if key or (url and provider == "openai"):  # reachable (else: MissingKey)
            owners[provider] = owner
    return Credentials(
        keys, urls, owners, settings.llm_stall_secs, settings.tenant_outbound_allow_private
    )
