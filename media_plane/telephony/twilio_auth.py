"""Is this request Twilio's? Every webhook and every media stream's WebSocket upgrade
carries ``X-Twilio-Signature``: an HMAC (Twilio's documented scheme, checked here by its
own SDK's ``RequestValidator``) over the URL Twilio requested and, for a form post, its
sorted fields, keyed with the auth token of the account that owns the number.

Which token: the tenant's own (its secret ``twilio_auth_token``, when it brings its own
Twilio account), else the platform's (``SWITCHBOARD_TWILIO_AUTH_TOKEN``). Which URL: the
one Twilio was given, i.e. under ``SWITCHBOARD_PUBLIC_URL`` behind a proxy, not the
address the request reached this process at.

A request that fails gets 403 and one log line (never the signature or the token), and
nothing else happens: no call is announced, no stream admitted, no pipeline started.
"""

from collections.abc import Mapping
from typing import Any

from fastapi import Request, WebSocket
from loguru import logger
from twilio.request_validator import RequestValidator

from control_plane.kit.errors import Forbidden
from media_plane.agent import ControlPlanePort
from media_plane.calls import Call
from media_plane.telephony import strangers
from media_plane.telephony.session import as_websocket, public_base
from media_plane.telephony.twilio_rest import TwilioAccount

TENANT_TOKEN = "twilio_auth_token"  # the secret's name
HEADER = "X-Twilio-Signature"


def url_as_twilio_saw(connection: Request | WebSocket) -> str:
    """The URL Twilio signed: the public base, the path and the query, with a ``ws(s)``
    scheme for a media stream as the ``<Stream url>`` had it."""
    base = public_base(connection)
    if isinstance(connection, WebSocket):
        base = as_websocket(base)
    url = base + connection.url.path
    return f"{url}?{connection.url.query}" if connection.url.query else url


async def auth_token(
    connection: Request | WebSocket, port: ControlPlanePort, tenant_id: str | None
) -> str | None:
    own = await port.secret(tenant_id, TENANT_TOKEN) if tenant_id else None
    return own or connection.app.state.settings.twilio_auth_token or None


async def rest_account(
    connection: Request | WebSocket, port: ControlPlanePort, call: Call
) -> TwilioAccount | None:
    """The account the call's number is on, to act on the call through Twilio's REST API:
    the tenant's own token, else the platform's real one (not the placeholder)."""
    settings = connection.app.state.settings
    own = await port.secret(call.tenant_id, TENANT_TOKEN)
    token = own or settings.twilio_rest_token
    if not token or not call.provider_account:
        return None
    return TwilioAccount(call.provider_account, token, str(settings.twilio_api_url))


async def verify(
    connection: Request | WebSocket,
    port: ControlPlanePort,
    tenant_id: str | None,
    form: Mapping[str, Any] | None = None,  # a form's fields (Starlette's FormData)
) -> None:
    """Raise 403 unless the request is signed by the account ``tenant_id``'s numbers are
    on (for an unknown number, the platform's)."""
    await strangers.check(connection)
    signature = connection.headers.get(HEADER)
    token = await auth_token(connection, port, tenant_id)
    url = url_as_twilio_saw(connection)
    if signature and token and RequestValidator(token).validate(url, form or {}, signature):
        return
    why = "unsigned" if not signature else ("no auth token" if not token else "bad signature")
    logger.bind(tenant_id=tenant_id).warning(
        "twilio.request_refused", path=connection.url.path, why=why
    )
    await strangers.refused(connection)
    raise Forbidden("not a request signed by Twilio")
