"""MTA-STS policies in the situations the main tests leave out: a policy with blank lines, TLS
settings it refuses, a TXT lookup that fails (before and after a policy was cached), a policy
host without an address."""

from __future__ import annotations

import pytest
from direct_support import PolicyServer, mta_sts_for
from dns_server import DnsServer

from lettre.dns.mta_sts import MtaSts
from lettre.dns.resolver import Resolver
from lettre.smtp.tls import TlsParameters
from servers import TlsMaterial

pytestmark = pytest.mark.anyio

POLICY = "version: STSv1\r\n\r\nmode: enforce\r\n\r\nmx: mx1.a.test\r\nmax_age: 86400\r\n\r\n"


@pytest.mark.parametrize(
    "params",
    [
        TlsParameters(dangerously_skip_verification=True),
        TlsParameters(dangerously_skip_hostname_check=True),
    ],
)
def test_a_policy_is_only_trusted_from_a_verified_server(params: TlsParameters) -> None:
    with pytest.raises(ValueError, match="only trusted from a verified HTTPS server"):
        MtaSts(tls_parameters=params)


async def test_blank_lines_in_a_policy_and_a_failing_txt_lookup_afterwards(
    dns_server: DnsServer,
    resolver: Resolver,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(
        '_mta-sts.a.test. 300 IN TXT "v=STSv1; id=1;"\nmta-sts.a.test. 300 IN A 127.0.0.10'
    )
    policy_server.policy("a.test", POLICY)
    mta_sts = mta_sts_for(policy_server, tls_material)
    policy = await mta_sts.policy("a.test", resolver)
    assert policy is not None
    assert (policy.mode, policy.mx, policy.max_age) == ("enforce", ("mx1.a.test",), 86400)
    # The TXT lookup fails now: the cached policy still holds (RFC 8461 5.1), nothing fetched.
    dns_server.servfail("_mta-sts.a.test")
    assert await mta_sts.policy("a.test", resolver) is policy
    assert policy_server.fetches("a.test") == 1


async def test_a_failing_txt_lookup_without_a_cached_policy(
    dns_server: DnsServer,
    resolver: Resolver,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.servfail("_mta-sts.a.test")
    assert await mta_sts_for(policy_server, tls_material).policy("a.test", resolver) is None
    assert policy_server.fetches("a.test") == 0


async def test_a_policy_host_without_an_address(
    dns_server: DnsServer,
    resolver: Resolver,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add('_mta-sts.b.test. 300 IN TXT "v=STSv1; id=1;"')
    policy_server.policy("b.test", POLICY.replace("a.test", "b.test"))
    assert await mta_sts_for(policy_server, tls_material).policy("b.test", resolver) is None
    assert dns_server.asked("mta-sts.b.test", "A")
    assert dns_server.asked("mta-sts.b.test", "AAAA")
    assert policy_server.fetches("b.test") == 0
