"""Fixtures for direct delivery: a real DNS server, and SMTP exchangers on loopback addresses.

Linux routes all of 127.0.0.0/8 to the loopback interface, so exchangers can
listen on 127.0.0.2, 127.0.0.3, ... with the same port, as real exchangers
share port 25. Nothing here reaches beyond the machine.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from direct_support import MxServers, PolicyServer
from dns_server import DnsServer

from lettre.dns.resolver import Resolver
from servers import TlsMaterial


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A DNS server with no records yet; each test adds its own."""
    with DnsServer() as server:
        yield server


@pytest.fixture
def resolver(dns_server: DnsServer) -> Resolver:
    """A resolver that asks only the test DNS server (short timeout)."""
    return Resolver(["127.0.0.1"], port=dns_server.port, timeout=2.0)


def _shared_port() -> int:
    """A port free on 127.0.0.2 (and, almost surely, on the other loopback addresses)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mx_servers(tls_material: TlsMaterial) -> Iterator[MxServers]:
    """Starts aiosmtpd exchangers on 127.0.0.x and one shared port; stops them after the test."""
    servers = MxServers(_shared_port(), tls_material)
    try:
        yield servers
    finally:
        servers.stop()


#: The domains whose policy host names the policy server's certificate covers.
POLICY_DOMAINS = ("a.test", "b.test", "c.test")


@pytest.fixture
def policy_server(tls_material: TlsMaterial) -> Iterator[PolicyServer]:
    """An HTTPS server for MTA-STS policies on 127.0.0.10 (certificate for mta-sts.[abc].test)."""
    names = tuple(f"mta-sts.{d}" for d in POLICY_DOMAINS)
    server = PolicyServer("127.0.0.10", tls_material, names).start()
    try:
        yield server
    finally:
        server.stop()
