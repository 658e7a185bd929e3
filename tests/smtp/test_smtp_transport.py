"""SmtpTransport: messages, connection reuse and replacement, URLs, signing, closing."""

from __future__ import annotations

from email.message import EmailMessage

import anyio
import pytest
from smtp_support import HELLO, envelope, message_bytes

from lettre.errors import (
    AuthenticationError,
    OutcomeUnknown,
    RecipientsRefused,
    SmtpError,
    SmtpTimeoutError,
)
from lettre.message import Message
from lettre.smtp.auth import Credentials
from lettre.smtp.pool import PoolConfig
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.transports.base import Transport
from lettre.transports.smtp import SmtpTransport
from servers import (
    MiniSmtp,
    RecordingHandler,
    Script,
    ScriptedConnection,
    ServerFactory,
    scripted_server,
)
from transport_support import starttls_transport

pytestmark = pytest.mark.anyio


def _plain(server: object, **kwargs: object) -> SmtpTransport:
    host = getattr(server, "host")  # noqa: B009 - AiosmtpdServer or ScriptedServer
    port = getattr(server, "port")  # noqa: B009
    kwargs.setdefault("hello_name", HELLO)
    kwargs.setdefault("timeout", 10.0)
    return SmtpTransport(host, port, tls=TlsMode.NONE, **kwargs)  # type: ignore[arg-type]


def _message(subject: str = "Hello") -> Message:
    return (
        Message.builder()
        .from_("Sender <sender@example.com>")
        .to("Åsa Ek <asa@example.com>", "bo@example.com")
        .bcc("hidden@example.com")
        .subject(subject)
        .text("Hello from lettre.\n")
        .html("<p>Hello from <b>lettre</b>.</p>")
        .attach(b"a,b\n1,2\n", "data.csv")
        .build()
    )


async def test_send_a_message_over_starttls_with_auth(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True, auth_required=True)
    transport = starttls_transport(server, tls_params)
    assert isinstance(transport, Transport)
    message = _message()
    async with transport:
        result = await transport.send(message)
    assert result.message_id == message.message_id
    assert result.accepted == ("asa@example.com", "bo@example.com", "hidden@example.com")
    assert result.transport_id == "LT0001"
    received = server.messages[0]
    assert received.login == "alice"
    assert received.tls
    assert received.rcpt_tos == ["asa@example.com", "bo@example.com", "hidden@example.com"]
    assert received.content == message.as_bytes()
    parsed = received.parsed()
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hello"


async def test_send_a_stdlib_email_message(smtpd: ServerFactory) -> None:
    server = smtpd()
    msg = EmailMessage()
    msg["From"] = "sender@example.com"
    msg["To"] = "rcpt@example.com"
    msg["Subject"] = "stdlib"
    msg["Message-ID"] = "<stdlib@lettre.test>"
    msg.set_content("Hi\n")
    async with _plain(server) as transport:
        result = await transport.send(msg)
    assert result.message_id == "<stdlib@lettre.test>"
    assert server.messages[0].rcpt_tos == ["rcpt@example.com"]


async def test_one_connection_is_reused() -> None:
    mini = MiniSmtp()
    async with scripted_server(mini) as server, _plain(server) as transport:
        for number in range(3):
            await transport.send_raw(envelope(), message_bytes(f"Message {number}"))
        # aclose() waited for the reply to QUIT.
    assert len(mini.connections) == 1
    assert len(mini.transactions) == 3
    assert mini.verbs()[-1] == "QUIT"


async def test_concurrent_sends_share_the_connection() -> None:
    mini = MiniSmtp()
    one_connection = PoolConfig(max_size=1)
    async with scripted_server(mini) as server, _plain(server, pool=one_connection) as transport:
        results = []

        async def one(number: int) -> None:
            results.append(await transport.send_raw(envelope(), message_bytes(f"M{number}")))

        async with anyio.create_task_group() as tg:
            for number in range(5):
                tg.start_soon(one, number)
    assert len(results) == 5
    assert len(mini.connections) == 1
    assert sorted(t.content for t in mini.transactions if t.content) == sorted(
        message_bytes(f"M{n}") for n in range(5)
    )


async def test_concurrent_sends_use_at_most_max_size_connections() -> None:
    mini = MiniSmtp()
    async with scripted_server(mini) as server, _plain(server) as transport:
        async with anyio.create_task_group() as tg:
            for number in range(30):
                tg.start_soon(transport.send_raw, envelope(), message_bytes(f"M{number}"))
        stats = transport.statistics()
    assert transport.pool_config.max_size == 10
    assert 1 <= len(mini.connections) <= 10
    assert stats.messages_sent == 30
    assert len(mini.transactions) == 30


def _drop_after_first_message(goodbye: bytes | None) -> tuple[MiniSmtp, Script]:
    mini = MiniSmtp()
    connections = 0

    async def script(conn: ScriptedConnection) -> None:
        nonlocal connections
        connections += 1
        if connections > 1:
            await mini(conn)
            return
        await conn.reply("220 first ESMTP")
        await conn.readline()
        await conn.reply("250-first", "250 PIPELINING")
        for _ in range(3):  # MAIL, RCPT, DATA in one flight
            await conn.readline()
        await conn.reply("250 ok", "250 ok", "354 go")
        await conn.read_until(b"\r\n.\r\n")
        await conn.reply("250 2.0.0 Ok: queued as FIRST")
        # The server then drops the idle connection (after a 421, like Postfix, or silently).
        if goodbye is not None:
            await conn.send(goodbye)

    return mini, script


@pytest.mark.parametrize("goodbye", [b"421 4.4.2 Idle timeout, closing\r\n", None])
async def test_a_dead_idle_connection_is_replaced(goodbye: bytes | None) -> None:
    mini, script = _drop_after_first_message(goodbye)
    async with scripted_server(script) as server, _plain(server) as transport:
        first = await transport.send_raw(envelope(), message_bytes("One"))
        with anyio.fail_after(10):
            await server.connections[0].done.wait()
        second = await transport.send_raw(envelope(), message_bytes("Two"))
    assert first.transport_id == "FIRST"
    assert second.transport_id == "MINI1"
    assert len(server.connections) == 2
    assert [t.content for t in mini.transactions] == [message_bytes("Two")]


async def test_no_retry_once_the_content_was_sent() -> None:
    mini = MiniSmtp(on_end_of_data="close")
    async with scripted_server(mini) as server:
        transport = _plain(server)
        with pytest.raises(OutcomeUnknown):
            await transport.send_raw(envelope(), message_bytes())
        await transport.aclose()
    assert len(mini.connections) == 1
    assert len(mini.transactions) == 1


async def test_refusals_keep_the_connection(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse=["nobody@example.com"]))
    async with _plain(server) as transport:
        with pytest.raises(RecipientsRefused):
            await transport.send_raw(envelope("nobody@example.com"), message_bytes())
        result = await transport.send_raw(
            envelope("a@example.com", "nobody@example.com"), message_bytes()
        )
    assert result.accepted == ("a@example.com",)
    assert [r.recipient for r in result.refused] == ["nobody@example.com"]


async def test_require_all_recipients(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse=["nobody@example.com"]))
    async with _plain(server, require_all_recipients=True) as transport:
        with pytest.raises(RecipientsRefused):
            await transport.send_raw(
                envelope("a@example.com", "nobody@example.com"), message_bytes()
            )
    assert server.messages == []


async def test_from_url(smtpd: ServerFactory, tls_params: TlsParameters) -> None:
    server = smtpd(tls="starttls", auth=True)
    url = f"smtp://alice:wonderland@127.0.0.1:{server.port}?tls=starttls&hello_name={HELLO}"
    transport = SmtpTransport.from_url(url, tls_parameters=tls_params)
    assert "wonderland" not in repr(transport)
    async with transport:
        await transport.test_connection()
        await transport.send(_message())
    assert server.messages[0].login == "alice"


async def test_test_connection_reports_the_failure(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True)
    transport = SmtpTransport(
        server.host,
        server.port,
        tls_parameters=tls_params,
        credentials=Credentials("alice", "wrong"),
        hello_name=HELLO,
    )
    async with transport:
        with pytest.raises(AuthenticationError):
            await transport.test_connection()


async def test_signers_sign_what_is_sent(smtpd: ServerFactory) -> None:
    class Stamp:
        def sign(self, data: bytes) -> bytes:
            return b"X-Stamp: yes\r\n" + data

    server = smtpd()
    async with _plain(server, dkim=Stamp()) as transport:
        await transport.send(_message())
    assert server.messages[0].content.startswith(b"X-Stamp: yes\r\n")


async def test_closed_transport_refuses_to_send(smtpd: ServerFactory) -> None:
    server = smtpd()
    transport = _plain(server)
    await transport.send_raw(envelope(), message_bytes())
    await transport.aclose()
    await transport.aclose()
    assert transport.closed
    with pytest.raises(SmtpError, match="closed"):
        await transport.send_raw(envelope(), message_bytes())


async def test_transport_deadline() -> None:
    # Without CHUNKING the content waits for the go-ahead: the deadline ends
    # a send that never wrote it (with CHUNKING a small message's content goes
    # with MAIL, and the outcome would be unknown).
    mini = MiniSmtp(hang_on="MAIL", extensions=["PIPELINING", "8BITMIME"])
    async with scripted_server(mini) as server:
        transport = _plain(server, timeout=30.0, deadline=0.5)
        with pytest.raises(SmtpTimeoutError, match="deadline"):
            await transport.send_raw(envelope(), message_bytes())
        await transport.aclose()


async def test_local_shortcut(smtpd: ServerFactory) -> None:
    server = smtpd()
    async with SmtpTransport.local(server.port, host="127.0.0.1", hello_name=HELLO) as transport:
        await transport.send(_message())
    assert len(server.messages) == 1
