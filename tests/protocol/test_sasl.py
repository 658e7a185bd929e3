"""SASL mechanisms as pure challenge/response machines."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from protocol_support import exactly

from lettre.errors import LocalProtocolError, RemoteProtocolError
from lettre.protocol.replies import Reply
from lettre.protocol.sasl import (
    MECHANISMS,
    CramMd5,
    Login,
    Mechanism,
    OAuthBearer,
    Plain,
    Scram,
    ScramSha256,
    TokenMechanism,
    XOAuth2,
    decode_challenge,
    mechanism_class,
    saslprep,
)


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


# ------------------------------------------------------------------ OAUTHBEARER

# RFC 7628 section 4.1: the initial client response of the IMAP example.
RFC7628_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
RFC7628_INITIAL = (
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9"
    "QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
)


def test_oauthbearer_rfc7628_example() -> None:
    mech = OAuthBearer("user@example.com", RFC7628_TOKEN, host="server.example.com", port=143)
    assert mech.name == "OAUTHBEARER"
    message = mech.initial_response()
    assert base64.b64encode(message).decode() == RFC7628_INITIAL
    assert message == (
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        b"auth=Bearer " + RFC7628_TOKEN.encode() + b"\x01\x01"
    )
    # create() is how the SMTP client builds it: host and port go in.
    made = OAuthBearer.create(
        "user@example.com", RFC7628_TOKEN, host="server.example.com", port=143
    )
    assert made.initial_response() == message


def test_oauthbearer_without_host_and_with_an_escaped_user() -> None:
    mech = OAuthBearer("a,b=c@example.com", "tok")
    assert mech.initial_response() == b"n,a=a=2Cb=3Dc@example.com,\x01auth=Bearer tok\x01\x01"


def test_oauthbearer_failure_is_acknowledged_with_0x01() -> None:
    # RFC 7628 section 3.2.2: the error comes as a challenge, the client
    # answers a single 0x01 and the server then fails the exchange.
    mech = OAuthBearer("user@example.com", "expired")
    error = b'{"status":"invalid_token","scope":"example_scope"}'
    assert mech.respond(error) == b"\x01"
    assert mech.error == error.decode()
    with pytest.raises(RemoteProtocolError, match="more than 1"):
        mech.respond(error)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"username": "user\x01", "token": "t"},
        {"username": "user", "token": "t\x01"},
        {"username": "user", "token": "t", "host": "h\x01"},
        {"username": "user", "token": "t", "port": 0},
        {"username": "user", "token": "t", "port": True},
        {"username": "user", "token": None},
    ],
)
def test_oauthbearer_refuses_what_it_cannot_send(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        OAuthBearer(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ SCRAM-SHA-256

# RFC 7677 section 3: user "user", password "pencil".
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_scram() -> ScramSha256:
    return ScramSha256("user", "pencil", nonce=CLIENT_NONCE)


def test_scram_sha256_rfc7677_exchange() -> None:
    mech = rfc_scram()
    assert mech.name == "SCRAM-SHA-256"
    assert mech.initial_response() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert mech.respond(SERVER_FIRST) == CLIENT_FINAL
    assert mech.respond(SERVER_FINAL) == b""
    mech.check_success()
    assert mech.error is None
    with pytest.raises(RemoteProtocolError, match="more than 2"):
        mech.respond(SERVER_FINAL)


def test_scram_refuses_a_wrong_server_signature() -> None:
    mech = rfc_scram()
    mech.respond(SERVER_FIRST)
    signature = bytearray(base64.b64decode(SERVER_FINAL[2:]))
    signature[-1] ^= 1
    with pytest.raises(RemoteProtocolError, match="signature is wrong") as info:
        mech.respond(b"v=" + base64.b64encode(bytes(signature)))
    assert "pencil" not in str(info.value)
    with pytest.raises(RemoteProtocolError, match="without proving"):
        mech.check_success()


def test_scram_refuses_success_before_the_server_signature() -> None:
    mech = rfc_scram()
    with pytest.raises(RemoteProtocolError, match="without proving"):
        mech.check_success()
    mech.respond(SERVER_FIRST)
    with pytest.raises(RemoteProtocolError, match="without proving"):
        mech.check_success()


def test_scram_server_error() -> None:
    mech = rfc_scram()
    mech.respond(SERVER_FIRST)
    # The server says why it refuses; the empty answer lets it reply 535.
    assert mech.respond(b"e=invalid-proof") == b""
    assert mech.error == "invalid-proof"
    with pytest.raises(RemoteProtocolError):
        mech.check_success()


@pytest.mark.parametrize(
    ("server_first", "match"),
    [
        (b"r=someoneElsesNonce123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"r=rOprNGfwEbeRWgbNEkqO abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==", "malformed"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==", "malformed"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=not base64!,i=4096", "salt"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096", "salt"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "fewer"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000000", "more"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=" + b"9" * 5000, "number"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096", "number"),
        # An Arabic-Indic digit four: a digit for str.isdigit, not for SCRAM.
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=\xd9\xa4", "number"),
        (b"r=rOprNGfwEbeRWgbNEkqOx\xff,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "UTF-8"),
        (b"", "malformed"),
        (b"garbage", "malformed"),
    ],
)
def test_scram_refuses_a_bad_server_first_message(server_first: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        rfc_scram().respond(server_first)


@pytest.mark.parametrize("server_final", [b"x=whatever", b"v=not base64!", b"", b"v"])
def test_scram_refuses_a_bad_server_final_message(server_final: bytes) -> None:
    mech = rfc_scram()
    mech.respond(SERVER_FIRST)
    with pytest.raises(RemoteProtocolError):
        mech.respond(server_final)
    with pytest.raises(RemoteProtocolError):
        mech.check_success()


def test_scram_iteration_bounds_can_be_changed() -> None:
    lenient = ScramSha256("user", "pencil", nonce=CLIENT_NONCE, min_iterations=4097)
    with pytest.raises(RemoteProtocolError, match="fewer than the 4097"):
        lenient.respond(SERVER_FIRST)
    strict = ScramSha256("user", "pencil", nonce=CLIENT_NONCE, max_iterations=4000)
    with pytest.raises(RemoteProtocolError, match="more than the 4000"):
        strict.respond(SERVER_FIRST)


def test_scram_escapes_the_user_name_and_prepares_both_values() -> None:
    mech = ScramSha256("a=b,c", "pencil", nonce=CLIENT_NONCE)
    assert mech.initial_response() == b"n,,n=a=3Db=2Cc,r=rOprNGfwEbeRWgbNEkqO"
    # SASLprep: the soft hyphen is mapped to nothing and U+2168 (ROMAN
    # NUMERAL NINE) to "IX", so both give the key "IX" gives.
    proofs = set()
    for password in ("IX", "I\u00adX", "\u2168"):
        mech = ScramSha256("user", password, nonce=CLIENT_NONCE)
        proofs.add(mech.respond(SERVER_FIRST))
    assert len(proofs) == 1
    assert ScramSha256("user", "IX", nonce=CLIENT_NONCE).respond(SERVER_FIRST) != CLIENT_FINAL


@pytest.mark.parametrize(
    ("username", "password"),
    [("user", "pass\x07word"), ("user", "\u0627\u0031"), ("\u00ad", "pencil"), ("", "p")],
)
def test_scram_refuses_values_saslprep_prohibits(username: str, password: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        ScramSha256(username, password)
    if password != "p":
        assert password not in str(info.value)


def test_scram_nonces_are_random_and_checked() -> None:
    first = ScramSha256("user", "pencil").initial_response()
    second = ScramSha256("user", "pencil").initial_response()
    assert first != second
    nonce = first.split(b",r=")[1]
    assert len(nonce) >= 24
    assert all(0x21 <= byte <= 0x7E and byte != 0x2C for byte in nonce)
    for bad in ("", "a,b", "spa ce", "ünï"):
        with pytest.raises(LocalProtocolError, match="nonce"):
            ScramSha256("user", "pencil", nonce=bad)
    with pytest.raises(TypeError, match="family"):
        Scram("user", "pencil")


def test_scram_forgets_the_password_once_used() -> None:
    mech = rfc_scram()
    mech.respond(SERVER_FIRST)
    for slot in type(mech).__slots__ + Scram.__slots__:
        assert getattr(mech, slot, None) not in (b"pencil", "pencil")


@pytest.mark.parametrize(
    ("text", "prepared"),
    [
        # The examples of RFC 4013 section 3.
        ("I\u00adX", "IX"),
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        # A non-ASCII space becomes a space.
        ("a\u00a0b", "a b"),
    ],
)
def test_saslprep(text: str, prepared: str) -> None:
    assert saslprep(text) == prepared


@pytest.mark.parametrize("text", ["\u0007", "\u0627\u0031", "\ue000", "\ufffe"])
def test_saslprep_prohibits(text: str) -> None:
    with pytest.raises(LocalProtocolError):
        saslprep(text, what="the password")


def test_saslprep_unassigned_code_points() -> None:
    # U+0221 is unassigned in Unicode 3.2: a query may hold it, a stored string not.
    assert saslprep("\u0221") == "\u0221"
    with pytest.raises(LocalProtocolError, match="unassigned"):
        saslprep("\u0221", allow_unassigned=False)


# ------------------------------------------------------------------ the registry


def test_registry_declares_every_mechanism() -> None:
    assert set(MECHANISMS) == {
        "PLAIN",
        "LOGIN",
        "CRAM-MD5",
        "XOAUTH2",
        "OAUTHBEARER",
        "SCRAM-SHA-256",
    }
    for name, cls in MECHANISMS.items():
        assert cls.name == name
        assert issubclass(cls, Mechanism)
        assert cls.max_challenges >= 1
        is_token = issubclass(cls, TokenMechanism)
        assert cls.needs == ("token" if is_token else "password")
        # Token mechanisms ask for a fresh token once after 535; no other does.
        assert cls.refresh_attempts == (1 if is_token else 0)
    secret_kept = {name for name, cls in MECHANISMS.items() if not cls.sends_secret}
    assert secret_kept == {"CRAM-MD5", "SCRAM-SHA-256"}
    by_rank = sorted(
        (cls for cls in MECHANISMS.values() if cls.needs == "password"), key=lambda c: c.rank
    )
    assert [cls.name for cls in by_rank] == ["SCRAM-SHA-256", "PLAIN", "LOGIN", "CRAM-MD5"]


def test_registry_lookup() -> None:
    assert mechanism_class("scram-sha-256") is ScramSha256
    assert mechanism_class("OAUTHBEARER") is OAuthBearer
    with pytest.raises(LocalProtocolError, match="GSSAPI"):
        mechanism_class("GSSAPI")
    with pytest.raises(TypeError):
        MECHANISMS["NEW"] = Plain  # type: ignore[index]


def test_every_mechanism_is_made_the_same_way() -> None:
    for cls in MECHANISMS.values():
        mech = cls.create("user", "s3cret-value", host="mx.example", port=587)
        assert isinstance(mech, cls)
        assert "s3cret-value" not in repr(mech)


def test_scram_cache_of_salted_passwords_keeps_no_password() -> None:
    from lettre.protocol.sasl import scram

    password = b"a very secret password"
    salted = scram._salted_password("sha256", password, b"salt\x00x", 4096)
    assert scram._salted_password("sha256", password, b"salt\x00x", 4096) == salted
    # Another split of the same bytes between salt and password is another entry.
    assert scram._salted_password("sha256", b"x" + password, b"salt\x00", 4096) != salted
    assert all(
        password not in key and password not in value for key, value in scram._SALTED.items()
    )


# ------------------------------------------------------------------ error texts


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(235, None, ("ok",)), "expected a 334 challenge, got 235"),
        (Reply(334, None, ("QQ==", "QQ==")), "a 334 challenge must be a single line"),
        (challenge("QUJ"), "the 334 challenge is not valid base64"),
        (challenge("QU=J"), "the 334 challenge is not valid base64"),
        (challenge("ünï"), "the 334 challenge is not valid base64"),
    ],
)
def test_bad_challenge_texts(reply: Reply, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=exactly(message)):
        decode_challenge(reply)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Plain("us\0er", "pw"), "username contains a character this mechanism cannot send"),
        (lambda: Plain("u", "p\0"), "password contains a character this mechanism cannot send"),
        (
            lambda: Plain("u", "p", authzid="a\0"),
            "authzid contains a character this mechanism cannot send",
        ),
        (lambda: Plain("user", None), "password must be a str, not NoneType"),
        (lambda: Plain(b"user", "p"), "username must be a str, not bytes"),
        (
            lambda: XOAuth2("u\x01", "t"),
            "username contains a character this mechanism cannot send",
        ),
        (lambda: XOAuth2("u", "t\x01"), "token contains a character this mechanism cannot send"),
        (lambda: OAuthBearer("u", "t", port=0), "port must be an int between 1 and 65535"),
        (lambda: OAuthBearer("u", "t", port=65536), "port must be an int between 1 and 65535"),
        (lambda: OAuthBearer("u", "t", port=True), "port must be an int between 1 and 65535"),
        (
            lambda: OAuthBearer("u", "t", host="h\x01"),
            "host contains a character this mechanism cannot send",
        ),
        (lambda: mechanism_class("NOPE"), "no SASL mechanism 'NOPE'; lettre implements "),
        (lambda: mechanism_class(5), "no SASL mechanism 5; lettre implements "),
        (lambda: saslprep(5), "the value must be a str, not int"),
        (
            lambda: saslprep("a\x00", what="the password"),
            "the password contains a character that SASLprep (RFC 4013) prohibits "
            "(a control, private-use or non-character code point)",
        ),
        (
            lambda: saslprep("\u0221", what="the name", allow_unassigned=False),
            "the name contains an unassigned Unicode code point",
        ),
        (
            lambda: saslprep("\u0627a"),
            "the value mixes right-to-left and left-to-right text in a way that "
            "SASLprep (RFC 4013) prohibits",
        ),
        (
            lambda: ScramSha256("\u00ad", "p"),
            "SCRAM-SHA-256: the user name is empty after SASLprep",
        ),
        (
            lambda: ScramSha256("u", "p", nonce="a,b"),
            "the nonce must be printable ASCII without a comma",
        ),
    ],
)
def test_local_error_texts(build: object, message: str) -> None:
    assert callable(build)
    pattern = exactly(message) if not message.endswith(" ") else "^" + re.escape(message)
    with pytest.raises(LocalProtocolError, match=pattern):
        build()


def test_mechanism_class_lists_every_mechanism_in_its_error() -> None:
    with pytest.raises(LocalProtocolError) as info:
        mechanism_class("NOPE")
    assert str(info.value).endswith("lettre implements " + ", ".join(MECHANISMS))


def test_oauthbearer_port_bounds() -> None:
    for port in (1, 65535):
        message = OAuthBearer("u", "t", port=port).initial_response()
        assert message == b"n,a=u,\x01port=%d\x01auth=Bearer t\x01\x01" % port
    host_only = OAuthBearer("u", "t", host="h").initial_response()
    assert host_only == b"n,a=u,\x01host=h\x01auth=Bearer t\x01\x01"


def test_remote_error_texts() -> None:
    plain = Plain("u", "p")
    plain.respond(b"")
    too_many = "PLAIN: the server sent more than 1 challenge(s)"
    with pytest.raises(RemoteProtocolError, match=exactly(too_many)):
        plain.respond(b"")
    with pytest.raises(
        RemoteProtocolError, match=exactly("PLAIN: the server sent a non-empty challenge")
    ):
        Plain("u", "p").respond(b"x")
    with pytest.raises(
        RemoteProtocolError, match=exactly("CRAM-MD5: the server sent an empty challenge")
    ):
        CramMd5("u", "p").respond(b"")
    login = Login("u", "p")
    login.respond(b"?")
    login.respond(b"?")
    with pytest.raises(
        RemoteProtocolError, match=exactly("LOGIN: the server sent more than 2 challenge(s)")
    ):
        login.respond(b"?")


# ------------------------------------------------------------------ edges the others miss


def test_a_challenge_with_characters_outside_base64_is_refused() -> None:
    # Decoded leniently, "QUJD!" would be "ABC".
    with pytest.raises(RemoteProtocolError, match="not valid base64"):
        decode_challenge(challenge("QUJD!"))


def test_a_token_error_that_is_not_utf8_is_kept_with_replacement_characters() -> None:
    for mech in (XOAuth2("u", "t"), OAuthBearer("u", "t")):
        mech.respond(b'{"status":"\xff"}')
        assert mech.error == '{"status":"\ufffd"}'


@pytest.mark.parametrize("cls", [Plain, Login, CramMd5, XOAuth2, OAuthBearer, ScramSha256])
def test_every_mechanism_names_the_value_that_is_not_a_str(cls: type[Mechanism]) -> None:
    what = "token" if issubclass(cls, TokenMechanism) else "password"
    with pytest.raises(LocalProtocolError, match=r"^username must be a str, not int$|user name"):
        cls(5, "x")  # type: ignore[call-arg, arg-type]
    with pytest.raises(LocalProtocolError, match=rf"^{what} must be a str, not int$|the password"):
        cls("u", 5)  # type: ignore[call-arg, arg-type]


def test_plain_names_its_authzid() -> None:
    with pytest.raises(LocalProtocolError, match=exactly("authzid must be a str, not int")):
        Plain("u", "p", authzid=5)  # type: ignore[arg-type]


def test_oauthbearer_names_its_host() -> None:
    with pytest.raises(LocalProtocolError, match=exactly("host must be a str, not int")):
        OAuthBearer("u", "t", host=5)  # type: ignore[arg-type]


def test_saslprep_maps_every_non_ascii_space_to_a_space() -> None:
    # U+1680 (OGHAM SPACE MARK) is in table C.1.2, and NFKC leaves it alone.
    assert saslprep("a\u1680b") == "a b"
    assert saslprep("a\u3000b") == "a b"


def test_saslprep_right_to_left_text_with_digits_inside() -> None:
    # Right-to-left first and last; a European digit in between is neither.
    assert saslprep("\u06271\u0627") == "\u06271\u0627"
    with pytest.raises(LocalProtocolError, match="right-to-left"):
        saslprep("\u0627\u06271")
    with pytest.raises(LocalProtocolError, match="right-to-left"):
        saslprep("1\u0627\u0627")


SALT = b"s=W22ZaJ0SNY7soEsUEjb6gQ=="
NONCE = b"r=rOprNGfwEbeRWgbNEkqOx"


@pytest.mark.parametrize(
    ("server_first", "message"),
    [
        (b"1=x," + NONCE + b"," + SALT + b",i=4096", "the SCRAM server-first message is malformed"),
        (b"ab," + NONCE + b"," + SALT + b",i=4096", "the SCRAM server-first message is malformed"),
        (
            "é=x,".encode() + NONCE + b"," + SALT + b",i=4096",
            "the SCRAM server-first message is malformed",
        ),
        (NONCE + b"\xff," + SALT + b",i=4096", "the SCRAM server-first message is not UTF-8"),
        (
            b"m=x," + NONCE + b"," + SALT + b",i=4096",
            "SCRAM-SHA-256: the server requires an extension lettre lacks",
        ),
        (NONCE + b",i=4096," + SALT, "SCRAM-SHA-256: the server-first message is malformed"),
        (
            b"r=other," + SALT + b",i=4096",
            "SCRAM-SHA-256: the server's nonce does not extend the client's (a replayed "
            "or forged exchange)",
        ),
        (NONCE + b"," + SALT + b"!,i=4096", "SCRAM-SHA-256: the server's salt is not valid base64"),
        (NONCE + b",s=,i=4096", "SCRAM-SHA-256: the server's salt is empty"),
        (
            NONCE + b"," + SALT + b",i=x",
            "SCRAM-SHA-256: the server's iteration count is not a number",
        ),
        (
            NONCE + b"," + SALT + b",i=4095",
            "SCRAM-SHA-256: the server asks for 4095 iterations, fewer than the 4096 that keep "
            "the proof expensive to attack",
        ),
        (
            NONCE + b"," + SALT + b",i=1000000000",
            "SCRAM-SHA-256: the server asks for 1000000000 iterations, more than the 600000 "
            "lettre computes",
        ),
    ],
)
def test_scram_server_first_error_texts(server_first: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=exactly(message)):
        rfc_scram().respond(server_first)


def test_scram_iteration_bounds_are_inclusive() -> None:
    exact = ScramSha256("user", "pencil", nonce=CLIENT_NONCE, max_iterations=4096)
    assert exact.respond(SERVER_FIRST) == CLIENT_FINAL
    exact = ScramSha256("user", "pencil", nonce=CLIENT_NONCE, min_iterations=4096)
    assert exact.respond(SERVER_FIRST) == CLIENT_FINAL


def test_scram_accepts_extensions_after_the_iteration_count() -> None:
    mech = rfc_scram()
    assert mech.respond(SERVER_FIRST + b",x=later").startswith(b"c=biws,r=")


def test_scram_nonce_characters_at_the_edges() -> None:
    first = ScramSha256("user", "pencil", nonce="!~").initial_response()
    assert first == b"n,,n=user,r=!~"
    generated = ScramSha256("user", "pencil").initial_response().split(b",r=")[1]
    assert len(generated) == 32  # 24 random octets, URL-safe base64


@pytest.mark.parametrize(
    ("server_final", "message"),
    [
        (b"x=whatever", "SCRAM-SHA-256: the server-final message is malformed"),
        (SERVER_FINAL + b"!", "SCRAM-SHA-256: the server's signature is not base64"),
        (
            b"v=" + base64.b64encode(b"\0" * 32),
            "SCRAM-SHA-256: the server's signature is wrong, so it does not know the "
            "password: it is not the server it claims to be, or it is broken. The exchange "
            "was cancelled; check the server's address and its SCRAM set-up, or choose "
            "another mechanism with auth_mechanisms=",
        ),
    ],
)
def test_scram_server_final_error_texts(server_final: bytes, message: str) -> None:
    mech = rfc_scram()
    mech.respond(SERVER_FIRST)
    with pytest.raises(RemoteProtocolError, match=exactly(message)):
        mech.respond(server_final)
    with pytest.raises(
        RemoteProtocolError,
        match=exactly(
            "SCRAM-SHA-256: the server accepted the credentials without proving that it "
            "knows the password (no server signature); the connection is not used"
        ),
    ):
        mech.check_success()


def test_credentials_may_hold_any_character_the_mechanism_can_send() -> None:
    assert Plain("XAVIER", "PASS-X", authzid="ADMIN-X").initial_response() == (
        b"ADMIN-X\0XAVIER\0PASS-X"
    )
    login = Login("XAVIER", "PASS-X")
    assert login.respond(b"Username:") == b"XAVIER"
    assert login.respond(b"Password:") == b"PASS-X"
    assert CramMd5("XAVIER", "PASS-X").respond(b"<1.2@x>").startswith(b"XAVIER ")
    assert XOAuth2("XAVIER", "TOKEN-X").initial_response() == (
        b"user=XAVIER\x01auth=Bearer TOKEN-X\x01\x01"
    )
    assert OAuthBearer("XAVIER", "TOKEN-X", host="MX.EXAMPLE").initial_response() == (
        b"n,a=XAVIER,\x01host=MX.EXAMPLE\x01auth=Bearer TOKEN-X\x01\x01"
    )


def test_scram_family_text() -> None:
    with pytest.raises(
        TypeError, match=exactly("Scram is a family: use a subclass such as ScramSha256")
    ):
        Scram("user", "pencil")


def test_scram_cache_of_salted_passwords_is_bounded() -> None:
    from lettre.protocol.sasl import scram

    scram._SALTED.clear()
    for n in range(scram._SALTED_MAX):
        scram._salted_password("sha256", b"pw", b"salt%d" % n, 1)
    assert len(scram._SALTED) == scram._SALTED_MAX == 32
    # Full: the next new entry empties the cache first.
    scram._salted_password("sha256", b"pw", b"one more", 1)
    assert len(scram._SALTED) == 1
    scram._SALTED.clear()


def test_the_registry_is_built_from_checked_classes() -> None:
    from lettre.protocol.sasl import registry

    built = registry._build(registry._CLASSES)
    assert dict(built) == dict(MECHANISMS)
    assert list(built) == ["SCRAM-SHA-256", "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"]
    with pytest.raises(TypeError):
        built["NEW"] = Plain  # type: ignore[index]

    class Lower(Plain):
        name = "lower"

    class Nameless(Plain):
        name = ""

    class Neither(Plain):
        name = "NEITHER"
        needs = "nothing"  # type: ignore[assignment]

    bad_name = "{}: a missing, lower-case or duplicate name"
    for classes, message in [
        ((Lower,), bad_name.format("Lower")),
        ((Nameless,), bad_name.format("Nameless")),
        ((Plain, Login, Plain), bad_name.format("Plain")),
        ((Neither,), "Neither: needs must be 'password' or 'token'"),
    ]:
        with pytest.raises(AssertionError, match=exactly(message)):
            registry._build(classes)
    token = registry._build((XOAuth2,))
    assert token["XOAUTH2"] is XOAuth2


def test_scram_names_the_value_saslprep_refuses() -> None:
    prohibited = (
        " contains a character that SASLprep (RFC 4013) prohibits (a control, private-use or "
        "non-character code point)"
    )
    with pytest.raises(LocalProtocolError, match=exactly("the user name" + prohibited)):
        ScramSha256("us\x07er", "pencil")
    with pytest.raises(LocalProtocolError, match=exactly("the password" + prohibited)):
        ScramSha256("user", "pen\x07cil")


@pytest.mark.parametrize(
    ("server_final", "message"),
    [
        (b"v", "the SCRAM server-final message is malformed"),
        (b"\xff=x", "the SCRAM server-final message is not UTF-8"),
    ],
)
def test_scram_server_final_syntax_texts(server_final: bytes, message: str) -> None:
    mech = rfc_scram()
    mech.respond(SERVER_FIRST)
    with pytest.raises(RemoteProtocolError, match=exactly(message)):
        mech.respond(server_final)
