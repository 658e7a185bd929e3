"""Fixtures for direct delivery: a real DNS server, and SMTP exchangers on loopback addresses.

Linux routes all of 127.0.0.0/8 to the loopback interface, so exchangers can
listen on 127.0.0.2, 127.0.0.3, ... with the same port, as real exchangers
share port 25. Nothing here reaches beyond the machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from direct_support import PolicyServer
from direct_support import dns_server as dns_server  # noqa: PLC0414 - shared fixture
from direct_support import mx_servers as mx_servers  # noqa: PLC0414 - shared fixture
from dns_server import DnsServer

from lettre.dns.resolver import Resolver
from servers import TlsMaterial


@pytest.fixture
def resolver(dns_server: DnsServer) -> Resolver:
    """A resolver that asks only the test DNS server (short timeout)."""
    return Resolver(["127.0.0.1"], port=dns_server.port, timeout=2.0)


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
