"""Helpers shared by the SMTP tests."""

from __future__ import annotations

from typing import Any

from anyio.abc import ByteStream

from lettre.envelope import Envelope
from lettre.smtp.client import SmtpClient
from lettre.smtp.settings import SmtpSettings
from lettre.smtp.tls import TlsMode
from servers import AiosmtpdServer, ScriptedServer

HELLO = "client.lettre.test"


def message_bytes(subject: str = "Hello", body: str = "Hello there.\r\n") -> bytes:
    """A small valid message."""
    return (
        f"From: Sender <sender@example.com>\r\n"
        f"To: Rcpt <rcpt@example.com>\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@lettre.test>\r\n"
        f"\r\n"
        f"{body}"
    ).encode()


def envelope(*recipients: str, sender: str | None = "sender@example.com") -> Envelope:
    """An envelope to ``recipients`` (default: one)."""
    return Envelope(sender, recipients or ("rcpt@example.com",))


def settings_for(
    server: AiosmtpdServer | ScriptedServer, *, tls: TlsMode | str = TlsMode.NONE, **kwargs: Any
) -> SmtpSettings:
    """Settings pointing at a test server (hello name fixed, short timeouts)."""
    kwargs.setdefault("hello_name", HELLO)
    kwargs.setdefault("timeout", 10.0)
    kwargs.setdefault("data_timeout", 10.0)
    return SmtpSettings(server.host, server.port, tls=TlsMode.parse(tls), **kwargs)


async def connected(server: AiosmtpdServer | ScriptedServer, **kwargs: Any) -> SmtpClient:
    """A client connected to ``server``."""
    client = SmtpClient(settings_for(server, **kwargs))
    await client.connect()
    return client


async def read_exactly(stream: ByteStream, size: int) -> bytes:
    """Receive exactly ``size`` bytes from ``stream``."""
    data = b""
    while len(data) < size:
        data += await stream.receive(size - len(data))
    return data


async def read_until(stream: ByteStream, end: bytes) -> bytes:
    """Receive from ``stream`` one byte at a time until the data ends with ``end``."""
    data = b""
    while not data.endswith(end):
        data += await stream.receive(1)
    return data
