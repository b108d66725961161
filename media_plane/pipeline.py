"""One factory builds every call's pipeline from the tenant's agent config.

transport.in -> STT -> user context (Silero VAD, turn logic) -> caller audio ends ┐
             -> LLM/engine (tools) -> [reply in flight] -> TTS -> playback marks     │
             -> transport.out                                                        │
             -> turn latency -> [recorder] <-- the caller's audio, handed over directly ┘
             -> assistant context

The call stays at 8 kHz end to end: no stream resampler sits on the audio path, so audio
is neither delayed on the way in nor released in bursts on the way out. Turn ends are
decided by VAD silence plus a short speech timeout: Smart Turn v3 (Pipecat resamples 8 kHz
for it) was measured against it on phone audio and lost. It let 14% of callers who paused
mid-sentence go on, where the timeout let 3%, but kept 36% of finished sentences waiting
its 3 s (docs/call-quality.md, "End of turn").
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import cast

from fastapi import WebSocket
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMRunFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.llm_switcher import LLMSwitcher
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyFailover
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.services.llm_service import LLMService
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketClient,
    FastAPIWebsocketInputTransport,
    FastAPIWebsocketOutputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from media_plane import metrics
from media_plane.agent import AgentConfig, ControlPlanePort
from media_plane.barge_in import (
    AgentPauseFrame,
    AgentResumeFrame,
    BackchannelFilter,
    BargeInUserTurnStartStrategy,
)
from media_plane.calls import Call, Prepared
from media_plane.empty_turn import NoWordsUserTurnStopStrategy
from media_plane.keypad import KeypadInput, KeypadUserTurnStartStrategy
from media_plane.latency import TurnLatency
from media_plane.llm_recovery import LLMRecovery
from media_plane.phrases import SAY_AGAIN, in_language
from media_plane.providers.credentials import CLOUD_PROVIDERS
from media_plane.providers.factory import (
    CALL_SAMPLE_RATE,
    MissingKey,
    make_llm,
    make_stt,
    make_tts,
)
from media_plane.providers.vad import SharedSileroVADAnalyzer, phone_vad_params
from media_plane.recording import CallRecorder
from media_plane.telephony.stream_guard import StreamGuard
from media_plane.tools import register_tools, tools_schema
from media_plane.tts_recovery import ReplyInFlight, say_again_after_reconnect

VAD_STOP_SECS = 0.35  # silence that ends speech
SPEECH_TIMEOUT_SECS = 0.1  # extra wait for the caller to go on after that silence


class _DirectAudioInput(FastAPIWebsocketInputTransport):
    """Caller audio goes from the socket's reader straight into the pipeline. Pipecat's
    input transport queues each frame for a second task that takes it with
    ``asyncio.wait_for`` (a new task and timer per frame) only to pass it on when, as
    here, no audio filter is configured: measurable CPU at 50 frames a second per call."""

    async def push_audio_frame(self, frame: InputAudioRawFrame):
        if self._params.audio_in_enabled and not self._paused:
            await self.push_frame(frame)


class _GuardedClient(FastAPIWebsocketClient):
    """Pipecat's socket client, reading the stream through its guard (stream_guard.py)."""

    def __init__(self, websocket: WebSocket, guard: StreamGuard, **kwargs) -> None:
        super().__init__(websocket, **kwargs)
        self._guard = guard

    def receive(self):
        return self._guard.messages()


class CallTransport(FastAPIWebsocketTransport):
    """Pipecat's FastAPI WebSocket transport reading through the stream's guard, with the
    direct audio input above."""

    def __init__(self, websocket: WebSocket, params: FastAPIWebsocketParams, guard: StreamGuard):
        super().__init__(websocket=websocket, params=params)
        self._client = _GuardedClient(
            websocket,
            guard,
            callbacks=self._callbacks,
            ws_close_timeout=self._params.ws_close_timeout,
        )
        self._input = _DirectAudioInput(self, self._client, self._params, name=self._input_name)
        self._output = _PausableOutput(self, self._client, self._params, name=self._output_name)


class _PausableOutput(FastAPIWebsocketOutputTransport):
    """Holds the agent's audio while the caller's words over it are awaited (barge_in.py),
    never longer than ``MAX_PAUSE_SECS``: a lost resume must not leave the agent mute."""

    MAX_PAUSE_SECS = 3.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._playing = asyncio.Event()
        self._playing.set()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, AgentPauseFrame):
            self._playing.clear()
        elif isinstance(frame, (AgentResumeFrame, InterruptionFrame, EndFrame, CancelFrame)):
            self._playing.set()  # an interruption drops what was held
        await super().process_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if not self._playing.is_set():
            try:
                await asyncio.wait_for(self._playing.wait(), self.MAX_PAUSE_SECS)
            except TimeoutError:
                self._playing.set()
        return await super().write_audio_frame(frame)


class CallerAudioEnds(FrameProcessor):
    """Where the caller's audio stops travelling down the pipeline: once the STT and the
    VAD have heard it, only the recorder (placed after the output, to hear what was
    actually played) still wants it, and it is handed there directly. Every processor it
    would otherwise pass is a queue hop, 50 times a second per call: on a loaded media
    plane those hops were most of the per-frame cost.

    Direct mode: a pass-through this cheap runs in the pushing processor's task rather than
    paying a queue hop of its own."""

    def __init__(self, recorder: FrameProcessor | None = None) -> None:
        super().__init__(enable_direct_mode=True)
        self._recorder = recorder

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if not isinstance(frame, InputAudioRawFrame):
            await self.push_frame(frame, direction)
        elif self._recorder is not None:
            await self._recorder.queue_frame(frame)


class PlaybackMarks(FrameProcessor):
    """After each spoken reply, send the provider a ``mark``: it echoes it back when the
    caller has heard everything before it, which tells us what was actually played. The
    reply is also done for ``reply``: its voice need not say it again (tts_recovery.py)."""

    def __init__(self, mark: Callable[[str], dict], reply: ReplyInFlight):
        super().__init__(enable_direct_mode=True)  # a cheap pass-through: no queue hop
        self._mark = mark
        self._reply = reply
        self._n = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, TTSStoppedFrame) and direction == FrameDirection.DOWNSTREAM:
            self._reply.speaking = False
            self._n += 1
            mark = self._mark(f"reply-{self._n}")
            await self.push_frame(OutputTransportMessageFrame(message=mark))


@dataclass(frozen=True)
class Line:
    """How one telephony provider's media stream is spoken."""

    serializer: FrameSerializer
    mark: Callable[[str], dict]  # the provider's playback-mark message with this name
    guard: StreamGuard  # what the stream may send (its messages are read through it)
    audio_chunk_10ms: int = 4  # agent audio per message, in 10 ms units (Pipecat's default)


# Each role's service for an agent: the factory, given what the call prepared.
_MAKE: dict[str, Callable[[AgentConfig, Prepared], FrameProcessor]] = {
    "stt": lambda agent, prepared: make_stt(agent, prepared.credentials),
    "llm": lambda agent, prepared: make_llm(agent, prepared.credentials),
    "tts": lambda agent, prepared: make_tts(agent, prepared.credentials),
}


def _services(call: Call, role: str, prepared: Prepared) -> list:
    """The agent's service for ``role`` and, behind a cloud one, the offline one on
    standby. Only the offline one when neither the tenant nor the platform has a key for
    the provider, or its circuit breaker is open: the caller is still served, and the
    operator sees why (a log line and a ``provider.fallback`` event on the timeline)."""
    make = _MAKE[role]
    provider = call.agent.providers.get(role, "offline")
    if provider not in CLOUD_PROVIDERS:
        return [make(call.agent, prepared)]
    standby = make(
        replace(call.agent, providers=call.agent.providers | {role: "offline"}), prepared
    )
    owner = prepared.credentials.owners.get(provider)
    if owner is not None and not call.providers.allow(provider, owner):
        _log_fallback(call, role, provider, "circuit_open")
        return [standby]
    try:
        return [make(call.agent, prepared), standby]
    except MissingKey as missing:
        _log_fallback(call, role, missing.provider, str(missing))
        return [standby]


def _log_fallback(call: Call, role: str, provider: str, reason: str) -> None:
    logger.bind(tenant_id=call.tenant_id, call_id=call.call_id).warning(
        "call.provider_fallback", role=role, provider=provider, reason=reason
    )
    call.record("provider.fallback", role=role, provider=provider, reason=reason)


def _role(call: Call, role: str, prepared: Prepared) -> tuple[FrameProcessor, list]:
    """The processor for ``role`` in the pipeline, and the services inside it. Behind a
    cloud provider, Pipecat's failover switcher: if the provider gives up (a refused
    key, a connection that will not stay up), the call moves to the offline standby and
    the caller is still heard, answered and spoken to."""
    services = _services(call, role, prepared)
    if len(services) == 1:
        return services[0], services
    switcher: ServiceSwitcher = (
        LLMSwitcher(llms=services, strategy_type=ServiceSwitcherStrategyFailover)
        if role == "llm"
        else ServiceSwitcher(services=services, strategy_type=ServiceSwitcherStrategyFailover)
    )
    _record_failover(call, role, call.agent.providers[role], switcher)
    return switcher, services


def _record_failover(call: Call, role: str, provider: str, switcher: ServiceSwitcher) -> None:
    primary = switcher.strategy.services[0]

    @switcher.strategy.event_handler("on_service_switched")
    async def _switched(_strategy, service):
        if primary.is_usable:
            return  # not a failure of the provider: a hand-off (llm_recovery.py) says why
        call.providers.failed(provider)
        _log_fallback(call, role, provider, "failed")


def turn_latency(call: Call, **latency: object) -> None:
    """An answered turn's latency: on the call's timeline, and in the process's histogram."""
    call.record("turn.latency", **latency)
    secs = float(latency["speech_end_to_audio_ms"]) / 1000  # type: ignore[arg-type]
    metrics.TURN_SECONDS.labels(metrics.tenant(call.tenant_id)).observe(secs)


def build_call_worker(
    call: Call,
    websocket: WebSocket,
    line: Line,
    port: ControlPlanePort,
    prepared: Prepared,
) -> tuple[PipelineWorker, FastAPIWebsocketTransport]:
    """The call's pipeline on the provider's socket, spoken as ``line`` says."""
    agent = call.agent
    transport = CallTransport(
        guard=line.guard,
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=line.serializer,
            audio_out_10ms_chunks=line.audio_chunk_10ms,
            allowed_origins=[],  # providers send no Origin; admission is by signed call id
        ),
    )
    stt, _ = _role(call, "stt", prepared)
    llm, models = _role(call, "llm", prepared)
    tts, _ = _role(call, "tts", prepared)
    reply = ReplyInFlight()  # what the voice is saying, to say again if its line drops
    register_tools(cast("LLMService | LLMSwitcher", llm), call, port, prepared.tools)
    if agent.record_calls:
        call.recorder = CallRecorder(CALL_SAMPLE_RATE)

    context = LLMContext(
        messages=[{"role": "system", "content": agent.persona}],
        tools=tools_schema(agent.tools, agent.http_tools),
    )
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SharedSileroVADAnalyzer(
                params=phone_vad_params(VAD_STOP_SECS), meter=call.audio_in
            ),
            # An empty turn (the caller was heard, no words came back) is answered once,
            # by the platform's "sorry, I didn't catch that" (``_user_turn`` below), in
            # every case: Pipecat's own recovery would also run the model when the turn
            # cut the agent off, and the caller would be asked twice.
            empty_user_turn=None,
            user_turn_strategies=UserTurnStrategies(
                start=[BargeInUserTurnStartStrategy(), KeypadUserTurnStartStrategy()],
                stop=[
                    NoWordsUserTurnStopStrategy(),
                    SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=SPEECH_TIMEOUT_SECS),
                ],
            ),
        ),
    )
    recording = [call.recorder.processor] if call.recorder else []
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            BackchannelFilter(),  # "mhm" over the agent: it goes on (barge_in.py)
            KeypadInput(),  # the caller's keys, gathered into entries: turns of their own
            aggregators.user(),
            CallerAudioEnds(call.recorder.processor if call.recorder else None),
            llm,
            reply,
            tts,
            PlaybackMarks(line.mark, reply),
            transport.output(),
            TurnLatency(partial(turn_latency, call)),
            *recording,  # after the output: it hears the caller and what was actually sent
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=CALL_SAMPLE_RATE,
            audio_out_sample_rate=CALL_SAMPLE_RATE,
            enable_metrics=True,  # services' TTFB, for each turn's latency breakdown
        ),
        enable_rtvi=False,  # no RTVI client on a phone line
        enable_turn_tracking=False,
        idle_timeout_secs=None,  # a caller on hold is not idle; hang-up ends the call
        conversation_id=call.call_id,
    )

    if isinstance(tts, ServiceSwitcher):  # a cloud voice, the offline one on standby
        say_again_after_reconnect(call, worker, tts.strategy.services[0], reply)

    recovery = None
    if isinstance(llm, LLMSwitcher):
        recovery = LLMRecovery(call, worker, cloud=models[0], standby=models[1])

        @llm.strategy.event_handler("on_service_switched")
        async def _answer_again(_strategy, _service):
            # The turn the failed provider dropped is answered by the one taking over.
            await worker.queue_frames([LLMRunFrame()])

    @worker.event_handler("on_pipeline_finished")
    async def _ended(_worker, _frame):
        call.providers.ended()  # each cloud provider that did not fail: a success

    @aggregators.user().event_handler("on_user_turn_stopped")
    async def _user_turn(_aggregator, _strategy, message):
        text = getattr(message, "content", None)
        call.record("turn.user", text=text)
        call.tool_calls_this_turn = 0
        if recovery is not None:
            recovery.new_turn()
        if not (text or "").strip():
            # The caller spoke but no words came back (the recogniser's connection was
            # lost with them, or it was only noise): ask again rather than wait in silence.
            say_again = in_language(SAY_AGAIN, agent.language)
            await worker.queue_frames([TTSSpeakFrame(say_again, append_to_context=True)])

    @aggregators.user().event_handler("on_user_backchannel")
    async def _backchannel(_aggregator, message):
        # "Mhm" over the agent (barge_in.py): on the timeline, not in the conversation.
        call.record("turn.backchannel", text=message.content)

    @aggregators.assistant().event_handler("on_assistant_turn_stopped")
    async def _agent_turn(_aggregator, message):
        call.record(
            "turn.agent",
            text=getattr(message, "content", ""),
            interrupted=bool(getattr(message, "interrupted", False)),
        )

    async def _tools(_llm, function_calls):
        for fc in function_calls:
            call.record("tool.called", name=fc.function_name, arguments=dict(fc.arguments))

    for model in models:
        model.add_event_handler("on_function_calls_started", _tools)

    return worker, transport
