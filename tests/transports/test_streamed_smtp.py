"""SmtpTransport with streamed attachments: read and written a chunk at a time, DATA and BDAT.

``SmtpTransport`` takes a streamed content when its class says so
(``_streams``); the fixture below sets it, so these tests hold whether or not
the class sets it itself.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import dkim
from lettre.dkim import DkimSigner
from lettre.errors import MessageTooLarge
from lettre.message import Attachment, MessageContent, SourceError
from lettre.smtp import TlsMode
from lettre.transports.smtp import SmtpTransport
from servers import MiniSmtp, scripted_server
from streamed_support import FailingFile, large_file, message_with

pytestmark = pytest.mark.anyio

ServerFactory = Callable[..., Any]


@pytest.fixture(autouse=True)
def streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SmtpTransport, "_streams", True, raising=False)


def transport(port: int, **kwargs: Any) -> SmtpTransport:
    return SmtpTransport("127.0.0.1", port, tls=TlsMode.NONE, timeout=20, **kwargs)


async def test_a_large_attachment_through_data(tmp_path: Path, smtpd: ServerFactory) -> None:
    server = smtpd(size_limit=None)
    message = message_with(Attachment.from_path(large_file(tmp_path / "d.bin")))
    async with transport(server.port) as smtp:
        result = await smtp.send(message)
        again = await smtp.send(message)  # read again from the file
    assert [r.accepted for r in result.recipients] == [True]
    assert again.accepted == result.accepted
    expected = message.as_bytes()
    assert [m.content for m in server.messages] == [expected, expected]


async def test_a_large_attachment_through_bdat(tmp_path: Path) -> None:
    mini = MiniSmtp()  # PIPELINING, CHUNKING, SIZE 10485760
    message = message_with(Attachment.from_path(large_file(tmp_path / "d.bin", 3 * 1024 * 1024)))
    content = message.content()
    assert isinstance(content, MessageContent)
    async with scripted_server(mini) as server, transport(server.port) as smtp:
        result = await smtp.send(message)
    assert result.transport_id == "MINI1"
    (transaction,) = mini.transactions
    assert transaction.via == "BDAT"
    assert transaction.content == message.as_bytes()
    assert f"SIZE={content.size}" in transaction.mail
    bdat = [c.line for c in mini.commands if c.verb == "BDAT"]
    assert len(bdat) > 5
    assert bdat[-1] == "BDAT 0 LAST"


async def test_too_large_for_the_server_sends_nothing(tmp_path: Path) -> None:
    mini = MiniSmtp()  # SIZE 10485760: the encoded 9 MiB is larger
    message = message_with(Attachment.from_path(large_file(tmp_path / "d.bin", 9 * 1024 * 1024)))
    async with scripted_server(mini) as server, transport(server.port) as smtp:
        with pytest.raises(MessageTooLarge, match="accepts at most 10485760"):
            await smtp.send(message)
    assert mini.transactions == []


async def test_dkim_over_a_streamed_attachment_verifies(
    tmp_path: Path, smtpd: ServerFactory
) -> None:
    server = smtpd()
    key = ed25519.Ed25519PrivateKey.generate()
    signer = DkimSigner("example.com", "s1", key)
    record = signer.dns_record().encode()
    message = message_with(Attachment.from_path(large_file(tmp_path / "d.bin", 2 * 1024 * 1024)))
    async with transport(server.port, dkim=signer) as smtp:
        await smtp.send(message)
    (received,) = server.messages
    assert received.content.endswith(message.as_bytes())

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return record if name.startswith(b"s1._domainkey.example.com") else None

    assert dkim.verify(received.content, dnsfunc=dnsfunc)


async def test_a_read_error_mid_data_drops_the_connection(
    tmp_path: Path, smtpd: ServerFactory
) -> None:
    server = smtpd(size_limit=None)
    failing = FailingFile(os.urandom(3_000_000), limit=2_000_000)
    message = message_with(Attachment.from_file(failing, "z.bin"))
    async with transport(server.port) as smtp:
        with pytest.raises(SourceError, match="Input/output error"):
            await smtp.send(message)
        # The server got no end of data: it discarded what it read. The
        # transport goes on with a new connection.
        ok = message_with(Attachment.from_file(io.BytesIO(b"fine" * 100), "ok.txt"))
        await smtp.send(ok)
    assert [m.content for m in server.messages] == [ok.as_bytes()]


async def test_a_read_error_mid_bdat_drops_the_connection(tmp_path: Path) -> None:
    mini = MiniSmtp()
    failing = FailingFile(os.urandom(3_000_000), limit=1_000_000)
    message = message_with(Attachment.from_file(failing, "z.bin"))
    async with scripted_server(mini) as server, transport(server.port) as smtp:
        with pytest.raises(SourceError, match="Input/output error"):
            await smtp.send(message)
    (transaction,) = mini.transactions
    assert transaction.content is None  # no BDAT LAST: nothing completed
    assert not transaction.completed
    assert "BDAT 0 LAST" not in [c.line for c in mini.commands]


async def test_a_file_changed_between_the_passes(tmp_path: Path, smtpd: ServerFactory) -> None:
    server = smtpd()
    path = large_file(tmp_path / "d.bin", 1024 * 1024)
    message = message_with(Attachment.from_path(path))

    class Tamper(DkimSigner):
        __slots__ = ()

        def sign_content(self, content: MessageContent) -> MessageContent:
            signed = super().sign_content(content)
            with path.open("ab") as handle:
                handle.write(b"changed after the first pass")
            return signed

    signer = Tamper("example.com", "s1", ed25519.Ed25519PrivateKey.generate())
    async with transport(server.port, dkim=signer) as smtp:
        with pytest.raises(SourceError, match="changed since the message was built"):
            await smtp.send(message)
    assert server.messages == []


async def test_a_missing_file_sends_nothing(tmp_path: Path, smtpd: ServerFactory) -> None:
    server = smtpd()
    path = tmp_path / "gone.bin"
    path.write_bytes(b"x")
    message = message_with(Attachment.from_path(path))
    path.unlink()
    async with transport(server.port) as smtp:
        with pytest.raises(SourceError, match=r"gone\.bin"):
            await smtp.send(message)
    assert server.messages == []


async def test_in_memory_and_streamed_messages_share_a_connection(
    tmp_path: Path, smtpd: ServerFactory
) -> None:
    server = smtpd()
    streamed = message_with(Attachment.from_path(large_file(tmp_path / "d.bin", 500_000)))
    small = message_with(Attachment(b"small", "s.txt"))
    async with transport(server.port) as smtp:
        results = await smtp.send_many([small, streamed, small, streamed, small], concurrency=3)
        stats = smtp.statistics()
    assert all(not isinstance(r, Exception) for r in results), results
    assert sorted(len(m.content) for m in server.messages) == sorted(
        len(m.as_bytes()) for m in (small, streamed, small, streamed, small)
    )
    assert stats is not None
