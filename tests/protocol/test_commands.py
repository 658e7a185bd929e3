"""Commands: validation on construction and exact serialisation."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_support import exactly

from lettre.errors import LocalProtocolError
from lettre.protocol.commands import (
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    Mail,
    MessageData,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
    xtext_encode,
)

CONTROLS = ["\r", "\n", "\r\n", "\0", "\t", "\x1b", "\x7f", "\x85", "\u009f"]


def test_simple_commands() -> None:
    assert StartTls().to_bytes() == b"STARTTLS\r\n"
    assert AuthCancel().to_bytes() == b"*\r\n"
    assert Data().to_bytes() == b"DATA\r\n"
    assert Rset().to_bytes() == b"RSET\r\n"
    assert Noop().to_bytes() == b"NOOP\r\n"
    assert Quit().to_bytes() == b"QUIT\r\n"
    verbs = [c.verb for c in (StartTls(), AuthCancel(), Data(), Rset(), Noop(), Quit())]
    assert verbs == ["STARTTLS", "AUTH-CANCEL", "DATA", "RSET", "NOOP", "QUIT"]
    assert MessageData(b"x").verb == "DATA-CONTENT"
    assert EndOfData().verb == "END-OF-DATA"
    assert Bdat(b"").verb == "BDAT"


def test_commands_are_frozen_values() -> None:
    mail = Mail("a@example.com")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mail.reverse_path = "b@example.com"  # type: ignore[misc]
    assert mail == Mail("a@example.com")
    assert hash(mail) == hash(Mail("a@example.com"))
    assert not hasattr(mail, "__dict__")


@pytest.mark.parametrize("hostname", ["client.example", "[192.0.2.1]", "[IPv6:2001:db8::1]"])
def test_ehlo_helo(hostname: str) -> None:
    assert Ehlo(hostname).to_bytes() == f"EHLO {hostname}\r\n".encode()
    assert Helo(hostname).to_bytes() == f"HELO {hostname}\r\n".encode()
    assert Ehlo(hostname).verb == "EHLO"
    assert Helo(hostname).verb == "HELO"


@pytest.mark.parametrize("hostname", ["", "a b", "exämple.com", "a\r\nMAIL FROM:<x>"])
def test_bad_hostnames(hostname: str) -> None:
    with pytest.raises(LocalProtocolError):
        Ehlo(hostname)
    with pytest.raises(LocalProtocolError):
        Helo(hostname)


def test_non_str_arguments() -> None:
    with pytest.raises(LocalProtocolError, match="must be a str"):
        Ehlo(b"client")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="must be bytes"):
        MessageData("text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="must be bytes"):
        AuthResponse("text")  # type: ignore[arg-type]


@pytest.mark.parametrize("control", CONTROLS)
def test_controls_are_rejected_everywhere(control: str) -> None:
    bad = f"a{control}b"
    builders: list[Callable[[], object]] = [
        lambda: Ehlo(bad),
        lambda: Helo(bad),
        lambda: Auth(bad),
        lambda: Mail(f"{bad}@example.com"),
        lambda: Mail("a@example.com", body=bad),
        lambda: Mail("a@example.com", ret=bad),
        lambda: Mail("a@example.com", envid=bad),
        lambda: Rcpt(f"{bad}@example.com"),
        lambda: Rcpt("a@example.com", notify=frozenset({bad})),
        lambda: Rcpt("a@example.com", orcpt=bad),
        lambda: Mail(f'"{bad}"@example.com'),
    ]
    for build in builders:
        with pytest.raises(LocalProtocolError, match="control character"):
            build()


def test_auth() -> None:
    assert Auth("plain").mechanism == "PLAIN"
    assert Auth("PLAIN").to_bytes() == b"AUTH PLAIN\r\n"
    assert Auth("PLAIN", b"").to_bytes() == b"AUTH PLAIN =\r\n"
    assert Auth("PLAIN", b"\0user\0pass").to_bytes() == b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"
    assert Auth("X", bytearray(b"a")).initial_response == b"a"  # type: ignore[arg-type]
    assert "pass" not in repr(Auth("PLAIN", b"\0user\0pass"))
    assert repr(Auth("LOGIN")) == "Auth(mechanism='LOGIN', initial_response=None)"
    for bad in ("", "PL AIN", "A" * 21, "PLÄIN"):
        with pytest.raises(LocalProtocolError, match="mechanism"):
            Auth(bad)
    with pytest.raises(LocalProtocolError):
        Auth("PLAIN", "text")  # type: ignore[arg-type]


def test_auth_response() -> None:
    assert AuthResponse(b"").to_bytes() == b"\r\n"
    assert AuthResponse(b"user").to_bytes() == b"dXNlcg==\r\n"
    assert AuthResponse(b"\r\n").to_bytes() == b"DQo=\r\n"
    assert repr(AuthResponse(b"secret")) == "AuthResponse(data=<hidden>)"
    assert AuthResponse(memoryview(b"ab")).data == b"ab"  # type: ignore[arg-type]


def test_mail_plain_and_null_path() -> None:
    assert Mail("a@example.com").to_bytes() == b"MAIL FROM:<a@example.com>\r\n"
    assert Mail("").to_bytes() == b"MAIL FROM:<>\r\n"


def test_mail_all_parameters() -> None:
    mail = Mail(
        "ä@example.com",
        size=1234,
        body="8bitmime",
        smtputf8=True,
        ret="hdrs",
        envid="id 1+2=3",
        requiretls=True,
    )
    assert mail.body == "8BITMIME"
    assert mail.ret == "HDRS"
    assert (
        mail.to_bytes()
        == (
            "MAIL FROM:<ä@example.com> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS "
            "ENVID=id+201+2B2+3D3 REQUIRETLS\r\n"
        ).encode()
    )
    assert Mail("a@b", body="7bit").to_bytes() == b"MAIL FROM:<a@b> BODY=7BIT\r\n"
    assert Mail("a@b", size=0).to_bytes() == b"MAIL FROM:<a@b> SIZE=0\r\n"
    assert Mail("a@b", body="BINARYMIME").body == "BINARYMIME"
    assert Mail("a@b", ret="FULL").to_bytes() == b"MAIL FROM:<a@b> RET=FULL\r\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": -1}, "SIZE"),
        ({"size": True}, "SIZE"),
        ({"size": 1.5}, "SIZE"),
        ({"body": "9BIT"}, "BODY"),
        ({"ret": "ALL"}, "RET"),
        ({"envid": ""}, "ENVID"),
        ({"envid": "x" * 101}, "ENVID"),
        ({"envid": "é"}, "ENVID"),
        ({"smtputf8": 1}, "smtputf8"),
        ({"requiretls": "yes"}, "requiretls"),
    ],
)
def test_mail_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        Mail("a@example.com", **kwargs)  # type: ignore[arg-type]


def test_mail_envid_limit() -> None:
    assert Mail("a@b", envid="x" * 100).envid == "x" * 100


def test_non_ascii_path_needs_smtputf8() -> None:
    with pytest.raises(LocalProtocolError, match="smtputf8"):
        Mail("ä@example.com")
    with pytest.raises(LocalProtocolError, match="smtputf8"):
        Mail("a@exämple.com")


@pytest.mark.parametrize(
    "path",
    [
        "a b@example.com",
        "a@example.com> SIZE=1",
        "<a@example.com",
        "a@exa mple.com",
        '"quoted"@exa mple.com',
        '"unterminated@example.com',
        '"escaped quote at end\\"@example.com',
        '"a"b c@example.com',
    ],
)
def test_paths_that_would_change_the_command(path: str) -> None:
    with pytest.raises(LocalProtocolError):
        Mail(path)
    with pytest.raises(LocalProtocolError):
        Rcpt(path)


@pytest.mark.parametrize(
    "path",
    ['"john doe"@example.com', '"a<b>c"@example.com', '"say \\"hi\\""@example.com', "Postmaster"],
)
def test_quoted_local_parts_may_hold_spaces_and_brackets(path: str) -> None:
    assert Mail(path).to_bytes() == f"MAIL FROM:<{path}>\r\n".encode()
    assert Rcpt(path).to_bytes() == f"RCPT TO:<{path}>\r\n".encode()


def test_rcpt() -> None:
    assert Rcpt("b@example.com").to_bytes() == b"RCPT TO:<b@example.com>\r\n"
    assert Rcpt("ü@example.com").to_bytes() == "RCPT TO:<ü@example.com>\r\n".encode()
    with pytest.raises(LocalProtocolError, match="empty"):
        Rcpt("")


def test_rcpt_dsn_parameters() -> None:
    rcpt = Rcpt("b@example.com", notify=frozenset({"delay", "Failure", "SUCCESS"}))
    assert rcpt.notify == frozenset({"DELAY", "FAILURE", "SUCCESS"})
    assert rcpt.to_bytes() == b"RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE,DELAY\r\n"
    never = Rcpt("b@example.com", notify=frozenset({"never"}))
    assert never.to_bytes() == b"RCPT TO:<b@example.com> NOTIFY=NEVER\r\n"
    orcpt = Rcpt("b@example.com", orcpt="b+tag=x@example.com")
    assert orcpt.to_bytes() == b"RCPT TO:<b@example.com> ORCPT=rfc822;b+2Btag+3Dx@example.com\r\n"
    utf8 = Rcpt("b@example.com", orcpt="jö+=\\@example.com")
    assert utf8.to_bytes() == (
        b"RCPT TO:<b@example.com> ORCPT=utf-8;j\\x{F6}\\x{2B}\\x{3D}\\x{5C}@example.com\r\n"
    )
    emoji = Rcpt("b@example.com", orcpt="\U0001f600@example.com")
    assert b"ORCPT=utf-8;\\x{1F600}@example.com" in emoji.to_bytes()


@pytest.mark.parametrize(
    "notify",
    [frozenset(), frozenset({"NEVER", "SUCCESS"}), frozenset({"SOMETIMES"}), "SUCCESS", 5],
)
def test_rcpt_bad_notify(notify: object) -> None:
    with pytest.raises(LocalProtocolError, match="NOTIFY"):
        Rcpt("b@example.com", notify=notify)  # type: ignore[arg-type]


def test_rcpt_notify_accepts_any_iterable() -> None:
    rcpt = Rcpt("b@example.com", notify=["success"])  # type: ignore[arg-type]
    assert rcpt.notify == frozenset({"SUCCESS"})


def test_rcpt_empty_orcpt() -> None:
    with pytest.raises(LocalProtocolError, match="ORCPT"):
        Rcpt("b@example.com", orcpt="")


def test_content_commands() -> None:
    assert MessageData(bytearray(b"abc")).data == b"abc"  # type: ignore[arg-type]
    assert repr(MessageData(b"abc")) == "MessageData(<3 bytes>)"
    assert Bdat(b"abc", last=True).last
    assert repr(Bdat(b"abc")) == "Bdat(<3 bytes>, last=False)"
    with pytest.raises(LocalProtocolError, match="last"):
        Bdat(b"", last=1)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="bytes"):
        Bdat("abc")  # type: ignore[arg-type]


def test_xtext() -> None:
    assert xtext_encode("abc") == "abc"
    assert xtext_encode("a+b=c d\x7f~!") == "a+2Bb+3Dc+20d+7F~!"
    with pytest.raises(LocalProtocolError, match="ASCII"):
        xtext_encode("é")


# -- the usual path and the general checks agree ------------------------------------

PATH_CHARS = ["a", "Z", "0", "@", ".", " ", "<", ">", '"', "\\", "!", "~", "=", "?", ";", ":"]
PATHS = st.lists(st.sampled_from([*PATH_CHARS, *CONTROLS, "é", "\u2028"]), max_size=10).map("".join)


def outcome(build: Callable[[], Mail | Rcpt]) -> object:
    try:
        command = build()
    except LocalProtocolError as exc:
        return str(exc)
    if isinstance(command, Mail):
        return command.reverse_path, command.size
    return command.forward_path


@settings(max_examples=300, deadline=None)
@given(PATHS, st.one_of(st.none(), st.integers(-1, 10)))
def test_usual_paths_are_checked_like_any_other(path: str, size: int | None) -> None:
    # A BODY, an ORCPT or a str subclass takes the commands through every check;
    # the path is checked first, so the outcome for the path is the same.
    assert outcome(lambda: Mail(path, size=size)) == outcome(
        lambda: Mail(path, size=size, body="8BITMIME")
    )
    assert outcome(lambda: Mail(path)) == outcome(lambda: Mail(Text(path)))
    assert outcome(lambda: Rcpt(path)) == outcome(lambda: Rcpt(path, orcpt="x@example.com"))
    assert outcome(lambda: Rcpt(path)) == outcome(lambda: Rcpt(Text(path)))


class Text(str):
    """A str subclass: never taken for the usual path."""

    __slots__ = ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reverse_path": '"unterminated@example.com'}, "unterminated"),
        ({"reverse_path": Text("a b@example.com")}, "spaces"),
        ({"reverse_path": 7}, "must be a str"),
        ({"reverse_path": "a@example.com", "size": False}, "SIZE"),
        ({"reverse_path": "a@example.com", "smtputf8": 0}, "smtputf8"),
        ({"reverse_path": "a@example.com", "requiretls": None}, "requiretls"),
    ],
)
def test_mail_just_off_the_usual_path(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        Mail(**kwargs)  # type: ignore[arg-type]


def test_commands_on_the_usual_path() -> None:
    assert Mail("", size=0) == Mail("", 0, None, False, None, None, False)
    assert Mail('"q"@example.com').reverse_path == '"q"@example.com'
    assert Rcpt("!#$%&'*+-/=?^_`{|}~@[192.0.2.1]").to_bytes() == (
        b"RCPT TO:<!#$%&'*+-/=?^_`{|}~@[192.0.2.1]>\r\n"
    )
    with pytest.raises(LocalProtocolError, match="must not be empty"):
        Rcpt("")


@settings(max_examples=200, deadline=None)
@given(PATHS, st.one_of(st.none(), st.integers(0, 10**9)))
def test_usual_commands_serialise_like_any_other(path: str, size: int | None) -> None:
    # With one more parameter the commands are written the general way; the
    # parameter is added at the end, so the rest must be the same.
    try:
        mail = Mail(path, size=size, smtputf8=not path.isascii())
        rcpt = Rcpt(path)
    except LocalProtocolError:
        return
    assert (
        mail.to_bytes()
        == (
            f"MAIL FROM:<{path}>"
            + ("" if size is None else f" SIZE={size}")
            + (" SMTPUTF8" if mail.smtputf8 else "")
            + "\r\n"
        ).encode()
    )
    longer = dataclasses.replace(mail, requiretls=True).to_bytes()
    assert longer == mail.to_bytes()[:-2] + b" REQUIRETLS\r\n"
    assert rcpt.to_bytes() == f"RCPT TO:<{path}>\r\n".encode()
    never = Rcpt(path, notify=frozenset({"NEVER"})).to_bytes()
    assert never == rcpt.to_bytes()[:-2] + b" NOTIFY=NEVER\r\n"


def test_mail_init_matches_its_fields() -> None:
    # Mail has a hand-written __init__ (for speed): it must take exactly the
    # dataclass fields, in order, with their defaults, and behave the same.
    parameters = list(inspect.signature(Mail).parameters.values())
    fields = dataclasses.fields(Mail)
    assert [p.name for p in parameters] == [f.name for f in fields]
    assert [p.default for p in parameters] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]
    mail = Mail("a@b", 10, "8bitmime", True, "hdrs", "id", True)
    assert dataclasses.astuple(mail) == ("a@b", 10, "8BITMIME", True, "HDRS", "id", True)
    assert mail == dataclasses.replace(mail)
    assert dataclasses.replace(mail, size=None).size is None
    assert hash(Mail("a@b")) == hash(Mail(reverse_path="a@b"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        mail.size = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Mail()  # type: ignore[call-arg]


# -- each parameter alone, the boundaries, and the error texts ------------------------


@pytest.mark.parametrize(
    ("kwargs", "line"),
    [
        ({"envid": "x"}, b"MAIL FROM:<a@b> ENVID=x\r\n"),
        ({"envid": "x", "size": 7}, b"MAIL FROM:<a@b> SIZE=7 ENVID=x\r\n"),
        ({"ret": "full"}, b"MAIL FROM:<a@b> RET=FULL\r\n"),
        ({"requiretls": True}, b"MAIL FROM:<a@b> REQUIRETLS\r\n"),
        ({"smtputf8": True}, b"MAIL FROM:<a@b> SMTPUTF8\r\n"),
        ({"body": "binarymime"}, b"MAIL FROM:<a@b> BODY=BINARYMIME\r\n"),
        ({"size": 9}, b"MAIL FROM:<a@b> SIZE=9\r\n"),
    ],
)
def test_mail_each_parameter_alone(kwargs: dict[str, object], line: bytes) -> None:
    # Any one parameter but SIZE takes MAIL off its short path; none may be lost.
    assert Mail("a@b", **kwargs).to_bytes() == line  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": -1}, "MAIL SIZE must be a non-negative int, not -1"),
        ({"size": True}, "MAIL SIZE must be a non-negative int, not True"),
        ({"body": "9BIT"}, "MAIL BODY must be one of ['7BIT', '8BITMIME', 'BINARYMIME']"),
        ({"ret": "ALL"}, "MAIL RET must be FULL or HDRS"),
        ({"envid": ""}, "MAIL ENVID must be 1 to 100 printable ASCII characters"),
        ({"smtputf8": 1}, "MAIL smtputf8 must be a bool"),
        ({"requiretls": "yes"}, "MAIL requiretls must be a bool"),
    ],
)
def test_mail_error_texts(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=exactly(message)):
        Mail("a@example.com", **kwargs)  # type: ignore[arg-type]


def test_path_error_texts() -> None:
    with pytest.raises(
        LocalProtocolError, match=exactly("MAIL reverse path must be a str, not bytes")
    ):
        Mail(b"a@b")  # type: ignore[arg-type]
    with pytest.raises(
        LocalProtocolError,
        match=r"^RCPT forward path contains the control character '\\r'; it is never sent$",
    ):
        Rcpt("a\r@b")
    with pytest.raises(LocalProtocolError, match=exactly("RCPT forward path must not be empty")):
        Rcpt("")
    with pytest.raises(
        LocalProtocolError, match=exactly("MAIL reverse path has an unterminated quoted local part")
    ):
        Mail('"a@b')
    with pytest.raises(
        LocalProtocolError,
        match=exactly(
            "RCPT forward path must not contain spaces, '<' or '>' outside a quoted local part"
        ),
    ):
        Rcpt("a b@c")
    with pytest.raises(
        LocalProtocolError, match=exactly("a non-ASCII reverse path needs smtputf8=True")
    ):
        Mail("é@b")


def test_other_error_texts() -> None:
    with pytest.raises(
        LocalProtocolError,
        match=exactly(
            "EHLO hostname must be a non-empty ASCII domain or address literal without spaces"
        ),
    ):
        Ehlo("")
    with pytest.raises(LocalProtocolError, match=exactly("invalid SASL mechanism name 'a b'")):
        Auth("a b")
    with pytest.raises(
        LocalProtocolError, match=exactly("AUTH initial response must be bytes, not str")
    ):
        Auth("PLAIN", "x")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match=exactly("RCPT NOTIFY must be a set of keywords")):
        Rcpt("a@b", notify="NEVER")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match=r"^RCPT NOTIFY must be \{'NEVER'\} or a"):
        Rcpt("a@b", notify=frozenset())
    with pytest.raises(LocalProtocolError, match=exactly("RCPT ORCPT must not be empty")):
        Rcpt("a@b", orcpt="")
    with pytest.raises(LocalProtocolError, match=exactly("BDAT last must be a bool")):
        Bdat(b"", last=1)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match=exactly("xtext can only encode ASCII text")):
        xtext_encode("é")


def test_sasl_mechanism_names_at_the_boundaries() -> None:
    assert Auth("a" * 20).mechanism == "A" * 20
    assert Auth("SCRAM-SHA-256").to_bytes() == b"AUTH SCRAM-SHA-256\r\n"
    assert Auth("X_Y").mechanism == "X_Y"
    for bad in ("", "A" * 21, "A.B"):
        with pytest.raises(LocalProtocolError, match="invalid SASL mechanism name"):
            Auth(bad)


def test_xtext_at_the_boundaries() -> None:
    # "!" (0x21) and "~" (0x7E) are the first and last characters kept as they are.
    assert xtext_encode("!~") == "!~"
    assert xtext_encode(" ") == "+20"
    assert xtext_encode("\x7f") == "+7F"
    assert xtext_encode("\x00\x1f") == "+00+1F"
    assert xtext_encode("+=\\") == "+2B+3D\\"
    assert xtext_encode("") == ""


def test_orcpt_xtext_at_the_boundaries() -> None:
    ascii_orcpt = Rcpt("b@example.com", orcpt="!a ~@x")
    assert ascii_orcpt.to_bytes() == b"RCPT TO:<b@example.com> ORCPT=rfc822;!a+20~@x\r\n"
    utf8_orcpt = Rcpt("b@example.com", orcpt="!\u00e9 ~@x")
    assert utf8_orcpt.to_bytes() == (b"RCPT TO:<b@example.com> ORCPT=utf-8;!\\x{E9}\\x{20}~@x\r\n")
    # DEL and the C1 controls are refused outright rather than encoded.
    for control in ("\x7f", "\x80", "\x9f"):
        with pytest.raises(LocalProtocolError, match="control character"):
            Rcpt("b@example.com", orcpt=f"a{control}@x")
    # U+00A0, just past the C1 range, is not a control: it is encoded.
    assert b"\\x{A0}" in Rcpt("b@example.com", orcpt="\u00a0@x").to_bytes()


@pytest.mark.parametrize(
    "path", ['""@x', '"a "@x', '"a<"@x', '" "@x', '"\\\\"@x', '"a\\" "@x', '"<>"@x']
)
def test_quoted_local_parts_at_the_closing_quote(path: str) -> None:
    assert Mail(path).to_bytes() == f"MAIL FROM:<{path}>\r\n".encode()
    assert Rcpt(path).to_bytes() == f"RCPT TO:<{path}>\r\n".encode()


@pytest.mark.parametrize("path", ['"a" @x', '"a"<@x', '"">@x', '"a"@x y', '"\\\\" @x', '"\\"@x'])
def test_breakers_next_to_the_closing_quote(path: str) -> None:
    with pytest.raises(LocalProtocolError, match=r"spaces|unterminated"):
        Mail(path)
    with pytest.raises(LocalProtocolError, match=r"spaces|unterminated"):
        Rcpt(path)


def test_more_error_texts_name_the_command() -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: Helo("a b"), "HELO hostname must be a non-empty ASCII domain"),
        (lambda: Helo("a\rb"), "HELO hostname contains the control character '\\r'"),
        (lambda: Auth(5), "AUTH mechanism must be a str, not int"),  # type: ignore[arg-type]
        (lambda: Auth("PLAIN", "x"), "AUTH initial response must be bytes, not str"),  # type: ignore[arg-type]
        (lambda: AuthResponse("x"), "AUTH response must be bytes, not str"),  # type: ignore[arg-type]
        (lambda: Bdat("x"), "BDAT data must be bytes, not str"),  # type: ignore[arg-type]
        (lambda: MessageData("x"), "message data must be bytes, not str"),  # type: ignore[arg-type]
        (lambda: Mail("a@b", body=5), "MAIL BODY must be a str, not int"),  # type: ignore[arg-type]
        (lambda: Mail("a@b", ret=5), "MAIL RET must be a str, not int"),  # type: ignore[arg-type]
        (lambda: Mail("a@b", envid=5), "MAIL ENVID must be a str, not int"),  # type: ignore[arg-type]
        (lambda: Rcpt(5), "RCPT forward path must be a str, not int"),  # type: ignore[arg-type]
        (lambda: Rcpt("a@b", notify=[5]), "RCPT NOTIFY must be a str, not int"),  # type: ignore[list-item]
        (lambda: Rcpt("a@b", orcpt=5), "RCPT ORCPT must be a str, not int"),  # type: ignore[arg-type]
    ]
    for build, message in cases:
        with pytest.raises(LocalProtocolError, match="^" + re.escape(message)):
            build()


def test_auth_repr_hides_only_a_response() -> None:
    assert repr(Auth("PLAIN")) == "Auth(mechanism='PLAIN', initial_response=None)"
    assert repr(Auth("PLAIN", b"")) == "Auth(mechanism='PLAIN', initial_response=<hidden>)"
    assert repr(Auth("PLAIN", b"secret")) == "Auth(mechanism='PLAIN', initial_response=<hidden>)"
    assert repr(AuthResponse(b"secret")) == "AuthResponse(data=<hidden>)"


def test_xtext_keeps_every_other_printable_character() -> None:
    printable = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) not in "+=")
    assert xtext_encode(printable) == printable
    orcpt = Rcpt("b@x", orcpt="é" + printable.replace("\\", ""))
    assert (
        orcpt.to_bytes()
        == ("RCPT TO:<b@x> ORCPT=utf-8;\\x{E9}" + printable.replace("\\", "") + "\r\n").encode()
    )
