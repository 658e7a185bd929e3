"""What the server receives from lettre's backend is what Django's own SMTP backend sends.

The same messages (``send_mail``, ``send_mass_mail``, ``mail_admins``,
``EmailMessage`` with attachments, ``EmailMultiAlternatives``, Cc, Bcc,
Reply-To, extra headers, display names, non-ASCII everywhere) go through
``django.core.mail.backends.smtp.EmailBackend`` to one aiosmtpd server and
through ``lettre.django.EmailBackend`` to another; what arrived is compared.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage as StdlibMessage
from email.mime.application import MIMEApplication
from pathlib import Path
from typing import Any

from django.core.mail import (
    EmailMessage,
    EmailMultiAlternatives,
    get_connection,
    mail_admins,
    send_mail,
    send_mass_mail,
)

from servers import ReceivedMessage, ServerFactory

DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"
LETTRE = "lettre.django.EmailBackend"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def send_everything(connection: Any, attachment: Path) -> list[int]:
    """Send every kind of message Django has through ``connection``; the counts returned."""
    counts = [
        send_mail("Plain", "Hello there.\n", None, ["to@example.com"], connection=connection),
        send_mail(
            "Grüße aus Köln ✉",
            "Ünïcödé body\n.a line that starts with a dot\n..and two\n" + "long " * 300,
            "Åsa Ek <asa@example.se>",
            ["Jörg Müller <joerg@exämple.de>", '"Doe, Jane" <jane@example.com>'],
            html_message="<p>Ünïcödé <b>HTML</b></p>",
            connection=connection,
        ),
    ]
    email = EmailMessage(
        subject="Quarterly report",
        body="See the attached files.",
        from_email="Reports <reports@example.com>",
        to=["ann@example.com", "Bob B <bob@example.com>"],
        cc=["Carol <carol@example.com>"],
        bcc=["hidden@example.com", "Also Hidden <hidden2@example.com>"],
        reply_to=["Replies <replies@example.com>"],
        headers={"X-Campaign": "spring-2024", "X-Note": "naïve café"},
        connection=connection,
    )
    email.attach("data.csv", "a,b\n1,2\n", "text/csv")
    email.attach("résumé.txt", "héllo wörld", "text/plain")
    email.attach("logo.png", PNG, "image/png")
    email.attach_file(str(attachment))
    part = MIMEApplication(b"\x00\x01\x02 raw part", _subtype="octet-stream")
    part.add_header("Content-Disposition", "attachment", filename="raw.bin")
    email.attach(part)
    counts.append(email.send())
    alternatives = EmailMultiAlternatives(
        "Newsletter",
        "The text version.",
        "news@example.com",
        ["dan@example.com"],
        connection=connection,
    )
    alternatives.attach_alternative("<h1>The HTML version</h1>", "text/html")
    alternatives.attach("logo.png", PNG, "image/png")
    counts.append(alternatives.send())
    counts.append(
        send_mass_mail(
            [
                ("Mass one", "First.", "bulk@example.com", ["m1@example.com"]),
                ("Mass two", "Second.", "bulk@example.com", ["m2@example.com", "m3@example.com"]),
                ("Mass three", "Third.", None, ["m4@example.com"]),
            ],
            connection=connection,
        )
    )
    mail_admins("Disk almost full", "93% used", html_message="<b>93%</b>", connection=connection)
    counts.append(1)
    return counts


def normalised_address(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def summary(received: ReceivedMessage) -> dict[str, Any]:
    parsed = message_from_bytes(received.content, policy=policy.default)
    assert isinstance(parsed, StdlibMessage)
    headers = {
        name: str(parsed[name])
        for name in ("From", "To", "Cc", "Reply-To", "Subject", "X-Campaign", "X-Note")
        if parsed[name] is not None
    }
    parts: list[tuple[Any, ...]] = []
    for part in parsed.walk():
        if part.is_multipart():
            parts.append(("multipart", part.get_content_type()))
        else:
            assert isinstance(part, StdlibMessage)
            parts.append(
                (
                    part.get_content_type(),
                    part.get_filename(),
                    part.get_content_disposition(),
                    part.get_content(),
                )
            )
    return {
        "mail_from": normalised_address(received.mail_from),
        "rcpt_tos": sorted(normalised_address(r) for r in received.rcpt_tos),
        "headers": headers,
        "parts": parts,
        "bcc_header": parsed["Bcc"],
        "dated": parsed["Date"] is not None and parsed["Message-ID"] is not None,
    }


_VARYING = [
    (re.compile(rb"^Message-ID: .*$", re.MULTILINE), b"Message-ID: <id>"),
    (re.compile(rb"^Date: .*$", re.MULTILINE), b"Date: <date>"),
    (re.compile(rb"={15}\d+=="), b"<boundary>"),
]


def without_varying_fields(content: bytes) -> bytes:
    """The bytes with what Django makes anew for every send replaced."""
    for pattern, replacement in _VARYING:
        content = pattern.sub(replacement, content)
    return content


def key(received: ReceivedMessage) -> tuple[str, str]:
    parsed = message_from_bytes(received.content, policy=policy.default)
    return str(parsed["Subject"]), ",".join(sorted(received.rcpt_tos))


def test_the_server_receives_what_djangos_smtp_backend_sends(
    smtpd: ServerFactory, tmp_path: Path
) -> None:
    attachment = tmp_path / "notes.bin"
    attachment.write_bytes(bytes(range(256)))
    django_server, lettre_server = smtpd(), smtpd()

    with get_connection(DJANGO_SMTP, host="127.0.0.1", port=django_server.port) as connection:
        django_counts = send_everything(connection, attachment)
    with get_connection(LETTRE, host="127.0.0.1", port=lettre_server.port) as connection:
        lettre_counts = send_everything(connection, attachment)

    assert lettre_counts == django_counts == [1, 1, 1, 1, 3, 1]
    theirs = sorted(django_server.messages, key=key)
    ours = sorted(lettre_server.messages, key=key)
    assert len(ours) == len(theirs) == 8
    for mine, expected in zip(ours, theirs, strict=True):
        assert summary(mine) == summary(expected)
        assert without_varying_fields(mine.content) == without_varying_fields(expected.content)


def test_bcc_goes_in_the_envelope_only(smtpd: ServerFactory) -> None:
    server = smtpd()
    connection = get_connection(LETTRE, host="127.0.0.1", port=server.port)
    EmailMessage(
        "Secret",
        "body",
        "a@example.com",
        ["to@example.com"],
        bcc=["b1@example.com", "b2@example.com"],
        connection=connection,
    ).send()

    (received,) = server.messages
    assert sorted(received.rcpt_tos) == ["b1@example.com", "b2@example.com", "to@example.com"]
    assert b"b1@example.com" not in received.content
    assert received.parsed()["Bcc"] is None
