"""DANE for SMTP (RFC 7672): TLSA records that say which certificate an exchanger must present.

An exchanger publishes TLSA records at ``_25._tcp.<exchanger>``. They are
believed only when the resolver is one the user marked as validating
(``Resolver(validating=True)``) and it set the AD bit on the answer, and only
when the MX records and the exchanger's addresses were validated too: an
insecure answer is ignored. With usable records, STARTTLS is mandatory and
the certificate must match one of them.

Usable here:

- DANE-EE (usage 3): the leaf certificate (selector 0) or its public key
  (selector 1), in full (matching type 0) or as a SHA-256 (1) or SHA-512
  (2) digest; no name or expiry check (RFC 7672 3.1.1).
- DANE-TA (usage 2): a certificate of the chain the server sent (not the
  leaf) matches the record, the leaf chains up to it, and the leaf is valid
  for the exchanger's name (RFC 7672 3.1.2). This needs the chain, which
  Python exposes from 3.13 (``SSLObject.get_unverified_chain``; the same
  method exists unexposed since 3.10), and the ``cryptography`` package's
  X.509 verifier. Without them DANE-TA records are reported as unusable
  (never silently skipped); when only unusable records exist, TLS is still
  mandatory but unauthenticated (RFC 7672 2.2).

PKIX usages 0 and 1 are not used for SMTP (RFC 7672 3.1.3) and are unusable.
"""

from __future__ import annotations

import functools
import hashlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lettre.dns.resolver import Resolver

__all__ = [
    "DaneRecords",
    "TlsaRecord",
    "dane_ta_available",
    "match_certificate",
    "match_chain",
    "peer_chain",
    "subject_public_key_info",
    "tlsa_lookup",
]

DANE_TA = 2
_ENCODING_DER = 2  # _ssl.ENCODING_DER
DANE_EE = 3


@dataclass(frozen=True, slots=True)
class TlsaRecord:
    """One TLSA record.

    Attributes:
        usage: 0-3 (2 DANE-TA, 3 DANE-EE).
        selector: 0 the whole certificate, 1 its SubjectPublicKeyInfo.
        mtype: 0 full, 1 SHA-256, 2 SHA-512.
        data: the association data (the certificate, key or digest).
    """

    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def usable(self) -> bool:
        """Whether this code can match the record.

        DANE-EE, and DANE-TA where :func:`dane_ta_available`, with a known
        selector and matching type.
        """
        if self.selector not in (0, 1) or self.mtype not in (0, 1, 2):
            return False
        return self.usage == DANE_EE or (self.usage == DANE_TA and dane_ta_available())

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()[:16]}..."


@dataclass(frozen=True, slots=True)
class DaneRecords:
    """The validated TLSA records of one exchanger.

    Attributes:
        host: the exchanger.
        records: every record of the (authentic) TLSA answer.
    """

    host: str
    records: tuple[TlsaRecord, ...]

    @property
    def usable(self) -> tuple[TlsaRecord, ...]:
        """The records a certificate can be matched against."""
        return tuple(r for r in self.records if r.usable)

    @property
    def unusable(self) -> tuple[TlsaRecord, ...]:
        """The records that cannot be used here (DANE-TA, PKIX usages, unknown types)."""
        return tuple(r for r in self.records if not r.usable)


async def tlsa_lookup(resolver: Resolver, host: str, port: int = 25) -> DaneRecords | None:
    """The TLSA records of ``host``, when a validating resolver vouches for them.

    Returns None when the resolver is not marked validating, the answer is not
    authentic (insecure), or there are no records.

    Raises:
        DnsError: the lookup failed (a SERVFAIL from a validating resolver
            may mean the records are bogus: delivery must wait, RFC 7672 2.2).
    """
    if not resolver.validating:
        return None
    answer = await resolver.lookup(f"_{port}._tcp.{host}", "TLSA")
    if not answer.authentic or not answer.records:
        return None
    records = tuple(
        TlsaRecord(int(r.usage), int(r.selector), int(r.mtype), bytes(r.cert))
        for r in answer.records
    )
    return DaneRecords(host, records)


def _read_tlv(der: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``offset``."""
    if offset + 2 > len(der):
        raise ValueError("truncated DER")
    tag = der[offset]
    length = der[offset + 1]
    position = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or position + count > len(der):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[position : position + count], "big")
        position += count
    end = position + length
    if end > len(der):
        raise ValueError("truncated DER")
    return tag, position, end


def subject_public_key_info(certificate: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER X.509 certificate (RFC 5280 4.1).

    Raises:
        ValueError: the bytes are not a certificate.
    """
    tag, start, _ = _read_tlv(certificate, 0)  # Certificate
    if tag != 0x30:
        raise ValueError("not a DER certificate")
    tag, position, tbs_end = _read_tlv(certificate, start)  # TBSCertificate
    if tag != 0x30:
        raise ValueError("not a DER certificate")
    fields: list[tuple[int, int, int]] = []
    while position < tbs_end and len(fields) < 7:
        tag, _, end = _read_tlv(certificate, position)
        fields.append((tag, position, end))
        position = end
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    if len(fields) < 6 or fields[5][0] != 0x30:
        raise ValueError("not a DER certificate")
    _, begin, finish = fields[5]
    return certificate[begin:finish]


def _digest(mtype: int, data: bytes) -> bytes:
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


def match_certificate(records: Sequence[TlsaRecord], leaf: bytes) -> TlsaRecord | None:
    """The usable DANE-EE record that the server's leaf certificate (DER) matches, or None."""
    spki: bytes | None = None
    for record in records:
        if record.usage != DANE_EE or not record.usable:
            continue
        if record.selector == 0:
            selected = leaf
        else:
            if spki is None:
                try:
                    spki = subject_public_key_info(leaf)
                except ValueError:
                    return None
            selected = spki
        if _digest(record.mtype, selected) == record.data:
            return record
    return None


@functools.cache
def dane_ta_available() -> bool:
    """Whether DANE-TA records can be checked here: the chain is reachable and cryptography is."""
    try:
        from cryptography.x509.verification import ExtensionPolicy  # noqa: F401 (45 and later)
    except ImportError:
        return False
    if hasattr(ssl.SSLObject, "get_unverified_chain"):
        return True
    import _ssl

    return hasattr(getattr(_ssl, "_SSLSocket", None), "get_unverified_chain")


def peer_chain(ssl_object: Any) -> list[bytes] | None:
    """The DER certificates the server sent, leaf first; None where Python hides them."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if getter is None:
        return None
    chain = []
    for certificate in getter() or ():
        if isinstance(certificate, bytes):
            chain.append(certificate)
        else:  # a _ssl.Certificate (before 3.13)
            chain.append(bytes(certificate.public_bytes(_ENCODING_DER)))
    return chain


def _selected(record: TlsaRecord, certificate: bytes) -> bytes | None:
    if record.selector == 0:
        return certificate
    try:
        return subject_public_key_info(certificate)
    except ValueError:
        return None


def _chains_to(path: Sequence[bytes], anchor: bytes, name: str) -> bool:
    """Whether ``path`` (leaf first) chains up to ``anchor`` and the leaf is valid for ``name``."""
    from cryptography import x509
    from cryptography.x509.verification import (
        Criticality,
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    # The leaf's names are checked (subjectAltName required); the rest of
    # the Web PKI profile for leaves (which extensions may be critical...) is
    # not DANE's business.
    leaf_policy = ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    try:
        leaf = x509.load_der_x509_certificate(path[0])
        intermediates = [x509.load_der_x509_certificate(c) for c in path[1:]]
        store = Store([x509.load_der_x509_certificate(anchor)])
        verifier = (
            PolicyBuilder()
            .store(store)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf_policy
            )
            .build_server_verifier(x509.DNSName(name))
        )
        verifier.verify(leaf, intermediates)
    except (VerificationError, ValueError):
        return False
    return True


def match_chain(
    records: Sequence[TlsaRecord], chain: Sequence[bytes], name: str
) -> TlsaRecord | None:
    """The usable record the server's chain (DER, leaf first) satisfies, or None.

    DANE-EE records are matched against the leaf; DANE-TA records against
    the other certificates of the chain, and then the leaf must chain up to
    the matching certificate and be valid for ``name`` (the exchanger).
    """
    if not chain:
        return None
    found = match_certificate(records, chain[0])
    if found is not None:
        return found
    for record in records:
        if record.usage != DANE_TA or not record.usable:
            continue
        for index in range(1, len(chain)):
            selected = _selected(record, chain[index])
            if selected is None or _digest(record.mtype, selected) != record.data:
                continue
            if _chains_to(chain[:index], chain[index], name):
                return record
    return None
