"""MxTransport against a real DNS server and aiosmtpd exchangers on 127.0.0.x."""

from __future__ import annotations

import pytest
from direct_support import HELLO, EhloCountingHandler, MxServers, greeting_server, mx_transport
from dns_server import DnsServer

from lettre import Message
from lettre.envelope import Envelope
from lettre.errors import DeliveryError, DnsError, NoMailExchanger, TransportError
from lettre.transports.mx import ChannelSecurity, MxSendResult, MxTransport
from servers import RecordingHandler

pytestmark = pytest.mark.anyio


def _message(*to: str) -> Message:
    return (
        Message.builder()
        .from_("alice@sender.lettre.test")
        .to(*to)
        .subject("direct")
        .text("Hello from the direct transport.\n")
        .build()
    )


async def test_delivers_to_the_preferred_exchanger_with_opportunistic_tls(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add(
        """
        a.test. 300 IN MX 10 mx1.a.test.
        a.test. 300 IN MX 20 mx2.a.test.
        mx1.a.test. 300 IN A 127.0.0.2
        mx2.a.test. 300 IN A 127.0.0.3
        """
    )
    # The certificate is for another name: opportunistic TLS does not check it.
    first = mx_servers.start("127.0.0.2", cert_names=("not-mx1.other.test",))
    second = mx_servers.start("127.0.0.3")
    async with mx_transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message("bob@a.test"))
    assert isinstance(result, MxSendResult)
    assert result.accepted == ("bob@a.test",)
    assert [m.rcpt_tos for m in first.messages] == [["bob@a.test"]]
    assert first.messages[0].tls
    assert second.messages == []
    (delivery,) = result.deliveries
    assert (delivery.domain, delivery.exchanger, delivery.address) == (
        "a.test",
        "mx1.a.test",
        "127.0.0.2",
    )
    assert delivery.security is ChannelSecurity.OPPORTUNISTIC
    assert result.delivery_of("bob@a.test") is delivery
    assert result.message_id is not None
    assert result.transport_id == "LT0001"


async def test_plain_text_when_the_exchanger_offers_no_starttls(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2")
    handler = mx_servers.start("127.0.0.2", starttls=False)
    async with mx_transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message("bob@a.test"))
    assert result.deliveries[0].security is ChannelSecurity.NONE
    assert not handler.messages[0].tls


async def test_fails_over_to_the_next_exchanger(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add(
        """
        a.test. 300 IN MX 10 down.a.test.
        a.test. 300 IN MX 20 busy.a.test.
        a.test. 300 IN MX 30 mx3.a.test.
        down.a.test. 300 IN A 127.0.0.2
        busy.a.test. 300 IN A 127.0.0.3
        mx3.a.test. 300 IN A 127.0.0.4
        """
    )
    # 127.0.0.2: nothing listens (connection refused); 127.0.0.3 greets with 421.
    third = mx_servers.start("127.0.0.4")
    async with (
        greeting_server("127.0.0.3", mx_servers.port, b"421 4.3.2 busy, try later\r\n") as accepted,
        mx_transport(dns_server, mx_servers) as transport,
    ):
        result = await transport.send(_message("bob@a.test"))
    assert accepted == [1]
    assert [m.rcpt_tos for m in third.messages] == [["bob@a.test"]]
    delivery = result.deliveries[0]
    assert delivery.exchanger == "mx3.a.test"
    assert len(delivery.failures) == 2
    assert delivery.failures[0].startswith("down.a.test [127.0.0.2]: ")
    assert "421" in delivery.failures[1]


async def test_required_tls_fails_over_then_fails_transiently(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add(
        """
        a.test. 300 IN MX 10 mx1.a.test.
        a.test. 300 IN MX 20 mx2.a.test.
        mx1.a.test. 300 IN A 127.0.0.2
        mx2.a.test. 300 IN A 127.0.0.3
        """
    )
    mx_servers.start("127.0.0.2", starttls=False)
    second = mx_servers.start("127.0.0.3")
    async with mx_transport(dns_server, mx_servers, tls="starttls") as transport:
        with pytest.raises(DeliveryError) as info:
            await transport.send(_message("bob@a.test"))
    # TLS required: 127.0.0.2 has no STARTTLS, 127.0.0.3's certificate is
    # not for mx2.a.test; neither gets the message, and it may work later.
    assert info.value.transient
    assert second.messages == []
    delivery = info.value.result.deliveries[0]  # type: ignore[attr-defined]
    assert len(delivery.failures) == 2
    assert "does not offer STARTTLS" in delivery.failures[0]
    assert "mx2.a.test" in delivery.failures[1]


async def test_required_tls_with_a_valid_certificate(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    from lettre.smtp.tls import TlsParameters

    dns_server.add("a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2")
    handler = mx_servers.start("127.0.0.2", cert_names=("mx1.a.test",))
    params = TlsParameters(ca_data=mx_servers.tls_material.ca_pem, use_system_trust=False)
    async with mx_transport(
        dns_server, mx_servers, tls="starttls", tls_parameters=params
    ) as transport:
        result = await transport.send(_message("bob@a.test"))
    assert result.deliveries[0].security is ChannelSecurity.VERIFIED
    assert handler.messages[0].tls


async def test_one_transaction_per_domain(dns_server: DnsServer, mx_servers: MxServers) -> None:
    dns_server.add(
        """
        a.test. 300 IN MX 10 mx.a.test.
        mx.a.test. 300 IN A 127.0.0.2
        b.test. 300 IN A 127.0.0.3
        c.test. 300 IN MX 0 .
        """
    )
    a = mx_servers.start("127.0.0.2")
    b = mx_servers.start("127.0.0.3")
    message = _message("one@a.test", "x@c.test", "bob@b.test", "two@a.test")
    async with mx_transport(dns_server, mx_servers) as transport:
        result = await transport.send(message)
    assert [m.rcpt_tos for m in a.messages] == [["one@a.test", "two@a.test"]]
    assert [m.rcpt_tos for m in b.messages] == [["bob@b.test"]]  # implicit MX
    assert [r.recipient for r in result.recipients] == [
        "one@a.test",
        "x@c.test",
        "bob@b.test",
        "two@a.test",
    ]
    assert result.accepted == ("one@a.test", "bob@b.test", "two@a.test")
    (refused,) = result.refused
    assert isinstance(refused.error, NoMailExchanger)
    assert not refused.error.transient
    assert [d.domain for d in result.deliveries] == ["a.test", "c.test", "b.test"]
    assert result.deliveries[1].exchanger is None


async def test_null_mx_refuses_without_connecting(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add("c.test. 300 IN MX 0 .\nc.test. 300 IN A 127.0.0.2")
    async with (
        greeting_server("127.0.0.2", mx_servers.port, b"220 hi\r\n") as accepted,
        mx_transport(dns_server, mx_servers) as transport,
    ):
        with pytest.raises(DeliveryError, match="null MX") as info:
            await transport.send(_message("x@c.test"))
    assert accepted == []
    assert not info.value.transient


async def test_a_refused_recipient_is_final(dns_server: DnsServer, mx_servers: MxServers) -> None:
    dns_server.add(
        """
        a.test. 300 IN MX 10 mx1.a.test.
        a.test. 300 IN MX 20 mx2.a.test.
        mx1.a.test. 300 IN A 127.0.0.2
        mx2.a.test. 300 IN A 127.0.0.3
        """
    )
    first = mx_servers.start("127.0.0.2", handler=RecordingHandler(refuse=["nobody@a.test"]))
    second = mx_servers.start("127.0.0.3")
    async with mx_transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message("bob@a.test", "nobody@a.test"))
        with pytest.raises(DeliveryError) as info:
            await transport.send(_message("nobody@a.test"))
    assert result.accepted == ("bob@a.test",)
    (refused,) = result.refused
    assert refused.reply is not None
    assert refused.reply.code == 550
    assert not info.value.transient
    assert second.messages == []
    assert len(first.messages) == 1


async def test_transient_dns_failure_is_reported_per_domain(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx.a.test.\nmx.a.test. 300 IN A 127.0.0.2")
    dns_server.servfail("broken.test")
    mx_servers.start("127.0.0.2")
    async with mx_transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message("bob@a.test", "eve@broken.test"))
        with pytest.raises(DeliveryError) as info:
            await transport.send(_message("eve@broken.test"))
    (refused,) = result.refused
    assert isinstance(refused.error, DnsError)
    assert refused.error.transient
    assert info.value.transient


async def test_connections_are_reused_across_messages(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx.a.test.\nmx.a.test. 300 IN A 127.0.0.2")
    handler = mx_servers.start("127.0.0.2", starttls=False, handler=EhloCountingHandler())
    async with mx_transport(dns_server, mx_servers) as transport:
        for _ in range(3):
            await transport.send(_message("bob@a.test"))
    assert len(handler.messages) == 3
    assert handler.commands.count("MAIL alice@sender.lettre.test") == 3
    assert handler.commands.count("EHLO") == 1  # one connection


async def test_send_raw_with_an_explicit_envelope(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx.a.test.\nmx.a.test. 300 IN A 127.0.0.2")
    handler = mx_servers.start("127.0.0.2")
    async with mx_transport(dns_server, mx_servers) as transport:
        result = await transport.send_raw(
            Envelope("", ["bob@a.test"]), b"Subject: bounce\r\n\r\nbody\r\n"
        )
    assert result.all_accepted
    assert handler.messages[0].mail_from == "<>"


def test_hello_name_is_required() -> None:
    with pytest.raises(ValueError, match="MxTransport needs hello_name="):
        MxTransport(nameservers=["127.0.0.1"])
    with pytest.raises(ValueError, match="invalid hello_name 'not a name'"):
        MxTransport(hello_name="not a name", nameservers=["127.0.0.1"])
    with pytest.raises(ValueError, match="must not be IMPLICIT"):
        MxTransport(hello_name=HELLO, nameservers=["127.0.0.1"], tls="implicit")


async def test_closed_transport_refuses_to_send(dns_server: DnsServer) -> None:
    transport = MxTransport(hello_name=HELLO, nameservers=["127.0.0.1"], dns_port=dns_server.port)
    await transport.aclose()
    with pytest.raises(TransportError, match="closed"):
        await transport.send(_message("bob@a.test"))


async def test_for_new_process_shares_no_connection(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx.a.test.\nmx.a.test. 300 IN A 127.0.0.2")
    handler = mx_servers.start("127.0.0.2", starttls=False, handler=EhloCountingHandler())
    async with mx_transport(dns_server, mx_servers) as transport:
        await transport.send(_message("bob@a.test"))
        child = transport.for_new_process()
        assert child is not transport
        async with child:
            await child.send(_message("bob@a.test"))
    assert len(handler.messages) == 2
    assert handler.commands.count("EHLO") == 2  # the child opened its own connection


async def test_a_silent_exchanger_times_out_and_the_next_is_tried(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add(
        """
        a.test. 300 IN MX 10 mute.a.test.
        a.test. 300 IN MX 20 mx2.a.test.
        mute.a.test. 300 IN A 127.0.0.2
        mx2.a.test. 300 IN A 127.0.0.3
        """
    )
    second = mx_servers.start("127.0.0.3")
    async with (
        greeting_server("127.0.0.2", mx_servers.port, b"") as accepted,
        MxTransport(
            hello_name=HELLO,
            nameservers=["127.0.0.1"],
            dns_port=dns_server.port,
            port=mx_servers.port,
            timeout=0.5,
        ) as transport,
    ):
        result = await transport.send(_message("bob@a.test"))
    assert accepted == [1]
    assert len(second.messages) == 1
    assert "mute.a.test [127.0.0.2]" in result.deliveries[0].failures[0]
    assert "timed out" in result.deliveries[0].failures[0]
