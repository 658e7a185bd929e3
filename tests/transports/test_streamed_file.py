"""FileTransport with streamed attachments: written a chunk at a time, nothing left on failure."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from lettre.message import Attachment, Message, SourceError
from lettre.transports.file import FileTransport

pytestmark = pytest.mark.anyio

LARGE = 24 * 1024 * 1024 + 5


def large_file(path: Path, size: int = LARGE) -> Path:
    block = os.urandom(1024 * 1024)
    with path.open("wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
        handle.write(block[: size % len(block)])
    return path


def message_with(*attachments: Attachment) -> Message:
    builder = (
        Message.builder()
        .from_("alice@example.com")
        .to("bob@example.org")
        .subject("large")
        .text("attached\n")
    )
    for attachment in attachments:
        builder.attach(attachment)
    return builder.build()


class FailingFile(io.BytesIO):
    """Seekable; reading past ``limit`` fails like a disk error."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.limit:
            raise OSError(5, "Input/output error")
        return super().read(size)


async def test_a_large_attachment_is_written_as_as_bytes(tmp_path: Path) -> None:
    source = large_file(tmp_path / "video.mp4")
    out = tmp_path / "out"
    out.mkdir()
    message = message_with(Attachment.from_path(source))
    result = await FileTransport(out).send(message)
    assert result.transport_id is not None
    written = (out / f"{result.transport_id}.eml").read_bytes()
    assert written == message.as_bytes()
    assert len(written) > LARGE * 4 // 3


async def test_a_read_error_mid_send_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    failing = FailingFile(b"z" * 2_000_000, limit=1_000_000)
    message = message_with(Attachment.from_file(failing, "z.bin"))
    with pytest.raises(SourceError, match="Input/output error"):
        await FileTransport(out).send(message)
    assert list(out.iterdir()) == []


async def test_a_file_removed_before_the_send(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = tmp_path / "gone.pdf"
    path.write_bytes(b"%PDF")
    message = message_with(Attachment.from_path(path))
    path.unlink()
    with pytest.raises(SourceError, match=r"gone\.pdf"):
        await FileTransport(out, envelope=False).send(message)
    assert list(out.iterdir()) == []
