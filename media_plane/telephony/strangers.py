"""Addresses that keep sending the telephony routes what no carrier sends: requests with a
wrong signature or wrong credentials, and stream upgrades for calls that do not exist or
were already opened. Twilio and Exotel never do either, so past a few such refusals an
address is refused at once, with backoff (``common.failures``, fleet-wide with Redis),
before any lookup or signature check is spent on it.

The address is the client's as uvicorn sees it: behind a proxy, the one the proxy
forwards (``--forwarded-allow-ips``), never a header a stranger could set.
"""

from dataclasses import replace

from starlette.requests import HTTPConnection

from common.failures import TELEPHONY_ADDRESS, Policy
from control_plane.kit.errors import Forbidden


def _address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def _policy(connection: HTTPConnection) -> Policy:
    return replace(TELEPHONY_ADDRESS, free=connection.app.state.settings.telephony_refusals_free)


async def check(connection: HTTPConnection) -> None:
    """Raise 403 if this address is waiting out its backoff."""
    if await connection.app.state.failures.wait(_policy(connection), _address(connection)) > 0:
        raise Forbidden("too many refused requests from this address; try again later")


async def refused(connection: HTTPConnection) -> None:
    """This address was refused once more."""
    await connection.app.state.failures.failed(_policy(connection), _address(connection))
