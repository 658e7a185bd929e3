"""Tests of MessageBuilder and Message: the API, its errors and the envelope."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from lettre.address import Address, Mailbox, Mailboxes
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

from .conftest import assert_wire_format, parse

DATE = datetime(2025, 3, 4, 10, 0, tzinfo=timezone.utc)


def base() -> MessageBuilder:
    return Message.builder().from_("Alice <alice@example.org>").to("bob@example.com")


def test_minimal_message() -> None:
    message = base().subject("Hi").text("Hello").build()
    data = message.as_bytes()
    assert_wire_format(data)
    parsed = parse(data)
    assert parsed["From"] == "Alice <alice@example.org>"
    assert parsed["To"] == "bob@example.com"
    assert parsed["Subject"] == "Hi"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content() == "Hello\r\n"
    assert parsed["Message-ID"] == message.message_id
    assert parsed["Date"].datetime == message.date


def test_as_bytes_is_stable() -> None:
    message = base().text("x").html("<b>x</b>").attach(b"\x00" * 10, "a.bin").build()
    assert message.as_bytes() == message.as_bytes()
    assert bytes(message) == message.as_bytes()


def test_message_is_immutable() -> None:
    message = base().build()
    with pytest.raises(AttributeError):
        message.subject = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Message()


def test_message_id_generated_unguessable_and_unique() -> None:
    builder = base()
    ids = {builder.build().message_id for _ in range(50)}
    assert len(ids) == 50
    for message_id in ids:
        assert message_id is not None
        assert re.fullmatch(r"<[A-Za-z0-9_-]{24}@example\.org>", message_id)


def test_message_id_domain_and_explicit() -> None:
    assert (
        base()
        .message_id(domain="mail.Example.NET")
        .build()
        .message_id.endswith(  # type: ignore[union-attr]
            "@mail.example.net>"
        )
    )
    assert base().message_id("abc@example.org").build().message_id == "<abc@example.org>"
    idn = Message.builder().from_("a@bücher.example").to("b@example.org").build()
    assert idn.message_id is not None
    assert idn.message_id.endswith("@xn--bcher-kva.example>")


def test_date_default_and_explicit() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    message = base().build()
    assert message.date is not None
    assert message.date >= before
    tz = timezone(timedelta(hours=2))
    explicit = base().date(datetime(2025, 1, 2, 3, 4, 5, tzinfo=tz)).build()
    assert b"Date: Thu, 02 Jan 2025 03:04:05 +0200\r\n" in explicit.as_bytes()
    with pytest.raises(MessageError):
        base().date(datetime(2025, 1, 1))
    with pytest.raises(TypeError):
        base().date("2025-01-01")  # type: ignore[arg-type]


def test_envelope_derivation_and_bcc_hidden() -> None:
    message = (
        Message.builder()
        .from_("Alice <alice@example.org>")
        .to("bob@example.com, Carl <carl@example.com>")
        .cc(Mailbox("dave@example.com", "Dave"))
        .cc("bob@example.com")
        .bcc("eve@example.com", Address("bob@example.com"))
        .build()
    )
    assert message.envelope.reverse_path == Address("alice@example.org")
    assert [str(a) for a in message.envelope.forward_paths] == [
        "bob@example.com",
        "carl@example.com",
        "dave@example.com",
        "eve@example.com",
    ]
    data = message.as_bytes()
    assert b"eve@example.com" not in data
    assert b"Bcc" not in data
    assert message.bcc == Mailboxes(["eve@example.com", "bob@example.com"])
    assert all(name.lower() != "bcc" for name, _ in message.headers)


def test_sender_is_the_reverse_path() -> None:
    message = (
        Message.builder()
        .from_("a@example.org", "b@example.org")
        .sender("Secretary <sec@example.org>")
        .to("x@example.com")
        .build()
    )
    assert message.envelope.reverse_path == Address("sec@example.org")
    parsed = parse(message.as_bytes())
    assert parsed["Sender"] == "Secretary <sec@example.org>"
    assert [a.addr_spec for a in parsed["From"].addresses] == ["a@example.org", "b@example.org"]


def test_explicit_envelope_overrides() -> None:
    envelope = Envelope(None, ["archive@example.net"], notify=["FAILURE"])
    message = base().envelope(envelope).build()
    assert message.envelope is envelope
    # No recipient headers at all is fine with an explicit envelope.
    only_envelope = Message.builder().from_("a@example.org").envelope(envelope).build()
    assert only_envelope.envelope.forward_paths == (Address("archive@example.net"),)
    with pytest.raises(TypeError):
        base().envelope("a@example.org")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("builder", "message"),
    [
        (lambda: Message.builder().to("b@example.com"), "From"),
        (lambda: Message.builder().from_("a@example.org"), "recipient"),
        (
            lambda: Message.builder().from_("a@example.org", "b@example.org").to("c@example.org"),
            "Sender",
        ),
        (lambda: base().inline(b"png", "logo", "image/png"), "HTML"),
        (lambda: base().text("x").body(SinglePart.plain("y")), "explicit body"),
    ],
)
def test_build_errors(builder: Any, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        builder().build()


HOSTILE = ["a\rb", "a\nb", "a\r\nBcc: eve@evil.example", "a\x00b", "a\u2028b", "a\u2029b", "a\x7fb"]


@pytest.mark.parametrize("bad", HOSTILE)
@pytest.mark.parametrize(
    "call",
    [
        lambda b, v: b.subject(v),
        lambda b, v: b.user_agent(v),
        lambda b, v: b.header("X-Custom", v),
        lambda b, v: b.to(f"{v} <x@example.org>"),
        lambda b, v: b.to(Mailbox("x@example.org", v)),
        lambda b, v: b.from_(f'"{v}" <x@example.org>'),
        lambda b, v: b.cc(f"x{v}@example.org"),
        lambda b, v: b.bcc(f"x@exa{v}mple.org"),
        lambda b, v: b.reply_to(f"{v}@example.org"),
        lambda b, v: b.sender(f"S {v} <s@example.org>"),
        lambda b, v: b.message_id(f"<a{v}@example.org>"),
        lambda b, v: b.in_reply_to(f"<a{v}b@example.org>"),
        lambda b, v: b.references(f"<x@y> <a{v}@example.org>"),
        lambda b, v: b.attach(b"data", f"file{v}.txt"),
        lambda b, v: b.inline(b"data", "cid", "image/png", filename=f"f{v}.png"),
        lambda b, v: b.inline(b"data", f"c{v}id", "image/png"),
        lambda b, v: b.attach(b"data", "f.txt", f"text/plain; name={v}"),
        lambda b, v: b.list_unsubscribe(f"https://example.org/u{v}"),
        lambda b, v: b.header(f"X-{v}", "value"),
        lambda b, v: b.message_id(domain=f"exa{v}mple.org"),
    ],
)
def test_header_injection_is_refused_in_every_field(call: Any, bad: str) -> None:
    def attempt() -> None:
        # If the builder accepted the value, the final check must still
        # refuse to write it.
        call(base(), bad).build().as_bytes()

    with pytest.raises((MessageError, AddressError)):
        attempt()


def test_encoded_word_injection_does_not_become_a_header() -> None:
    # An encoded word that decodes to CRLF stays inside the subject.
    message = base().subject("=?utf-8?q?a=0D=0ABcc:_eve@evil.example?=").build()
    parsed = parse(message.as_bytes())
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "=?utf-8?q?a=0D=0ABcc:_eve@evil.example?="


@pytest.mark.parametrize(
    "name",
    [
        "From",
        "to",
        "CC",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "content-x",
    ],
)
def test_reserved_headers_refused(name: str) -> None:
    with pytest.raises(MessageError):
        base().header(name, "x")


def test_custom_headers() -> None:
    message = (
        base()
        .header("X-Tag", "one")
        .header("X-Tag", "twö")
        .header("X-Original-To", Mailbox("orig@example.org", "Orig"))
        .header("X-List", Mailboxes.parse("a@example.org, b@example.org"))
        .header("X-Addr", Address("c@example.org"))
        .build()
    )
    parsed = parse(message.as_bytes())
    assert parsed.get_all("X-Tag") == ["one", "twö"]
    assert parsed["X-Original-To"] == "Orig <orig@example.org>"
    assert parsed["X-List"] == "a@example.org, b@example.org"
    assert parsed["X-Addr"] == "c@example.org"
    assert ("X-Tag", "twö") in message.headers
    with pytest.raises(TypeError):
        base().header("X-Num", 3)  # type: ignore[arg-type]


def test_threading_headers() -> None:
    message = (
        base()
        .in_reply_to("<parent@example.org>")
        .references("<root@example.org> <parent@example.org>", "child@example.org")
        .build()
    )
    parsed = parse(message.as_bytes())
    assert parsed["In-Reply-To"] == "<parent@example.org>"
    assert str(parsed["References"]).split() == [
        "<root@example.org>",
        "<parent@example.org>",
        "<child@example.org>",
    ]
    with pytest.raises(MessageError):
        base().references()


def test_user_agent_and_priority() -> None:
    message = base().user_agent("lettre-test/1.0").priority("high").build()
    parsed = parse(message.as_bytes())
    assert parsed["User-Agent"] == "lettre-test/1.0"
    assert parsed["X-Priority"] == "1 (Highest)"
    assert parsed["Importance"] == "high"
    low = parse(base().priority("low").build().as_bytes())
    assert low["X-Priority"] == "5 (Lowest)"
    with pytest.raises(MessageError):
        base().priority("urgent")  # type: ignore[arg-type]


def test_list_unsubscribe() -> None:
    message = base().list_unsubscribe("https://example.org/u?id=1", "mailto:u@example.org").build()
    parsed = parse(message.as_bytes())
    assert parsed["List-Unsubscribe"] == "<https://example.org/u?id=1>, <mailto:u@example.org>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mail_only = parse(base().list_unsubscribe("<mailto:u@example.org>").build().as_bytes())
    assert mail_only["List-Unsubscribe"] == "<mailto:u@example.org>"
    assert mail_only["List-Unsubscribe-Post"] is None
    no_click = base().list_unsubscribe("https://e.org/u", one_click=False).build()
    assert b"List-Unsubscribe-Post" not in no_click.as_bytes()
    with pytest.raises(MessageError):
        base().list_unsubscribe("mailto:u@example.org", one_click=True)
    for bad in ("ftp://x.org/u", "https://exa mple.org", "https://ä.org", "javascript:alert(1)"):
        with pytest.raises(MessageError):
            base().list_unsubscribe(bad)
    with pytest.raises(MessageError):
        base().list_unsubscribe()


def test_text_and_html_alternative() -> None:
    message = base().text("plain body").html("<p>html body</p>").build()
    parsed = parse(message.as_bytes())
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_content() == "plain body\r\n"
    assert html.get_content() == "<p>html body</p>\r\n"


def test_html_with_inline_images_and_attachment(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.7 " + bytes(300))
    message = (
        base()
        .text("see the logo")
        .html('<img src="cid:logo@example.org">')
        .inline(logo, "logo@example.org")
        .attach(report)
        .attach(b"a,b\r\n1,2\r\n", "data.csv")
        .attach(b"{}", "x.json", content_type="application/vnd.custom+json")
        .build()
    )
    parsed = parse(message.as_bytes())
    assert parsed.get_content_type() == "multipart/mixed"
    structure = [part.get_content_type() for part in parsed.walk()]
    assert structure == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
        "text/csv",
        "application/vnd.custom+json",
    ]
    parts = list(parsed.walk())
    image = parts[5]
    assert image["Content-ID"] == "<logo@example.org>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == logo.read_bytes()
    assert parts[3].get_param("type") == "text/html"
    assert parts[6].get_filename() == "report.pdf"
    assert parts[6].get_content() == report.read_bytes()
    assert parts[7].get_filename() == "data.csv"
    assert parts[7].get_payload(decode=True) == b"a,b\r\n1,2\r\n"


def test_attachment_inputs() -> None:
    with pytest.raises(TypeError, match="Path"):
        base().attach("report.pdf")  # type: ignore[arg-type]
    with pytest.raises(MessageError, match="filename"):
        base().attach(b"data")
    with pytest.raises(MessageError, match="content_type"):
        base().inline(b"data", "cid")
    with pytest.raises(TypeError):
        base().attach(3)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        base().attach(Path("/nonexistent/file.pdf"))
    part = SinglePart(b"x", "application/octet-stream", disposition="attachment", filename="x")
    message = base().attach(part).attach(Attachment(b"y", "y.txt")).build()
    assert isinstance(message.body, MultiPart)
    assert [p.filename for p in message.body.parts if isinstance(p, SinglePart)] == ["x", "y.txt"]


def test_attachments_only() -> None:
    message = base().attach(b"\x00\x01", "a.bin").build()
    parsed = parse(message.as_bytes())
    assert parsed.get_content_type() == "multipart/mixed"
    (only,) = parsed.iter_parts()
    assert only.get_content() == b"\x00\x01"


def test_no_body() -> None:
    message = base().subject("empty").build()
    data = message.as_bytes()
    assert data.endswith(b"\r\n\r\n")
    assert b"MIME-Version" not in data
    assert message.body is None
    assert parse(data).get_content() == ""


def test_explicit_mime_tree() -> None:
    calendar = SinglePart(
        "BEGIN:VCALENDAR\nEND:VCALENDAR\n",
        ContentType("text/calendar", {"method": "REQUEST"}),
    )
    tree = MultiPart.alternative(SinglePart.plain("Invitation"), calendar, boundary="inner-b")
    message = base().body(tree).attach(b"ics", "invite.ics").build()
    parsed = parse(message.as_bytes())
    structure = [part.get_content_type() for part in parsed.walk()]
    assert structure == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/calendar",
        "text/calendar",
    ]
    assert list(parsed.walk())[3].get_param("method") == "REQUEST"
    assert b"boundary=inner-b" in message.as_bytes()
    with pytest.raises(TypeError):
        base().body("text")  # type: ignore[arg-type]


def test_eight_bit_only_when_asked() -> None:
    text = "Hello Jörg, see you tomorrow at the station."
    default = base().text(text).build()
    assert isinstance(default.body, SinglePart)
    assert default.body.transfer_encoding is TransferEncoding.QUOTED_PRINTABLE
    assert not default.needs_8bitmime
    assert base().text("Grüße").build().body.transfer_encoding is TransferEncoding.BASE64  # type: ignore[union-attr]
    eight = base().text(text, transfer_encoding="8bit").build()
    assert isinstance(eight.body, SinglePart)
    assert eight.body.transfer_encoding is TransferEncoding.EIGHT_BIT
    assert eight.needs_8bitmime
    assert text.encode() in eight.as_bytes()
    assert parse(eight.as_bytes()).get_content() == text + "\r\n"


def test_smtputf8_message() -> None:
    message = Message.builder().from_("jörg@exämple.de").to("bob@example.com").build()
    assert message.needs_smtputf8
    assert message.envelope.needs_smtputf8
    assert "jörg@exämple.de".encode() in message.as_bytes()
    idn_only = Message.builder().from_("joerg@exämple.de").to("bob@example.com").build()
    assert not idn_only.needs_smtputf8
    assert b"joerg@xn--exmple-cua.de" in idn_only.as_bytes()
    assert idn_only.as_bytes().isascii()


class _PrependSigner:
    def sign(self, data: bytes) -> bytes:
        return b"X-Signed: yes\r\n" + data


class _BadSigner:
    def sign(self, data: bytes) -> str:
        return "nope"


def test_sign() -> None:
    message = base().text("body").build()
    signed = message.sign(_PrependSigner())
    assert signed.as_bytes() == b"X-Signed: yes\r\n" + message.as_bytes()
    assert signed.as_bytes() == signed.as_bytes()
    assert signed.envelope == message.envelope
    assert signed.message_id == message.message_id
    twice = signed.sign(_PrependSigner())
    assert twice.as_bytes().startswith(b"X-Signed: yes\r\nX-Signed: yes\r\n")
    with pytest.raises(MessageError):
        message.sign(_BadSigner())  # type: ignore[arg-type]


def test_builder_is_reusable() -> None:
    builder = base().subject("template").text("hi")
    first, second = builder.build(), builder.build()
    assert first.message_id != second.message_id
    assert first.subject == second.subject == "template"


def test_repr() -> None:
    message = base().subject("Hi").message_id("<id@example.org>").build()
    assert "<id@example.org>" in repr(message)
    assert "1 recipient" in repr(message)


def test_address_inputs() -> None:
    message = (
        Message.builder()
        .from_(Mailbox("a@example.org", "A"))
        .to(["b@example.org", Address("c@example.org")], "D <d@example.org>")
        .reply_to("undisclosed-recipients:;", "r@example.org")
        .build()
    )
    assert [str(m) for m in message.to] == ["b@example.org", "c@example.org", "D <d@example.org>"]
    assert [str(m) for m in message.reply_to] == ["r@example.org"]
    with pytest.raises(TypeError):
        Message.builder().to(42)  # type: ignore[arg-type]
    with pytest.raises(AddressError):
        Message.builder().to("alice@example.org)<bob@example.com>")


@pytest.mark.parametrize(
    ("method", "field"),
    [
        ("from_", "from"),
        ("sender", "sender"),
        ("reply_to", "reply_to"),
        ("to", "to"),
        ("cc", "cc"),
        ("bcc", "bcc"),
    ],
)
def test_address_errors_name_the_field_and_quote_the_value(method: str, field: str) -> None:
    add = getattr(Message.builder(), method)
    with pytest.raises(AddressError) as info:
        add("bob@@x")
    assert str(info.value) == f"{field}: 'bob@@x' has more than one @"
    # The same words as Address itself, whatever form the mailbox takes.
    with pytest.raises(AddressError) as direct:
        Address("bob@@x")
    assert str(info.value) == f"{field}: {direct.value}"
    with pytest.raises(AddressError, match=rf"^{field}: 'bob@@x' has more than one @$"):
        add("Bob <bob@@x>")
    if method != "sender":
        with pytest.raises(AddressError, match=rf"^{field}: 'bob@@x' has more than one @$"):
            add(["ok@example.org", "bob@@x"])
        with pytest.raises(AddressError, match=rf"^{field}: 'bob@@x' has more than one @$"):
            add("ok@example.org, bob@@x")
    with pytest.raises(TypeError, match=rf"^{field}: "):
        add(42)


def test_message_id_domain_errors_name_the_domain() -> None:
    with pytest.raises(AddressError, match=r"^message_id: the domain 'bad domain' is not"):
        Message.builder().message_id(domain="bad domain")


def test_html_with_a_forced_encoding() -> None:
    message = base().html("<p>a</p>\n", transfer_encoding="base64").build()
    assert isinstance(message.body, SinglePart)
    assert message.body.transfer_encoding is TransferEncoding.BASE64
    assert message.body.content_type.essence == "text/html"
    assert b"Content-Transfer-Encoding: base64\r\n\r\nPHA+YTwvcD4NCg==\r\n" in message.as_bytes()
    assert parse(message.as_bytes()).get_content() == "<p>a</p>\r\n"


def test_content_without_a_final_line_break_gets_one() -> None:
    # Quoted-printable output keeps the content's end: the message still ends with CRLF.
    part = SinglePart(b"a=b", "application/x-thing", transfer_encoding="quoted-printable")
    message = base().body(part).build()
    assert message.as_bytes().endswith(
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n"
    )
    ended = SinglePart(b"a=b\r\n", "text/plain", transfer_encoding="quoted-printable")
    assert base().body(ended).build().as_bytes().endswith(b"\r\n\r\na=3Db\r\n")


def test_needs_8bitmime_looks_at_every_part_and_at_the_headers() -> None:
    nested = SinglePart(b"Subject: h\xc3\xa9\r\n\r\nbody\r\n", "message/rfc822")
    message = base().attach(nested).build()
    assert isinstance(message.body, MultiPart)
    assert message.body.parts[0].transfer_encoding is TransferEncoding.EIGHT_BIT  # type: ignore[union-attr]
    assert message.needs_8bitmime
    assert not base().attach(b"\x00\xff", "a.bin").build().needs_8bitmime
    # A UTF-8 address in a header needs 8BITMIME even with an ASCII body.
    utf8_head = Message.builder().from_("jörg@exämple.de").to("b@example.com").text("hi").build()
    assert utf8_head.needs_8bitmime


def test_needs_8bitmime_and_smtputf8_of_ready_bytes() -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.org"
    msg.set_content("Grüße\n", cte="8bit")
    eight = Message.from_email_message(msg)
    assert eight.needs_8bitmime
    assert not eight.needs_smtputf8
    msg.set_content("hello\n")
    seven = Message.from_email_message(msg)
    assert not seven.needs_8bitmime
    assert not seven.needs_smtputf8
