"""What a fleet needs to see of each media process, at ``/metrics`` (Prometheus).

Per-tenant series are labelled only for the tenants named in
``SWITCHBOARD_METRICS_TENANTS`` (an allow-list: the operator's largest or most watched
tenants); every other tenant is ``other``. An allow-list, rather than the top N seen so
far, keeps a label's meaning fixed across processes and restarts, and bounds the series to
what the operator chose (a tenant id in a label is also the business's identity: it is
shown only where the operator asked).
"""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

LIVE_CALLS = Gauge("switchboard_live_calls", "Calls running in this process.")
CAPACITY = Gauge(
    "switchboard_call_capacity",
    "Calls this process is sized for (SWITCHBOARD_CALL_CAPACITY); the headroom is this "
    "minus switchboard_live_calls.",
)
HEADROOM = Gauge("switchboard_call_headroom", "Calls this process can still take.")
FLEET_LIVE_CALLS = Gauge(
    "switchboard_fleet_live_calls",
    "Live calls on the fleet's gauge (the sorted set KEDA counts), as this process last read "
    "it after reaping.",
)
DRAINING = Gauge("switchboard_draining", "1 while this process drains (SIGTERM).")
CALLS = Counter(
    "switchboard_calls",
    "New calls by what the platform did: admitted, or refused and why (concurrent_calls, "
    "monthly_minutes, unavailable: the control plane or the call ledger, draining).",
    ["tenant", "outcome"],
)
CALL_SECONDS = Histogram(
    "switchboard_call_duration_seconds",
    "How long calls lasted, stream open to hang-up.",
    ["tenant"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
TURN_SECONDS = Histogram(
    "switchboard_turn_latency_seconds",
    "Each answered turn: the caller's last word to the agent's first audio on the wire.",
    ["tenant"],
    buckets=(0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)

_labelled: frozenset[str] = frozenset()


def label_tenants(tenant_ids: Iterable[str]) -> None:
    """Which tenants get series of their own (the rest are ``other``)."""
    global _labelled
    _labelled = frozenset(tenant_ids)


def tenant(tenant_id: str | None) -> str:
    return tenant_id if tenant_id in _labelled else "other"


def call_outcome(tenant_id: str | None, outcome: str) -> None:
    CALLS.labels(tenant(tenant_id), outcome).inc()
