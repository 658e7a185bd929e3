"""NUL in message content never reaches DATA or BDAT.

A server that drops NUL octets would read ``<CRLF><NUL>.<CRLF>`` or
``<CRLF>.<NUL><CRLF>`` as the end of data: one of the SMTP smuggling
variants. Raw content with a NUL is refused with a MessageError before the
transaction starts, on every SMTP path (one client, the pool's pipeline on
asyncio, its task-driven path on trio, DATA and BDAT servers); a built
Message transfer-encodes NUL and goes through.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import anyio
import pytest
from hostile_support import HELLO, message_bytes

from lettre.envelope import Envelope
from lettre.errors import MessageError
from lettre.message import Message
from lettre.smtp.client import SmtpClient
from lettre.smtp.pool import PoolConfig, SmtpPool
from lettre.smtp.settings import SmtpSettings
from lettre.smtp.tls import TlsMode
from lettre.transports.base import SendResult
from lettre.transports.smtp import SmtpTransport
from servers import MiniSmtp, ServerFactory, scripted_server

pytestmark = pytest.mark.anyio

BDAT = ("PIPELINING", "CHUNKING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES")
DATA = ("PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES")
LOCK_STEP = ("8BITMIME",)
SERVERS = pytest.mark.parametrize(
    "extensions", [BDAT, DATA, LOCK_STEP], ids=["BDAT", "DATA", "lock-step"]
)

HEAD = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: smuggle\r\n\r\nfirst line\r\n"
TAIL = b"\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nforged\r\n"
SMUGGLING = pytest.mark.parametrize(
    "data",
    [HEAD + b"\x00.\r\n" + TAIL, HEAD + b".\x00\r\n" + TAIL, HEAD + b"\x00"],
    ids=["NUL-dot", "dot-NUL", "trailing-NUL"],
)


def check_refusal(error: MessageError, data: bytes) -> None:
    offset = data.index(b"\x00")
    text = str(error)
    assert f"NUL byte at offset {offset}" in text
    assert "Transfer-encode" in text
    assert "nothing was sent" in text


def plain_settings(port: int) -> SmtpSettings:
    return SmtpSettings(
        "127.0.0.1", port, tls=TlsMode.NONE, hello_name=HELLO, timeout=10.0, data_timeout=10.0
    )


def envelope(*recipients: str) -> Envelope:
    return Envelope("sender@example.com", recipients or ("rcpt@example.com",))


async def connected(port: int) -> SmtpClient:
    client = SmtpClient(plain_settings(port))
    await client.connect()
    return client


@SERVERS
@SMUGGLING
async def test_one_client_refuses_raw_content_with_nul(
    extensions: tuple[str, ...], data: bytes
) -> None:
    mini = MiniSmtp(extensions=extensions)
    async with scripted_server(mini) as server:
        client = await connected(server.port)
        try:
            with pytest.raises(MessageError) as caught:
                await client.send(envelope(), data)
            assert client.is_usable
            assert client.messages_sent == 0
            result = await client.send(envelope(), message_bytes())
        finally:
            await client.aclose()
    check_refusal(caught.value, data)
    assert result.all_accepted
    # The server saw one transaction: the clean message; no byte of the other.
    assert mini.verbs().count("MAIL") == 1
    assert [t.content for t in mini.transactions] == [message_bytes()]
    assert b"\x00" not in mini.connections[0].received
    assert b"evil@" not in mini.connections[0].received


@SERVERS
@SMUGGLING
async def test_pool_refuses_raw_content_with_nul(extensions: tuple[str, ...], data: bytes) -> None:
    mini = MiniSmtp(extensions=extensions)
    async with (
        scripted_server(mini) as server,
        SmtpPool(plain_settings(server.port), PoolConfig(max_size=1)) as pool,
    ):
        with pytest.raises(MessageError) as caught:
            await pool.send(envelope(), data)
        result = await pool.send(envelope(), message_bytes())
        stats = pool.statistics()
    check_refusal(caught.value, data)
    assert result.all_accepted
    assert stats.opened_total == 1
    assert mini.verbs().count("MAIL") == 1
    assert b"\x00" not in b"".join(c.received for c in mini.connections)


@pytest.mark.parametrize("extensions", [BDAT, DATA], ids=["BDAT", "DATA"])
async def test_nul_among_chained_sends_fails_only_that_send(extensions: tuple[str, ...]) -> None:
    # Senders queue behind each other on one connection; the one with a NUL
    # is never chained and fails alone, before its MAIL.
    mini = MiniSmtp(extensions=extensions)
    outcomes: dict[int, SendResult | BaseException] = {}

    def content(n: int) -> bytes:
        body = "bad\r\n\x00.\r\n" if n == 2 else f"message {n}\r\n"
        return message_bytes(f"Message {n}", body)

    async with (
        scripted_server(mini) as server,
        SmtpPool(plain_settings(server.port), PoolConfig(max_size=1)) as pool,
    ):

        async def one(n: int) -> None:
            try:
                outcomes[n] = await pool.send(envelope(f"user{n}@example.com"), content(n))
            except MessageError as exc:
                outcomes[n] = exc

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for n in range(5):
                    group.start_soon(one, n)
        stats = pool.statistics()
    assert isinstance(outcomes[2], MessageError)
    check_refusal(outcomes[2], content(2))
    for n in (0, 1, 3, 4):
        assert isinstance(outcomes[n], SendResult), outcomes[n]
    assert stats.opened_total == 1
    received = b"".join(c.received for c in mini.connections)
    assert b"\x00" not in received
    assert b"user2@" not in received
    assert sorted(t.rcpts[0] for t in mini.transactions) == [
        f"RCPT TO:<user{n}@example.com>" for n in (0, 1, 3, 4)
    ]


async def test_transport_send_raw_refuses_nul_before_mail(smtpd: ServerFactory) -> None:
    server = smtpd()
    async with SmtpTransport(
        server.host, server.port, tls=TlsMode.NONE, hello_name=HELLO, timeout=10.0
    ) as transport:
        with pytest.raises(MessageError, match=r"NUL byte at offset \d+"):
            await transport.send_raw(envelope(), HEAD + b"\x00.\r\n" + TAIL)
    assert server.messages == []
    assert not any(c.startswith("MAIL") for c in server.handler.commands)


def nul_message() -> Message:
    return (
        Message.builder()
        .from_("Sender <sender@example.com>")
        .to("rcpt@example.com")
        .subject("NUL inside")
        .text("before\x00after\r\n\x00.\r\n.\x00\r\nend\r\n")
        .attach(b"\x00\r\n.\r\n\x00binary", "blob.bin")
        .build()
    )


def check_decoded(content: bytes) -> None:
    assert b"\x00" not in content
    message = message_from_bytes(content, policy=policy.SMTP)
    text, attachment = list(message.iter_parts())
    assert text.get_content().replace("\r\n", "\n") == "before\x00after\n\x00.\n.\x00\nend\n"
    assert attachment.get_content() == b"\x00\r\n.\r\n\x00binary"


async def test_built_message_with_nul_is_encoded_and_sent(smtpd: ServerFactory) -> None:
    server = smtpd()
    async with SmtpTransport(
        server.host, server.port, tls=TlsMode.NONE, hello_name=HELLO, timeout=10.0
    ) as transport:
        result = await transport.send(nul_message())
    assert result.all_accepted
    (received,) = server.messages
    check_decoded(received.content)


async def test_built_message_with_nul_goes_through_bdat() -> None:
    mini = MiniSmtp(extensions=BDAT)
    async with (
        scripted_server(mini) as server,
        SmtpTransport(
            "127.0.0.1", server.port, tls=TlsMode.NONE, hello_name=HELLO, timeout=10.0
        ) as transport,
    ):
        result = await transport.send(nul_message())
    assert result.all_accepted
    (tx,) = mini.transactions
    assert tx.via == "BDAT"
    assert tx.content is not None
    assert re.search(rb"Content-Transfer-Encoding: (quoted-printable|base64)", tx.content)
    check_decoded(tx.content)
