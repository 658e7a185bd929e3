"""Tests of the stdlib interop: EmailMessage to bytes and envelope, and back."""

from __future__ import annotations

import re
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.message import Message as Compat32Message
from email.parser import BytesParser

import pytest

from lettre.address import Address
from lettre.envelope import Envelope
from lettre.errors import AddressError, MessageError
from lettre.message import Message
from lettre.message.stdlib import email_message_to_bytes, envelope_from_email_message

from .conftest import assert_wire_format, parse


def stdlib_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.org>"
    msg["To"] = "Bob <bob@example.com>, carl@example.com"
    msg["Cc"] = "dave@example.com"
    msg["Bcc"] = "eve@example.com, bob@example.com"
    msg["Subject"] = "Grüße"
    msg["Message-ID"] = "<std@example.org>"
    msg["Date"] = "Tue, 04 Mar 2025 10:00:00 +0000"
    msg.set_content("Hello\nthere\n")
    msg.add_attachment(
        b"\x00\x01\x02", maintype="application", subtype="octet-stream", filename="a.bin"
    )
    return msg


def test_email_message_to_bytes() -> None:
    msg = stdlib_message()
    data = email_message_to_bytes(msg)
    assert_wire_format(data)
    assert b"Bcc" not in data
    assert b"eve@example.com" not in data
    assert msg["Bcc"] is not None  # the caller's message is untouched
    parsed = parse(data)
    assert parsed["Subject"] == "Grüße"
    assert next(iter(parsed.iter_attachments())).get_content() == b"\x00\x01\x02"


def test_resent_bcc_and_folded_bcc_removed() -> None:
    msg = EmailMessage(policy=policy.default)
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.org"
    msg["Bcc"] = ", ".join(f"hidden{i}@example.org" for i in range(20))
    msg["Resent-Bcc"] = "r@example.org"
    msg["X-After"] = "kept"
    msg.set_content("x")
    data = email_message_to_bytes(msg)
    assert b"hidden" not in data
    assert b"r@example.org" not in data
    assert parse(data)["X-After"] == "kept"


def test_compat32_message_with_bare_newlines() -> None:
    msg = Compat32Message()
    msg["From"] = "a@example.org"
    msg["To"] = "=?utf-8?q?B=C3=B6b?= <b@example.org>"
    msg.set_payload("line one\nline two\rline three\r\n")
    data = email_message_to_bytes(msg)  # type: ignore[arg-type]
    assert_wire_format(data)
    env = envelope_from_email_message(msg)  # type: ignore[arg-type]
    assert env.forward_paths == (Address("b@example.org"),)


def test_envelope_from_email_message() -> None:
    env = envelope_from_email_message(stdlib_message())
    assert env.reverse_path == Address("alice@example.org")
    assert [str(a) for a in env.forward_paths] == [
        "bob@example.com",
        "carl@example.com",
        "dave@example.com",
        "eve@example.com",
    ]


def test_envelope_prefers_sender_and_resent() -> None:
    msg = stdlib_message()
    msg["Sender"] = "list@example.org"
    assert envelope_from_email_message(msg).reverse_path == Address("list@example.org")
    msg["Resent-Date"] = "Wed, 05 Mar 2025 10:00:00 +0000"
    msg["Resent-From"] = "forwarder@example.net"
    msg["Resent-To"] = "new@example.net"
    env = envelope_from_email_message(msg)
    assert env.reverse_path == Address("forwarder@example.net")
    assert env.forward_paths == (Address("new@example.net"),)
    msg["Resent-Date"] = "Thu, 06 Mar 2025 10:00:00 +0000"
    with pytest.raises(MessageError, match="Resent"):
        envelope_from_email_message(msg)


def test_envelope_errors() -> None:
    msg = EmailMessage()
    msg["To"] = "b@example.org"
    with pytest.raises(MessageError, match="From"):
        envelope_from_email_message(msg)
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    with pytest.raises(MessageError, match="recipient"):
        envelope_from_email_message(msg)
    msg["To"] = "undisclosed-recipients:;"
    with pytest.raises(MessageError, match="recipient"):
        envelope_from_email_message(msg)
    with pytest.raises(TypeError):
        envelope_from_email_message("not a message")  # type: ignore[arg-type]


def test_hostile_stdlib_address_is_refused() -> None:
    msg = Compat32Message()
    msg["From"] = "a@example.org"
    msg["To"] = "alice@example.org)<bob@example.com>"
    with pytest.raises(AddressError):
        envelope_from_email_message(msg)  # type: ignore[arg-type]


def test_message_from_email_message_keeps_bytes() -> None:
    msg = stdlib_message()
    message = Message.from_email_message(msg)
    assert message.as_bytes() == email_message_to_bytes(msg)
    assert message.subject == "Grüße"
    assert message.message_id == "<std@example.org>"
    assert message.date is not None
    assert message.date.year == 2025
    assert [str(m.address) for m in message.bcc] == ["eve@example.com", "bob@example.com"]
    assert str(message.from_) == "Alice <alice@example.org>"
    assert message.body is None
    assert ("Subject", "Grüße") in message.headers
    assert all(name.lower() != "bcc" for name, _ in message.headers)
    assert len(message.envelope.forward_paths) == 4
    explicit = Envelope("x@example.org", ["y@example.org"])
    assert Message.from_email_message(msg, envelope=explicit).envelope is explicit


def test_to_email_message_and_back() -> None:
    original = (
        Message.builder()
        .from_("Åsa <asa@example.se>")
        .to("b@example.org")
        .bcc("hidden@example.org")
        .subject("Tjänare")
        .text("hej")
        .attach(b"\xff\x00", "blob.bin")
        .build()
    )
    converted = original.to_email_message()
    assert isinstance(converted, EmailMessage)
    assert converted["Subject"] == "Tjänare"
    assert converted["Bcc"] == "hidden@example.org"
    assert next(iter(converted.iter_attachments())).get_content() == b"\xff\x00"
    back = Message.from_email_message(converted)
    assert back.envelope == original.envelope
    assert back.message_id == original.message_id
    assert b"hidden@example.org" not in back.as_bytes()
    assert parse(back.as_bytes())["Subject"] == "Tjänare"


def test_prepare_message_uses_these_functions() -> None:
    from lettre.transports.base import prepare_message

    msg = stdlib_message()
    env, data, message_id = prepare_message(msg)
    assert env == envelope_from_email_message(msg)
    assert data == email_message_to_bytes(msg)
    assert message_id == "<std@example.org>"
    built = Message.builder().from_("a@example.org").to("b@example.org").build()
    env2, data2, id2 = prepare_message(built)
    assert (env2, data2, id2) == (built.envelope, built.as_bytes(), built.message_id)


def test_smtputf8_policy_message() -> None:
    msg = EmailMessage(policy=policy.SMTPUTF8)
    msg["From"] = "jörg@exämple.de"
    msg["To"] = "b@example.org"
    msg.set_content("x")
    data = email_message_to_bytes(msg)
    assert "jörg@exämple.de".encode() in data
    env = envelope_from_email_message(msg)
    assert env.needs_smtputf8
    assert Message.from_email_message(msg).needs_smtputf8


@pytest.mark.parametrize("make", ["builder", "compat32", "parsed"])
def test_address_errors_name_the_header_and_quote_the_address(make: str) -> None:
    from email.parser import BytesParser

    raw = b"From: alice@example.org\r\nTo: ok@example.com, bob@@x\r\nSubject: s\r\n\r\nhi\r\n"
    if make == "builder":
        msg: Compat32Message = EmailMessage()
        msg["From"] = "alice@example.org"
        msg["To"] = "ok@example.com, bob@@x"
    else:
        chosen = policy.compat32 if make == "compat32" else policy.default
        msg = BytesParser(policy=chosen).parsebytes(raw)
    with pytest.raises(AddressError) as info:
        envelope_from_email_message(msg)  # type: ignore[arg-type]
    assert str(info.value) == "To: 'bob@@x' has more than one @"


def _compat32(**headers: object) -> Compat32Message:
    msg = Compat32Message()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.org"
    for name, value in headers.items():
        msg[name] = value
    msg.set_payload("x")
    return msg


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("a\x00b", "the Subject header contains a NUL character"),
        ("a\rb", "the Subject header contains a bare CR"),
        (
            "a\r\nBcc: x@example.org",
            "the Subject header contains a line break that is not folding white space",
        ),
        ("a\n \nb", "the Subject header contains a line break that is not folding white space"),
    ],
)
def test_a_header_value_that_could_break_the_header_block_is_refused(
    value: str, error: str
) -> None:
    with pytest.raises(MessageError, match=f"^{re.escape(error)}$"):
        email_message_to_bytes(_compat32(Subject=value))  # type: ignore[arg-type]


def test_a_folded_header_value_is_kept() -> None:
    data = email_message_to_bytes(_compat32(Subject="a\n\tb"))  # type: ignore[arg-type]
    assert data == b"From: a@example.org\r\nTo: b@example.org\r\nSubject: a\r\n\tb\r\n\r\nx"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (Header("a\x00b"), "the Subject header contains a NUL character"),
        (
            Header("a\nnot a field"),
            "the Subject header contains a line break that is not folding white space",
        ),
        (
            # Rendered, this would be a field of its own: checked as the text it stands for.
            Header("a\nBcc: victim@example.net"),
            "the Subject header contains a line break that is not folding white space",
        ),
    ],
)
def test_header_objects_are_checked_as_their_text(value: Header, error: str) -> None:
    with pytest.raises(MessageError, match=f"^{re.escape(error)}$"):
        email_message_to_bytes(_compat32(Subject=value))  # type: ignore[arg-type]
    data = email_message_to_bytes(_compat32(Subject=Header("plain")))  # type: ignore[arg-type]
    assert data == b"From: a@example.org\r\nTo: b@example.org\r\nSubject: plain\r\n\r\nx"


def test_raw_8bit_headers_with_bare_line_feeds_get_crlf() -> None:
    # compat32 writes a header with raw 8-bit bytes as it was parsed, bare LF included.
    raw = b"From: a@example.org\nTo: b@example.org\nSubject: caf\xc3\xa9\n more\n\nbody\n"
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    data = email_message_to_bytes(msg)  # type: ignore[arg-type]
    assert data == raw.replace(b"\n", b"\r\n")


def test_long_headers_keep_their_continuation_lines() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.org"
    msg["Subject"] = "word " * 30
    msg.set_content("hi")
    data = email_message_to_bytes(msg)
    head = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    start = head.index(next(line for line in head if line.startswith(b"Subject:")))
    assert head[start + 1].startswith(b" word")
    assert parse(data)["Subject"] == "word " * 30


def test_an_unreadable_date_is_no_date() -> None:
    raw = b"From: a@example.org\r\nTo: b@example.org\r\nDate: not a date\r\n\r\nbody\r\n"
    message = Message.from_email_message(BytesParser(policy=policy.compat32).parsebytes(raw))  # type: ignore[arg-type]
    assert message.date is None
    good = raw.replace(b"not a date", b"Tue, 04 Mar 2025 10:00:00 +0100")
    dated = Message.from_email_message(BytesParser(policy=policy.compat32).parsebytes(good))  # type: ignore[arg-type]
    assert dated.date is not None
    assert dated.date.isoformat() == "2025-03-04T10:00:00+01:00"


def test_sender_must_be_one_mailbox() -> None:
    msg = stdlib_message()
    msg["Sender"] = "s@example.org, t@example.org"
    explicit = Envelope("x@example.org", ["y@example.org"])
    with pytest.raises(AddressError, match=r"^the Sender header must hold exactly one mailbox$"):
        Message.from_email_message(msg, envelope=explicit)


def test_to_email_message_without_bcc_has_no_bcc() -> None:
    message = Message.builder().from_("a@example.org").to("b@example.org").text("hi").build()
    converted = message.to_email_message()
    assert converted["Bcc"] is None
    assert converted["To"] == "b@example.org"


def test_empty_address_headers_are_skipped() -> None:
    msg = _compat32(Cc=" ")
    msg["Cc"] = "c@example.org"
    env = envelope_from_email_message(msg)  # type: ignore[arg-type]
    assert [str(a) for a in env.forward_paths] == ["b@example.org", "c@example.org"]
    assert [str(m) for m in Message.from_email_message(msg).cc] == ["c@example.org"]  # type: ignore[arg-type]


def test_a_payload_of_the_wrong_kind_is_a_message_error() -> None:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "b@example.com"
    message.set_payload(42)  # type: ignore[arg-type]
    with pytest.raises(MessageError, match="could not serialise the message"):
        email_message_to_bytes(message)


class _Renders(Header):
    """A header object whose text looks harmless but whose rendering is not."""

    def __init__(self, rendered: str) -> None:
        super().__init__("harmless")
        self.rendered = rendered

    def encode(
        self, splitchars: str = ";, \t", maxlinelen: int | None = None, linesep: str = "\n"
    ) -> str:
        return self.rendered


@pytest.mark.parametrize(
    ("rendered", "error"),
    [
        ("a\x00b", "the message's header block contains a NUL character"),
        ("a\nnot a field", "the message's header block holds a malformed line: b'not a field'"),
    ],
)
def test_the_rendered_header_block_is_checked_too(rendered: str, error: str) -> None:
    with pytest.raises(MessageError, match=f"^{re.escape(error)}$"):
        email_message_to_bytes(_compat32(Subject=_Renders(rendered)))  # type: ignore[arg-type]
