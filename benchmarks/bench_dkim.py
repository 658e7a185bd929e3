"""DKIM signatures per second: lettre's DkimSigner against dkimpy's sign().

Both sign the same message with the same key, relaxed/relaxed canonicalization
and the same list of header fields (``h=``). Run it as a script::

    python benchmarks/bench_dkim.py [--seconds 1.5]

It prints a Markdown table: signatures per second for each library, key type
and message size, and lettre's speed relative to dkimpy's. Every signature is
checked with dkimpy's verifier once before timing.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import platform
import re
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import dkim
from lettre.dkim import DkimSigner

DOMAIN = "example.com"
SELECTOR = "bench"


def _message(attachment_size: int) -> bytes:
    head = (
        b"From: Sender Name <sender@example.com>\r\n"
        b"To: Recipient One <one@example.net>, Recipient Two <two@example.net>\r\n"
        b"Cc: copy@example.org\r\n"
        b"Subject: =?utf-8?q?Monthly_report_=E2=80=94_figures_and_attachments?=\r\n"
        b"Date: Tue, 04 Jun 2024 10:15:00 +0000\r\n"
        b"Message-ID: <20240604101500.4242@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="=_boundary_42"\r\n'
        b"\r\n"
    )
    text = b"".join(
        b"Line %d of the report: figures, remarks  and a few   spaces.\r\n" % i for i in range(40)
    )
    parts = [
        head,
        b"--=_boundary_42\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        text,
    ]
    if attachment_size:
        payload = base64.encodebytes(bytes(range(256)) * (attachment_size // 256))
        parts += [
            b"--=_boundary_42\r\nContent-Type: application/pdf\r\n",
            b"Content-Transfer-Encoding: base64\r\n\r\n",
            payload.replace(b"\n", b"\r\n"),
        ]
    parts.append(b"--=_boundary_42--\r\n")
    return b"".join(parts)


def _rate(sign: Callable[[], object], seconds: float) -> float:
    """Signatures per second, timed over at least ``seconds`` (after a warm-up)."""
    for _ in range(3):
        sign()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10):
            sign()
        count += 10
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _check(signed: bytes, record: bytes) -> None:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return record

    if not dkim.verify(signed, dnsfunc=dnsfunc):
        raise SystemExit("a benchmark signature did not verify: the comparison would be void")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    args = parser.parse_args()

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    ed_raw_b64 = base64.b64encode(
        ed_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )
    try:
        import nacl  # noqa: F401  (dkimpy's Ed25519 support needs PyNaCl)

        dkimpy_ed25519 = True
    except ImportError:
        dkimpy_ed25519 = False

    messages = {"4 KB text": _message(0), "100 KB attachment": _message(100 * 1024)}
    keys = {
        "RSA-2048": (rsa_key, rsa_pem, b"rsa-sha256"),
        "Ed25519": (ed_key, ed_raw_b64, b"ed25519-sha256"),
    }

    print(
        f"Python {platform.python_version()}, dkimpy {importlib.metadata.version('dkimpy')}, "
        f"cryptography {importlib.metadata.version('cryptography')}, "
        f"{args.seconds:g} s per measurement; relaxed/relaxed, same h= list\n"
    )
    print("| key | message | lettre sig/s | dkimpy sig/s | lettre / dkimpy |")
    print("|---|---|---:|---:|---:|")
    for key_name, (key, dkimpy_key, algorithm) in keys.items():
        signer = DkimSigner(DOMAIN, SELECTOR, key)
        record = signer.dns_record().encode("ascii")
        for message_name, message in messages.items():
            ours = signer.sign(message)
            _check(ours, record)
            match = re.search(rb"h=([^;]*);", ours.replace(b"\r\n ", b""))
            assert match is not None
            include = match.group(1).split(b":")
            lettre_rate = _rate(lambda s=signer, m=message: s.sign(m), args.seconds)
            if algorithm == b"ed25519-sha256" and not dkimpy_ed25519:
                print(f"| {key_name} | {message_name} | {lettre_rate:,.0f} | n/a (no PyNaCl) | |")
                continue

            def dkimpy_sign(
                m: bytes = message,
                k: bytes = dkimpy_key,
                a: bytes = algorithm,
                h: list[bytes] = include,
            ) -> bytes:
                header = dkim.sign(
                    m,
                    SELECTOR.encode(),
                    DOMAIN.encode(),
                    k,
                    signature_algorithm=a,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=h,
                )
                return bytes(header) + m

            _check(dkimpy_sign(), record)
            dkimpy_rate = _rate(dkimpy_sign, args.seconds)
            print(
                f"| {key_name} | {message_name} | {lettre_rate:,.0f} | {dkimpy_rate:,.0f} "
                f"| {lettre_rate / dkimpy_rate:.2f}x |"
            )


if __name__ == "__main__":
    main()
