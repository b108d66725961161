"""Credentials checked before a request's body is read.

FastAPI reads and parses a body before it runs the route's dependencies, so a route whose
authentication is a dependency reads a stranger's body whole before refusing it: 128 MB
sent to ``/internal/v1/events`` with no token took the process from 614 MB to 3.9 GB and
stalled every call for 29 s. For the prefixes given, a request that may carry a body is
authenticated here first, by the same function the route's dependency uses; what it
returns (the principal) is kept on the request, so the dependency does not do it twice.
"""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from control_plane.kit.errors import DomainError, error_response

AUTHENTICATED = "switchboard.authenticated"  # the scope key of what the check returned
BODILESS = {"GET", "HEAD", "OPTIONS"}

Authenticator = Callable[[Request], Awaitable[object]]  # raises a DomainError to refuse


class AuthenticateFirst:
    def __init__(self, app: ASGIApp, by_prefix: dict[str, Authenticator]):
        self.app = app
        self.by_prefix = sorted(by_prefix.items(), key=lambda kv: -len(kv[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in BODILESS:
            path = scope["path"]
            check = next((c for prefix, c in self.by_prefix if path.startswith(prefix)), None)
            if check is not None:
                try:
                    scope[AUTHENTICATED] = await check(Request(scope))
                except DomainError as refused:
                    # The body is never read: the connection is closed after the answer.
                    response = error_response(refused)
                    response.headers["connection"] = "close"
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
