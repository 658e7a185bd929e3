"""Signing at send time: transports given ``dkim=`` send bytes that verify."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from dkim_support import DOMAIN, SELECTOR, DnsZone, PrivateKeyObject, signature_headers

from lettre.dkim import DkimSigner
from lettre.message import Message
from lettre.transports.memory import MemoryTransport
from lettre.transports.smtp import SmtpTransport
from servers import AiosmtpdServer

pytestmark = pytest.mark.anyio


def _message() -> Message:
    return (
        Message.builder()
        .from_("Åsa Ek <asa@example.com>")
        .to("Suzie <suzie@example.net>")
        .bcc("archive@example.com")
        .subject("Grüße — with dots")
        .date(datetime(2024, 6, 4, 10, 15, tzinfo=timezone.utc))
        # Lines starting with "." are dot-stuffed on the wire and un-stuffed by the server.
        .text(".\n..\n.one dot\nmiddle\n.\n")
        .attach(b".\r\n.\r\n" * 50, "dots.txt", "text/plain")
        .build()
    )


@pytest.fixture
def smtp_server() -> Iterator[AiosmtpdServer]:
    """A real aiosmtpd server on 127.0.0.1 that records ``envelope.content``."""
    with AiosmtpdServer() as server:
        yield server


def _transport(server: AiosmtpdServer, **kwargs: object) -> SmtpTransport:
    return SmtpTransport.local(
        server.port, host=server.host, hello_name="client.example.com", timeout=10.0, **kwargs
    )


async def test_memory_transport_signs_what_it_records(
    private_key: PrivateKeyObject, zone: DnsZone
) -> None:
    zone.publish(SELECTOR, DOMAIN, private_key)
    transport = MemoryTransport(dkim=DkimSigner(DOMAIN, SELECTOR, private_key))
    message = _message()
    async with transport:
        await transport.send(message)
    data = transport.outbox[0].data
    assert data.endswith(message.as_bytes())
    assert zone.verify(data), zone.last_error
    assert b"archive@example.com" not in data


async def test_smtp_transport_signature_verifies_after_unstuffing(
    smtp_server: AiosmtpdServer, private_key: PrivateKeyObject, zone: DnsZone
) -> None:
    zone.publish(SELECTOR, DOMAIN, private_key)
    signer = DkimSigner(DOMAIN, SELECTOR, private_key, clock=lambda: 1_717_496_100)
    message = _message()
    async with _transport(smtp_server, dkim=signer) as transport:
        result = await transport.send(message)
    assert result.all_accepted
    (received,) = smtp_server.messages
    assert sorted(received.rcpt_tos) == ["archive@example.com", "suzie@example.net"]
    # The server got exactly the signed bytes: dots un-stuffed, nothing added.
    assert received.content == signer.sign(message.as_bytes())
    assert b"\r\n.one dot\r\n" in received.content
    assert zone.verify(received.content), zone.last_error


async def test_smtp_transport_with_two_signers(
    smtp_server: AiosmtpdServer,
    rsa_key: PrivateKeyObject,
    ed25519_key: PrivateKeyObject,
    zone: DnsZone,
) -> None:
    zone.publish("rsa", DOMAIN, rsa_key)
    zone.publish("ed", DOMAIN, ed25519_key)
    signers = [DkimSigner(DOMAIN, "rsa", rsa_key), DkimSigner(DOMAIN, "ed", ed25519_key)]
    async with _transport(smtp_server, dkim=signers) as transport:
        await transport.send(_message())
    content = smtp_server.messages[0].content
    assert len(signature_headers(content)) == 2
    assert zone.verify_all(content) == [True, True]


async def test_presigned_message_sent_raw_verifies(
    smtp_server: AiosmtpdServer, ed25519_key: PrivateKeyObject, zone: DnsZone
) -> None:
    zone.publish(SELECTOR, DOMAIN, ed25519_key)
    message = _message()
    signed = message.sign(
        DkimSigner(
            DOMAIN,
            SELECTOR,
            ed25519_key,
            header_canonicalization="simple",
            body_canonicalization="simple",
        )
    )
    async with _transport(smtp_server) as transport:
        await transport.send(signed)
    content = smtp_server.messages[0].content
    assert content == signed.as_bytes()
    assert zone.verify(content), zone.last_error
