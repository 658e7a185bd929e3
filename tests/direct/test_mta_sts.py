"""MTA-STS (RFC 8461) with a real DNS server, a real HTTPS policy server and real exchangers."""

from __future__ import annotations

import pytest
from direct_support import MxServers, PolicyServer
from dns_server import DnsServer

from lettre import Message
from lettre.dns.mta_sts import MemoryPolicyCache, MtaSts, mx_matches, parse_policy
from lettre.dns.resolver import Resolver
from lettre.errors import DeliveryError, TlsPolicyError
from lettre.smtp.tls import TlsParameters
from lettre.transports.mx import ChannelSecurity, MxTransport
from servers import TlsMaterial

pytestmark = pytest.mark.anyio

ENFORCE = (
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.a.test\r\nmx: *.mx.a.test\r\nmax_age: 86400\r\n"
)


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _mta_sts(
    policy_server: PolicyServer, tls_material: TlsMaterial, clock: Clock | None = None
) -> MtaSts:
    return MtaSts(
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem, use_system_trust=False),
        port=policy_server.port,
        timeout=3.0,
        cache=MemoryPolicyCache(),
        clock=clock if clock is not None else Clock(),
    )


def _publish(dns_server: DnsServer, domain: str, policy_id: str = "1") -> None:
    dns_server.add(
        f'_mta-sts.{domain}. 300 IN TXT "v=STSv1; id={policy_id};"\n'
        f"mta-sts.{domain}. 300 IN A 127.0.0.10"
    )


def _transport(
    dns_server: DnsServer,
    mx_servers: MxServers,
    mta_sts: MtaSts,
) -> MxTransport:
    return MxTransport(
        hello_name="sender.lettre.test",
        nameservers=["127.0.0.1"],
        dns_port=dns_server.port,
        port=mx_servers.port,
        timeout=5.0,
        tls_parameters=TlsParameters(ca_data=mx_servers.tls_material.ca_pem),
        mta_sts=mta_sts,
    )


def _message(*to: str) -> Message:
    return Message.builder().from_("a@sender.lettre.test").to(*to).subject("s").text("t\n").build()


MX_RECORDS = """
a.test. 300 IN MX 10 mx1.a.test.
a.test. 300 IN MX 20 mx2.a.test.
mx1.a.test. 300 IN A 127.0.0.2
mx2.a.test. 300 IN A 127.0.0.3
"""


async def test_enforce_delivers_over_verified_tls(
    dns_server: DnsServer,
    mx_servers: MxServers,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(MX_RECORDS)
    _publish(dns_server, "a.test")
    policy_server.policy("a.test", ENFORCE)
    handler = mx_servers.start("127.0.0.2", cert_names=("mx1.a.test",))
    async with _transport(dns_server, mx_servers, _mta_sts(policy_server, tls_material)) as t:
        result = await t.send(_message("bob@a.test"))
    delivery = result.deliveries[0]
    assert delivery.security is ChannelSecurity.MTA_STS
    assert delivery.policy == "enforce"
    assert handler.messages[0].tls


async def test_enforce_skips_a_bad_certificate_for_the_next_exchanger(
    dns_server: DnsServer,
    mx_servers: MxServers,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(MX_RECORDS.replace("mx2.a.test", "mx2.mx.a.test"))
    _publish(dns_server, "a.test")
    policy_server.policy("a.test", ENFORCE)
    first = mx_servers.start("127.0.0.2", cert_names=("someone-else.test",))
    second = mx_servers.start("127.0.0.3", cert_names=("mx2.mx.a.test",))
    async with _transport(dns_server, mx_servers, _mta_sts(policy_server, tls_material)) as t:
        result = await t.send(_message("bob@a.test"))
    assert first.messages == []
    assert len(second.messages) == 1
    delivery = result.deliveries[0]
    assert delivery.exchanger == "mx2.mx.a.test"  # matched by *.mx.a.test
    assert "mx1.a.test" in delivery.failures[0]


async def test_enforce_without_a_valid_certificate_is_not_delivered(
    dns_server: DnsServer,
    mx_servers: MxServers,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(MX_RECORDS)
    _publish(dns_server, "a.test")
    policy_server.policy("a.test", ENFORCE)
    handler = mx_servers.start("127.0.0.2", cert_names=("someone-else.test",))
    async with _transport(dns_server, mx_servers, _mta_sts(policy_server, tls_material)) as t:
        with pytest.raises(DeliveryError) as info:
            await t.send(_message("bob@a.test"))
    assert info.value.transient
    error = info.value.result.recipients[0].error
    assert isinstance(error, TlsPolicyError)
    assert "MTA-STS" in str(error)
    assert handler.messages == []


async def test_enforce_never_connects_to_exchangers_outside_the_policy(
    dns_server: DnsServer,
    mx_servers: MxServers,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(MX_RECORDS)
    _publish(dns_server, "a.test")
    policy_server.policy("a.test", "version: STSv1\nmode: enforce\nmx: mail.a.test\nmax_age: 600\n")
    handler = mx_servers.start("127.0.0.2", cert_names=("mx1.a.test",))
    async with _transport(dns_server, mx_servers, _mta_sts(policy_server, tls_material)) as t:
        with pytest.raises(DeliveryError, match="matches its MTA-STS policy") as info:
            await t.send(_message("bob@a.test"))
    assert info.value.transient
    assert handler.messages == []
    assert handler.commands == []


async def test_testing_mode_delivers_and_reports(
    dns_server: DnsServer,
    mx_servers: MxServers,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(MX_RECORDS)
    _publish(dns_server, "a.test")
    policy_server.policy("a.test", "version: STSv1\nmode: testing\nmx: mail.a.test\nmax_age: 600\n")
    handler = mx_servers.start("127.0.0.2", cert_names=("someone-else.test",))
    async with _transport(dns_server, mx_servers, _mta_sts(policy_server, tls_material)) as t:
        result = await t.send(_message("bob@a.test"))
    assert len(handler.messages) == 1
    delivery = result.deliveries[0]
    assert delivery.policy == "testing"
    assert delivery.security is ChannelSecurity.OPPORTUNISTIC
    assert delivery.policy_failures[0] == "mx1.a.test: not in the policy's mx list"
    assert delivery.policy_failures[1].startswith("mx1.a.test [127.0.0.2]: ")


async def test_mode_none_changes_nothing(
    dns_server: DnsServer,
    mx_servers: MxServers,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(MX_RECORDS)
    _publish(dns_server, "a.test")
    policy_server.policy("a.test", "version: STSv1\nmode: none\nmax_age: 600\n")
    mx_servers.start("127.0.0.2", cert_names=("someone-else.test",))
    async with _transport(dns_server, mx_servers, _mta_sts(policy_server, tls_material)) as t:
        result = await t.send(_message("bob@a.test"))
    assert result.deliveries[0].policy == "none"
    assert result.deliveries[0].security is ChannelSecurity.OPPORTUNISTIC


async def test_policy_is_cached_until_the_id_changes_or_max_age_passes(
    dns_server: DnsServer, policy_server: PolicyServer, tls_material: TlsMaterial
) -> None:
    resolver = Resolver(["127.0.0.1"], port=dns_server.port, timeout=2.0)
    clock = Clock()
    mta_sts = _mta_sts(policy_server, tls_material, clock)
    _publish(dns_server, "a.test", "1")
    policy_server.policy("a.test", ENFORCE.replace("86400", "600"))
    first = await mta_sts.policy("a.test", resolver)
    assert first is not None
    assert (first.mode, first.mx, first.max_age, first.id) == (
        "enforce",
        ("mx1.a.test", "*.mx.a.test"),
        600,
        "1",
    )
    assert await mta_sts.policy("a.test", resolver) == first
    assert policy_server.fetches("a.test") == 1
    # A new id: fetched again.
    dns_server.clear("_mta-sts.a.test", "TXT")
    _publish(dns_server, "a.test", "2")
    second = await mta_sts.policy("a.test", resolver)
    assert second is not None
    assert second.id == "2"
    assert policy_server.fetches("a.test") == 2
    # The TXT record gone: the cached policy still applies until max_age.
    dns_server.clear("_mta-sts.a.test", "TXT")
    assert await mta_sts.policy("a.test", resolver) == second
    clock.now += 601
    assert await mta_sts.policy("a.test", resolver) is None
    assert policy_server.fetches("a.test") == 2


@pytest.mark.parametrize(
    ("status", "content_type", "body", "headers"),
    [
        (301, "text/plain", ENFORCE, {"Location": "https://mta-sts.b.test/x"}),
        (200, "text/html", ENFORCE, {}),
        (404, "text/plain", ENFORCE, {}),
        (200, "text/plain", ENFORCE + "x: " + "y" * 70_000 + "\n", {}),
        (200, "text/plain", "version: STSv1\nmode: enforce\nmax_age: 600\n", {}),
        (200, "text/plain", "version: STSv2\nmode: enforce\nmx: a\nmax_age: 600\n", {}),
    ],
    ids=["redirect", "html", "404", "too-big", "no-mx", "bad-version"],
)
async def test_unusable_policies_are_ignored(
    dns_server: DnsServer,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
    status: int,
    content_type: str,
    body: str,
    headers: dict[str, str],
) -> None:
    resolver = Resolver(["127.0.0.1"], port=dns_server.port, timeout=2.0)
    _publish(dns_server, "a.test")
    policy_server.policy("a.test", body, status=status, content_type=content_type, headers=headers)
    assert await _mta_sts(policy_server, tls_material).policy("a.test", resolver) is None
    assert policy_server.fetches("a.test") == 1
    assert policy_server.fetches("b.test") == 0


async def test_a_policy_server_with_a_wrong_certificate_is_not_trusted(
    dns_server: DnsServer, policy_server: PolicyServer, tls_material: TlsMaterial
) -> None:
    resolver = Resolver(["127.0.0.1"], port=dns_server.port, timeout=2.0)
    _publish(dns_server, "wrong.test")  # its certificate is not for mta-sts.wrong.test
    policy_server.policy("wrong.test", ENFORCE)
    assert await _mta_sts(policy_server, tls_material).policy("wrong.test", resolver) is None


async def test_no_txt_record_no_fetch(
    dns_server: DnsServer, policy_server: PolicyServer, tls_material: TlsMaterial
) -> None:
    resolver = Resolver(["127.0.0.1"], port=dns_server.port, timeout=2.0)
    dns_server.add('_mta-sts.a.test. 300 IN TXT "v=STSv1; id=bad-id!;"')
    policy_server.policy("a.test", ENFORCE)
    assert await _mta_sts(policy_server, tls_material).policy("a.test", resolver) is None
    assert await _mta_sts(policy_server, tls_material).policy("c.test", resolver) is None
    assert policy_server.requests == []


def test_mx_patterns() -> None:
    assert mx_matches("mx1.a.test", "MX1.a.test.")
    assert mx_matches("*.a.test", "mx1.a.test")
    assert not mx_matches("*.a.test", "a.test")
    assert not mx_matches("*.a.test", "x.mx1.a.test")
    assert not mx_matches("mx1.a.test", "mx2.a.test")


def test_parse_policy_errors_quote_the_value() -> None:
    with pytest.raises(ValueError, match="mode 'sometimes'"):
        parse_policy(
            "version: STSv1\nmode: sometimes\nmx: a\nmax_age: 1\n",
            domain="a.test",
            policy_id="1",
            fetched_at=0,
        )
    with pytest.raises(ValueError, match="max_age '-1'"):
        parse_policy(
            "version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n",
            domain="a.test",
            policy_id="1",
            fetched_at=0,
        )
    with pytest.raises(ValueError, match="has no ':'"):
        parse_policy("version STSv1\n", domain="a.test", policy_id="1", fetched_at=0)
