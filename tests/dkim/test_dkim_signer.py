"""DkimSigner's options, key formats, the header it writes, and its typed errors."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from dkim_support import DOMAIN, SELECTOR, DnsZone, PrivateKeyObject, tags, txt_record

from lettre.dkim import (
    DEFAULT_OVERSIGNED_HEADERS,
    DEFAULT_SIGNED_HEADERS,
    Canonicalization,
    DkimSigner,
)
from lettre.errors import LettreError, MessageError
from lettre.transports.base import Signer

MESSAGE = (
    b"From: Joe <joe@example.com>\r\n"
    b"To: one@example.net\r\n"
    b"To: two@example.net\r\n"
    b"Subject: hello\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
    b"X-Mailer: not signed\r\n"
    b"\r\n"
    b"Hello.\r\n"
)

PASSWORD = b"correct horse battery staple"


def _pem(key: PrivateKeyTypes, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _der(key: PrivateKeyTypes, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())


def _is_probable_prime(n: int) -> bool:
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    if any(n % p == 0 for p in small):
        return n in small
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime_from(n: int) -> int:
    while not _is_probable_prime(n):
        n += 1
    return n


def _small_rsa_key() -> rsa.RSAPrivateKey:
    """A 512-bit RSA key (cryptography refuses to generate one, but loads it)."""
    p = _prime_from(2**255 + 2**254 + 12345)
    q = _prime_from(2**255 + 2**254 + 987654321)
    e = 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


# -- keys -------------------------------------------------------------------------------------


def test_rsa_key_forms(rsa_key: rsa.RSAPrivateKey, zone: DnsZone) -> None:
    zone.publish(SELECTOR, DOMAIN, rsa_key)
    pkcs1 = _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    pkcs8 = _pem(rsa_key, serialization.PrivateFormat.PKCS8)
    assert pkcs1.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert pkcs8.startswith(b"-----BEGIN PRIVATE KEY-----")
    encrypted = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD),
    )
    forms: list[tuple[object, bytes | None]] = [
        (rsa_key, None),
        (pkcs1, None),
        (pkcs1.decode("ascii"), None),
        (pkcs8, None),
        (pkcs8.decode("ascii"), None),
        (_der(rsa_key, serialization.PrivateFormat.PKCS8), None),
        (_der(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL), None),
        (encrypted, PASSWORD),
    ]
    for form, password in forms:
        signer = DkimSigner(DOMAIN, SELECTOR, form, password=password)  # type: ignore[arg-type]
        assert signer.algorithm == "rsa-sha256"
        assert zone.verify(signer.sign(MESSAGE)), zone.last_error


def test_ed25519_key_forms(ed25519_key: ed25519.Ed25519PrivateKey, zone: DnsZone) -> None:
    zone.publish(SELECTOR, DOMAIN, ed25519_key)
    raw = ed25519_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pkcs8 = _pem(ed25519_key, serialization.PrivateFormat.PKCS8)
    forms: list[object] = [
        ed25519_key,
        raw,
        pkcs8,
        pkcs8.decode("ascii"),
        _der(ed25519_key, serialization.PrivateFormat.PKCS8),
    ]
    for form in forms:
        signer = DkimSigner(DOMAIN, SELECTOR, form)  # type: ignore[arg-type]
        assert signer.algorithm == "ed25519-sha256"
        assert zone.verify(signer.sign(MESSAGE)), zone.last_error


def test_dns_record_matches_the_public_key(private_key: PrivateKeyObject) -> None:
    signer = DkimSigner("Mail.Example.COM", "S2024", private_key)
    assert signer.dns_record().encode("ascii") == txt_record(private_key)
    assert signer.dns_name == "s2024._domainkey.mail.example.com"


def test_rfc8463_key_and_body_hash() -> None:
    """The Ed25519 key and body hash of the example in RFC 8463, appendix A."""
    seed = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
    signer = DkimSigner("football.example.com", "brisbane", seed)
    assert signer.dns_record() == (
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    )
    message = (
        b"From: Joe SixPack <joe@football.example.com>\r\n"
        b"To: Suzie Q <suzie@shopping.example.net>\r\n"
        b"Subject: Is dinner ready?\r\n"
        b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
        b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
        b"\r\n"
        b"Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n"
    )
    expected = "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
    simple = DkimSigner("football.example.com", "brisbane", seed, body_canonicalization="simple")
    assert tags(simple.sign(message))["bh"] == expected
    assert tags(signer.sign(message))["bh"] == expected
    # Relaxed canonicalization ignores the run of spaces and the trailing white space.
    spaced = message.replace(b"game. Are", b"game.  \tAre").replace(b"Joe.", b"Joe. \t")
    assert tags(signer.sign(spaced + b"\r\n\r\n"))["bh"] == expected
    assert tags(simple.sign(spaced))["bh"] != expected


@pytest.mark.parametrize(
    "bad_key",
    [
        b"",
        b"not a key at all",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "not PEM text",
        b"\x00" * 31,
        12345,
        None,
    ],
    ids=["empty", "garbage", "broken-pem", "text", "31-bytes", "int", "none"],
)
def test_unusable_keys_raise_message_error(bad_key: object) -> None:
    with pytest.raises(MessageError) as info:
        DkimSigner(DOMAIN, SELECTOR, bad_key)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LettreError)


def test_public_key_instead_of_private_key(private_key: PrivateKeyObject) -> None:
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(MessageError, match="cannot load the DKIM private key"):
        DkimSigner(DOMAIN, SELECTOR, public_pem)
    with pytest.raises(MessageError, match="unsupported DKIM private key type"):
        DkimSigner(DOMAIN, SELECTOR, private_key.public_key())  # type: ignore[arg-type]


def test_other_key_types_are_refused() -> None:
    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    with pytest.raises(MessageError, match="RSA or Ed25519 keys only"):
        DkimSigner(DOMAIN, SELECTOR, ec_pem)
    ed448_pem = _pem(ed448.Ed448PrivateKey.generate(), serialization.PrivateFormat.PKCS8)
    with pytest.raises(MessageError, match="RSA or Ed25519 keys only"):
        DkimSigner(DOMAIN, SELECTOR, ed448_pem)


def test_short_rsa_key_is_refused() -> None:
    key = _small_rsa_key()
    assert key.key_size < 1024
    with pytest.raises(MessageError, match="at least 1024"):
        DkimSigner(DOMAIN, SELECTOR, key)
    with pytest.raises(MessageError, match="at least 1024"):
        DkimSigner(DOMAIN, SELECTOR, _pem(key, serialization.PrivateFormat.PKCS8))


def test_encrypted_key_needs_the_right_password(ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    encrypted = ed25519_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD),
    )
    with pytest.raises(MessageError, match="password") as info:
        DkimSigner(DOMAIN, SELECTOR, encrypted)
    assert PASSWORD.decode() not in str(info.value)
    with pytest.raises(MessageError):
        DkimSigner(DOMAIN, SELECTOR, encrypted, password=b"wrong")
    assert DkimSigner(DOMAIN, SELECTOR, encrypted, password=PASSWORD).algorithm == (
        "ed25519-sha256"
    )


def test_errors_and_repr_never_show_key_material(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = _pem(rsa_key, serialization.PrivateFormat.PKCS8)
    broken = pem[:200] + b"!!" + pem[202:]
    with pytest.raises(MessageError) as info:
        DkimSigner(DOMAIN, SELECTOR, broken)
    body = b"".join(pem.splitlines()[1:-1]).decode("ascii")
    assert body[:20] not in str(info.value)
    signer = DkimSigner(DOMAIN, SELECTOR, pem)
    assert repr(signer) == (
        "DkimSigner(domain='example.com', selector='lettre', algorithm='rsa-sha256', "
        "canonicalization='relaxed/relaxed')"
    )


def test_missing_cryptography_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, ed25519_key: ed25519.Ed25519PrivateKey
) -> None:
    pem = _pem(ed25519_key, serialization.PrivateFormat.PKCS8)
    for name in list(sys.modules):
        if name == "cryptography" or name.startswith("cryptography."):
            monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'lettre\[dkim\]'"):
        DkimSigner(DOMAIN, SELECTOR, pem)


def test_importing_lettre_dkim_does_not_need_cryptography() -> None:
    code = (
        "import sys\n"
        "sys.modules['cryptography'] = None\n"
        "import lettre, lettre.dkim\n"
        "from lettre.dkim import DkimSigner\n"
        "try:\n"
        "    DkimSigner('example.com', 'sel', b'-----BEGIN PRIVATE KEY-----')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'lettre[dkim]'" in result.stdout


# -- domain, selector, identity, options ------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "exa;mple.com",
        "example.com; x=1",
        "a=b.example.com",
        "example.com\r\nX-Injected: yes",
        "example.com\n",
        "example.com\r",
        "exa mple.com",
        "example..com",
        "-bad.example.com",
        "bad-.example.com",
        "under_score.example.com",
        "a" * 64 + ".example.com",
        ("a" * 60 + ".") * 5 + "com",
        "exa\x00mple.com",
        "ex\u00e4mple;.com",
    ],
)
@pytest.mark.parametrize("what", ["domain", "selector"])
def test_bad_domain_or_selector(
    bad: str, what: str, ed25519_key: ed25519.Ed25519PrivateKey
) -> None:
    args = {"domain": DOMAIN, "selector": SELECTOR, what: bad}
    with pytest.raises(MessageError, match=f"DKIM {what}"):
        DkimSigner(args["domain"], args["selector"], ed25519_key)


def test_non_string_domain(ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(MessageError, match="must be a string"):
        DkimSigner(b"example.com", SELECTOR, ed25519_key)  # type: ignore[arg-type]


def test_domain_and_selector_forms(ed25519_key: ed25519.Ed25519PrivateKey, zone: DnsZone) -> None:
    signer = DkimSigner("Exämple.DE.", "2024-01.Mail", ed25519_key)
    assert signer.domain == "xn--exmple-cua.de"
    assert signer.selector == "2024-01.mail"
    zone.publish("2024-01.mail", "xn--exmple-cua.de", ed25519_key)
    signed = signer.sign(MESSAGE)
    assert tags(signed)["d"] == "xn--exmple-cua.de"
    assert zone.verify(signed), zone.last_error


@pytest.mark.parametrize(
    ("identity", "tag"),
    [
        ("@example.com", "@example.com"),
        ("@Mail.Example.com", "@mail.example.com"),
        ("joe@example.com", "joe@example.com"),
        ("joe.sixpack+tag@sub.example.com", "joe.sixpack+tag@sub.example.com"),
        ("a=b@example.com", "a=3Db@example.com"),
        ("j\u00f6rg@example.com", "j=C3=B6rg@example.com"),
    ],
)
def test_identity(
    identity: str, tag: str, ed25519_key: ed25519.Ed25519PrivateKey, zone: DnsZone
) -> None:
    zone.publish(SELECTOR, DOMAIN, ed25519_key)
    signed = DkimSigner(DOMAIN, SELECTOR, ed25519_key, identity=identity).sign(MESSAGE)
    assert tags(signed)["i"] == tag
    assert zone.verify(signed), zone.last_error


@pytest.mark.parametrize(
    "identity",
    [
        "example.com",
        "@example.org",
        "@notexample.com",
        "@example.com.evil.net",
        "joe bloggs@example.com",
        "joe;x=1@example.com",
        "joe..x@example.com",
        ".joe@example.com",
        '"quoted"@example.com',
        "joe@example.com\r\nX: y",
        "@",
    ],
)
def test_bad_identity(identity: str, ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(MessageError, match="identity"):
        DkimSigner(DOMAIN, SELECTOR, ed25519_key, identity=identity)


def test_canonicalization_values(ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    signer = DkimSigner(
        DOMAIN,
        SELECTOR,
        ed25519_key,
        header_canonicalization=Canonicalization.SIMPLE,
        body_canonicalization="relaxed",
    )
    assert signer.canonicalization == (Canonicalization.SIMPLE, Canonicalization.RELAXED)
    assert DkimSigner(DOMAIN, SELECTOR, ed25519_key).canonicalization == (
        Canonicalization.RELAXED,
        Canonicalization.RELAXED,
    )
    with pytest.raises(MessageError, match="header canonicalization"):
        DkimSigner(DOMAIN, SELECTOR, ed25519_key, header_canonicalization="nofws")
    with pytest.raises(MessageError, match="body canonicalization"):
        DkimSigner(DOMAIN, SELECTOR, ed25519_key, body_canonicalization="Relaxed ")


def test_signed_header_options(ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(MessageError, match="From header field must be signed"):
        DkimSigner(
            DOMAIN, SELECTOR, ed25519_key, signed_headers=["To", "Subject"], oversigned_headers=()
        )
    with pytest.raises(MessageError, match="sequence of header field names"):
        DkimSigner(DOMAIN, SELECTOR, ed25519_key, signed_headers="from")
    for bad in ("X Bad", "Subject:", "", "Sübject", "X-Ok\r\n"):
        with pytest.raises(MessageError, match="invalid header field name"):
            DkimSigner(DOMAIN, SELECTOR, ed25519_key, signed_headers=["From", bad])
        with pytest.raises(MessageError, match="invalid header field name"):
            DkimSigner(DOMAIN, SELECTOR, ed25519_key, oversigned_headers=[bad])
    # From only in the oversigned list still gets it signed.
    signer = DkimSigner(DOMAIN, SELECTOR, ed25519_key, signed_headers=["Subject", "SUBJECT"])
    assert signer.signed_headers == ("subject", *(
        name for name in DEFAULT_OVERSIGNED_HEADERS if name != "subject"
    ))  # fmt: skip
    assert DkimSigner(DOMAIN, SELECTOR, ed25519_key).signed_headers == DEFAULT_SIGNED_HEADERS
    assert "from" in DEFAULT_SIGNED_HEADERS


def test_h_tag_lists_present_fields_and_oversigns(ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    signed = DkimSigner(DOMAIN, SELECTOR, ed25519_key).sign(MESSAGE)
    names = tags(signed)["h"].split(":")
    # Two To fields: listed three times; absent Cc and Reply-To: once (oversigned).
    assert names.count("to") == 3
    assert names.count("from") == 2
    assert names.count("subject") == 2
    assert names.count("date") == 2
    assert names.count("cc") == 1
    assert names.count("reply-to") == 1
    assert names.count("message-id") == 1
    # Absent fields that are not oversigned are not listed; unlisted fields never are.
    assert "sender" not in names
    assert "x-mailer" not in names
    no_oversign = DkimSigner(DOMAIN, SELECTOR, ed25519_key, oversigned_headers=())
    assert tags(no_oversign.sign(MESSAGE))["h"] == "from:subject:date:to:to"


def test_timestamp_and_expiry(ed25519_key: ed25519.Ed25519PrivateKey, zone: DnsZone) -> None:
    zone.publish(SELECTOR, DOMAIN, ed25519_key)

    def fixed() -> float:
        return 1_000_000_000.75

    found = tags(DkimSigner(DOMAIN, SELECTOR, ed25519_key, clock=fixed).sign(MESSAGE))
    assert found["t"] == "1000000000"
    assert "x" not in found
    found = tags(
        DkimSigner(DOMAIN, SELECTOR, ed25519_key, clock=fixed, expire_after=timedelta(days=2)).sign(
            MESSAGE
        )
    )
    assert (found["t"], found["x"]) == ("1000000000", str(1_000_000_000 + 2 * 86400))
    found = tags(
        DkimSigner(
            DOMAIN, SELECTOR, ed25519_key, clock=fixed, timestamp=False, expire_after=60
        ).sign(MESSAGE)
    )
    assert "t" not in found
    assert found["x"] == "1000000060"
    found = tags(DkimSigner(DOMAIN, SELECTOR, ed25519_key, timestamp=False).sign(MESSAGE))
    assert "t" not in found
    assert "x" not in found
    # A signature whose expiry has passed does not verify.
    expired = DkimSigner(DOMAIN, SELECTOR, ed25519_key, clock=fixed, expire_after=60)
    assert not zone.verify(expired.sign(MESSAGE))
    current = DkimSigner(DOMAIN, SELECTOR, ed25519_key, expire_after=3600)
    assert zone.verify(current.sign(MESSAGE)), zone.last_error
    for bad in (0, -5, timedelta(0)):
        with pytest.raises(MessageError, match="expire_after"):
            DkimSigner(DOMAIN, SELECTOR, ed25519_key, expire_after=bad)


def test_body_length_tag(ed25519_key: ed25519.Ed25519PrivateKey, zone: DnsZone) -> None:
    zone.publish(SELECTOR, DOMAIN, ed25519_key)
    signer = DkimSigner(DOMAIN, SELECTOR, ed25519_key, body_length=True)
    signed = signer.sign(MESSAGE)
    assert tags(signed)["l"] == str(len(b"Hello.\r\n"))
    assert zone.verify(signed), zone.last_error


# -- the signed bytes -------------------------------------------------------------------------


def test_follows_the_signer_protocol(ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, ed25519_key, clock=lambda: 1_700_000_000)
    assert isinstance(signer, Signer)
    assert signer.sign(MESSAGE) == signer.signature_header(MESSAGE) + MESSAGE


def test_line_endings_are_normalised_before_signing(
    ed25519_key: ed25519.Ed25519PrivateKey,
) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, ed25519_key, clock=lambda: 1_700_000_000)
    lf = MESSAGE.replace(b"\r\n", b"\n")
    assert signer.sign(lf) == signer.sign(MESSAGE)
    assert signer.sign(MESSAGE[:-2]) == signer.sign(MESSAGE)
    assert signer.sign(bytearray(MESSAGE)) == signer.sign(MESSAGE)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "without header fields"),
        (b"\r\nbody only\r\n", "without header fields"),
        (b"To: a@example.net\r\nSubject: x\r\n\r\nbody\r\n", "without a From"),
        (b" folded: first\r\nFrom: a@example.com\r\n\r\n", "continuation line"),
        (b"From: a@example.com\r\nnot a header line\r\n\r\n", "malformed header line"),
        (b"From: a@example.com\r\n: no name\r\n\r\n", "malformed header line"),
        (b"From: a@example.com\r\nX Bad: name\r\n\r\n", "malformed header line"),
    ],
)
def test_unsignable_messages(
    data: bytes, match: str, ed25519_key: ed25519.Ed25519PrivateKey
) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, ed25519_key)
    with pytest.raises(MessageError, match=match):
        signer.sign(data)
    with pytest.raises(MessageError, match=match):
        signer.signature_header(data)


def test_signer_is_reusable_across_messages(private_key: PrivateKeyObject, zone: DnsZone) -> None:
    zone.publish(SELECTOR, DOMAIN, private_key)
    signer = DkimSigner(DOMAIN, SELECTOR, private_key)
    for index in range(5):
        message = MESSAGE.replace(b"Hello.", f"Hello number {index}.".encode())
        assert zone.verify(signer.sign(message)), zone.last_error
