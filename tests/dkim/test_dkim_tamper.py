"""A changed message fails verification; relaxed canonicalization tolerates
only the changes it is meant to tolerate."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim_support import DOMAIN, SELECTOR, DnsZone, PrivateKeyObject

from lettre.dkim import DkimSigner

MESSAGE = (
    b"From: Joe <joe@example.com>\r\n"
    b"To: Suzie <suzie@example.net>\r\n"
    b"Subject: Quarterly report\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
    b"Message-ID: <report@example.com>\r\n"
    b"\r\n"
    b"Please find the figures below.\r\n"
    b"Total: 100 EUR\r\n"
)

CANONICALIZATIONS = ["simple", "relaxed"]


def _split(signed: bytes) -> tuple[bytes, bytes]:
    """Split signed bytes into (the DKIM-Signature field, the rest)."""
    end = signed.index(b"\r\n", signed.index(b"\r\n b=") + 2) + 2
    while signed[end : end + 1] in (b" ", b"\t"):
        end = signed.index(b"\r\n", end) + 2
    assert signed[end:].startswith(b"From: Joe")
    return signed[:end], signed[end:]


SignFor = Callable[[PrivateKeyObject, str, str], bytes]


@pytest.fixture
def signed_for(zone: DnsZone) -> SignFor:
    """Sign MESSAGE with a key and canonicalization, publish the key, check it verifies."""

    def sign(key: PrivateKeyObject, header_c: str, body_c: str) -> bytes:
        signer = zone.signer(key, header_canonicalization=header_c, body_canonicalization=body_c)
        signed = signer.sign(MESSAGE)
        assert zone.verify(signed), "the untouched message must verify"
        return signed

    return sign


@pytest.mark.parametrize("body_c", CANONICALIZATIONS)
@pytest.mark.parametrize("header_c", CANONICALIZATIONS)
def test_changed_body_fails(
    header_c: str, body_c: str, private_key: PrivateKeyObject, zone: DnsZone, signed_for: SignFor
) -> None:
    signed = signed_for(private_key, header_c, body_c)
    assert not zone.verify(signed.replace(b"100 EUR", b"900 EUR"))
    assert not zone.verify(signed + b"P.S. appended\r\n")


@pytest.mark.parametrize("body_c", CANONICALIZATIONS)
@pytest.mark.parametrize("header_c", CANONICALIZATIONS)
def test_changed_header_fails(
    header_c: str, body_c: str, private_key: PrivateKeyObject, zone: DnsZone, signed_for: SignFor
) -> None:
    signed = signed_for(private_key, header_c, body_c)
    assert not zone.verify(signed.replace(b"Quarterly report", b"Quarterly rep0rt"))
    assert not zone.verify(signed.replace(b"suzie@example.net", b"mallory@example.net"))
    assert not zone.verify(signed.replace(b"d=example.com", b"d=example.org"))


@pytest.mark.parametrize(
    "field",
    [
        b"From: Mallory <mallory@example.com>\r\n",
        b"To: mallory@example.net\r\n",
        b"Subject: Urgent: wire transfer\r\n",
        b"Cc: mallory@example.net\r\n",
        b"Reply-To: mallory@example.net\r\n",
        b"Date: Sat, 12 Jul 2003 10:00:00 -0700\r\n",
        b"Message-ID: <replayed@example.com>\r\n",
    ],
    ids=lambda f: f.split(b":")[0].decode(),
)
@pytest.mark.parametrize("where", ["above-signature", "below-signature", "at-end"])
def test_added_oversigned_field_fails(
    field: bytes, where: str, private_key: PrivateKeyObject, zone: DnsZone, signed_for: SignFor
) -> None:
    signed = signed_for(private_key, "relaxed", "relaxed")
    signature, rest = _split(signed)
    if where == "above-signature":
        tampered = field + signed
    elif where == "below-signature":
        tampered = signature + field + rest
    else:
        head, body = rest.split(b"\r\n\r\n", 1)
        tampered = signature + head + b"\r\n" + field + b"\r\n" + body
    assert not zone.verify(tampered)


def test_without_oversigning_a_prepended_field_goes_unnoticed(
    ed25519_key: ed25519.Ed25519PrivateKey, zone: DnsZone
) -> None:
    """Why oversigning matters: verifiers pick signed fields from the bottom up."""
    zone.publish(SELECTOR, DOMAIN, ed25519_key)
    plain = DkimSigner(DOMAIN, SELECTOR, ed25519_key, oversigned_headers=())
    oversigned = DkimSigner(DOMAIN, SELECTOR, ed25519_key)
    extra = b"To: mallory@example.net\r\n"
    assert zone.verify(extra + plain.sign(MESSAGE))
    assert not zone.verify(extra + oversigned.sign(MESSAGE))


def test_unsigned_header_may_be_added(private_key: PrivateKeyObject, zone: DnsZone) -> None:
    signed = DkimSigner(DOMAIN, SELECTOR, private_key).sign(MESSAGE)
    zone.publish(SELECTOR, DOMAIN, private_key)
    assert zone.verify(b"Received: from relay.example.net by mx.example.org\r\n" + signed)


def test_relaxed_survives_refolding_and_whitespace(
    private_key: PrivateKeyObject, zone: DnsZone, signed_for: SignFor
) -> None:
    signed = signed_for(private_key, "relaxed", "relaxed")
    changed = (
        signed.replace(b"Subject: Quarterly report", b"subject:Quarterly \r\n\t report  ")
        .replace(b"Total: 100 EUR\r\n", b"Total:  100\tEUR   \r\n\r\n\r\n")
    )  # fmt: skip
    assert changed != signed
    assert zone.verify(changed)


def test_simple_rejects_refolding_and_whitespace(
    private_key: PrivateKeyObject, zone: DnsZone, signed_for: SignFor
) -> None:
    signed = signed_for(private_key, "simple", "simple")
    assert not zone.verify(signed.replace(b"Subject: Quarterly", b"Subject:  Quarterly"))
    assert not zone.verify(signed.replace(b"100 EUR", b"100  EUR"))
    # ... but even simple ignores empty lines added at the end of the body.
    assert zone.verify(signed + b"\r\n\r\n")


def test_wrong_public_key_fails(
    rsa_key: rsa.RSAPrivateKey, ed25519_key: ed25519.Ed25519PrivateKey, zone: DnsZone
) -> None:
    zone.publish(SELECTOR, DOMAIN, ed25519.Ed25519PrivateKey.generate())
    assert not zone.verify(DkimSigner(DOMAIN, SELECTOR, ed25519_key).sign(MESSAGE))
    zone.publish(SELECTOR, DOMAIN, rsa.generate_private_key(public_exponent=65537, key_size=1024))
    assert not zone.verify(DkimSigner(DOMAIN, SELECTOR, rsa_key).sign(MESSAGE))


def test_signature_names_its_selector(
    ed25519_key: ed25519.Ed25519PrivateKey, zone: DnsZone
) -> None:
    zone.publish("other", DOMAIN, ed25519_key)
    assert not zone.verify(DkimSigner(DOMAIN, SELECTOR, ed25519_key).sign(MESSAGE))
    assert zone.verify(DkimSigner(DOMAIN, "other", ed25519_key).sign(MESSAGE))
