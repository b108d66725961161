"""Operator authentication for the REST API.

Until OIDC lands, the API takes one operator bearer token from settings; production refuses
to start with the development placeholder (see switchboard.settings).
"""

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control_plane.kit.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False)


async def require_operator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    expected: str = request.app.state.settings.admin_token
    if credentials is None or not hmac.compare_digest(credentials.credentials, expected):
        raise Unauthorized("a valid bearer token is required")
    return "operator"


Operator = Annotated[str, Depends(require_operator)]
