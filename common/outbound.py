"""Requests to servers a tenant chose: its HTTP tools, its own LLM endpoint, later its
webhooks. Every one goes through ``tenant_client``, which connects only to public
addresses, so a tenant cannot point the platform at its own network (the control plane,
Vault, a cloud metadata service, another tenant's pod).

The check is made where the connection is: in the HTTP client's network backend. The
name is looked up once, within the request's connect deadline; every address it gives
must be public; and the socket is opened to the address that was checked, never to a
second lookup, so a name whose answer changes between check and connect (DNS rebinding)
gains nothing. Redirects, if a client follows them, connect through the same check. TLS
still verifies the certificate for the name in the URL.

An IPv6 address that carries an IPv4 one counts as that address: ``::ffff:a.b.c.d``
(mapped), ``::a.b.c.d`` (compatible), ``64:ff9b::/96`` (NAT64), ``2002::/16`` (6to4) and
Teredo. Anything refused, unresolvable or not resolved in time (an over-long label, a
name that does not exist) is an ``httpx.ConnectError`` or ``ConnectTimeout`` with the
reason, handled as any unreachable server is.

An operator may allow private addresses (``SWITCHBOARD_TENANT_OUTBOUND_ALLOW_PRIVATE``),
for development or a deployment whose tenants are its own teams.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOOKUP_SECS = 5.0  # when the client gives no connect timeout


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for, if it stands for one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client behind the Teredo relay
    if ip in NAT64 or int(ip) >> 32 == 0:  # NAT64, or IPv4-compatible (and :: and ::1)
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            return is_public(embedded)
    return ip.is_global


async def checked_address(host: str, port: int, lookup_secs: float | None) -> str:
    """The one address to connect to for ``host``: looked up once, all of its answers
    public. Raises httpcore's ConnectError or ConnectTimeout with the reason."""
    try:
        candidates: Iterable[IPAddress] = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            async with asyncio.timeout(lookup_secs or LOOKUP_SECS):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"{host!r} did not resolve in time") from None
        except (OSError, UnicodeError, ValueError):  # no such name, or not a valid one
            raise httpcore.ConnectError(f"{host[:80]!r} does not resolve") from None
        candidates = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    candidates = list(candidates)
    if not candidates:
        raise httpcore.ConnectError(f"{host!r} does not resolve")
    for ip in candidates:
        if not is_public(ip):
            raise httpcore.ConnectError(f"{host[:80]!r} is not a public address")
    return str(candidates[0])


class _PublicOnly(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, connecting only to checked public addresses."""

    def __init__(self) -> None:
        self._network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface names it so)
        local_address: str | None = None,
        socket_options=None,
    ) -> httpcore.AsyncNetworkStream:
        address = await checked_address(host, port, timeout)
        return await self._network.connect_tcp(
            address, port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(self, *args, **kwargs) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a tenant's server is never a local socket")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class _PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (its error mapping, its TLS defaults) over the backend above."""

    def __init__(self) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_PublicOnly()
        )


def tenant_transport(allow_private: bool) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport() if allow_private else _PublicOnlyTransport()


def tenant_client(allow_private: bool, **options) -> httpx.AsyncClient:
    """An HTTP client for a server a tenant chose. It never uses the environment's proxy
    settings (a proxy would make the address check meaningless)."""
    return httpx.AsyncClient(transport=tenant_transport(allow_private), trust_env=False, **options)
