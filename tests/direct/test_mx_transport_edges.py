"""MxTransport in the situations the main tests leave out: settings it refuses, plain SMTP,
senders refused for good or for now, data refused, connections it does not keep, and the
connections of a loop that has ended."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from direct_support import HELLO, EhloCountingHandler, MxServers, mx_transport
from dns_server import DnsServer

from lettre import Message
from lettre.dns.resolver import Resolver
from lettre.errors import DeliveryError, SenderRefused, SmtpReplyError
from lettre.transports.mx import ChannelSecurity, MxTransport
from servers import RecordingHandler

TWO_EXCHANGERS = """
a.test. 300 IN MX 10 mx1.a.test.
a.test. 300 IN MX 20 mx2.a.test.
mx1.a.test. 300 IN A 127.0.0.2
mx2.a.test. 300 IN A 127.0.0.3
"""


def _message(*to: str) -> Message:
    return (
        Message.builder().from_("alice@sender.lettre.test").to(*to).subject("s").text("t\n").build()
    )


def test_settings_it_refuses() -> None:
    with pytest.raises(TypeError, match="max_exchangers must be an int"):
        MxTransport(hello_name=HELLO, max_exchangers=True)
    with pytest.raises(ValueError, match="max_exchangers must be at least 1, not 0"):
        MxTransport(hello_name=HELLO, max_exchangers=0)
    with pytest.raises(ValueError, match="pass either resolver= or nameservers=, not both"):
        MxTransport(hello_name=HELLO, resolver=Resolver(["127.0.0.1"]), nameservers=["127.0.0.1"])
    with pytest.raises(TypeError, match="mta_sts must be True, False or an MtaSts"):
        MxTransport(hello_name=HELLO, mta_sts="yes")  # type: ignore[arg-type]


def test_repr_and_resolver() -> None:
    resolver = Resolver(["127.0.0.1"], port=5353)
    transport = MxTransport(hello_name=HELLO, resolver=resolver, port=2525)
    assert transport.resolver is resolver
    assert repr(transport) == (
        "MxTransport(hello_name='sender.lettre.test', port=2525, tls=opportunistic, "
        "resolver=Resolver([Do53:127.0.0.1@5353], validating=False))"
    )


@pytest.mark.anyio
async def test_plain_smtp_and_the_delivery_of_each_recipient(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add(
        TWO_EXCHANGERS + "b.test. 300 IN MX 10 mx.b.test.\nmx.b.test. 300 IN A 127.0.0.3"
    )
    first = mx_servers.start("127.0.0.2")
    second = mx_servers.start("127.0.0.3")
    async with mx_transport(dns_server, mx_servers, tls="none") as transport:
        result = await transport.send(_message("bob@a.test", "carol@b.test"))
    assert not first.messages[0].tls
    assert [m.rcpt_tos for m in second.messages] == [["carol@b.test"]]
    by_domain = {d.domain: d for d in result.deliveries}
    assert {d.security for d in result.deliveries} == {ChannelSecurity.NONE}
    assert result.delivery_of("bob@a.test") is by_domain["a.test"]
    assert result.delivery_of("carol@b.test") is by_domain["b.test"]
    assert result.delivery_of("dave@c.test") is None


@pytest.mark.anyio
async def test_a_sender_refused_for_now_goes_to_the_next_exchanger(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add(TWO_EXCHANGERS)
    busy = mx_servers.start("127.0.0.2", handler=RecordingHandler(mail_reply="451 4.3.0 Busy"))
    second = mx_servers.start("127.0.0.3")
    async with mx_transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message("bob@a.test"))
    assert result.accepted == ("bob@a.test",)
    assert [m.rcpt_tos for m in second.messages] == [["bob@a.test"]]
    assert busy.commands == ["MAIL alice@sender.lettre.test"]
    (delivery,) = result.deliveries
    assert delivery.exchanger == "mx2.a.test"
    assert delivery.failures == ("mx1.a.test [127.0.0.2]: server replied 451 4.3.0 to MAIL: Busy",)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (RecordingHandler(mail_reply="550 5.7.1 Sender blocked"), SenderRefused),
        (RecordingHandler(data_reply="554 5.6.0 Content rejected"), SmtpReplyError),
    ],
    ids=["sender", "data"],
)
async def test_a_final_refusal_is_not_tried_elsewhere(
    dns_server: DnsServer,
    mx_servers: MxServers,
    handler: RecordingHandler,
    error: type[Exception],
) -> None:
    dns_server.add(TWO_EXCHANGERS)
    mx_servers.start("127.0.0.2", handler=handler)
    second = mx_servers.start("127.0.0.3")
    async with mx_transport(dns_server, mx_servers) as transport:
        with pytest.raises(DeliveryError) as info:
            await transport.send(_message("bob@a.test"))
    assert second.messages == []
    assert not info.value.transient
    [recipient] = info.value.result.recipients
    assert recipient.recipient == "bob@a.test"
    assert not recipient.accepted
    assert isinstance(recipient.error, error)
    assert "5." in str(recipient.error)


class _ConnectionsHandler(EhloCountingHandler):
    """Also records each EHLO (one per connection without STARTTLS) and each QUIT."""

    async def handle_QUIT(self, server: object, session: Any, envelope: object) -> str:
        self.commands.append("QUIT")
        return "221 Bye"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "keep", [{"max_idle": 0}, {"idle_timeout": 1e-9}], ids=["max_idle=0", "expired"]
)
async def test_connections_it_does_not_keep(
    dns_server: DnsServer,
    mx_servers: MxServers,
    keep: dict[str, float],
) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2")
    handler = mx_servers.start("127.0.0.2", starttls=False, handler=_ConnectionsHandler())
    async with mx_transport(dns_server, mx_servers, **keep) as transport:
        await transport.send(_message("bob@a.test"))
        await transport.send(_message("carol@a.test"))
    assert len(handler.messages) == 2
    # A new connection for the second message.
    # A new connection for the second message. One not kept is closed with QUIT at once;
    # one that expired while idle is dropped without it; the last is closed by aclose().
    session = [c for c in handler.commands if c in ("EHLO", "QUIT")]
    if "max_idle" in keep:
        assert session == ["EHLO", "QUIT", "EHLO", "QUIT"]
    else:
        assert session == ["EHLO", "EHLO", "QUIT"]


def test_connections_of_an_ended_loop_are_let_go(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2")
    handler = mx_servers.start("127.0.0.2", starttls=False, handler=_ConnectionsHandler())
    transport = mx_transport(dns_server, mx_servers)

    async def send(to: str) -> None:
        await transport.send(_message(to))

    # Each run leaves an idle connection of its loop behind.
    anyio.run(send, "bob@a.test")
    anyio.run(send, "carol@a.test", backend="trio")

    async def close() -> None:
        await transport.aclose()

    anyio.run(close)
    assert [m.rcpt_tos for m in handler.messages] == [["bob@a.test"], ["carol@a.test"]]
    # Connections of other (ended) loops are dropped, not closed with a QUIT from this loop.
    assert handler.commands.count("EHLO") == 2
    assert "QUIT" not in handler.commands
