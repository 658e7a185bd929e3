"""Large files, failing files and messages that attach them: for the streamed-attachment tests."""

from __future__ import annotations

import io
import os
from pathlib import Path

from lettre.message import Attachment, Message

#: The size of a large attachment: 24 MiB and 5 octets.
LARGE = 24 * 1024 * 1024 + 5


def large_file(path: Path, size: int = LARGE) -> Path:
    """Write ``size`` random octets to ``path`` a mebibyte at a time; returns ``path``."""
    block = os.urandom(1024 * 1024)
    with path.open("wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
        handle.write(block[: size % len(block)])
    return path


def message_with(*attachments: Attachment) -> Message:
    """A short text message carrying ``attachments``."""
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
