"""The load benchmark's baseline: a stock Pipecat telephony bot, no platform code.

    python benchmarks/stock_bot.py PORT [--tuned]

What Pipecat's Twilio examples build, with Pipecat's defaults throughout: the FastAPI
WebSocket transport, ``TwilioFrameSerializer``, ``SileroVADAnalyzer``, the default user
turn strategies (Smart Turn v3) and a pipeline at the default 16 kHz. Only the providers
are shared with the platform's run (the benchmark set: instant STT, LLM and TTS), so both
stacks are timed doing the same work. Twilio's media stream connects to ``/ws``.

``--tuned`` is the same bot with the two changes a Pipecat user would make first for
phone calls: the pipeline at the line's 8 kHz (no resampler), and turns ended by VAD
silence plus Pipecat's speech timeout instead of Smart Turn v3 (which needs 16 kHz).

Measurement only: the serializer and the VAD are wrapped to feed the same inbound audio
meter the platform keeps (``media_plane/audio_meter.py``), served at ``/metrics``.
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import prometheus_client
import uvicorn
from fastapi import FastAPI, Response, WebSocket
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import Frame, InputAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from media_plane.audio_meter import InboundAudioMeter
from media_plane.providers.benchmark import (
    BenchmarkLLMService,
    BenchmarkSTTService,
    BenchmarkTTSService,
)

GREETING = "Hello."
TUNED = "--tuned" in sys.argv
app = FastAPI()
_TIMESTAMP = re.compile(r'"timestamp"\s*:\s*"(\d+)"')


class MeteredTwilioSerializer(TwilioFrameSerializer):
    def __init__(self, meter: InboundAudioMeter, **kwargs):
        super().__init__(**kwargs)
        self._meter = meter

    async def deserialize(self, data: str | bytes) -> Frame | None:
        frame = await super().deserialize(data)
        if isinstance(frame, InputAudioRawFrame):
            found = _TIMESTAMP.search(data if isinstance(data, str) else data.decode())
            self._meter.received(frame.audio, int(found.group(1)) if found else None)
        return frame


class MeteredSileroVADAnalyzer(SileroVADAnalyzer):
    def __init__(self, meter: InboundAudioMeter, **kwargs):
        super().__init__(**kwargs)
        self._meter = meter

    async def analyze_audio(self, buffer: bytes):
        state = await super().analyze_audio(buffer)
        self._meter.analysed(buffer)
        return state


@app.websocket("/ws")
async def media_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    _, call = await parse_telephony_websocket(websocket)
    meter = InboundAudioMeter()
    serializer = MeteredTwilioSerializer(
        meter,
        stream_sid=call["stream_id"],
        call_sid=call["call_id"],
        # No Twilio account to hang up through; the caller ends the call.
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    context = LLMContext(messages=[{"role": "system", "content": "You are a receptionist."}])
    turns = {"user_turn_strategies": UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy()])}
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=MeteredSileroVADAnalyzer(meter), **(turns if TUNED else {})
        ),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            BenchmarkSTTService(),
            aggregators.user(),
            BenchmarkLLMService(),
            BenchmarkTTSService(),
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
        if TUNED
        else PipelineParams(),
    )

    @transport.event_handler("on_client_connected")
    async def _connected(_transport, _ws):
        await worker.queue_frames([TTSSpeakFrame(GREETING)])

    @transport.event_handler("on_client_disconnected")
    async def _disconnected(_transport, _ws):
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    try:
        await runner.run()
    finally:
        meter.close()


@app.get("/metrics")
async def metrics() -> Response:
    return Response(prometheus_client.generate_latest(), media_type="text/plain")


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


if __name__ == "__main__":
    port = next(int(arg) for arg in sys.argv[1:] if arg.isdigit())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
