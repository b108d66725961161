"""The guard on servers a tenant chooses (common/outbound.py)."""

import ipaddress

import httpcore
import httpx
import pytest

from common import outbound
from common.outbound import checked_address, is_public, tenant_client
from switchboard.demo.run import free_port
from tests.servers import LiveServer
from tests.servers.tenant_api import tenant_api_app

NOT_PUBLIC = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "::1", "::", "fe80::1", "fc00::1",
    "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",  # compatible, mapped
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",  # NAT64 of 127.0.0.1, 169.254.169.254
    "2002:7f00:1::1", "2002:a9fe:a9fe::1",  # 6to4 of the same
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "64:ff9b::808:808", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_addresses_in_any_form_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("localhost", "not a public address"),
        ("[::ffff:127.0.0.1]", "not a public address"),
        ("a" * 64 + ".example.com", "does not resolve"),  # an over-long DNS label
        ("no-such-host.invalid", "does not resolve"),
    ],
)
async def test_names_that_lead_nowhere_public_are_refused_with_why(host, why):
    with pytest.raises(httpcore.ConnectError, match=why):
        await checked_address(host, 443, 2.0)


async def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch):
    # A name that answers public once and private after (DNS rebinding) gains nothing:
    # it is looked up once and the socket is opened to that answer.
    answers = iter([[(2, 1, 6, "", ("93.184.215.14", 443))], [(2, 1, 6, "", ("127.0.0.1", 443))]])
    lookups: list[str] = []

    async def getaddrinfo(self, host, port, **kwargs):
        lookups.append(host)
        return next(answers)

    monkeypatch.setattr("asyncio.base_events.BaseEventLoop.getaddrinfo", getaddrinfo)
    opened: list[str] = []

    class Recorder:
        async def connect_tcp(self, host, port, *args):
            opened.append(host)
            raise httpcore.ConnectError("recorded, not connected")

    backend = outbound._PublicOnly()
    backend._network = Recorder()  # type: ignore[assignment]
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("rebinding.example", 443, timeout=2.0)
    assert lookups == ["rebinding.example"] and opened == ["93.184.215.14"]


async def test_a_tenant_client_never_reaches_this_machine_unless_allowed():
    with LiveServer(tenant_api_app("s"), free_port()) as server:
        async with tenant_client(False, timeout=2) as http:
            with pytest.raises(httpx.ConnectError, match="not a public address"):
                await http.post(server.url + "/orders/status", json={})
        assert not server.app.state.requests
        async with tenant_client(True, timeout=2) as http:
            await http.post(server.url + "/orders/status", json={})
        assert server.app.state.requests
