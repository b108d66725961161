"""A Deepgram live-transcription test server: ``WS /v1/listen`` as Deepgram documents it,
for Pipecat's ``DeepgramSTTService`` through the official ``deepgram-sdk``.

- The upgrade carries ``Authorization: Token <key>``; a wrong or missing key is refused
  with HTTP 401 before the handshake, as Deepgram refuses it.
- The query names the audio (``encoding`` linear16 or mulaw, ``sample_rate``) and the
  options (``model``, ``language``, ``keyterm``...); each connection's query and key are
  kept for tests.
- Binary messages are audio. Text messages are ``KeepAlive``, ``Finalize`` (answered with
  the final ``Results`` of the audio so far, ``from_finalize: true``) and ``CloseStream``
  (answered with ``Metadata``, then the socket closes).

Fault injection: a connection made with one of ``drops_once`` keys is closed by the
server (1011, as on an internal error) right after its first final result, the first
time that key connects, like a connection lost mid-call; with one of ``garbles_once``
keys, the first final result is preceded by a message that is not JSON.

What was said comes from the offline recogniser (Whisper), so a caller's words reach
the platform as an STT would hear them, not as a script says they were; for Hindi, from a
``PhraseRecogniser`` (PocketSphinx held to the phrases a test's callers may say).
"""

import asyncio
import json
import uuid
from urllib.parse import parse_qs

import numpy as np
from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse
from fastapi.websockets import WebSocketDisconnect

from media_plane.pcm import audioop
from media_plane.providers.recogniser import Recogniser
from tests.servers.phrase_recogniser import PhraseRecogniser

SPEECH_RMS = 300  # a frame louder than this is speech (the callers' silence is digital)
PRE_ROLL_SECS = 0.3


def results(transcript: str, start: float, duration: float, **flags: bool) -> dict:
    words = [
        {
            "word": w,
            "start": start,
            "end": start + duration,
            "confidence": 0.9,
            "punctuated_word": w,
        }
        for w in transcript.split()
    ]
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": duration,
        "start": start,
        "is_final": flags.get("is_final", False),
        "speech_final": flags.get("speech_final", False),
        "from_finalize": flags.get("from_finalize", False),
        "channel": {
            "alternatives": [{"transcript": transcript, "confidence": 0.9, "words": words}]
        },
        "metadata": {
            "request_id": str(uuid.uuid4()),
            "model_info": {"name": "general-nova-3", "version": "test", "arch": "nova-3"},
            "model_uuid": str(uuid.uuid4()),
        },
    }


def deepgram_app(
    api_keys: set[str],
    recogniser: Recogniser | PhraseRecogniser,
    drops_once: frozenset[str] = frozenset(),
    garbles_once: frozenset[str] = frozenset(),
) -> FastAPI:
    app = FastAPI()
    app.state.connections = []  # each connection's key and query, as the SDK sent them
    dropped: set[str] = set()
    garbled: set[str] = set()

    @app.websocket("/v1/listen")
    async def listen(websocket: WebSocket):
        key = websocket.headers.get("authorization", "").removeprefix("Token ")
        if key not in api_keys:
            await websocket.send_denial_response(
                JSONResponse({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, 401)
            )
            return
        query = parse_qs(websocket.url.query)
        app.state.connections.append({"key": key, "query": query})
        rate = int(query.get("sample_rate", ["16000"])[0])
        encoding = query.get("encoding", ["linear16"])[0]
        await websocket.accept()
        audio = bytearray()  # 16-bit PCM since the last final result
        offset = 0.0  # stream time of audio[0]
        speech_at: int | None = None  # where speech began in ``audio``

        async def final(**flags: bool) -> None:
            nonlocal audio, offset, speech_at
            heard = ""
            if speech_at is not None:
                begin = max(0, speech_at - int(PRE_ROLL_SECS * rate) * 2)
                pcm = bytes(audio[begin:])
                heard = await asyncio.to_thread(recogniser.transcribe, pcm, rate)
            duration = len(audio) / (2 * rate)
            await websocket.send_text(
                json.dumps(results(heard, offset, duration, is_final=True, **flags))
            )
            offset += duration
            audio, speech_at = bytearray(), None

        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    chunk = message["bytes"]
                    pcm = audioop.ulaw2lin(chunk, 2) if encoding == "mulaw" else chunk
                    samples = np.frombuffer(pcm, np.int16).astype(np.float64)
                    if (
                        speech_at is None
                        and len(samples)
                        and (samples**2).mean() ** 0.5 > SPEECH_RMS
                    ):
                        speech_at = len(audio)
                    audio += pcm
                    continue
                control = json.loads(message.get("text") or "{}")
                if control.get("type") == "Finalize":
                    if key in garbles_once and key not in garbled:
                        garbled.add(key)
                        await websocket.send_text("{this is not json")
                    await final(speech_final=True, from_finalize=True)
                    if key in drops_once and key not in dropped:
                        dropped.add(key)
                        await websocket.close(code=1011)
                        return
                elif control.get("type") == "CloseStream":
                    await websocket.send_text(
                        json.dumps(
                            {
                                "type": "Metadata",
                                "transaction_key": "deprecated",
                                "request_id": str(uuid.uuid4()),
                                "sha256": "0" * 64,
                                "created": "2026-01-01T00:00:00Z",
                                "duration": offset + len(audio) / (2 * rate),
                                "channels": 1,
                            }
                        )
                    )
                    await websocket.close()
                    return
        except WebSocketDisconnect:
            return

    return app
