"""Tests of header rendering: encoded words, folding, parameters, the final check."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.header import decode_header, make_header

import pytest

from lettre.address import Address, Mailbox
from lettre.errors import MessageError
from lettre.message.headers import (
    check_value,
    encode_words,
    finish_header,
    format_date,
    normalize_msg_id,
    render_address_list,
    render_msg_ids,
    render_params,
    render_structured,
    render_unstructured,
    validate_name,
)

from .conftest import parse


def _reparse(header: bytes) -> str:
    name = header.split(b":", 1)[0].decode()
    return str(parse(header + b"\r\n")[name])


def test_short_ascii_subject_is_one_line() -> None:
    assert render_unstructured("Subject", "Hello there") == b"Subject: Hello there\r\n"


def test_empty_subject() -> None:
    header = render_unstructured("Subject", "")
    assert header == b"Subject:\r\n"
    assert _reparse(header) == ""


def test_long_ascii_subject_folds_at_spaces() -> None:
    subject = " ".join(f"word{i}" for i in range(40))
    header = render_unstructured("Subject", subject)
    lines = header.split(b"\r\n")[:-1]
    assert len(lines) > 1
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(b" ") for line in lines[1:])
    assert _reparse(header) == subject


@pytest.mark.parametrize(
    "subject",
    [
        "Grüße aus Köln",
        "日本語の件名です。とても長い件名なので、複数のエンコードされた単語に分割する必要があります。",
        "Emoji 🎉🎉🎉 party",
        "=?utf-8?q?not_really?= an encoded word",
        "  leading and trailing spaces  ",
        "multiple   spaces\tand\ttabs",
        "x" * 2000,
        "mixed ascii and ñ and more ascii words that go on and on to force folding ä",
        " ",
        "?=?=?=",
    ],
)
def test_unstructured_round_trip(subject: str) -> None:
    header = render_unstructured("Subject", subject)
    assert header.isascii()
    for line in header.split(b"\r\n")[:-1]:
        assert len(line) <= 78
    assert _reparse(header) == subject


def test_encoded_words_are_at_most_75_characters_and_whole_characters() -> None:
    for text in ("ä" * 200, "😀" * 50, "a" * 300, "x ä " * 40):
        words = encode_words(text)
        assert all(len(w) <= 75 for w in words)
        for word in words:
            # Each word decodes on its own: no character was split.
            assert str(parse(b"Subject: " + word.encode() + b"\r\n\r\n")["Subject"])


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\r\nBcc: x@y.z", "a\x00b", "a\u2028b", "a\x1bb"])
def test_unstructured_rejects_controls(bad: str) -> None:
    with pytest.raises(MessageError):
        render_unstructured("Subject", bad)


@pytest.mark.parametrize(
    "text",
    [
        "Subject: a\r\nBcc: x@example.org\r\n",
        "Subject: a\nb\r\n",
        "Subject: a\rb\r\n",
        "Subject: a\r\n\r\n",
        "Subject: a\r\n \r\n",
        "Subject: a\x00\r\n",
        "Subject: a",
        "Subject: " + "x" * 1000 + "\r\n",
    ],
)
def test_final_check_refuses_unsafe_headers(text: str) -> None:
    with pytest.raises(MessageError):
        finish_header(text)


def test_final_check_accepts_folds() -> None:
    assert finish_header("Subject: a\r\n b\r\n\tc\r\n") == b"Subject: a\r\n b\r\n\tc\r\n"


@pytest.mark.parametrize("name", ["X-Custom", "List-Id", "a", "X" * 76])
def test_valid_header_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "X Custom", "X:Custom", "X-Ä", "X\r\n", "X" * 77, "X\x00"])
def test_invalid_header_names(name: str) -> None:
    with pytest.raises(MessageError):
        validate_name(name)


def test_address_list_rendering() -> None:
    header = render_address_list(
        "To",
        [
            Mailbox("a@example.org", "Alice"),
            Mailbox("b@example.org", "Smith, Bob"),
            Mailbox("c@example.org", "Åsa Ek"),
            Mailbox("d@bücher.example"),
            Address("e@example.org"),
            Mailbox("f@example.org", 'Say "hi"'),
        ],
    )
    text = header.decode("ascii")
    assert "Alice <a@example.org>" in text
    assert '"Smith, Bob" <b@example.org>' in text
    assert "=?utf-8?q?=C3=85sa_Ek?= <c@example.org>" in text
    assert "d@xn--bcher-kva.example" in text
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    parsed = parse(header + b"\r\n")["To"]
    names = [(a.display_name, a.addr_spec) for a in parsed.addresses]
    assert names == [
        ("Alice", "a@example.org"),
        ("Smith, Bob", "b@example.org"),
        ("Åsa Ek", "c@example.org"),
        ("", "d@xn--bcher-kva.example"),
        ("", "e@example.org"),
        ('Say "hi"', "f@example.org"),
    ]


def test_smtputf8_addresses_are_raw_utf8() -> None:
    header = render_address_list("From", [Mailbox("jörg@exämple.de", "Jörg")])
    assert "jörg@exämple.de".encode() in header
    assert b"=?utf-8?q?J=C3=B6rg?=" in header


def test_long_address_list_folds_between_mailboxes() -> None:
    boxes = [Mailbox(f"user{i}@example.org", f"User Number {i}") for i in range(30)]
    header = render_address_list("To", boxes)
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    parsed = parse(header + b"\r\n")["To"]
    assert [a.addr_spec for a in parsed.addresses] == [f"user{i}@example.org" for i in range(30)]


def test_empty_address_list_is_an_error() -> None:
    with pytest.raises(MessageError):
        render_address_list("To", [])


def test_msg_ids() -> None:
    assert normalize_msg_id("abc@example.org") == "<abc@example.org>"
    assert normalize_msg_id("<abc@example.org>") == "<abc@example.org>"
    for bad in ("", "<>", "a b@c", "<a<b@c>", "a@b\r\nX: y", "x" * 300, "ä@b"):
        with pytest.raises(MessageError):
            normalize_msg_id(bad)
    ids = [f"<id{i}.{'x' * 20}@example.org>" for i in range(10)]
    header = render_msg_ids("References", ids)
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    assert str(parse(header + b"\r\n")["References"]).split() == ids


def test_format_date() -> None:
    date = datetime(2025, 3, 4, 10, 5, 9, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    assert format_date(date) == "Tue, 04 Mar 2025 10:05:09 -0530"
    assert format_date(datetime(2024, 12, 29, tzinfo=timezone.utc)) == (
        "Sun, 29 Dec 2024 00:00:00 +0000"
    )
    with pytest.raises(MessageError, match="timezone"):
        format_date(datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "filename",
    [
        "report.pdf",
        "with space.pdf",
        'quote"and\\backslash.txt',
        "räkning.pdf",
        "日本語のファイル名" * 6 + ".doc",
        "a" * 255,
        "semi;colon=equals.txt",
    ],
)
def test_filename_parameters_round_trip(filename: str) -> None:
    header = render_params("Content-Disposition", "attachment", [("filename", filename)])
    assert header.isascii()
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    message = parse(header + b"\r\nbody")
    assert message.get_filename() == filename


def test_structured_values_must_be_ascii() -> None:
    assert render_structured("X-Priority", "1 (Highest)") == b"X-Priority: 1 (Highest)\r\n"
    with pytest.raises(MessageError):
        render_structured("X-Thing", "ä")


def test_long_quoted_display_name_folds_between_words() -> None:
    name = "Department of Redundancy Department, Office of the Assistant (Deputy) Manager"
    header = render_address_list("From", [Mailbox("office@example.org", name)])
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    assert b'"Department,"' in header
    (parsed,) = parse(header + b"\r\n")["From"].addresses
    assert parsed.display_name == name
    assert parsed.addr_spec == "office@example.org"


# --- error texts and boundaries ----------------------------------------------------


def _exactly(text: str) -> str:
    return "^" + re.escape(text) + "$"


def test_header_error_texts() -> None:
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: validate_name(5), TypeError, "a header name must be a str, not int"),  # type: ignore[arg-type]
        (
            lambda: validate_name("X Y"),
            MessageError,
            "invalid header name 'X Y': use 1 to 76 printable ASCII characters without "
            "spaces or ':'",
        ),
        (lambda: check_value(5, "the Subject"), TypeError, "the Subject must be a str, not int"),  # type: ignore[arg-type]
        (
            lambda: check_value("a\nb", "the Subject"),
            MessageError,
            "the Subject contains the control character U+000A; line breaks and control "
            "characters are not allowed",
        ),
        (
            lambda: finish_header("Subject: a"),
            MessageError,
            "internal error: a header line must end with CRLF",
        ),
        (
            lambda: finish_header("Subject: a\r\nb\r\n"),
            MessageError,
            "refusing to write header 'Subject': unsafe character U+000D in the value",
        ),
        (
            lambda: finish_header("Subject: " + "x" * 1000 + "\r\n"),
            MessageError,
            "a line of header 'Subject' exceeds 998 octets",
        ),
        (
            lambda: render_structured("Content-Type", "ä"),
            MessageError,
            "the Content-Type header must be ASCII",
        ),
        (
            lambda: render_address_list("To", []),
            MessageError,
            "the To header needs at least one address",
        ),
        (
            lambda: normalize_msg_id("a b@c", "the In-Reply-To ID"),
            MessageError,
            "invalid the In-Reply-To ID 'a b@c': expected <id@host> in printable ASCII "
            "without spaces",
        ),
        (
            lambda: render_msg_ids("References", []),
            MessageError,
            "the References header needs at least one message ID",
        ),
        (
            lambda: format_date(datetime(2025, 1, 1)),
            MessageError,
            "the Date must be timezone-aware, e.g. datetime.now(timezone.utc)",
        ),
    ]
    for build, error, message in cases:
        with pytest.raises(error, match=_exactly(message)):
            build()


def test_header_line_limits_at_the_boundaries() -> None:
    # 998 octets on a line are allowed, 999 are not; CRLF is not counted.
    line = "Subject: " + "x" * (998 - 9)
    assert finish_header(line + "\r\n") == (line + "\r\n").encode()
    with pytest.raises(MessageError, match="exceeds 998 octets"):
        finish_header(line + "x\r\n")
    # Several lines, each within the limit, may add up to more.
    folded = "Subject: " + "x" * 900 + "\r\n " + "y" * 900 + "\r\n"
    assert finish_header(folded) == folded.encode()
    # Non-ASCII text is counted in octets.
    wide = "Subject: " + "é" * 494 + "x"  # 998 octets
    assert len(finish_header(wide + "\r\n")) == 1000
    with pytest.raises(MessageError, match="exceeds 998 octets"):
        finish_header(wide + "x\r\n")


def test_message_id_length_at_the_boundary() -> None:
    # At most 250 characters with the angle brackets.
    longest = "x" * 242 + "@b.org"
    assert normalize_msg_id(longest) == f"<{longest}>"
    with pytest.raises(MessageError, match="invalid a message ID"):
        normalize_msg_id("x" + longest)


def test_dates_at_the_edges_of_the_offsets() -> None:
    just_west = timezone(timedelta(minutes=-1))
    assert format_date(datetime(2025, 1, 1, tzinfo=just_west)) == (
        "Wed, 01 Jan 2025 00:00:00 -0001"
    )
    assert format_date(datetime(2025, 1, 1, tzinfo=timezone.utc)) == (
        "Wed, 01 Jan 2025 00:00:00 +0000"
    )
    far_east = timezone(timedelta(hours=14))
    assert format_date(datetime(1999, 12, 31, 23, 59, 59, tzinfo=far_east)) == (
        "Fri, 31 Dec 1999 23:59:59 +1400"
    )
    for month in range(1, 13):
        day = datetime(2025, month, 1, tzinfo=timezone.utc)
        assert format_date(day).split()[2] == day.strftime("%b")
    for offset in range(7):
        day = datetime(2025, 1, 6 + offset, tzinfo=timezone.utc)  # Monday 6 January
        assert format_date(day).startswith(day.strftime("%a") + ",")


def test_structured_values_fold_at_spaces_only_when_too_long() -> None:
    # 78 columns: "X-A: " and 73 octets fit on one line, 74 do not.
    assert render_structured("X-A", "x" * 73) == b"X-A: " + b"x" * 73 + b"\r\n"
    assert render_structured("X-A", "x" * 74) == b"X-A:\r\n " + b"x" * 74 + b"\r\n"
    assert render_structured("X-A", "a  b\tc") == b"X-A: a  b\tc\r\n"
    long = "a " * 50
    assert render_structured("X-Long", long) == (
        b"X-Long:" + b" a" * 35 + b"\r\n" + b" a" * 15 + b"\r\n"
    )
    assert render_structured("X-Long", "b  " * 30) == (b"X-Long:" + b" b" * 30 + b"\r\n")


def test_structured_header_error_texts() -> None:
    with pytest.raises(
        MessageError,
        match=_exactly(
            "the X-A header contains the control character U+000A; line breaks and control "
            "characters are not allowed"
        ),
    ):
        render_structured("X-A", "a\nb")
    with pytest.raises(TypeError, match=_exactly("a header name must be a str, not bytes")):
        validate_name(b"X-A")  # type: ignore[arg-type]


def test_display_name_with_an_overlong_word_becomes_encoded_words() -> None:
    # Quoted word by word, one word would still be longer than a raw word may be.
    name = "Dr " + "x" * 1000 + " Smith, Jr"
    header = render_address_list("From", [Mailbox("office@example.org", name)])
    assert header.startswith(b"From: =?utf-8?q?Dr_xxx")
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    # RFC 2047 decoding (the modern parser adds a space between encoded words of a phrase).
    unfolded = re.sub(r"\r\n[ \t]", " ", header.decode("ascii")).strip()
    phrase, _, addr = unfolded.removeprefix("From: ").rpartition(" ")
    assert str(make_header(decode_header(phrase))) == name
    assert addr == "<office@example.org>"


def test_msg_id_brackets_must_come_in_pairs() -> None:
    for text in ("<abc@example.org", "abc@example.org>"):
        with pytest.raises(
            MessageError,
            match="^" + re.escape(f"invalid a message ID {text!r}: expected <id@host>"),
        ):
            normalize_msg_id(text)
    with pytest.raises(
        MessageError,
        match=_exactly(
            "the In-Reply-To ID contains the control character U+000D; line breaks and "
            "control characters are not allowed"
        ),
    ):
        normalize_msg_id("a@b\r\nX: y", "the In-Reply-To ID")


def test_structured_values_fold_at_spaces_not_at_tabs() -> None:
    header = render_structured("X-Long", "a\tb " * 30)
    assert header == (b"X-Long:" + b" a\tb" * 17 + b"\r\n" + b" a\tb" * 13 + b"\r\n")


def test_structured_value_that_just_fits_keeps_its_spaces() -> None:
    # 78 columns exactly: written as it is, double space included (not refolded).
    value = "a  " + "x" * 70
    assert render_structured("X-A", value) == b"X-A: " + value.encode() + b"\r\n"
