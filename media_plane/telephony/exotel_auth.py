"""Is this request Exotel's? Exotel authenticates its requests to a bot the way its
Voicebot applet documents: the URL configured in the applet carries an API key and token
(``https://<key>:<token>@host/...``), and Exotel sends them as HTTP Basic authentication
(``Authorization: Basic base64(key:token)``) on the bootstrap request, the media stream's
WebSocket upgrade and the flow's follow-up requests. (Exotel also offers IP allow-listing;
that belongs to the proxy in front of the platform and adds to this, never replaces it.)

Whose key: the tenant's own (its secrets ``exotel_api_key`` and ``exotel_api_token``, when
it brings its own Exotel account), else the platform's (``SWITCHBOARD_EXOTEL_API_KEY`` /
``_TOKEN``). A request that fails gets 403 and one log line (never the credentials), and
nothing else happens: no call announced, no stream admitted, no pipeline started.
"""

import base64
import binascii
import hmac

from fastapi import Request, WebSocket
from loguru import logger

from control_plane.kit.errors import Forbidden
from media_plane.agent import ControlPlanePort
from media_plane.telephony import strangers

TENANT_KEY = "exotel_api_key"  # the secrets' names
TENANT_TOKEN = "exotel_api_token"


async def expected(
    connection: Request | WebSocket, port: ControlPlanePort, tenant_id: str | None
) -> tuple[str, str] | None:
    """The key and token Exotel must present for ``tenant_id``'s numbers."""
    if tenant_id:
        key = await port.secret(tenant_id, TENANT_KEY)
        token = await port.secret(tenant_id, TENANT_TOKEN)
        if key and token:
            return key, token
    settings = connection.app.state.settings
    if settings.exotel_api_key and settings.exotel_api_token:
        return settings.exotel_api_key, settings.exotel_api_token
    return None


def presented(connection: Request | WebSocket) -> tuple[str, str] | None:
    header = connection.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


async def verify(
    connection: Request | WebSocket, port: ControlPlanePort, tenant_id: str | None
) -> None:
    """Raise 403 unless the request carries the Exotel credentials of the account
    ``tenant_id``'s numbers are on (for an unknown number, the platform's)."""
    await strangers.check(connection)
    given = presented(connection)
    wanted = await expected(connection, port, tenant_id)
    if given and wanted:
        # Both compared, in constant time, so a wrong key and a wrong token look alike.
        key_ok = hmac.compare_digest(given[0].encode(), wanted[0].encode())
        token_ok = hmac.compare_digest(given[1].encode(), wanted[1].encode())
        if key_ok and token_ok:
            return
    why = "no credentials" if not given else ("none configured" if not wanted else "wrong")
    logger.bind(tenant_id=tenant_id).warning(
        "exotel.request_refused", path=connection.url.path, why=why
    )
    await strangers.refused(connection)
    raise Forbidden("not a request from Exotel")
