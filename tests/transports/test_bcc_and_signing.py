"""What all three transports share: Bcc stays out of the bytes; signers sign them."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from lettre.message.message import Message
from lettre.transports.base import BaseTransport, Signer
from lettre.transports.file import FileTransport
from lettre.transports.memory import MemoryTransport
from lettre.transports.sendmail import SendmailTransport

pytestmark = pytest.mark.anyio

Invocations = Callable[[], list[Any]]
KINDS = ["sendmail", "file", "memory"]


class Stamp:
    """A stand-in signer: prepends one header, like a DKIM signer does."""

    def sign(self, data: bytes) -> bytes:
        return b"X-Stamp: signed\r\n" + data


def make_transport(
    kind: str, recorder: Path, tmp_path: Path, dkim: Signer | None = None
) -> BaseTransport:
    if kind == "sendmail":
        return SendmailTransport(recorder, dkim=dkim)
    if kind == "file":
        outbox = tmp_path / "outbox"
        outbox.mkdir(exist_ok=True)
        return FileTransport(outbox, dkim=dkim)
    return MemoryTransport(dkim=dkim)


def written(
    kind: str, transport: BaseTransport, invocations: Invocations, transport_id: str | None
) -> tuple[bytes, list[str]]:
    """The bytes the transport wrote and the recipients it was told about."""
    if kind == "sendmail":
        (run,) = invocations()
        return run.stdin, run.argv[run.argv.index("--") + 1 :]
    if kind == "file":
        assert isinstance(transport, FileTransport)
        assert transport_id is not None
        envelope_file = transport.directory / f"{transport_id}.json"
        recipients = json.loads(envelope_file.read_text("utf-8"))["forward_paths"]
        return transport.path_of(transport_id).read_bytes(), recipients
    assert isinstance(transport, MemoryTransport)
    (sent,) = transport.outbox
    return sent.data, [str(a) for a in sent.envelope.forward_paths]


@pytest.mark.parametrize("kind", KINDS)
async def test_bcc_is_in_the_envelope_never_in_the_bytes(
    kind: str, recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    transport = make_transport(kind, recorder, tmp_path)
    message = (
        Message.builder()
        .from_("alice@example.com")
        .to("bob@example.com")
        .bcc("Hidden Person <hidden@example.org>", "blind@example.net")
        .subject("hi")
        .text("hello")
        .build()
    )

    result = await transport.send(message)

    data, recipients = written(kind, transport, invocations, result.transport_id)
    assert recipients == ["bob@example.com", "hidden@example.org", "blind@example.net"]
    assert data == message.as_bytes()
    lowered = data.lower()
    # No Bcc field (the random Message-ID may spell "bcc" by chance).
    assert not any(line.startswith(b"bcc:") for line in lowered.split(b"\r\n"))
    assert b"hidden" not in lowered
    assert b"blind" not in lowered
    assert result.accepted == ("bob@example.com", "hidden@example.org", "blind@example.net")


@pytest.mark.parametrize("kind", KINDS)
async def test_stdlib_bcc_is_removed(
    kind: str, recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    transport = make_transport(kind, recorder, tmp_path)
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["To"] = "bob@example.com"
    message["Bcc"] = "hidden@example.org"
    message["Subject"] = "hi"
    message.set_content("hello")

    result = await transport.send(message)

    data, recipients = written(kind, transport, invocations, result.transport_id)
    assert recipients == ["bob@example.com", "hidden@example.org"]
    assert b"hidden" not in data.lower()
    assert b"bcc" not in data.lower()
    assert b"\r\nSubject: hi\r\n" in data


@pytest.mark.parametrize("kind", KINDS)
async def test_signer_signs_the_bytes_written(
    kind: str, recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    transport = make_transport(kind, recorder, tmp_path, dkim=Stamp())
    message = (
        Message.builder()
        .from_("alice@example.com")
        .to("bob@example.com")
        .subject("hi")
        .text("hello")
        .build()
    )

    result = await transport.send(message)

    data, _ = written(kind, transport, invocations, result.transport_id)
    assert data == b"X-Stamp: signed\r\n" + message.as_bytes()
    assert result.message_id == message.message_id
