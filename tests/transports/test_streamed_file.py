"""FileTransport with streamed attachments: written a chunk at a time, nothing left on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from lettre.message import Attachment, SourceError
from lettre.transports.file import FileTransport
from streamed_support import LARGE, FailingFile, large_file, message_with

pytestmark = pytest.mark.anyio


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
