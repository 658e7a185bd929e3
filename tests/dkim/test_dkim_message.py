"""Signing lettre Message objects: what the serializer produces verifies with dkimpy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from dkim_support import DOMAIN, SELECTOR, DnsZone, PrivateKeyObject, signature_headers, tags

from lettre.dkim import DkimSigner
from lettre.message import Message, MessageBuilder

CANONICALIZATIONS = [
    ("simple", "simple"),
    ("simple", "relaxed"),
    ("relaxed", "simple"),
    ("relaxed", "relaxed"),
]
CANON_IDS = ["/".join(pair) for pair in CANONICALIZATIONS]
DATE = datetime(2024, 6, 4, 10, 15, tzinfo=timezone.utc)


def _base() -> MessageBuilder:
    return (
        Message.builder()
        .from_("Joe <joe@example.com>")
        .to("Suzie <suzie@example.net>")
        .date(DATE)
        .message_id("<fixed-id@example.com>")
    )


def _non_ascii() -> Message:
    return (
        Message.builder()
        .from_("Åsa Ek <asa@example.com>")
        .to("山田 太郎 <yamada@example.net>", "Zoë <zoe@exämple.de>")
        .cc("Ærøskøbing Øst <aero@example.org>")
        .reply_to("Ünsubscribe Désk <desk@example.com>")
        .subject("Grüße aus Köln — Ünïcödé every­where 🚀")
        .date(DATE)
        .text("Grüße,\nÅsa\n")
        .build()
    )


def _attachments() -> Message:
    return (
        _base()
        .subject("Report with attachments")
        .text("See the attached files.\n")
        .html("<p>See the <b>attached</b> files.</p>\n")
        .attach(bytes(range(256)) * 40, "data.bin", "application/octet-stream")
        .attach("naïve résumé\n".encode(), "résumé naïve.txt", "text/plain; charset=utf-8")
        .inline(b"\x89PNG\r\n\x1a\n" + b"\x00" * 300, "logo", "image/png")
        .build()
    )


def _dot_lines() -> Message:
    text = ".\n..\n.hidden line\n...three\nend.\n.\n\nlast .\n"
    return _base().subject("Dots").text(text).build()


def _long_headers() -> Message:
    recipients = [f"Recipient Number {i} <recipient.number.{i}@example.net>" for i in range(12)]
    return (
        _base()
        .to(*recipients)
        .subject("A very long subject line " * 8)
        .references(*(f"<ref-{i}.{'x' * 30}@example.com>" for i in range(6)))
        .header("X-Long-Header", "value " * 40)
        .text("short body\n")
        .build()
    )


def _eight_bit() -> Message:
    text = "Grüße aus Köln,\n.Åsa — 山田\n"
    return _base().subject("8bit body").text(text, transfer_encoding="8bit").build()


def _whitespace() -> Message:
    text = "trailing spaces   \nand\ttabs\t\t\n  leading\n\n\n\n"
    return _base().subject("   spaced    out   ").text(text).build()


MESSAGES: dict[str, Callable[[], Message]] = {
    "non-ascii-headers": _non_ascii,
    "attachments": _attachments,
    "dot-lines": _dot_lines,
    "eight-bit-body": _eight_bit,
    "long-folded-headers": _long_headers,
    "whitespace": _whitespace,
}


@pytest.mark.parametrize(("header_c", "body_c"), CANONICALIZATIONS, ids=CANON_IDS)
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_signed_message_verifies(
    name: str, header_c: str, body_c: str, private_key: PrivateKeyObject, zone: DnsZone
) -> None:
    signer = zone.signer(
        private_key,
        header_canonicalization=header_c,
        body_canonicalization=body_c,
    )
    message = MESSAGES[name]()
    signed = message.sign(signer)
    data = signed.as_bytes()
    assert data.startswith(b"DKIM-Signature: v=1; ")
    assert data.endswith(message.as_bytes())
    assert zone.verify(data), zone.last_error
    # Oversigning covers what the message has, plus one more.
    names = tags(data)["h"].split(":")
    assert names.count("from") == 2
    assert names.count("subject") == 2
    assert names.count("to") == 2


def test_signed_message_keeps_its_envelope_and_id(ed25519_key: PrivateKeyObject) -> None:
    message = _attachments()
    signed = message.sign(DkimSigner(DOMAIN, SELECTOR, ed25519_key))
    assert signed.envelope == message.envelope
    assert signed.message_id == message.message_id == "<fixed-id@example.com>"
    assert signed.as_bytes() == signed.as_bytes()


def test_message_signed_twice_carries_both_signatures(
    rsa_key: PrivateKeyObject, ed25519_key: PrivateKeyObject, zone: DnsZone
) -> None:
    zone.publish("rsa", DOMAIN, rsa_key)
    zone.publish("ed", DOMAIN, ed25519_key)
    message = _non_ascii()
    signed = message.sign(DkimSigner(DOMAIN, "rsa", rsa_key)).sign(
        DkimSigner(DOMAIN, "ed", ed25519_key)
    )
    data = signed.as_bytes()
    assert len(signature_headers(data)) == 2
    assert zone.verify_all(data) == [True, True]


def test_tampered_message_fails(private_key: PrivateKeyObject, zone: DnsZone) -> None:
    data = _dot_lines().sign(zone.signer(private_key)).as_bytes()
    assert zone.verify(data), zone.last_error
    assert not zone.verify(data.replace(b".hidden line", b".hidden lime"))
    assert not zone.verify(b"From: Mallory <mallory@example.com>\r\n" + data)
