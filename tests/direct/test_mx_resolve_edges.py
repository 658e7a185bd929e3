"""resolve_mx and Resolver on the answers the main tests do not give: IPv6 and malformed
literals, exchangers whose address lookups fail, an exchanger name that is no usable name,
resolver settings and record types that make no sense."""

from __future__ import annotations

import dns.asyncresolver
import pytest
from dns_server import DnsServer

from lettre.dns.mx import resolve_mx
from lettre.dns.resolver import Resolver, to_a_label
from lettre.errors import DnsError, NoMailExchanger

pytestmark = pytest.mark.anyio


async def test_ipv6_literal_needs_no_lookup(dns_server: DnsServer, resolver: Resolver) -> None:
    route = await resolve_mx("[IPv6:2001:DB8::1]", resolver)
    assert route.exchangers[0].addresses == ("2001:db8::1",)
    assert route.implicit
    assert dns_server.queries == []


async def test_a_bracketed_name_that_is_no_address_is_looked_up(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    with pytest.raises(DnsError, match=r"the domain '\[ipv6:nonsense\]' does not exist"):
        await resolve_mx("[IPv6:nonsense]", resolver)
    assert [q.rdtype for q in dns_server.queries] == ["MX"]


async def test_max_exchangers_must_be_positive(resolver: Resolver) -> None:
    with pytest.raises(ValueError, match="max_exchangers must be at least 1, not 0"):
        await resolve_mx("a.test", resolver, max_exchangers=0)


async def test_an_exchanger_whose_lookup_fails_is_skipped(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    dns_server.add(
        "a.test. 300 IN MX 10 mx1.a.test.\n"
        "a.test. 300 IN MX 20 mx2.a.test.\n"
        "mx1.a.test. 300 IN A 127.0.0.2\n"
        "mx2.a.test. 300 IN A 127.0.0.3"
    )
    dns_server.servfail("mx1.a.test")
    route = await resolve_mx("a.test", resolver)
    assert [e.name for e in route.exchangers] == ["mx2.a.test"]
    assert route.exchangers[0].addresses == ("127.0.0.3",)


async def test_every_exchanger_lookup_failing_is_transient(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx1.a.test.\na.test. 300 IN MX 20 mx2.a.test.")
    dns_server.servfail("mx1.a.test", "mx2.a.test")
    with pytest.raises(
        DnsError, match=r"the addresses of 'a\.test''s exchangers could not be looked up: "
    ) as info:
        await resolve_mx("a.test", resolver)
    assert type(info.value) is DnsError
    assert info.value.transient
    assert info.value.name == "mx1.a.test"


async def test_an_exchanger_name_that_is_no_domain_name(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    # An MX target whose one label ends in an escaped dot: its text, without the root's
    # dot, cannot be read back as a name.
    dns_server.add("a.test. 300 IN MX 10 foo\\..")
    with pytest.raises(NoMailExchanger, match=r"has no exchanger with an address") as info:
        await resolve_mx("a.test", resolver)
    assert not info.value.transient
    assert [q.rdtype for q in dns_server.queries] == ["MX"]


@pytest.mark.parametrize(
    ("domain", "problem"),
    [
        ("exämple..test", "has an invalid internationalised domain"),
        ("bücher\u2028.test", "contains the control character U\\+2028"),
        ("", "'' is not a valid domain name"),
        (".", "'.' is not a valid domain name"),
    ],
)
def test_invalid_domain_names(domain: str, problem: str) -> None:
    with pytest.raises(DnsError, match=problem) as info:
        to_a_label(domain)
    assert not info.value.transient


def test_resolver_construction() -> None:
    with pytest.raises(ValueError, match="pass either resolver= or nameservers=, not both"):
        Resolver(["127.0.0.1"], resolver=dns.asyncresolver.Resolver(configure=False))
    with pytest.raises(ValueError, match="nameservers must name at least one name server"):
        Resolver([])
    with pytest.raises(TypeError, match=r"resolver must be a dns\.asyncresolver\.Resolver"):
        Resolver(resolver=object())  # type: ignore[arg-type]
    # One address as a string, and the repr names it.
    assert repr(Resolver("127.0.0.1", port=5353)) == (
        "Resolver([Do53:127.0.0.1@5353], validating=False)"
    )
    own = dns.asyncresolver.Resolver(configure=False)
    own.nameservers = ["127.0.0.1"]
    assert repr(Resolver(resolver=own, validating=True)).endswith("validating=True)")


def test_the_default_resolver_reads_the_system_configuration() -> None:
    resolver = Resolver(timeout=4.0)
    system = dns.asyncresolver.Resolver()
    assert repr(resolver) == (
        f"Resolver([{', '.join(str(ns) for ns in system.nameservers)}], validating=False)"
    )
    assert resolver.timeout == 4.0


async def test_an_unknown_record_type_is_a_dns_error(resolver: Resolver) -> None:
    with pytest.raises(DnsError, match=r"the DNS lookup of NOSUCHTYPE 'a\.test' failed: "):
        await resolver.lookup("a.test", "NOSUCHTYPE")
