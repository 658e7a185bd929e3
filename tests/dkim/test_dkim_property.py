"""Property: whatever the header values and body, dkimpy verifies what lettre signs."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric import ed25519
from dkim.canonicalization import CanonicalizationPolicy
from dkim_support import DOMAIN, SELECTOR, DnsZone, tags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lettre.dkim import DkimSigner

# Fixed once: Hypothesis must not regenerate it per example.
KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ZONE = DnsZone()
ZONE.publish(SELECTOR, DOMAIN, KEY)

_text = st.text(
    alphabet=st.sampled_from([*"abcXYZ09.,:;=<>@\"'()", " ", "\t", "é", "山"]),
    max_size=40,
)
_header_value = st.lists(_text, min_size=1, max_size=3).map(
    # Fold with CRLF + WSP between pieces, as a serializer would.
    lambda pieces: "\r\n ".join(p.replace("\r", "") for p in pieces)
)
_body_line = st.one_of(
    _text,
    st.sampled_from(["", ".", "..", ". leading dot", "   ", "\t", "-- ", "From here"]),
)
_body = st.lists(_body_line, max_size=12).map(lambda lines: "".join(f"{x}\r\n" for x in lines))
_canon = st.sampled_from(["simple", "relaxed"])


def _message(subject: str, to: str, extra: str, body: str) -> bytes:
    return (
        f"From: Joe <joe@example.com>\r\nTo:{to}\r\nSubject:{subject}\r\n"
        f"X-Extra: {extra}\r\n\r\n{body}"
    ).encode()


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    subject=_header_value,
    to=_header_value,
    extra=_header_value,
    body=_body,
    header_c=_canon,
    body_c=_canon,
)
def test_any_message_verifies(
    subject: str, to: str, extra: str, body: str, header_c: str, body_c: str
) -> None:
    signer = DkimSigner(
        DOMAIN,
        SELECTOR,
        KEY,
        header_canonicalization=header_c,
        body_canonicalization=body_c,
        signed_headers=["From", "To", "Subject", "X-Extra"],
    )
    message = _message(subject, to, extra, body)
    signed = signer.sign(message)
    assert ZONE.verify(signed), ZONE.last_error
    # The body hash agrees with an independent canonicalization of the same body.
    policy = CanonicalizationPolicy.from_c_value(f"{header_c}/{body_c}".encode())
    expected = hashlib.sha256(policy.canonicalize_body(body.encode())).digest()
    assert tags(signed)["bh"] == base64.b64encode(expected).decode()
    # Any change to the signed subject's visible text breaks the signature.
    tampered = signed.replace(b"\r\nSubject:", b"\r\nSubject:!", 1)
    assert not ZONE.verify(tampered)
