"""An OpenAI-compatible chat-completions test server: ``POST /v1/chat/completions`` with
``stream: true``, as OpenAI documents it (and llama.cpp, vLLM and Ollama serve it), for
Pipecat's ``OpenAILLMService`` through the official ``openai`` SDK.

- ``Authorization: Bearer <key>``: with ``api_keys`` given, a key not among them gets 401
  ``invalid_api_key``; without, any key is taken, as a self-hosted server takes it.
- The request's ``model``, ``messages`` (``system``, ``user``, ``assistant`` with
  ``tool_calls``, ``tool``) and ``tools`` are read as OpenAI defines them; each request
  (with its key) is kept for tests.
- The answer streams as server-sent ``chat.completion.chunk`` events: a ``delta`` with
  the role, ``content`` deltas or one ``tool_calls`` delta per call (its ``arguments`` as
  a JSON string), a chunk with ``finish_reason`` (``stop`` or ``tool_calls``), the usage
  chunk when ``stream_options.include_usage`` asks for it, then ``data: [DONE]``.

What to answer is decided by the offline dialogue engine from the same conversation, or
by a test's own ``decide`` (same signature) standing in for the model's choices.
"""

import json
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from media_plane.providers.offline_engine import decide


def openai_app(api_keys: set[str] | None = None, decide=decide) -> FastAPI:
    app = FastAPI()
    app.state.requests = []

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if api_keys is not None and key not in api_keys:
            error = {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
            return JSONResponse({"error": error}, status_code=401)
        body = await request.json()
        app.state.requests.append({"key": key, "body": body})
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        reply = decide(body["messages"], tools)
        chunk_id, created, model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), body["model"]

        def chunk(delta: dict, finish: str | None = None) -> str:
            data = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n"

        def stream():
            yield chunk({"role": "assistant", "content": ""})
            for word in reply.text.split(" ") if reply.text else []:
                yield chunk({"content": word + " "})
            for n, (name, arguments) in enumerate(reply.calls):
                call = {
                    "index": n,
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
                yield chunk({"tool_calls": [call]})
            yield chunk({}, "tool_calls" if reply.calls else "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
                data = {
                    "id": chunk_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(data)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app
