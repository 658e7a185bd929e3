"""DANE edge cases: TLSA records this code cannot use, certificates it cannot parse, a resolver
that does not validate, an empty chain."""

from __future__ import annotations

import hashlib
import ssl

import pytest
from dns_server import DnsServer

from lettre.dns.dane import (
    TlsaRecord,
    match_certificate,
    match_chain,
    subject_public_key_info,
    tlsa_lookup,
)
from lettre.dns.resolver import Resolver
from servers import TlsMaterial


def _der(tls_material: TlsMaterial) -> bytes:
    return ssl.PEM_cert_to_DER_cert(tls_material.cert.cert_chain_pems[0].bytes().decode("ascii"))


def _tlv(tag: int, value: bytes) -> bytes:
    assert len(value) < 128
    return bytes([tag, len(value)]) + value


@pytest.mark.parametrize(
    ("usage", "selector", "mtype", "usable"),
    [(3, 1, 1, True), (3, 2, 1, False), (3, 1, 3, False), (1, 1, 1, False), (0, 0, 0, False)],
)
def test_usable_records(usage: int, selector: int, mtype: int, usable: bool) -> None:
    assert TlsaRecord(usage, selector, mtype, b"x").usable is usable


@pytest.mark.anyio
async def test_no_tlsa_lookup_without_a_validating_resolver(dns_server: DnsServer) -> None:
    dns_server.add("_25._tcp.mx1.a.test. 300 IN TLSA 3 1 1 " + "00" * 32)
    dns_server.authentic(everything=True)
    resolver = Resolver(["127.0.0.1"], port=dns_server.port, timeout=2.0, validating=False)
    assert await tlsa_lookup(resolver, "mx1.a.test") is None
    assert dns_server.queries == []


@pytest.mark.parametrize(
    ("der", "problem"),
    [
        (b"\x30", "truncated DER"),
        (b"\x30\x80", "unsupported DER length"),
        (b"\x30\x85\x01\x00\x00\x00\x00", "unsupported DER length"),
        (b"\x30\x82\x01", "unsupported DER length"),
        (_tlv(0x30, _tlv(0x02, b"\x01")), "not a DER certificate"),  # no TBSCertificate
        # A v1 TBSCertificate (no [0] version) with only five fields.
        (_tlv(0x30, _tlv(0x30, _tlv(0x02, b"\x01") + _tlv(0x30, b"") * 4)), "not a DER"),
        # Six fields, the sixth (subjectPublicKeyInfo) not a SEQUENCE.
        (
            _tlv(0x30, _tlv(0x30, _tlv(0x02, b"\x01") + _tlv(0x30, b"") * 4 + _tlv(0x04, b""))),
            "not a DER certificate",
        ),
    ],
)
def test_malformed_certificates(der: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        subject_public_key_info(der)


def test_v1_certificate_without_version_field() -> None:
    spki = _tlv(0x30, _tlv(0x30, b"\x06\x01\x01") + _tlv(0x03, b"\x00\x01"))
    tbs = _tlv(0x30, _tlv(0x02, b"\x05") + _tlv(0x30, b"") * 4 + spki)
    certificate = _tlv(0x30, tbs + _tlv(0x30, b"") + _tlv(0x03, b"\x00"))
    assert subject_public_key_info(certificate) == spki


def test_the_public_key_is_read_once_for_several_records(tls_material: TlsMaterial) -> None:
    der = _der(tls_material)
    spki = subject_public_key_info(der)
    wrong = TlsaRecord(3, 1, 1, b"\0" * 32)
    right = TlsaRecord(3, 1, 2, hashlib.sha512(spki).digest())
    assert match_certificate([wrong, right], der) is right
    full = TlsaRecord(3, 0, 0, der)
    assert match_certificate([wrong, full], der) is full


def test_a_leaf_that_is_not_a_certificate_matches_no_key_record() -> None:
    record = TlsaRecord(3, 1, 1, hashlib.sha256(b"junk").digest())
    assert match_certificate([record], b"junk") is None
    # A whole-certificate record still compares the bytes.
    whole = TlsaRecord(3, 0, 1, hashlib.sha256(b"junk").digest())
    assert match_certificate([whole], b"junk") is whole


def test_match_chain_of_nothing_or_of_an_unparsable_issuer(tls_material: TlsMaterial) -> None:
    der = _der(tls_material)
    anchor = TlsaRecord(2, 1, 1, hashlib.sha256(b"x").digest())
    assert match_chain([anchor], [], "mx1.a.test") is None
    # The second certificate is junk: its key cannot be read, so the DANE-TA record matches nothing.
    assert match_chain([anchor], [der, b"junk"], "mx1.a.test") is None
