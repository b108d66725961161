"""What a call does when its cloud LLM fails a turn for a passing reason (overloaded, rate
limited, a 5xx, a stream that went quiet) even after the SDK's own retries: never silence.

1. The first failure in a turn: the caller hears "one moment" while the turn is tried
   again.
2. A second: the offline dialogue engine takes the call over and answers the turn from
   the tenant's documents (a graceful hand-off, not a dead line); the timeline records
   ``provider.fallback`` with ``reason: unavailable``.

A permanent failure (a refused key) is not handled here: the LLM switcher's failover
strategy moves the call at once (pipeline.py).
"""

from loguru import logger
from pipecat.frames.frames import (
    ErrorFrame,
    LLMRunFrame,
    ManuallySwitchServiceFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.worker import PipelineWorker
from pipecat.services.llm_service import LLMService

from media_plane.calls import Call
from media_plane.phrases import ONE_MOMENT, in_language


class LLMRecovery:
    def __init__(self, call: Call, worker: PipelineWorker, cloud: LLMService, standby: LLMService):
        self._call = call
        self._worker = worker
        self._standby = standby
        self._provider = call.agent.providers.get("llm", "")
        self._failures = 0  # in the current turn
        cloud.add_event_handler("on_error", self._failed)
        # Pipecat reports a timed-out completion (the SDK gave up on a quiet stream) by
        # this event rather than as an error.
        cloud.add_event_handler("on_completion_timeout", self._timed_out)

    def new_turn(self) -> None:
        self._failures = 0

    async def _failed(self, service: LLMService, error: ErrorFrame) -> None:
        if not service.is_usable:
            return  # permanent: the switcher's failover has it
        await self._turn_failed(error.category.value if error.category else "unknown")

    async def _timed_out(self, _service: LLMService) -> None:
        await self._turn_failed("timeout")

    async def _turn_failed(self, category: str) -> None:
        self._failures += 1
        log = logger.bind(tenant_id=self._call.tenant_id, call_id=self._call.call_id)
        if self._failures == 1:
            self._call.providers.failed(self._provider)  # its breaker counts failed calls
            log.warning("call.llm_retry", provider=self._provider, category=category)
            self._call.record("llm.retry", provider=self._provider, category=category)
            hold = in_language(ONE_MOMENT, self._call.agent.language)
            await self._worker.queue_frames([TTSSpeakFrame(hold), LLMRunFrame()])
        elif self._failures == 2:
            log.warning("call.provider_fallback", role="llm", provider=self._provider)
            self._call.record(
                "provider.fallback", role="llm", provider=self._provider, reason="unavailable"
            )
            # The switch re-runs the turn on the standby (pipeline.py's _answer_again).
            await self._worker.queue_frames([ManuallySwitchServiceFrame(service=self._standby)])
