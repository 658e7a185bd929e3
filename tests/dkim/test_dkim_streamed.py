"""DKIM over streamed attachments: the body hashed in a first pass, the send reads again."""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path

import pytest
from dkim_support import DOMAIN, SELECTOR, DnsZone, PrivateKeyObject, tags

from lettre.dkim import Canonicalization, DkimSigner, _BodyHasher, _canonical_body, _normalise
from lettre.errors import MessageError
from lettre.message import Attachment, Message, MessageContent, SourceError
from lettre.signing import sign_content
from lettre.transports.file import FileTransport


def streamed_message(path: Path, size: int = 200_000) -> Message:
    path.write_bytes(os.urandom(size))
    return (
        Message.builder()
        .from_("Alice <alice@example.com>")
        .to("bob@example.org")
        .subject("the report")
        .text("see attached\n")
        .attach(Attachment.from_path(path))
        .build()
    )


@pytest.mark.parametrize("body", list(Canonicalization))
@pytest.mark.parametrize("header", list(Canonicalization))
def test_streamed_signature_is_the_in_memory_one(
    tmp_path: Path,
    private_key: PrivateKeyObject,
    zone: DnsZone,
    header: Canonicalization,
    body: Canonicalization,
) -> None:
    signer = zone.signer(
        private_key,
        header_canonicalization=header,
        body_canonicalization=body,
        body_length=True,
        clock=lambda: 1_700_000_000,
    )
    message = streamed_message(tmp_path / "data.bin")
    content = message.content()
    assert isinstance(content, MessageContent)
    signed = signer.sign_content(content)
    data = signed.read_all()
    assert zone.verify(data), zone.last_error
    in_memory = signer.sign(message.as_bytes())
    assert tags(data)["bh"] == tags(in_memory)["bh"]
    assert tags(data)["l"] == tags(in_memory)["l"]
    # Both algorithms sign deterministically: the very same bytes.
    assert data == in_memory


def test_body_hash_over_any_split_matches_the_whole() -> None:
    rnd = random.Random(7)
    pieces = [b"a", b" ", b"\t", b"\r\n", b"\r\n", b"x", b"  "]
    for _ in range(3000):
        body = b"".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 40)))
        for canonicalization in Canonicalization:
            hasher = _BodyHasher(canonicalization)
            position = 0
            while position < len(body):
                step = rnd.randrange(1, 7)
                hasher.update(body[position : position + step])
                position += step
            expected = _canonical_body(_normalise(body), canonicalization)
            assert hasher.digest() == (hashlib.sha256(expected).digest(), len(expected)), body


def test_a_file_changed_between_the_passes_is_refused(
    tmp_path: Path, rsa_key: PrivateKeyObject
) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, rsa_key)
    path = tmp_path / "data.bin"
    message = streamed_message(path)
    content = message.content()
    assert isinstance(content, MessageContent)
    signed = signer.sign_content(content)  # the first pass
    with path.open("ab") as handle:
        handle.write(b"appended after signing")
    with pytest.raises(SourceError, match="changed since the message was built"):
        signed.read_all()  # the second pass


def test_a_non_seekable_source_cannot_be_signed(rsa_key: PrivateKeyObject) -> None:
    read, write = os.pipe()
    os.write(write, b"x" * 100)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = (
            Message.builder()
            .from_("alice@example.com")
            .to("bob@example.org")
            .attach(Attachment.from_file(pipe, "p.bin"))
            .build()
        )
        content = message.content()
        assert isinstance(content, MessageContent)
        with pytest.raises(SourceError, match="reads the message twice"):
            DkimSigner(DOMAIN, SELECTOR, rsa_key).sign_content(content)


def test_content_without_a_header_section_is_refused(rsa_key: PrivateKeyObject) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, rsa_key)
    with pytest.raises(MessageError, match="no end of its header section"):
        signer.sign_content(MessageContent([b"From: a@example.com\r\n"]))


class _BytesOnly:
    """A signer that only signs bytes."""

    def sign(self, data: bytes) -> bytes:
        return b"X-Signed: " + hashlib.sha256(data).hexdigest().encode() + b"\r\n" + data


def test_signers_in_turn(tmp_path: Path, rsa_key: PrivateKeyObject, zone: DnsZone) -> None:
    dkim_signer = zone.signer(rsa_key)
    content = streamed_message(tmp_path / "d.bin", 1000).content()
    assert isinstance(content, MessageContent)
    streamed = sign_content(content, [dkim_signer])
    assert isinstance(streamed, MessageContent)
    assert zone.verify(streamed.read_all())
    # A signer without sign_content needs the bytes: they stay bytes after it.
    mixed = sign_content(content, [_BytesOnly(), dkim_signer])
    assert isinstance(mixed, bytes)
    assert mixed.count(b"X-Signed: ") == 1
    assert zone.verify(mixed)


@pytest.mark.anyio
async def test_file_transport_writes_a_verifiable_streamed_message(
    tmp_path: Path, rsa_key: PrivateKeyObject, zone: DnsZone
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    transport = FileTransport(out, dkim=zone.signer(rsa_key))
    message = streamed_message(tmp_path / "big.bin", 3_000_000)
    result = await transport.send(message)
    assert result.transport_id is not None
    _, data = await transport.aread(result.transport_id)
    assert zone.verify(data), zone.last_error
    assert data.endswith(message.as_bytes())


@pytest.mark.anyio
async def test_file_changed_after_the_first_pass_fails_the_send(
    tmp_path: Path, rsa_key: PrivateKeyObject
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = tmp_path / "big.bin"
    message = streamed_message(path, 1000)

    class Tamper(DkimSigner):
        """Signs, then changes the file before the send reads it again."""

        __slots__ = ()

        def sign_content(self, content: MessageContent) -> MessageContent:
            signed = super().sign_content(content)
            path.write_bytes(b"other content, another size")
            return signed

    transport = FileTransport(out, dkim=Tamper(DOMAIN, SELECTOR, rsa_key))
    with pytest.raises(SourceError, match="changed since the message was built"):
        await transport.send(message)
    assert list(out.iterdir()) == []


def test_stream_signing_keeps_the_file_object_reusable(rsa_key: PrivateKeyObject) -> None:
    buffer = io.BytesIO(b"payload" * 1000)
    message = (
        Message.builder()
        .from_("alice@example.com")
        .to("bob@example.org")
        .attach(Attachment.from_file(buffer, "p.txt"))
        .build()
    )
    content = message.content()
    assert isinstance(content, MessageContent)
    signed = DkimSigner(DOMAIN, SELECTOR, rsa_key).sign_content(content)
    assert signed.read_all().endswith(message.as_bytes())
