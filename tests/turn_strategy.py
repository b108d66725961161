"""A Pipecat turn strategy on its own, for unit tests: set up without a pipeline, fed
frames one by one, with the frames it pushed and the events it raised recorded."""

from pipecat.clocks.system_clock import SystemClock
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.utils.asyncio.task_manager import TaskManager


class StrategyUnderTest:
    def __init__(self, strategy, *events: str) -> None:
        self.strategy = strategy
        self.pushed: list[type] = []
        self.raised: set[str] = set()
        strategy.add_event_handler("on_push_frame", self._pushed)
        for event in events:
            strategy.add_event_handler(event, self._raiser(event))

    async def _pushed(self, _strategy, frame, _direction) -> None:
        self.pushed.append(type(frame))

    def _raiser(self, event: str):
        async def raised(_strategy, *_args) -> None:
            self.raised.add(event)

        return raised

    async def set_up(self) -> None:
        setup = FrameProcessorSetup(
            clock=SystemClock(), task_manager=TaskManager(), pipeline_worker=None
        )
        await self.strategy.setup(setup)

    async def feed(self, *frames) -> None:
        for frame in frames:
            await self.strategy.process_frame(frame)
