"""Every fast path of the message layer gives what the general path gives."""

from __future__ import annotations

import itertools
import re
import sys
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lettre.message.builder as builder_module
import lettre.message.mime as mime
from lettre.address import _FORBIDDEN, Mailbox, Mailboxes, check_header_text
from lettre.envelope import Envelope
from lettre.errors import AddressError, MessageError
from lettre.message import (
    Attachment,
    ContentType,
    Message,
    MessageBuilder,
    MultiPart,
    SinglePart,
    TransferEncoding,
)
from lettre.message.headers import (
    _UNSAFE,
    _fold,
    finish_header,
    format_date,
    render_address_field,
    render_address_list,
    render_msg_ids,
)
from lettre.message.mime import (
    TEXT_HTML,
    TEXT_PLAIN,
    Chunks,
    Part,
    _encode_text,
    _normalize_text,
    part_header_block,
    part_header_fields,
    render_part_headers,
    resolve,
    text_part,
    write_body,
)
from lettre.transports.base import prepare_message

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


# Text bodies: every kind of line ending, NUL, long lines, non-ASCII.
_BODY_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.sampled_from(
            [
                "a",
                "word ",
                "\r\n",
                "\n",
                "\r",
                "\r\r\n",
                "\x00",
                "\t",
                "é",
                "日",
                "=",
                "x" * 77,
                "y" * 80,
            ]
        ),
        max_size=40,
    ).map("".join),
)
_TEXT_TYPES = st.sampled_from(
    [
        TEXT_PLAIN,
        TEXT_HTML,
        ContentType("text/plain; charset=us-ascii"),
        ContentType("text/plain; charset=iso-8859-1"),
        ContentType("text/csv; charset=UTF-8"),
    ]
)


@settings(max_examples=400)
@given(_BODY_TEXT, _TEXT_TYPES)
def test_text_part_is_the_resolved_single_part(text: str, ctype: ContentType) -> None:
    try:
        expected = resolve(SinglePart(text, ctype))
    except MessageError:
        with pytest.raises(MessageError):
            text_part(text, ctype)
        return
    assert text_part(text, ctype) == expected


@settings(max_examples=400)
@given(_BODY_TEXT, st.sampled_from(["utf-8", "us-ascii", "utf-16", "latin-1"]))
def test_text_is_normalised_as_before(text: str, charset: str) -> None:
    try:
        expected = _normalize_text(text).encode(charset)
    except UnicodeError:
        return
    assert _encode_text(text, charset) == expected
    assert SinglePart(text, f"text/plain; charset={charset}").body == expected


def _fixed(builder: MessageBuilder) -> MessageBuilder:
    return (
        builder.from_("Sender <sender@example.com>")
        .to("Recipient <rcpt0@example.com>")
        .subject("Fast paths")
        .date(datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
        .message_id("<fast.path@example.com>")
    )


@settings(max_examples=200)
@given(_BODY_TEXT, st.booleans())
def test_builder_text_and_html_match_an_explicit_body(text: str, html: bool) -> None:
    builder = _fixed(Message.builder())
    explicit = _fixed(Message.builder())
    if html:
        builder.html(text)
        explicit.body(SinglePart(text, "text/html"))
    else:
        builder.text(text)
        explicit.body(SinglePart(text, "text/plain"))
    message = builder.build()
    assert message.as_bytes() == explicit.build().as_bytes()
    assert message.body == resolve(SinglePart(text, "text/html" if html else "text/plain"))


@settings(max_examples=100)
@given(_BODY_TEXT, _BODY_TEXT)
def test_alternative_of_resolved_parts_matches_an_explicit_tree(text: str, html: str) -> None:
    tree = MultiPart("alternative", [SinglePart(text, "text/plain"), SinglePart(html, "text/html")])
    counter = itertools.count()
    boundaries = [f"=_fixed{next(counter)}" for _ in range(2)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mime, "new_boundary", iter(boundaries).__next__)
        built = _fixed(Message.builder()).text(text).html(html).build().as_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mime, "new_boundary", iter(boundaries).__next__)
        explicit = _fixed(Message.builder()).body(tree).build().as_bytes()
    assert built == explicit


def test_text_of_bytes_keeps_the_general_path() -> None:
    message = _fixed(Message.builder()).text(b"raw\r\n").build()  # type: ignore[arg-type]
    assert isinstance(message.body, SinglePart)
    assert message.body.content_type == ContentType("text/plain")
    assert message.body.transfer_encoding is TransferEncoding.SEVEN_BIT


_MAILBOX_TEXT = st.sampled_from(
    [
        "a@example.com",
        "Sender <sender@example.com>",
        '"Doe, John" <john@example.org>',
        "Åsa Ek <åsa@exämple.se>",
        "=?utf-8?q?J=C3=B6rg?= <jorg@example.de>",
        "x" * 70 + " <long@example.com>",
        "<bare@example.net>",
        "postmaster@[192.0.2.1]",
    ]
)


@given(st.lists(_MAILBOX_TEXT, min_size=1, max_size=4), st.sampled_from(["From", "To", "Reply-To"]))
def test_address_field_is_the_list_and_its_text(texts: list[str], name: str) -> None:
    mailboxes = [Mailbox.parse(text) for text in texts]
    rendered, text = render_address_field(name, mailboxes)
    assert rendered == render_address_list(name, mailboxes)
    assert text == str(Mailboxes(mailboxes))


@given(st.lists(_MAILBOX_TEXT, min_size=1, max_size=4), _MAILBOX_TEXT)
def test_envelope_of_validated_addresses_is_the_checked_one(
    recipients: list[str], sender: str
) -> None:
    forward = [Mailbox.parse(text).address for text in recipients]
    reverse = Mailbox.parse(sender).address
    fast = Envelope._of(reverse, forward)
    assert fast == Envelope(reverse, forward)
    assert fast.forward_paths == Envelope(reverse, forward).forward_paths
    with pytest.raises(MessageError):
        Envelope._of(reverse, [])


def _leaf_parts() -> list[Part]:
    return [
        text_part("hello\n", TEXT_PLAIN),
        text_part("h\u00e9llo\n" * 3, TEXT_HTML),
        resolve(SinglePart(b"\x00\x01", "application/octet-stream")),
        resolve(SinglePart("x", "text/plain", headers=[("Content-Description", "a note")])),
        Attachment(b"data", "r\u00e9sum\u00e9.pdf").to_part(),
        SinglePart(b"img", "image/png", disposition="inline", content_id="logo@example"),
    ]


def test_part_header_block_is_the_headers_and_the_fields() -> None:
    parts = _leaf_parts()
    parts.append(resolve(MultiPart("mixed", [text_part("a\n", TEXT_PLAIN), _leaf_parts()[4]])))
    for leaf in parts:
        part = resolve(leaf)
        out: Chunks = []
        render_part_headers(part, out)
        assert part_header_block(part) == (b"".join(out), part_header_fields(part))


def test_generated_date_is_now_to_the_second() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    date, text = builder_module._now()
    after = datetime.now(timezone.utc).replace(microsecond=0)
    assert before <= date <= after
    assert date.microsecond == 0
    assert date.tzinfo is timezone.utc
    assert text == format_date(date)


def test_generated_message_id_has_the_token_urlsafe_form() -> None:
    ids = {builder_module._new_message_id("example.org") for _ in range(200)}
    assert len(ids) == 200
    for message_id in ids:
        assert re.fullmatch(r"<[A-Za-z0-9_-]{24}@example\.org>", message_id)
    # Both URL-safe characters occur: the alphabet is RFC 4648 section 5's.
    assert {"-", "_"} <= set("".join(ids))


def test_mailbox_text_arguments_parse_as_a_list() -> None:
    one = Message.builder().to("a@example.com, Bob <b@example.com>")
    several = Message.builder().to("a@example.com", ["Bob <b@example.com>"])
    assert one._to == several._to == list(Mailboxes.parse("a@example.com, Bob <b@example.com>"))
    with pytest.raises(AddressError):
        Message.builder().to("not an address")


def _general_bytes(message: Message) -> bytes:
    """What as_bytes gives for a message with a body, through write_body."""
    body = message.body
    assert body is not None
    out: Chunks = [message._head]
    write_body(body, out)
    if isinstance(body, SinglePart) and body.body and not out[-1].endswith(b"\r\n"):
        out.append(b"\r\n")
    return b"".join(out)


@pytest.mark.parametrize(
    "part",
    [
        SinglePart("plain text\n", "text/plain"),
        SinglePart("", "text/plain"),
        SinglePart(b"no final line break", "text/plain", transfer_encoding="7bit"),
        SinglePart(b"two\r\nlines", "application/octet-stream", transfer_encoding="7bit"),
        SinglePart(b"", "application/octet-stream", transfer_encoding="7bit"),
        SinglePart("8 bit: \u00e9\n", "text/plain", transfer_encoding="8bit"),
        SinglePart("8 bit without break: \u00e9", "text/plain", transfer_encoding="8bit"),
        SinglePart(b"From: x\r\n\r\nbody", "message/rfc822"),
        SinglePart("quoted \u00e9", "text/plain"),
        SinglePart(b"\x00\x01\x02", "application/octet-stream"),
    ],
)
def test_single_part_bytes_match_the_general_path(part: SinglePart) -> None:
    message = _fixed(Message.builder()).body(part).build()
    assert message.as_bytes() == _general_bytes(message)
    envelope, data, message_id = prepare_message(message)
    assert (envelope, data, message_id) == (
        message.envelope,
        message.as_bytes(),
        message.message_id,
    )


def test_builder_gives_a_new_builder_each_time() -> None:
    first, second = Message.builder(), Message.builder()
    assert isinstance(first, MessageBuilder)
    assert isinstance(second, MessageBuilder)
    assert first is not second
