"""Tenant-defined HTTP tools: the agent calls the tenant's own API.

Each tool is declared in the agent's config (name, description, URL, JSON Schema of its
arguments, timeout). When the LLM calls one, the platform:

1. checks the arguments against the schema;
2. POSTs ``{"tool", "arguments", "call_id", "agent_id"}`` as JSON to the tool's URL,
   signed: ``X-Switchboard-Timestamp`` (Unix seconds) and ``X-Switchboard-Signature:
   v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`` keyed with the tenant's secret
   ``tool_signing_secret``, so the tenant can tell the request is ours and fresh;
3. waits at most the tool's timeout, follows no redirect, reads at most 16 KB, and takes
   only a 2xx JSON answer, which goes back to the LLM as ``{"result": ...}``.

Whatever fails (no secret, bad arguments, an address inside the platform's network,
unreachable, slow, an error status, too large, not JSON), the caller hears a short apology
in the agent's language instead of silence, the LLM's context records the error, and the
timeline says why (``tool.failed``).
"""

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from common.json_schemas import first_problem
from common.outbound import tenant_client

SECRET_NAME = "tool_signing_secret"
TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
SIGNATURE_HEADER = "X-Switchboard-Signature"
MAX_RESPONSE_BYTES = 16 * 1024


class ToolFailed(Exception):
    """Why a tool call did not produce a result (said to the timeline, not the caller)."""


@dataclass(frozen=True)
class ToolAccess:
    """What the call's tools need: the tenant's signing secret, and whether tools may
    reach private addresses (development, or an operator who allows it)."""

    secret: str | None
    allow_private: bool = False


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


async def call_http_tool(
    tool: dict[str, Any],
    arguments: dict[str, Any],
    *,
    call_id: str,
    agent_id: str,
    access: ToolAccess,
) -> Any:
    """The tool's answer, or ToolFailed with the reason."""
    if not access.secret:
        raise ToolFailed(f"no {SECRET_NAME} to sign the request with")
    problem = first_problem(tool["parameters"], arguments)
    if problem is not None:
        raise ToolFailed(f"arguments do not match the tool's schema: {problem}"[:300])
    body = json.dumps(
        {"tool": tool["name"], "arguments": arguments, "call_id": call_id, "agent_id": agent_id}
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(access.secret, timestamp, body),
    }
    secs = tool["timeout_ms"] / 1000
    try:
        async with asyncio.timeout(secs):  # the whole exchange, not each read
            raw = await _post(tool["url"], body, headers, secs, access.allow_private)
    except TimeoutError:
        raise ToolFailed(f"the tool did not answer within {tool['timeout_ms']} ms") from None
    except httpx.HTTPError as failed:  # refused addresses too (common/outbound.py)
        why = str(failed)[:120] or type(failed).__name__
        raise ToolFailed(f"the tool could not be reached ({why})") from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ToolFailed("the tool's answer is not JSON") from None


async def _post(
    url: str, body: bytes, headers: dict[str, str], secs: float, allow_private: bool
) -> bytes:
    async with (
        tenant_client(allow_private, timeout=secs, follow_redirects=False) as http,
        http.stream("POST", url, content=body, headers=headers) as r,
    ):
        if not 200 <= r.status_code < 300:
            raise ToolFailed(f"the tool answered HTTP {r.status_code}")
        raw = bytearray()
        async for piece in r.aiter_bytes():
            raw += piece
            if len(raw) > MAX_RESPONSE_BYTES:
                raise ToolFailed(f"the tool's answer is over {MAX_RESPONSE_BYTES} bytes")
        return bytes(raw)
