"""Helpers shared by the DKIM tests: a fake DNS zone that dkimpy verifies against."""

from __future__ import annotations

import base64
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import dkim
from lettre.dkim import DkimSigner

PrivateKeyObject = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

DOMAIN = "example.com"
SELECTOR = "lettre"


def txt_record(key: PrivateKeyObject) -> bytes:
    """The DKIM TXT record of ``key``, built independently of lettre."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


class DnsZone:
    """Serves ``<selector>._domainkey.<domain>`` TXT records to dkimpy, without DNS."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.queries: list[str] = []
        self.last_error: Exception | None = None

    def publish(self, selector: str, domain: str, key: PrivateKeyObject) -> None:
        self.records[f"{selector}._domainkey.{domain}."] = txt_record(key)

    def signer(
        self,
        key: PrivateKeyObject,
        *,
        selector: str = SELECTOR,
        domain: str = DOMAIN,
        **options: Any,
    ) -> DkimSigner:
        """Publish ``key`` and return a signer with it (``options`` go to ``DkimSigner``)."""
        self.publish(selector, domain, key)
        return DkimSigner(domain, selector, key, **options)

    def dnsfunc(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii") if isinstance(name, bytes) else name
        self.queries.append(text)
        return self.records.get(text)

    def verify(self, message: bytes, index: int = 0) -> bool:
        """Verify the ``index``-th DKIM-Signature (from the top) with dkimpy."""
        self.last_error = None
        try:
            return bool(dkim.DKIM(message).verify(idx=index, dnsfunc=self.dnsfunc))
        except dkim.DKIMException as exc:  # what dkim.verify() reports as False
            self.last_error = exc
            return False

    def verify_all(self, message: bytes) -> list[bool]:
        count = len(signature_headers(message))
        return [self.verify(message, index) for index in range(count)]


def signature_headers(message: bytes) -> list[bytes]:
    """The DKIM-Signature header fields of a message, unfolded bytes, top first."""
    head = message.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    fields = re.findall(rb"(?im)^DKIM-Signature:.*\r\n(?:[ \t].*\r\n)*", head)
    return [f[len(b"DKIM-Signature:") :].replace(b"\r\n", b"") for f in fields]


def tags(message: bytes, index: int = 0) -> dict[str, str]:
    """The tag=value list of the ``index``-th DKIM-Signature, whitespace removed."""
    value = signature_headers(message)[index].decode("ascii")
    result: dict[str, str] = {}
    for spec in value.split(";"):
        if spec.strip():
            name, _, tag_value = spec.partition("=")
            result[name.strip()] = re.sub(r"\s+", "", tag_value)
    return result
