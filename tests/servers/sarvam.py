"""A Sarvam streaming TTS test server: ``WS /text-to-speech/ws`` as Sarvam documents it,
for Pipecat's ``SarvamTTSService``.

- The upgrade carries ``Api-Subscription-Key``; a wrong key is refused with HTTP 403
  before the handshake. The query names the ``model`` and ``send_completion_event``.
- The first message must be ``{"type": "config", "data": {...}}`` (``target_language_code``,
  ``speaker``, ``speech_sample_rate``, ``min_buffer_size``, ...); anything else first is
  answered with an ``error``.
- ``{"type": "text", "data": {"text"}}`` is buffered; once the buffer holds
  ``min_buffer_size`` characters it is spoken, as ``{"type": "audio", "data": {"audio":
  <base64 PCM>, "content_type", "request_id"}}`` messages. ``{"type": "flush"}`` speaks what
  is left and, with completion events on, sends ``{"type": "event", "data": {"event_type":
  "final"}}``. ``{"type": "ping"}`` keeps the connection open.

Each connection's key, query, config and the texts it was sent are kept for tests, each
text with the number of audio messages already sent when it arrived (so a test can tell
that speech started before the reply's later sentences came). The audio is the offline
voice speaking the text; its phonemiser (espeak-ng) reads Devanagari as Hindi.
"""

import asyncio
import base64
import json
import uuid
from urllib.parse import parse_qs

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse
from fastapi.websockets import WebSocketDisconnect

from media_plane.providers.offline_tts import synthesize

OFFLINE_VOICE = "en_US-joe-medium"
CHUNK_SECS = 0.1


def sarvam_app(api_keys: set[str]) -> FastAPI:
    app = FastAPI()
    app.state.connections = []

    @app.websocket("/text-to-speech/ws")
    async def tts(websocket: WebSocket):
        key = websocket.headers.get("api-subscription-key", "")
        if key not in api_keys:
            await websocket.send_denial_response(
                JSONResponse(
                    {"error": {"message": "Invalid API key", "code": "invalid_api_key_error"}},
                    403,
                )
            )
            return
        query = parse_qs(websocket.url.query)
        connection = {"key": key, "query": query, "config": None, "texts": [], "audio_sent": 0}
        app.state.connections.append(connection)
        completion = query.get("send_completion_event", ["true"])[0] == "true"
        await websocket.accept()

        async def send(message: dict) -> None:
            await websocket.send_text(json.dumps(message))

        async def speak(text: str) -> None:
            rate = int(connection["config"]["speech_sample_rate"])
            pcm = await asyncio.to_thread(synthesize, OFFLINE_VOICE, text, rate, repeatable=True)
            request_id = str(uuid.uuid4())
            step = int(rate * CHUNK_SECS) * 2
            for i in range(0, len(pcm), step):
                data = base64.b64encode(pcm[i : i + step]).decode()
                await send(
                    {
                        "type": "audio",
                        "data": {
                            "audio": data,
                            "content_type": "audio/pcm",
                            "request_id": request_id,
                        },
                    }
                )
                connection["audio_sent"] += 1

        buffer = ""
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                kind, data = message.get("type"), message.get("data") or {}
                if kind == "config":
                    connection["config"] = data
                elif connection["config"] is None:
                    await send(
                        {
                            "type": "error",
                            "data": {"message": "Send a config message first", "code": 400},
                        }
                    )
                elif kind == "text":
                    connection["texts"].append((data["text"], connection["audio_sent"]))
                    buffer += data["text"]
                    if len(buffer) >= int(connection["config"].get("min_buffer_size") or 50):
                        text, buffer = buffer, ""
                        await speak(text)
                elif kind == "flush":
                    if buffer.strip():
                        text, buffer = buffer, ""
                        await speak(text)
                    if completion:
                        await send({"type": "event", "data": {"event_type": "final"}})
        except WebSocketDisconnect:
            return

    return app
