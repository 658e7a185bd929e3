"""SASL mechanisms as pure challenge/response machines."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from lettre.errors import LocalProtocolError, RemoteProtocolError
from lettre.protocol.replies import Reply
from lettre.protocol.sasl import CramMd5, Login, Plain, XOAuth2, decode_challenge


def challenge(text: str) -> Reply:
    return Reply(334, None, (text,))


def test_decode_challenge() -> None:
    assert decode_challenge(challenge("VXNlcm5hbWU6")) == b"Username:"
    assert decode_challenge(challenge("")) == b""
    assert decode_challenge(challenge("=")) == b""
    assert decode_challenge(challenge(" UGFzc3dvcmQ6 ")) == b"Password:"


@pytest.mark.parametrize(
    "bad",
    [
        challenge("not base64!"),
        challenge("QUJ"),
        challenge("ünï"),
        Reply(235, None, ("ok",)),
        Reply(334, None, ("QQ==", "QQ==")),
    ],
)
def test_decode_bad_challenge(bad: Reply) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_challenge(bad)


def test_plain() -> None:
    plain = Plain("user", "pässword")
    assert plain.name == "PLAIN"
    assert plain.initial_response() == b"\0user\0p\xc3\xa4ssword"
    assert Plain("user", "pw", authzid="admin").initial_response() == b"admin\0user\0pw"
    # A server that ignores the initial response gets the message once more.
    assert plain.respond(b"") == b"\0user\0p\xc3\xa4ssword"
    with pytest.raises(RemoteProtocolError, match="more than 1"):
        plain.respond(b"")
    with pytest.raises(RemoteProtocolError, match="non-empty"):
        Plain("u", "p").respond(b"huh")
    with pytest.raises(LocalProtocolError):
        Plain("us\0er", "pw")
    with pytest.raises(LocalProtocolError):
        Plain("user", None)  # type: ignore[arg-type]


def test_login() -> None:
    login = Login("user", "secret")
    assert login.name == "LOGIN"
    assert login.initial_response() is None
    assert login.respond(b"Username:") == b"user"
    assert login.respond(b"Password:") == b"secret"
    with pytest.raises(RemoteProtocolError, match="more than 2"):
        login.respond(b"Again:")


def test_cram_md5() -> None:
    # The example exchange of RFC 2195.
    mech = CramMd5("tim", "tanstaaftanstaaf")
    assert mech.initial_response() is None
    server = b"<1896.697170952@postoffice.reston.mci.net>"
    assert mech.respond(server) == b"tim b913a602c7eda7a495b4e6e7334d3890"
    expected = hmac.new(b"tanstaaftanstaaf", server, hashlib.md5).hexdigest()
    assert expected == "b913a602c7eda7a495b4e6e7334d3890"
    with pytest.raises(RemoteProtocolError):
        mech.respond(server)
    with pytest.raises(RemoteProtocolError, match="empty"):
        CramMd5("tim", "x").respond(b"")


def test_xoauth2() -> None:
    mech = XOAuth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    message = mech.initial_response()
    assert message == (
        b"user=someuser@example.com\x01auth=Bearer "
        b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    )
    assert mech.error is None
    error_json = b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
    assert mech.respond(error_json) == b""
    assert mech.error == error_json.decode()
    with pytest.raises(RemoteProtocolError):
        mech.respond(error_json)
    with pytest.raises(LocalProtocolError):
        XOAuth2("user\x01", "token")


def test_reprs_hide_credentials() -> None:
    for mech in (Plain("u", "hunter2"), Login("u", "hunter2"), CramMd5("u", "hunter2")):
        assert "hunter2" not in repr(mech)
    assert repr(XOAuth2("u", "tok")) == "XOAuth2(<credentials hidden>)"


def test_login_through_base64_lines() -> None:
    # What goes on the wire for LOGIN: each response is one base64 line.
    mech = Login("user", "secret")
    first = decode_challenge(challenge(base64.b64encode(b"Username:").decode()))
    assert base64.b64encode(mech.respond(first)) == b"dXNlcg=="
