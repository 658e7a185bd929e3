"""Whole messages (lettre Message, stdlib EmailMessage, DKIM-signed) through
SesTransport to a real moto server, on asyncio and on trio."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ses_support import SENDER, Moto

import dkim
from lettre.dkim import DkimSigner
from lettre.envelope import Envelope
from lettre.message import Message

pytestmark = pytest.mark.anyio


def build() -> Message:
    builder = (
        Message.builder()
        .from_(f"Sender <{SENDER}>")
        .to("Visible <visible@example.com>")
        .cc("copy@example.org")
        .bcc("Hidden <hidden@example.net>")
        .subject("Order 1234")
        .text("Thanks for your order.")
    )
    return builder.build()


def has_bcc_header(data: bytes) -> bool:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(b"bcc:") or b"\r\nbcc:" in head


async def test_message_with_bcc(moto: Moto, anyio_backend: Any) -> None:
    message = build()
    result = await moto.transport().send(message)

    [stored] = moto.raw_messages()
    sent = stored["raw_data"].encode("utf-8")
    assert sent == message.as_bytes()
    assert not has_bcc_header(sent)
    assert b"hidden@example.net" not in sent
    assert {"visible@example.com", "copy@example.org", "hidden@example.net"} <= set(
        stored["destinations"]
    )
    assert stored["source"] == SENDER
    assert result.accepted == ("visible@example.com", "copy@example.org", "hidden@example.net")
    assert result.message_id == message.message_id
    assert result.transport_id == stored["id"]


async def test_explicit_envelope_overrides_the_headers(moto: Moto, anyio_backend: Any) -> None:
    message = build()
    envelope = Envelope(SENDER, ["only@example.com"])
    result = await moto.transport().send(message, envelope=envelope)
    [stored] = moto.raw_messages()
    # moto adds the header addresses to what it records; SES delivers to Destination only
    assert stored["destinations"][0] == "only@example.com"
    assert "hidden@example.net" not in stored["destinations"]
    assert result.accepted == ("only@example.com",)


async def test_stdlib_email_message(moto: Moto, anyio_backend: Any) -> None:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "visible@example.com"
    message["Bcc"] = "hidden@example.net"
    message["Subject"] = "From the stdlib"
    message["Message-ID"] = "<stdlib-1@example.com>"
    message.set_content("Hello from EmailMessage.\n")
    result = await moto.transport().send(message)

    [stored] = moto.raw_messages()
    sent = stored["raw_data"].encode("utf-8")
    assert not has_bcc_header(sent)
    assert b"\r\n\r\nHello from EmailMessage.\r\n" in sent
    assert "hidden@example.net" in stored["destinations"]
    assert result.message_id == "<stdlib-1@example.com>"
    assert set(result.accepted) == {"visible@example.com", "hidden@example.net"}


async def test_dkim_signed_bytes_reach_ses_intact(moto: Moto, anyio_backend: Any) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii") if isinstance(name, bytes) else name
        return record if text == "mail._domainkey.example.com." else None

    signer = DkimSigner("example.com", "mail", key)
    message = build()
    await moto.transport(dkim=signer).send(message)

    [stored] = moto.raw_messages()
    sent = stored["raw_data"].encode("utf-8")
    assert sent.startswith(b"DKIM-Signature:")
    assert sent.endswith(message.as_bytes())
    assert dkim.verify(sent, dnsfunc=dnsfunc)
    assert not dkim.verify(sent.replace(b"Order 1234", b"Order 9999"), dnsfunc=dnsfunc)
