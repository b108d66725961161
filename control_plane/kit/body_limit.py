"""A ceiling on every request body, checked before any route reads it, set per route from
what the route takes (a webhook's form, a token request and an API call take kilobytes; a
document upload megabytes; a recording from the media plane hundreds of megabytes).

A rule is a path template (``/v1/tenants/{tenant_id}/documents``, matched exactly) or a
prefix ending in ``/``; templates win over prefixes, longer prefixes over shorter ones.
A declared ``Content-Length`` over the limit is refused at once; a body sent without one
(chunked) is counted as it arrives and refused the moment it passes the limit. Either way
the client gets 413 with the limit in the message, and nothing was parsed or written.
"""

import contextlib
import json

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, default_bytes: int, by_route: dict[str, int]):
        self.app = app
        self.default = default_bytes
        self.templates = [
            (compile_path(rule)[0], n) for rule, n in by_route.items() if not rule.endswith("/")
        ]
        # Longest prefix first, so the most specific rule wins.
        self.by_prefix = sorted(
            ((rule, n) for rule, n in by_route.items() if rule.endswith("/")),
            key=lambda kv: -len(kv[0]),
        )

    def limit_for(self, path: str) -> int:
        for pattern, n in self.templates:
            if pattern.match(path):
                return n
        return next((n for prefix, n in self.by_prefix if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return

        received = 0
        too_large = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return  # the app's own answer to the cut-off body (often a 400) is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        # The app may let the cut-off surface as an error or answer it itself; either
        # way the client is told the real reason below.
        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if too_large and not started:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = json.dumps(
            {"error": "payload_too_large", "detail": f"request bodies are limited to {limit} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
