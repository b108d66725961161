"""A Cartesia TTS test server: ``WS /tts/websocket`` as Cartesia documents it, for
Pipecat's ``CartesiaTTSService``.

- The upgrade carries ``X-API-Key`` and ``Cartesia-Version``; a wrong key is refused with
  HTTP 401 before the handshake.
- Text messages are generation requests: ``transcript``, ``context_id``, ``continue``,
  ``model_id``, ``voice`` ``{mode: id, id}``, ``output_format`` ``{container: raw, encoding:
  pcm_s16le, sample_rate}``, ``language``, ``add_timestamps``. Each non-empty transcript is
  spoken at once (``max_buffer_delay_ms: 0``): ``chunk`` messages of base64 PCM at the
  asked rate and a ``timestamps`` message of its words. A request with ``continue: false``
  ends its context with ``done``. ``{context_id, cancel: true}`` stops a context.
- A voice id the server does not have gets an ``error`` message for that context, as
  Cartesia answers an unknown voice.

Fault injection: ``app.state.fault = (kind, words)`` applies once, to the first request
whose transcript contains ``words``: ``"drop"`` sends the first chunk of its audio and
then drops the connection (close code 1011, as a crashed server would); ``"garbage"``
sends a message that is not JSON before its audio.

Every request is kept for tests. The audio is the offline voice speaking the transcript,
so what the caller hears is what was asked for.
"""

import asyncio
import base64
import json

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse
from fastapi.websockets import WebSocketDisconnect

from media_plane.providers.offline_tts import synthesize

OFFLINE_VOICE = "en_US-joe-medium"
CHUNK_SECS = 0.1


def cartesia_app(api_keys: set[str], voices: set[str]) -> FastAPI:
    app = FastAPI()
    app.state.connections = []  # each connection's key and version
    app.state.requests = []  # every generation request, in arrival order
    app.state.refused = 0  # upgrades refused for a wrong key
    app.state.fault = None  # (kind, words): see above

    @app.websocket("/tts/websocket")
    async def tts(websocket: WebSocket):
        key = websocket.headers.get("x-api-key", "")
        if key not in api_keys:
            app.state.refused += 1
            await websocket.send_denial_response(
                JSONResponse({"error": "Invalid API key", "status_code": 401}, 401)
            )
            return
        version = websocket.headers.get("cartesia-version")
        app.state.connections.append({"key": key, "version": version})
        await websocket.accept()
        cancelled: set[str] = set()

        async def send(message: dict) -> None:
            await websocket.send_text(json.dumps(message))

        async def speak(request: dict) -> None:
            context = request["context_id"]
            if request["voice"]["id"] not in voices:
                await send(
                    {
                        "type": "error",
                        "context_id": context,
                        "status_code": 400,
                        "done": True,
                        "error": f"Voice not found: {request['voice']['id']}",
                    }
                )
                return
            rate = request["output_format"]["sample_rate"]
            pcm = await asyncio.to_thread(
                synthesize, OFFLINE_VOICE, request["transcript"], rate, repeatable=True
            )
            step = int(rate * CHUNK_SECS) * 2
            fault = app.state.fault
            if fault and fault[1] in request["transcript"]:
                app.state.fault = None
                if fault[0] == "garbage":
                    await websocket.send_text("{this is not json")
            for i in range(0, len(pcm), step):
                if context in cancelled:
                    return
                if fault and fault[0] == "drop" and i > 0 and fault[1] in request["transcript"]:
                    await websocket.close(code=1011)
                    raise WebSocketDisconnect(1011)
                await send(
                    {
                        "type": "chunk",
                        "context_id": context,
                        "status_code": 206,
                        "done": False,
                        "step_time": CHUNK_SECS * 1000,
                        "data": base64.b64encode(pcm[i : i + step]).decode(),
                    }
                )
            if request.get("add_timestamps"):
                words = request["transcript"].split()
                secs = len(pcm) / (2 * rate)
                each = secs / max(len(words), 1)
                await send(
                    {
                        "type": "timestamps",
                        "context_id": context,
                        "status_code": 206,
                        "done": False,
                        "word_timestamps": {
                            "words": words,
                            "start": [n * each for n in range(len(words))],
                            "end": [(n + 1) * each for n in range(len(words))],
                        },
                    }
                )

        async def generate(requests: asyncio.Queue) -> None:
            # One context's requests are answered in order: its audio, then its done.
            while True:
                request = await requests.get()
                context = request.get("context_id", "")
                if request.get("transcript") and context not in cancelled:
                    await speak(request)
                if not request.get("continue", False) and context not in cancelled:
                    await send(
                        {"type": "done", "context_id": context, "status_code": 206, "done": True}
                    )

        requests: asyncio.Queue = asyncio.Queue()
        generator = asyncio.create_task(generate(requests))
        try:
            while True:  # read on while generating, so a cancel stops audio at once
                request = json.loads(await websocket.receive_text())
                if request.get("cancel"):
                    cancelled.add(request.get("context_id", ""))
                    continue
                app.state.requests.append(request)
                requests.put_nowait(request)
        except WebSocketDisconnect:
            return
        finally:
            generator.cancel()

    return app
