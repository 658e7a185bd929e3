"""Golden bytes: the exact output for each message format."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lettre.message import Message, MessageBuilder

from .conftest import assert_wire_format, parse

DATE = datetime(2025, 3, 4, 10, 0, tzinfo=timezone.utc)
HEAD = b"Date: Tue, 04 Mar 2025 10:00:00 +0000\r\n"


def builder() -> MessageBuilder:
    return Message.builder().date(DATE).message_id("<id1@example.org>")


def check(message: Message, expected: bytes) -> None:
    data = message.as_bytes()
    assert data == expected
    assert_wire_format(data)
    assert parse(data).defects == []


@pytest.mark.usefixtures("fixed_boundaries")
def test_plain_text() -> None:
    message = (
        builder()
        .from_("Alice <alice@example.org>")
        .to("bob@example.com")
        .subject("Hello")
        .text("Hi Bob,\n\n.leading dot\nBye\n")
        .build()
    )
    check(
        message,
        HEAD + b"From: Alice <alice@example.org>\r\n"
        b"To: bob@example.com\r\n"
        b"Subject: Hello\r\n"
        b"Message-ID: <id1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n"
        b"Hi Bob,\r\n"
        b"\r\n"
        b".leading dot\r\n"
        b"Bye\r\n",
    )


@pytest.mark.usefixtures("fixed_boundaries")
def test_alternative_with_non_ascii_headers() -> None:
    message = (
        builder()
        .from_("Åsa Ek <asa@example.se>")
        .to('"Müller, Jörg" <joerg@example.de>')
        .cc("Zoë <zoe@example.org>")
        .subject("Grüße från Malmö")
        .text("Hej Jörg! Vi ses imorgon på stationen.")
        .html("<p>Hej J&ouml;rg!</p>")
        .build()
    )
    check(
        message,
        HEAD + b"From: =?utf-8?q?=C3=85sa_Ek?= <asa@example.se>\r\n"
        b"To: =?utf-8?q?M=C3=BCller=2C_J=C3=B6rg?= <joerg@example.de>\r\n"
        b"Cc: =?utf-8?q?Zo=C3=AB?= <zoe@example.org>\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_fr=C3=A5n_Malm=C3=B6?=\r\n"
        b"Message-ID: <id1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="=_b1"\r\n'
        b"\r\n"
        b"--=_b1\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Hej J=C3=B6rg! Vi ses imorgon p=C3=A5 stationen.\r\n"
        b"\r\n"
        b"--=_b1\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n"
        b"<p>Hej J&ouml;rg!</p>\r\n"
        b"\r\n"
        b"--=_b1--\r\n",
    )
    parsed = parse(message.as_bytes())
    assert parsed["To"].addresses[0].display_name == "Müller, Jörg"
    assert parsed["Subject"] == "Grüße från Malmö"


@pytest.mark.usefixtures("fixed_boundaries")
def test_attachment_with_rfc2231_filename() -> None:
    message = (
        builder()
        .from_("a@example.org")
        .to("b@example.org")
        .subject("Report")
        .text("See attached.")
        .attach(bytes(range(100)), "Räkning März.pdf")
        .build()
    )
    check(
        message,
        HEAD + b"From: a@example.org\r\n"
        b"To: b@example.org\r\n"
        b"Subject: Report\r\n"
        b"Message-ID: <id1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="=_b1"\r\n'
        b"\r\n"
        b"--=_b1\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n"
        b"See attached.\r\n"
        b"\r\n"
        b"--=_b1\r\n"
        b"Content-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''R%C3%A4kning%20M%C3%A4rz.pdf\r\n"
        b"\r\n"
        b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\n"
        b"OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiYw==\r\n"
        b"--=_b1--\r\n",
    )
    attachment = next(iter(parse(message.as_bytes()).iter_attachments()))
    assert attachment.get_filename() == "Räkning März.pdf"


@pytest.mark.usefixtures("fixed_boundaries")
def test_inline_image_related() -> None:
    message = (
        builder()
        .from_("a@example.org")
        .to("b@example.org")
        .html('<img src="cid:logo">')
        .inline(b"GIF89a\x01\x00", "logo", "image/gif")
        .build()
    )
    check(
        message,
        HEAD + b"From: a@example.org\r\n"
        b"To: b@example.org\r\n"
        b"Message-ID: <id1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; boundary="=_b1"; type="text/html"\r\n'
        b"\r\n"
        b"--=_b1\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n"
        b'<img src="cid:logo">\r\n'
        b"\r\n"
        b"--=_b1\r\n"
        b"Content-Type: image/gif\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: inline\r\n"
        b"Content-ID: <logo>\r\n"
        b"\r\n"
        b"R0lGODlhAQA=\r\n"
        b"--=_b1--\r\n",
    )


def test_smtputf8_address_is_raw_utf8() -> None:
    message = (
        builder()
        .from_("Jörg <jörg@exämple.de>")
        .to("bob@example.com")
        .subject("Hallo")
        .text("Hallo")
        .build()
    )
    check(
        message,
        HEAD
        + "From: =?utf-8?q?J=C3=B6rg?= <jörg@exämple.de>\r\n".encode()
        + b"To: bob@example.com\r\n"
        b"Subject: Hallo\r\n"
        b"Message-ID: <id1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n"
        b"Hallo\r\n",
    )


def test_headers_only() -> None:
    message = builder().from_("a@example.org").to("b@example.org").build()
    check(
        message,
        HEAD + b"From: a@example.org\r\nTo: b@example.org\r\nMessage-ID: <id1@example.org>\r\n\r\n",
    )
