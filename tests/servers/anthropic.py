"""An Anthropic Messages API test server: ``POST /v1/messages`` with ``stream: true``, as
Anthropic documents it, for Pipecat's ``AnthropicLLMService`` through the official
``anthropic`` SDK.

- ``x-api-key`` must be one of the server's keys (else 401 ``authentication_error``).
- The request's ``system``, ``messages`` (text, ``tool_use`` and ``tool_result`` blocks)
  and ``tools`` are read as Anthropic defines them; each request is kept for tests
  (which model, whether the system prompt and tools carried ``cache_control``).
- The answer streams as server-sent events: ``message_start``, per content block
  ``content_block_start`` / ``content_block_delta`` (``text_delta`` or
  ``input_json_delta``) / ``content_block_stop``, then ``message_delta`` with the
  ``stop_reason`` (``end_turn`` or ``tool_use``) and ``message_stop``.

Fault injection: ``app.state.failures`` is a list of HTTP statuses the next requests get
instead of an answer (429 ``rate_limit_error``, 529 ``overloaded_error``, 500
``api_error``), one each, as Anthropic sends them, with a short ``retry-after-ms``; or
``"stall"``: the stream starts (``message_start``) and then goes quiet for a minute, as a
stuck model would.

What to answer is decided by the offline dialogue engine from the same conversation
(translated to the chat shape it reads), so a call through this server behaves like a
call with a model that uses its tools: it searches the tenant's documents, books, hands
over, hangs up.
"""

import asyncio
import json
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from media_plane.providers.offline_engine import decide


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content or [] if b.get("type") == "text")


def as_chat(messages: list[dict]) -> list[dict]:
    """Anthropic's messages in the chat shape the offline engine reads."""
    chat: list[dict] = []
    for m in messages:
        blocks = m["content"] if isinstance(m["content"], list) else []
        if m["role"] == "assistant":
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": json.dumps(b.get("input", {}))},
                }
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            chat.append({"role": "assistant", "content": _text(m["content"]), "tool_calls": calls})
            continue
        for b in blocks:
            if b.get("type") == "tool_result":
                result = _text(b.get("content"))
                chat.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": result})
        text = _text(m["content"])
        if text:
            chat.append({"role": "user", "content": text})
    return chat


def _message(model: str) -> dict:
    usage = {"input_tokens": 10, "output_tokens": 1}
    usage |= {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status_code=status
    )


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"


async def _stalled(model: str):
    yield _event("message_start", {"message": _message(model)})
    await asyncio.sleep(60)  # the client gives up first


FAILURES = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def anthropic_app(api_keys: set[str]) -> FastAPI:
    app = FastAPI()
    app.state.requests = []
    app.state.failures = []

    @app.post("/v1/messages")
    async def messages(request: Request):
        if request.headers.get("x-api-key") not in api_keys:
            return _error(401, "authentication_error", "invalid x-api-key")
        body = await request.json()
        app.state.requests.append(body)
        if app.state.failures and app.state.failures[0] == "stall":
            app.state.failures.pop(0)
            return StreamingResponse(_stalled(body["model"]), media_type="text/event-stream")
        if app.state.failures:
            status = app.state.failures.pop(0)
            failure = _error(status, FAILURES[status], "injected failure")
            # How soon to try again, which the SDK honours: milliseconds, so a test's
            # retries do not wait out the SDK's own backoff.
            failure.headers["retry-after-ms"] = "10"
            return failure
        if not body.get("stream"):
            return _error(400, "invalid_request_error", "this server streams only")
        reply = decide(as_chat(body["messages"]), [t["name"] for t in body.get("tools", [])])

        def stream():
            yield _event("message_start", {"message": _message(body["model"])})
            blocks: list[tuple[dict, dict]] = []  # (content block, its one delta)
            if reply.text:
                blocks.append(
                    ({"type": "text", "text": ""}, {"type": "text_delta", "text": reply.text})
                )
            for name, arguments in reply.calls:
                tool_use = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}"}
                tool_use |= {"name": name, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(arguments)}
                blocks.append((tool_use, delta))
            for index, (block, delta) in enumerate(blocks):
                yield _event("content_block_start", {"index": index, "content_block": block})
                yield _event("content_block_delta", {"index": index, "delta": delta})
                yield _event("content_block_stop", {"index": index})
            stop = {"stop_reason": "tool_use" if reply.calls else "end_turn"}
            yield _event(
                "message_delta",
                {"delta": stop | {"stop_sequence": None}, "usage": {"output_tokens": 5}},
            )
            yield _event("message_stop", {})

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app
