"""Every signature lettre makes verifies with dkimpy: both algorithms, all four
canonicalization pairs, over messages that exercise canonicalization."""

from __future__ import annotations

import base64

import pytest
from dkim_support import DOMAIN, SELECTOR, DnsZone, PrivateKeyObject, signature_headers, tags

from lettre.dkim import DkimSigner

CANONICALIZATIONS = [
    ("simple", "simple"),
    ("simple", "relaxed"),
    ("relaxed", "simple"),
    ("relaxed", "relaxed"),
]
CANON_IDS = ["/".join(pair) for pair in CANONICALIZATIONS]

HEAD = (
    b"From: Joe SixPack <joe@example.com>\r\n"
    b"To: Suzie Q <suzie@example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@example.com>\r\n"
)

ATTACHMENT = base64.encodebytes(bytes(range(256)) * 8).replace(b"\n", b"\r\n")

MESSAGES: dict[str, bytes] = {
    "plain": HEAD + b"\r\nHi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n",
    "non-ascii-headers": (
        b"From: =?utf-8?q?=C3=85sa_Ek?= <asa@example.com>\r\n"
        b"To: =?utf-8?b?5bGx55Sw?= <yamada@example.net>\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
        b"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
        b"Message-ID: <1@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + "Grüße, 山田さん\r\n".encode()
    ),
    "utf8-headers": (
        "From: Åsa Ek <åsa@exämple.com>\r\n"
        "To: 山田 <yamada@例え.jp>\r\n"
        "Subject: Grüße aus Köln\r\n"
        "Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
        "\r\n"
        "Grüße\r\n"
    ).encode(),
    "attachment": (
        HEAD + b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="==b=="\r\n'
        b"\r\n"
        b"--==b==\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Gr=C3=BC=C3=9Fe  \r\n"
        b"--==b==\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="data.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n" + ATTACHMENT + b"--==b==--\r\n"
    ),
    "dot-lines": (HEAD + b"\r\n.\r\n..\r\n.starts with a dot\r\n..two dots\r\nend\r\n.\r\n"),
    "long-folded-headers": (
        b"From: Joe <joe@example.com>\r\n"
        b"To: a@example.net, b@example.net, c@example.net, d@example.net,\r\n"
        b"\te@example.net, f@example.net, g@example.net, h@example.net,\r\n"
        b"  i@example.net\r\n"
        b"Subject: a subject that is long enough that it had to be folded over\r\n"
        b" several lines by the serializer,   with   runs of   spaces\r\n"
        b"\tand tabs\t\tinside\r\n"
        b"References: <a@example.com> <b@example.com> <c@example.com> <d@example.com>\r\n"
        b" <e@example.com> <f@example.com>\r\n"
        b"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
        b"\r\n"
        b"body\r\n"
    ),
    "whitespace": (
        b"From:joe@example.com\r\n"
        b"Subject:   lots   of \t space   \r\n"
        b"To:\tsuzie@example.net  \r\n"
        b"\r\n"
        b"  leading, trailing \t \r\n"
        b"inner\t\ttabs  and   spaces\r\n"
        b"   \r\n"
        b"\t\r\n"
        b"\r\n"
        b"\r\n"
    ),
    "empty-body": HEAD + b"\r\n",
    "header-only": HEAD,
    "no-final-newline": HEAD + b"\r\nno final line break",
    "lf-line-endings": (
        b"From: joe@example.com\nTo: suzie@example.net\nSubject: LF only\n\nline one\nline two\n"
    ),
    "mixed-line-endings": (
        b"From: joe@example.com\r\nSubject: mixed\n\r\none\rtwo\nthree\r\n\r\n\n"
    ),
    "duplicate-headers": (
        b"Received: from a by b\r\n"
        b"Received: from c by d\r\n"
        b"From: joe@example.com\r\n"
        b"To: one@example.net\r\n"
        b"To: two@example.net\r\n"
        b"Subject: two To fields\r\n"
        b"\r\nbody\r\n"
    ),
    "unusual-case": (
        b"FROM: joe@example.com\r\nsubject: lower\r\nTO: suzie@example.net\r\n\r\nbody\r\n"
    ),
}


@pytest.mark.parametrize(("header_c", "body_c"), CANONICALIZATIONS, ids=CANON_IDS)
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_signature_verifies_with_dkimpy(
    name: str, header_c: str, body_c: str, private_key: PrivateKeyObject, zone: DnsZone
) -> None:
    signer = zone.signer(
        private_key,
        header_canonicalization=header_c,
        body_canonicalization=body_c,
    )
    signed = signer.sign(MESSAGES[name])
    assert zone.verify(signed), zone.last_error
    assert zone.queries == [f"{SELECTOR}._domainkey.{DOMAIN}."]
    found = tags(signed)
    assert found["c"] == f"{header_c}/{body_c}"
    assert found["a"] == signer.algorithm
    assert found["d"] == DOMAIN
    assert found["s"] == SELECTOR
    assert "l" not in found


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_every_header_line_fits_78_columns(name: str, private_key: PrivateKeyObject) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, private_key, identity="newsletter@mail.example.com")
    header = signer.signature_header(MESSAGES[name])
    assert header.startswith(b"DKIM-Signature: v=1; ")
    assert header.endswith(b"\r\n")
    lines = header[:-2].split(b"\r\n")
    assert all(len(line) <= 78 for line in lines), lines
    assert all(line.startswith(b" ") for line in lines[1:])
    # The signature is spread over folded lines, as a long b= value must be.
    assert len(lines) >= 4


@pytest.mark.parametrize(("header_c", "body_c"), CANONICALIZATIONS, ids=CANON_IDS)
def test_optional_tags_verify(
    header_c: str, body_c: str, private_key: PrivateKeyObject, zone: DnsZone
) -> None:
    signer = zone.signer(
        private_key,
        header_canonicalization=header_c,
        body_canonicalization=body_c,
        identity="joe.sixpack+news@mail.example.com",
        expire_after=7 * 86400,
        body_length=True,
        signed_headers=["From", "To", "Subject", "X-Campaign"],
    )
    message = MESSAGES["plain"].replace(b"\r\n\r\n", b"\r\nX-Campaign: spring\r\n\r\n", 1)
    signed = signer.sign(message)
    assert zone.verify(signed), zone.last_error
    found = tags(signed)
    assert found["i"] == "joe.sixpack+news@mail.example.com"
    assert int(found["x"]) == int(found["t"]) + 7 * 86400
    assert found["h"].split(":") == ["from", "from", "to", "to", "subject", "subject",
                                     "x-campaign", "cc", "date", "date", "reply-to",
                                     "message-id", "message-id"]  # fmt: skip
    assert int(found["l"]) > 0


def test_rsa_and_ed25519_signatures_on_one_message(
    rsa_key: PrivateKeyObject, ed25519_key: PrivateKeyObject, zone: DnsZone
) -> None:
    zone.publish("rsa", DOMAIN, rsa_key)
    zone.publish("ed", DOMAIN, ed25519_key)
    rsa_signer = DkimSigner(DOMAIN, "rsa", rsa_key)
    ed_signer = DkimSigner(
        DOMAIN, "ed", ed25519_key, header_canonicalization="simple", body_canonicalization="simple"
    )
    once = rsa_signer.sign(MESSAGES["attachment"])
    twice = ed_signer.sign(once)
    assert twice.endswith(once)
    assert len(signature_headers(twice)) == 2
    assert [tags(twice, i)["a"] for i in range(2)] == ["ed25519-sha256", "rsa-sha256"]
    assert zone.verify_all(twice) == [True, True]


def test_signing_is_deterministic_for_a_fixed_clock(ed25519_key: PrivateKeyObject) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, ed25519_key, clock=lambda: 1_700_000_000.9)
    first = signer.sign(MESSAGES["plain"])
    assert signer.sign(MESSAGES["plain"]) == first
    assert tags(first)["t"] == "1700000000"
