"""SmtpTransport with streamed attachments: the server receives the bytes of as_bytes(), signed.

The SMTP transport does not read streamed content in chunks yet: the base
transport reads it whole in a worker thread (never in the event loop's
thread) and sends the bytes; these tests pin what the server receives.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from test_streamed_file import large_file, message_with

import dkim
from lettre.dkim import DkimSigner
from lettre.message import Attachment, SourceError
from lettre.smtp import TlsMode
from lettre.transports.smtp import SmtpTransport

pytestmark = pytest.mark.anyio

ServerFactory = Callable[..., Any]


async def test_a_large_streamed_attachment_arrives_as_as_bytes(
    tmp_path: Path, smtpd: ServerFactory
) -> None:
    server = smtpd(size_limit=None)
    message = message_with(Attachment.from_path(large_file(tmp_path / "d.bin", 12 * 1024 * 1024)))
    async with SmtpTransport("127.0.0.1", server.port, tls=TlsMode.NONE) as transport:
        result = await transport.send(message)
    assert [r.accepted for r in result.recipients] == [True]
    (received,) = server.messages
    assert received.content == message.as_bytes()


async def test_dkim_over_a_streamed_attachment_verifies(
    tmp_path: Path, smtpd: ServerFactory
) -> None:
    server = smtpd()
    key = ed25519.Ed25519PrivateKey.generate()
    signer = DkimSigner("example.com", "s1", key)
    record = signer.dns_record().encode()
    message = message_with(Attachment.from_path(large_file(tmp_path / "d.bin", 2 * 1024 * 1024)))
    async with SmtpTransport("127.0.0.1", server.port, tls=TlsMode.NONE, dkim=signer) as transport:
        await transport.send(message)
    (received,) = server.messages
    assert received.content.endswith(message.as_bytes())

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return record if name.startswith(b"s1._domainkey.example.com") else None

    assert dkim.verify(received.content, dnsfunc=dnsfunc)


async def test_a_missing_file_sends_nothing(tmp_path: Path, smtpd: ServerFactory) -> None:
    server = smtpd()
    path = tmp_path / "gone.bin"
    path.write_bytes(b"x")
    message = message_with(Attachment.from_path(path))
    path.unlink()
    async with SmtpTransport("127.0.0.1", server.port, tls=TlsMode.NONE) as transport:
        with pytest.raises(SourceError, match=r"gone\.bin"):
            await transport.send(message)
    assert server.messages == []
