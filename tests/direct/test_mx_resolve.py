"""MX selection against a real DNS server: order, implicit MX, null MX, CNAMEs, failures."""

from __future__ import annotations

import random

import pytest
from dns_server import DnsServer

from lettre.dns.mx import resolve_mx
from lettre.dns.resolver import Resolver
from lettre.errors import DnsError, NoMailExchanger

pytestmark = pytest.mark.anyio


async def test_exchangers_by_preference(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add(
        """
        a.test. 300 IN MX 20 mx2.a.test.
        a.test. 300 IN MX 10 mx1.a.test.
        a.test. 300 IN MX 30 mx3.a.test.
        mx1.a.test. 300 IN A 127.0.0.2
        mx2.a.test. 300 IN A 127.0.0.3
        mx2.a.test. 300 IN AAAA ::1
        mx3.a.test. 300 IN A 127.0.0.4
        """
    )
    route = await resolve_mx("a.test", resolver)
    assert [(e.name, e.preference) for e in route.exchangers] == [
        ("mx1.a.test", 10),
        ("mx2.a.test", 20),
        ("mx3.a.test", 30),
    ]
    assert route.exchangers[1].addresses == ("127.0.0.3", "::1")  # IPv4 first
    assert not route.implicit
    assert route.mx_names == ("mx1.a.test", "mx2.a.test", "mx3.a.test")


async def test_equal_preferences_are_shuffled(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add(
        "\n".join(
            [f"a.test. 300 IN MX 10 mx{i}.a.test." for i in range(4)]
            + [f"mx{i}.a.test. 300 IN A 127.0.0.{i + 2}" for i in range(4)]
            + ["a.test. 300 IN MX 5 first.a.test.", "first.a.test. 300 IN A 127.0.0.9"]
        )
    )
    orders = set()
    for seed in range(12):
        route = await resolve_mx("a.test", resolver, rng=random.Random(seed))
        names = [e.name for e in route.exchangers]
        assert names[0] == "first.a.test"
        assert sorted(names[1:]) == [f"mx{i}.a.test" for i in range(4)]
        orders.add(tuple(names))
    assert len(orders) > 1


async def test_implicit_mx(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add("b.test. 300 IN A 127.0.0.5")
    route = await resolve_mx("b.test", resolver)
    assert route.implicit
    assert [(e.name, e.addresses) for e in route.exchangers] == [("b.test", ("127.0.0.5",))]


async def test_null_mx_is_permanent(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add("null.test. 300 IN MX 0 .\nnull.test. 300 IN A 127.0.0.5")
    with pytest.raises(NoMailExchanger, match=r"'null.test' accepts no mail.*null MX") as info:
        await resolve_mx("null.test", resolver)
    assert not info.value.transient
    # Its A record is never asked for: no fallback to the implicit MX.
    assert not dns_server.asked("null.test", "A")


async def test_nxdomain_is_permanent(dns_server: DnsServer, resolver: Resolver) -> None:
    with pytest.raises(DnsError, match=r"'gone.test' does not exist \(NXDOMAIN\)") as info:
        await resolve_mx("gone.test", resolver)
    assert not info.value.transient
    assert info.value.rdtype == "MX"


async def test_servfail_is_transient(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.servfail("broken.test")
    with pytest.raises(DnsError, match="SERVFAIL") as info:
        await resolve_mx("broken.test", resolver)
    assert info.value.transient


async def test_slow_answer_times_out_transiently(dns_server: DnsServer) -> None:
    dns_server.add("slow.test. 300 IN MX 10 mx.slow.test.")
    dns_server.delay("slow.test", 5.0)
    resolver = Resolver(["127.0.0.1"], port=dns_server.port, timeout=0.5)
    with pytest.raises(DnsError, match=r"timed out after 0\.5 s") as info:
        await resolve_mx("slow.test", resolver)
    assert info.value.transient


async def test_exchangers_without_addresses_are_skipped(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    dns_server.add(
        """
        a.test. 300 IN MX 10 noaddr.a.test.
        a.test. 300 IN MX 20 missing.a.test.
        a.test. 300 IN MX 30 mx.a.test.
        noaddr.a.test. 300 IN TXT "no address here"
        mx.a.test. 300 IN A 127.0.0.2
        """
    )
    route = await resolve_mx("a.test", resolver)
    assert [e.name for e in route.exchangers] == ["mx.a.test"]


async def test_no_exchanger_with_an_address_is_permanent(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    dns_server.add("a.test. 300 IN MX 10 missing.a.test.")
    with pytest.raises(NoMailExchanger, match="no exchanger with an address") as info:
        await resolve_mx("a.test", resolver)
    assert not info.value.transient


async def test_no_mx_and_no_address_is_permanent(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add('a.test. 300 IN TXT "v=spf1 -all"')
    with pytest.raises(NoMailExchanger, match="has no MX and no address"):
        await resolve_mx("a.test", resolver)


async def test_cname_chains_are_followed(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add(
        """
        alias.test. 300 IN CNAME real.test.
        real.test. 300 IN MX 10 mxalias.real.test.
        mxalias.real.test. 300 IN CNAME mx.real.test.
        mx.real.test. 300 IN A 127.0.0.7
        """
    )
    route = await resolve_mx("alias.test", resolver)
    assert [(e.name, e.addresses) for e in route.exchangers] == [
        ("mxalias.real.test", ("127.0.0.7",))
    ]


async def test_looping_cnames_end_in_a_typed_error(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    dns_server.add("loop1.test. 300 IN CNAME loop2.test.\nloop2.test. 300 IN CNAME loop1.test.")
    with pytest.raises(DnsError) as info:
        await resolve_mx("loop1.test", resolver)
    assert "loop1.test" in str(info.value)


async def test_truncated_answers_are_asked_again_over_tcp(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    dns_server.add(
        "\n".join(
            [f"big.test. 300 IN MX {i} mx{i}.big.test." for i in range(60)]
            + [f"mx{i}.big.test. 300 IN A 127.0.1.{i}" for i in range(60)]
        )
    )
    dns_server.truncate("big.test")
    route = await resolve_mx("big.test", resolver, max_exchangers=3)
    assert [e.name for e in route.exchangers] == ["mx0.big.test", "mx1.big.test", "mx2.big.test"]
    assert {q.transport for q in dns_server.asked("big.test", "MX")} == {"udp", "tcp"}


async def test_max_exchangers_bounds_the_lookups(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add(
        "\n".join(
            [f"many.test. 300 IN MX {i} mx{i}.many.test." for i in range(30)]
            + [f"mx{i}.many.test. 300 IN A 127.0.1.{i}" for i in range(30)]
        )
    )
    route = await resolve_mx("many.test", resolver, max_exchangers=2)
    assert len(route.exchangers) == 2
    asked = {q.name for q in dns_server.queries if q.rdtype == "A"}
    assert len(asked) <= 4


async def test_idn_domains_are_looked_up_by_their_a_labels(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    dns_server.add(
        "xn--exmple-cua.test. 300 IN MX 10 mx.xn--exmple-cua.test.\n"
        "mx.xn--exmple-cua.test. 300 IN A 127.0.0.2"
    )
    route = await resolve_mx("exämple.test", resolver)
    assert route.domain == "xn--exmple-cua.test"
    assert route.exchangers[0].name == "mx.xn--exmple-cua.test"


async def test_invalid_names_are_permanent_errors(resolver: Resolver) -> None:
    with pytest.raises(DnsError, match="not a valid domain name") as info:
        await resolve_mx("a..b.test", resolver)
    assert not info.value.transient
    with pytest.raises(DnsError, match="not a valid domain name"):
        await resolve_mx("x" * 64 + ".test", resolver)


async def test_domain_literals_need_no_lookup(dns_server: DnsServer, resolver: Resolver) -> None:
    route = await resolve_mx("[127.0.0.2]", resolver)
    assert route.exchangers[0].addresses == ("127.0.0.2",)
    assert dns_server.queries == []


def test_resolver_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"'ns\.example' is not an IP address"):
        Resolver(["ns.example"])
    with pytest.raises(ValueError, match="port must be between 1 and 65535"):
        Resolver(["127.0.0.1"], port=0)
    with pytest.raises(ValueError, match="timeout must be a positive"):
        Resolver(["127.0.0.1"], timeout=0)


async def test_an_answer_too_big_even_for_tcp_ends_in_a_typed_error(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    # 1,100 MX records of about 70 bytes: more than 64 KiB, so even TCP gets a
    # truncated answer.
    padding = "x" * 55
    dns_server.add(
        "\n".join(f"huge.test. 300 IN MX {i} mx{i}-{padding}.huge.test." for i in range(1100))
    )
    with pytest.raises(DnsError, match="truncated even over TCP") as info:
        await resolve_mx("huge.test", resolver)
    assert type(info.value) is DnsError
    assert info.value.transient
    assert {q.transport for q in dns_server.asked("huge.test", "MX")} == {"udp", "tcp"}
