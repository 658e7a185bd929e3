"""Every fast path of the message layer gives what the general path gives."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lettre.address import _FORBIDDEN, check_header_text
from lettre.errors import AddressError, MessageError
from lettre.message.headers import _UNSAFE, _fold, finish_header, render_msg_ids

# Text that mixes the characters the checks are about with ordinary ones.
_TRICKY = st.text(
    st.sampled_from(
        [*"ab Z~!\t\r\n\x00\x0b\x1f\x7f\x85\x9f\xa0é日😀", "\u2028", "\u2029", "\ud800", "\u200b"]
    ),
    max_size=40,
)
_ANY_TEXT = st.one_of(st.text(max_size=60), _TRICKY)


def test_printable_text_holds_no_forbidden_or_unsafe_character() -> None:
    # The prefilter of check_header_text and finish_header: exhaustively.
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if ch.isprintable():
            assert _FORBIDDEN.match(ch) is None, hex(code)
            assert _UNSAFE.match(ch) is None, hex(code)


@settings(max_examples=400)
@given(_ANY_TEXT)
def test_check_header_text_agrees_with_the_pattern(text: str) -> None:
    if _FORBIDDEN.search(text) is None:
        check_header_text(text, "the text")
    else:
        with pytest.raises(AddressError):
            check_header_text(text, "the text")


def _finish_header_reference(text: str) -> bytes:
    body = text[:-2]
    if _UNSAFE.search(body) is not None:
        raise MessageError("unsafe")
    data = text.encode("utf-8")
    if any(len(line) > 998 for line in data.split(b"\r\n")):
        raise MessageError("long")
    return data


@settings(max_examples=400)
@given(_ANY_TEXT, st.integers(min_value=0, max_value=1100))
def test_finish_header_agrees_with_the_reference(value: str, padding: int) -> None:
    for text in (f"X-Test: {value}\r\n", f"X-Test: {'a' * padding}{value}\r\n"):
        try:
            expected = _finish_header_reference(text)
        except (MessageError, UnicodeEncodeError) as exc:
            # A lone surrogate cannot be encoded: neither path writes it.
            with pytest.raises(type(exc)):
                finish_header(text)
        else:
            assert finish_header(text) == expected


@given(
    st.sampled_from(["Message-ID", "In-Reply-To", "References", "X"]),
    st.from_regex(r"<[!-;=?-~]{1,120}>", fullmatch=True),
)
def test_one_message_id_renders_as_folded(name: str, message_id: str) -> None:
    assert render_msg_ids(name, [message_id]) == _fold(name, [" " + message_id])
