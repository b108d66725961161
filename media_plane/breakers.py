"""Circuit breakers: one per cloud provider and key (the platform's, or a tenant's own).

A provider that keeps failing is not tried by every new call: after ``FAILURES_TO_OPEN``
calls in a row in which it failed, its breaker opens and new calls start on the offline
engine for that role straight away (the timeline says ``reason: circuit_open``). After
``OPEN_SECS`` it is half-open: one call tries the provider again; if that call goes
through without the provider failing, the breaker closes, if not it opens again.

A call reports, per provider it used, a failure when the provider failed it (and it
moved to the standby, or a turn had to be retried) or a success when it ended without
that. Breakers live in each media process (as the calls do); their state is the gauge
``switchboard_provider_breaker_state`` (0 closed, 1 half-open, 2 open), labelled by
provider and key owner (``platform``, or a digest of the tenant's id: see ``metric_key``).
"""

import hashlib
import time
from collections.abc import Callable

from prometheus_client import Gauge

FAILURES_TO_OPEN = 3
OPEN_SECS = 30.0
STATE = Gauge(
    "switchboard_provider_breaker_state",
    "Circuit breaker of a cloud provider and key: 0 closed, 1 half-open, 2 open.",
    ["provider", "key"],
)
LEVELS = {"closed": 0, "half_open": 1, "open": 2}


class Breaker:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._failures = 0  # calls in a row the provider failed
        self._opened_at: float | None = None
        self._trial_at: float | None = None  # when the half-open trial call began

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "open" if self._clock() - self._opened_at < OPEN_SECS else "half_open"

    def allow(self) -> bool:
        """Whether a new call may use the provider."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        # Half-open: one trial call at a time; a trial that never reported (its caller
        # hung up first) gives way to another after OPEN_SECS.
        now = self._clock()
        if self._trial_at is None or now - self._trial_at >= OPEN_SECS:
            self._trial_at = now
            return True
        return False

    def succeeded(self) -> None:
        self._failures, self._opened_at, self._trial_at = 0, None, None

    def failed(self) -> None:
        self._failures += 1
        if self._trial_at is not None or self._failures >= FAILURES_TO_OPEN:
            self._opened_at, self._trial_at = self._clock(), None


class Breakers:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._breakers: dict[tuple[str, str], Breaker] = {}

    def of(self, provider: str, key: str) -> Breaker:
        breaker = self._breakers.get((provider, key))
        if breaker is None:
            breaker = self._breakers[(provider, key)] = Breaker(self._clock)
            STATE.labels(provider, metric_key(key)).set_function(lambda: LEVELS[breaker.state])
        return breaker


def metric_key(key: str) -> str:
    """A breaker's ``key`` label: ``platform``, or ``tenant-`` and a digest of the tenant's
    id. /metrics is open to the scraper, so it names no tenant; an operator who knows the
    id computes the same digest."""
    if key == "platform":
        return key
    return "tenant-" + hashlib.sha256(key.encode()).hexdigest()[:12]


BREAKERS = Breakers()


class CallProviders:
    """One call's cloud providers and what happened to each, reported to their breakers
    when the call ends."""

    def __init__(self, breakers: Breakers = BREAKERS):
        self._breakers = breakers
        self._used: dict[str, Breaker] = {}
        self._failed: set[str] = set()

    def allow(self, provider: str, key: str) -> bool:
        breaker = self._breakers.of(provider, key)
        if not breaker.allow():
            return False
        self._used[provider] = breaker
        return True

    def failed(self, provider: str) -> None:
        if provider in self._used and provider not in self._failed:
            self._failed.add(provider)  # one failure per call, however many errors
            self._used[provider].failed()

    def ended(self) -> None:
        for provider, breaker in self._used.items():
            if provider not in self._failed:
                breaker.succeeded()
