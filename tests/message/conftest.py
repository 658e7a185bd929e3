"""Helpers for the message-layer tests."""

from __future__ import annotations

import itertools
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

import lettre.message.mime as mime


def parse(data: bytes) -> EmailMessage:
    """Parse bytes with the standard library's modern parser."""
    message = BytesParser(_class=EmailMessage, policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def assert_wire_format(data: bytes) -> None:
    """CRLF line endings only, no line over 998 octets, headers end with a blank line."""
    assert b"\r\n\r\n" in data
    crlf = data.count(b"\r\n")
    assert data.count(b"\r") == crlf
    assert data.count(b"\n") == crlf
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert line[:1] not in (b"", b"\r", b"\n")
        if line[:1] not in (b" ", b"\t"):
            assert b":" in line


@pytest.fixture
def fixed_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make generated boundaries predictable: =_b1, =_b2, ..."""
    counter = itertools.count(1)
    monkeypatch.setattr(mime, "new_boundary", lambda: f"=_b{next(counter)}")
