"""Connecting to an address literal skips the address race; names still race."""

from __future__ import annotations

import pytest

from lettre.smtp.asyncio_stream import _is_address_literal


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("2001:db8::25", True),
        ("localhost", False),
        ("mail.example.com", False),
        ("127.0.0.1.example.com", False),
        ("", False),
    ],
)
def test_address_literals_are_told_from_names(host: str, literal: bool) -> None:
    assert _is_address_literal(host) is literal
