"""ClientConnection: the state machine, fed with plain bytes."""

# mypy narrows conn.state after each assert and cannot see that send() changes it.
# mypy: disable-error-code="comparison-overlap"

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from protocol_support import EHLO_ALL, EHLO_PLAIN, connect, drain, exactly, feed, reply

from lettre.errors import LocalProtocolError, RemoteProtocolError
from lettre.protocol import (
    NEED_DATA,
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    ClientConnection,
    ClientState,
    Command,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    Login,
    Mail,
    MessageData,
    Noop,
    Quit,
    Rcpt,
    Reply,
    Rset,
    StartTls,
    XOAuth2,
    decode_challenge,
)

S = ClientState


def send_all(conn: ClientConnection, *commands: Command) -> bytes:
    return b"".join(conn.send(c) for c in commands)


def codes(conn: ClientConnection, data: bytes, cuts: tuple[int, ...] = ()) -> list[int]:
    return [r.code for r in feed(conn, data, cuts)]


# -- a whole session, every reply cut at every offset ------------------------------

SESSION: list[tuple[str, object, object]] = [
    ("recv", b"220 mx.example ESMTP\r\n", [220]),
    ("send", [Ehlo("client.example")], b"EHLO client.example\r\n"),
    ("recv", EHLO_ALL, [250]),
    ("send", [StartTls()], b"STARTTLS\r\n"),
    ("recv", b"220 2.0.0 Ready to start TLS\r\n", [220]),
    ("tls", None, None),
    ("send", [Ehlo("client.example")], b"EHLO client.example\r\n"),
    ("recv", EHLO_ALL.replace(b"250-STARTTLS\r\n", b""), [250]),
    ("send", [Auth("PLAIN", b"\0u\0p")], b"AUTH PLAIN AHUAcA==\r\n"),
    ("recv", b"235 2.7.0 Authentication successful\r\n", [235]),
    (
        "send",
        [Mail("a@example.com", size=12), Rcpt("b@example.com"), Rcpt("c@example.com"), Data()],
        b"MAIL FROM:<a@example.com> SIZE=12\r\nRCPT TO:<b@example.com>\r\n"
        b"RCPT TO:<c@example.com>\r\nDATA\r\n",
    ),
    (
        "recv",
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550-5.1.1 No such user\r\n550 5.1.1 here\r\n"
        b"354 End data with <CR><LF>.<CR><LF>\r\n",
        [250, 250, 550, 354],
    ),
    (
        "send",
        [
            MessageData(b"Subject: hi\n\n.x\r"),
            MessageData(b"\n"),
            EndOfData(),
            Mail("a@example.com"),
            Rcpt("d@example.com"),
            Bdat(b"line\r"),
            Bdat(b"\nlast", last=True),
            Quit(),
        ],
        b"Subject: hi\r\n\r\n..x\r\n.\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<d@example.com>\r\n"
        b"BDAT 6\r\nline\r\nBDAT 6 LAST\r\nlast\r\nQUIT\r\n",
    ),
    (
        "recv",
        b"250 2.0.0 Ok: queued as 1\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n250 Ok: queued as 2\r\n"
        b"221 2.0.0 Bye\r\n",
        [250, 250, 250, 250, 250, 221],
    ),
]


def run_session(cut: int) -> ClientConnection:
    conn = ClientConnection()
    for kind, arg, expected in SESSION:
        if kind == "recv":
            assert isinstance(arg, bytes)
            assert codes(conn, arg, (cut,)) == expected
        elif kind == "send":
            assert isinstance(arg, list)
            assert send_all(conn, *arg) == expected
        else:
            conn.tls_established()
    return conn


@pytest.mark.parametrize("cut", range(0, 200, 1))
def test_session_with_every_cut(cut: int) -> None:
    conn = run_session(cut)
    assert conn.state is S.CLOSED
    assert conn.owed == 0


def test_session_byte_by_byte() -> None:
    conn = ClientConnection()
    for kind, arg, expected in SESSION:
        if kind == "recv":
            assert isinstance(arg, bytes)
            assert codes(conn, arg, tuple(range(len(arg)))) == expected
        elif kind == "send":
            assert isinstance(arg, list)
            assert send_all(conn, *arg) == expected
        else:
            conn.tls_established()
    assert conn.state is S.CLOSED


# -- greeting ----------------------------------------------------------------------


def test_greeting() -> None:
    conn = ClientConnection()
    assert conn.state is S.GREETING
    assert conn.owed == 1
    assert conn.awaiting == ("GREETING",)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"220 mx.example")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b" ESMTP\r\n")
    greeting = conn.next_event()
    assert greeting != NEED_DATA
    assert greeting.code == 220
    assert conn.state is S.HELLO
    assert conn.capabilities is None
    assert not conn.extended
    assert repr(conn) == "<ClientConnection state=HELLO owed=0>"
    # Nothing owed, nothing buffered: waiting (for an unsolicited 421, say).
    assert conn.next_event() is NEED_DATA


def test_nothing_may_be_sent_before_the_greeting() -> None:
    conn = ClientConnection()
    with pytest.raises(LocalProtocolError, match="GREETING"):
        conn.send(Ehlo("client.example"))
    assert conn.state is S.ERROR
    with pytest.raises(LocalProtocolError, match="ERROR"):
        conn.send(Quit())
    with pytest.raises(LocalProtocolError, match="ERROR"):
        conn.next_event()
    with pytest.raises(LocalProtocolError, match="ERROR"):
        conn.receive_data(b"220 hi\r\n")


@pytest.mark.parametrize("greeting", [b"554 No SMTP service here\r\n", b"450 busy\r\n"])
def test_refusing_greeting_allows_only_quit(greeting: bytes) -> None:
    conn = ClientConnection()
    assert codes(conn, greeting) == [int(greeting[:3])]
    assert conn.state is S.REFUSED
    assert conn.send(Quit()) == b"QUIT\r\n"
    assert conn.state is S.CLOSING
    assert codes(conn, b"221 bye\r\n") == [221]
    assert conn.state is S.CLOSED
    conn = ClientConnection()
    feed(conn, greeting)
    with pytest.raises(LocalProtocolError, match="REFUSED"):
        conn.send(Ehlo("client.example"))


def test_421_greeting_closes() -> None:
    conn = ClientConnection()
    assert codes(conn, b"421 4.3.2 too busy\r\n") == [421]
    assert conn.state is S.CLOSED
    with pytest.raises(LocalProtocolError, match="closed"):
        conn.next_event()
    with pytest.raises(LocalProtocolError, match="CLOSED"):
        conn.send(Quit())


@pytest.mark.parametrize("greeting", [b"250 hello\r\n", b"354 what\r\n", b"221 bye\r\n"])
def test_nonsense_greeting(greeting: bytes) -> None:
    conn = ClientConnection()
    with pytest.raises(RemoteProtocolError):
        feed(conn, greeting)
    assert conn.state is S.ERROR


# -- EHLO / HELO -------------------------------------------------------------------


def test_ehlo() -> None:
    conn = connect()
    assert conn.state is S.READY
    assert conn.extended
    caps = conn.capabilities
    assert caps is not None
    assert caps.pipelining
    assert caps.chunking
    assert caps.size == 10240000
    assert caps.auth == frozenset({"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"})


def test_ehlo_refused_then_helo() -> None:
    conn = connect(None)
    with pytest.raises(LocalProtocolError, match="refused EHLO"):
        connect(None).send(Helo("client.example"))
    conn.send(Ehlo("client.example"))
    assert codes(conn, b"502 5.5.1 command not implemented\r\n") == [502]
    assert conn.state is S.HELLO
    assert conn.capabilities is None
    assert conn.send(Helo("client.example")) == b"HELO client.example\r\n"
    assert codes(conn, b"501 try again\r\n") == [501]
    assert conn.state is S.HELLO
    conn.send(Helo("client.example"))
    assert codes(conn, b"250 mx.example\r\n") == [250]
    assert conn.state is S.READY
    assert not conn.extended
    assert conn.capabilities is not None
    assert not conn.capabilities.pipelining
    # HELO is not repeated once the session is open.
    with pytest.raises(LocalProtocolError, match="READY"):
        conn.send(Helo("client.example"))


def test_ehlo_again_in_a_session() -> None:
    conn = connect(EHLO_PLAIN)
    conn.send(Ehlo("client.example"))
    assert codes(conn, EHLO_ALL) == [250]
    assert conn.capabilities is not None
    assert conn.capabilities.pipelining
    conn.send(Ehlo("client.example"))
    assert codes(conn, b"500 no\r\n") == [500]
    assert conn.state is S.READY
    assert conn.capabilities.pipelining


def test_noop_and_rset() -> None:
    conn = connect(None)
    conn.send(Noop())
    assert codes(conn, b"250 2.0.0 Ok\r\n") == [250]
    assert conn.state is S.HELLO
    conn = connect(EHLO_PLAIN)
    conn.send(Noop())
    assert codes(conn, b"500 what\r\n") == [500]
    conn.send(Rset())
    assert codes(conn, b"250 Ok\r\n") == [250]
    assert conn.state is S.READY


def test_ehlo_needs_a_reply_before_anything_else() -> None:
    conn = connect(None)
    conn.send(Ehlo("client.example"))
    with pytest.raises(LocalProtocolError, match="before the reply to EHLO"):
        conn.send(Noop())


# -- transactions without PIPELINING -----------------------------------------------


def test_lockstep_transaction() -> None:
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@example.com"))
    assert conn.state is S.MAIL
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        conn.send(Rcpt("b@example.com"))
    assert conn.state is S.ERROR

    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@example.com"))
    assert codes(conn, b"250 ok\r\n") == [250]
    conn.send(Rcpt("b@example.com"))
    assert codes(conn, b"250 ok\r\n") == [250]
    assert conn.accepted_recipients == 1
    conn.send(Data())
    with pytest.raises(LocalProtocolError):
        conn.send(MessageData(b"too early"))

    conn = connect(EHLO_PLAIN)
    for command in (Mail("a@example.com"), Rcpt("b@example.com"), Data()):
        conn.send(command)
        feed(conn, b"354 go\r\n" if isinstance(command, Data) else b"250 ok\r\n")
    assert conn.state is S.DATA
    assert conn.send(MessageData(b"hello")) == b"hello"
    assert conn.owed == 0
    assert conn.send(EndOfData()) == b"\r\n.\r\n"
    assert conn.state is S.READY
    assert conn.accepted_recipients == 0
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        conn.send(Mail("a@example.com"))


def test_mail_refused_without_pipelining_returns_to_ready() -> None:
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@example.com"))
    assert codes(conn, b"550 5.7.1 go away\r\n") == [550]
    assert conn.state is S.READY
    conn.send(Mail("b@example.com"))
    assert conn.state is S.MAIL


def test_every_recipient_refused_forbids_data() -> None:
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@example.com"))
    feed(conn, b"250 ok\r\n")
    conn.send(Rcpt("b@example.com"))
    feed(conn, b"550 no\r\n")
    assert conn.state is S.RCPT
    assert conn.accepted_recipients == 0
    with pytest.raises(LocalProtocolError, match="refused"):
        conn.send(Data())

    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@example.com"))
    feed(conn, b"250 ok\r\n")
    conn.send(Rcpt("b@example.com"))
    feed(conn, b"550 no\r\n")
    conn.send(Rset())
    assert codes(conn, b"250 ok\r\n") == [250]
    assert conn.state is S.READY


def test_commands_out_of_order() -> None:
    cases: list[tuple[bytes | None, Command]] = [
        (EHLO_PLAIN, Rcpt("b@example.com")),
        (EHLO_PLAIN, Data()),
        (EHLO_PLAIN, MessageData(b"x")),
        (EHLO_PLAIN, EndOfData()),
        (EHLO_PLAIN, AuthResponse(b"")),
        (EHLO_PLAIN, AuthCancel()),
        (None, Mail("a@example.com")),
        (None, Rset()),
    ]
    for ehlo, command in cases:
        conn = connect(ehlo)
        with pytest.raises(LocalProtocolError, match="cannot be sent in state"):
            conn.send(command)
        assert conn.state is S.ERROR


# -- PIPELINING --------------------------------------------------------------------


def test_pipelined_transaction_ends_with_data() -> None:
    conn = connect()
    out = send_all(
        conn, Mail("a@example.com"), Rcpt("b@example.com"), Rcpt("c@example.com"), Data()
    )
    assert out.count(b"\r\n") == 4
    assert conn.awaiting == ("MAIL", "RCPT", "RCPT", "DATA")
    with pytest.raises(LocalProtocolError, match="before the reply to DATA"):
        conn.send(Rcpt("d@example.com"))


def test_pipelined_data_after_all_recipients_refused() -> None:
    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Data())
    assert codes(conn, b"250 ok\r\n550 no\r\n554 5.5.1 no valid recipients\r\n") == [250, 550, 554]
    # The server keeps its transaction: RSET (or more RCPT) must follow.
    assert conn.state is S.RCPT
    assert conn.accepted_recipients == 0
    with pytest.raises(LocalProtocolError, match="refused"):
        conn.send(Bdat(b"x", last=True))


def test_pipelined_data_retry_after_temporary_failure() -> None:
    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Data())
    assert codes(conn, b"250 ok\r\n250 ok\r\n451 try again\r\n") == [250, 250, 451]
    assert conn.state is S.RCPT
    conn.send(Data())
    assert codes(conn, b"354 go\r\n") == [354]
    assert conn.state is S.DATA


def test_354_with_no_recipient_accepted_gets_an_empty_message() -> None:
    # RFC 2920 3.1: an old server may accept DATA anyway; send just the dot.
    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Data())
    assert codes(conn, b"250 ok\r\n550 no\r\n354 go\r\n") == [250, 550, 354]
    assert conn.state is S.DATA
    assert conn.accepted_recipients == 0
    assert conn.send(EndOfData()) == b".\r\n"
    assert codes(conn, b"554 no valid recipients\r\n") == [554]
    assert conn.state is S.READY


def test_pipelined_mail_refused() -> None:
    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Data())
    assert codes(conn, b"550 no\r\n503 5.5.1 need MAIL\r\n503 need RCPT\r\n") == [550, 503, 503]
    assert conn.state is S.READY
    conn.send(Mail("a@example.com"))

    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Rcpt("c@example.com"))
    assert codes(conn, b"550 no\r\n503 no\r\n") == [550, 503]
    assert conn.state is S.RCPT  # one reply still owed
    assert codes(conn, b"503 no\r\n") == [503]
    assert conn.state is S.READY


def test_end_of_data_then_next_transaction_in_one_flight() -> None:
    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Data())
    feed(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    out = send_all(
        conn,
        MessageData(b"one"),
        EndOfData(),
        Mail("a@example.com"),
        Rcpt("c@example.com"),
        Data(),
    )
    assert out == b"one\r\n.\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
    assert conn.awaiting == ("END-OF-DATA", "MAIL", "RCPT", "DATA")
    # The first message failed; the second goes on regardless.
    assert codes(conn, b"554 rejected\r\n250 ok\r\n250 ok\r\n354 go\r\n") == [554, 250, 250, 354]
    assert conn.state is S.DATA
    assert conn.accepted_recipients == 1


def test_rset_and_quit_may_be_pipelined() -> None:
    conn = connect()
    out = send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Rset(), Mail("c@x"))
    assert out.endswith(b"RSET\r\nMAIL FROM:<c@x>\r\n")
    assert codes(conn, b"250 ok\r\n550 no\r\n250 ok\r\n250 ok\r\n") == [250, 550, 250, 250]
    assert conn.state is S.MAIL
    send_all(conn, Rcpt("b@example.com"), Quit())
    assert conn.state is S.CLOSING
    assert codes(conn, b"250 ok\r\n221 bye\r\n") == [250, 221]
    assert conn.state is S.CLOSED


def test_nothing_after_quit() -> None:
    conn = connect()
    conn.send(Quit())
    with pytest.raises(LocalProtocolError, match="CLOSING"):
        conn.send(Noop())


def test_noop_ends_a_group() -> None:
    conn = connect()
    send_all(conn, Mail("a@example.com"), Noop())
    assert conn.state is S.MAIL
    with pytest.raises(LocalProtocolError, match="before the reply to NOOP"):
        conn.send(Rcpt("b@example.com"))

    conn = connect()
    send_all(conn, Mail("a@example.com"), Noop())
    assert codes(conn, b"550 no\r\n250 ok\r\n") == [550, 250]
    assert conn.state is S.READY


@pytest.mark.parametrize(
    "replies", [b"354 go\r\n", b"250 ok\r\n334 what\r\n", b"250 ok\r\n354 x\r\n"]
)
def test_intermediate_reply_to_a_pipelined_command(replies: bytes) -> None:
    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"))
    with pytest.raises(RemoteProtocolError, match=r"unexpected reply 3.. to (MAIL|RCPT)"):
        feed(conn, replies)
    assert conn.state is S.ERROR


def test_data_answered_with_250_is_a_protocol_error() -> None:
    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Data())
    with pytest.raises(RemoteProtocolError, match="unexpected reply 250 to DATA"):
        feed(conn, b"250 ok\r\n250 ok\r\n250 ok\r\n")


def test_data_answered_with_other_3xx() -> None:
    conn = connect()
    send_all(conn, Mail("a@example.com"), Rcpt("b@example.com"), Data())
    with pytest.raises(RemoteProtocolError, match="only 354"):
        feed(conn, b"250 ok\r\n250 ok\r\n334 huh\r\n")


# -- extensions the commands need --------------------------------------------------


@pytest.mark.parametrize(
    "mail",
    [
        Mail("a@b", size=1),
        Mail("a@b", body="8BITMIME"),
        Mail("a@b", body="7BIT"),
        Mail("a@b", body="BINARYMIME"),
        Mail("ä@b", smtputf8=True),
        Mail("a@b", ret="FULL"),
        Mail("a@b", envid="x"),
        Mail("a@b", requiretls=True),
    ],
)
def test_mail_parameters_need_their_extension(mail: Mail) -> None:
    conn = connect(b"250 mx.example\r\n")
    with pytest.raises(LocalProtocolError, match="extensions the server did not offer"):
        conn.send(mail)
    assert connect().send(mail) == mail.to_bytes()


def test_helo_session_allows_no_parameters() -> None:
    conn = connect(None)
    conn.send(Ehlo("client.example"))
    feed(conn, b"500 no\r\n")
    conn.send(Helo("client.example"))
    feed(conn, b"250 ok\r\n")
    with pytest.raises(LocalProtocolError, match="SIZE"):
        conn.send(Mail("a@b", size=5))


def test_rcpt_parameters_need_their_extension() -> None:
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@b"))
    feed(conn, b"250 ok\r\n")
    with pytest.raises(LocalProtocolError, match="DSN"):
        conn.send(Rcpt("c@d", notify=frozenset({"NEVER"})))
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@b"))
    feed(conn, b"250 ok\r\n")
    with pytest.raises(LocalProtocolError, match="DSN"):
        conn.send(Rcpt("c@d", orcpt="c@d"))
    conn = connect()
    conn.send(Mail("a@b"))
    rcpt = Rcpt("c@d", notify=frozenset({"FAILURE"}), orcpt="c@d")
    assert conn.send(rcpt) == rcpt.to_bytes()


def test_non_ascii_recipient_needs_smtputf8_transaction() -> None:
    conn = connect()
    conn.send(Mail("a@b"))
    with pytest.raises(LocalProtocolError, match="smtputf8"):
        conn.send(Rcpt("ü@example.com"))
    conn = connect()
    conn.send(Mail("a@b", smtputf8=True))
    assert conn.send(Rcpt("ü@example.com")) == "RCPT TO:<ü@example.com>\r\n".encode()


# -- BDAT --------------------------------------------------------------------------


def test_bdat_needs_chunking() -> None:
    conn = connect(b"250-mx\r\n250 PIPELINING\r\n")
    send_all(conn, Mail("a@b"), Rcpt("c@d"))
    with pytest.raises(LocalProtocolError, match="CHUNKING"):
        conn.send(Bdat(b"x", last=True))


def test_bdat_pipelined_chunks() -> None:
    conn = connect()
    out = send_all(
        conn,
        Mail("a@b"),
        Rcpt("c@d"),
        Bdat(b"a\nb\r"),
        Bdat(b"\n.c"),
        Bdat(b"", last=True),
    )
    assert out.endswith(b"BDAT 6\r\na\r\nb\r\nBDAT 2\r\n.cBDAT 2 LAST\r\n\r\n")
    assert conn.state is S.READY
    assert conn.awaiting == ("MAIL", "RCPT", "BDAT", "BDAT", "BDAT")
    assert codes(conn, b"250 ok\r\n" * 4 + b"250 queued\r\n") == [250] * 5
    assert conn.state is S.READY


def test_bdat_binarymime_is_sent_verbatim() -> None:
    conn = connect()
    send_all(conn, Mail("a@b", body="BINARYMIME"), Rcpt("c@d"))
    assert conn.send(Bdat(b"\x00\r.\n", last=True)) == b"BDAT 4 LAST\r\n\x00\r.\n"

    conn = connect()
    send_all(conn, Mail("a@b", body="BINARYMIME"), Rcpt("c@d"))
    with pytest.raises(LocalProtocolError, match="BINARYMIME"):
        conn.send(Data())


def test_bdat_chunk_refused() -> None:
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Bdat(b"part one\r\n"))
    assert codes(conn, b"250 ok\r\n250 ok\r\n552 5.3.4 too big\r\n") == [250, 250, 552]
    assert conn.state is S.ABORTED
    with pytest.raises(LocalProtocolError, match="ABORTED"):
        conn.send(Bdat(b"more", last=True))

    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Bdat(b"one"))
    feed(conn, b"250 ok\r\n250 ok\r\n552 too big\r\n")
    send_all(conn, Noop())
    assert codes(conn, b"250 ok\r\n") == [250]
    conn.send(Rset())
    assert codes(conn, b"250 ok\r\n") == [250]
    assert conn.state is S.READY


def test_bdat_refused_while_more_chunks_in_flight() -> None:
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Bdat(b"one"), Bdat(b"two"))
    assert codes(conn, b"250 ok\r\n250 ok\r\n552 too big\r\n") == [250, 250, 552]
    assert conn.state is S.BDAT
    assert codes(conn, b"503 no\r\n") == [503]
    assert conn.state is S.ABORTED

    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Bdat(b"one"), Bdat(b"two", last=True))
    assert (
        codes(conn, b"250 ok\r\n250 ok\r\n552 too big\r\n552 too big\r\n") == [250] * 2 + [552] * 2
    )
    assert conn.state is S.READY


def test_bdat_after_all_recipients_refused() -> None:
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"))
    feed(conn, b"250 ok\r\n550 no\r\n")
    with pytest.raises(LocalProtocolError, match="refused"):
        conn.send(Bdat(b"x"))


def test_bdat_then_quit_and_rset() -> None:
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Bdat(b"x"), Rset())
    assert conn.state is S.READY
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Bdat(b"x"), Quit())
    assert conn.state is S.CLOSING


# -- STARTTLS ----------------------------------------------------------------------


def test_starttls_forgets_everything() -> None:
    conn = connect()
    conn.send(Auth("PLAIN", b"\0u\0p"))
    feed(conn, b"235 ok\r\n")
    assert conn.authenticated
    conn.send(StartTls())
    assert codes(conn, b"220 go ahead\r\n") == [220]
    assert conn.state is S.STARTTLS
    assert conn.next_event() is NEED_DATA  # nothing is owed until the new EHLO
    conn = connect()
    conn.send(StartTls())
    feed(conn, b"220 go ahead\r\n")
    conn.tls_established()
    assert conn.state is S.HELLO
    assert conn.capabilities is None
    assert not conn.extended
    assert not conn.authenticated
    with pytest.raises(LocalProtocolError, match="HELLO"):
        conn.send(Mail("a@b"))


def test_starttls_only_once_and_only_when_offered() -> None:
    conn = connect(EHLO_PLAIN)
    with pytest.raises(LocalProtocolError, match="did not offer STARTTLS"):
        conn.send(StartTls())
    conn = connect()
    conn.send(StartTls())
    feed(conn, b"220 go\r\n")
    conn.tls_established()
    conn.send(Ehlo("client.example"))
    feed(conn, EHLO_ALL)  # a broken server may announce STARTTLS again
    with pytest.raises(LocalProtocolError, match="already established"):
        conn.send(StartTls())


def test_starttls_refused() -> None:
    conn = connect()
    conn.send(StartTls())
    assert codes(conn, b"454 4.7.0 TLS not available\r\n") == [454]
    assert conn.state is S.READY
    assert conn.capabilities is not None


@pytest.mark.parametrize("cut", range(0, 30))
def test_starttls_response_injection(cut: int) -> None:
    conn = connect()
    conn.send(StartTls())
    with pytest.raises(RemoteProtocolError, match="injection"):
        feed(conn, b"220 go ahead\r\n250 injected\r\n", (cut,))
    assert conn.state is S.ERROR


def test_bytes_after_starttls_220_in_a_later_read() -> None:
    conn = connect()
    conn.send(StartTls())
    feed(conn, b"220 go ahead\r\n")
    with pytest.raises(RemoteProtocolError, match="injection"):
        conn.receive_data(b"250 injected\r\n")
    assert conn.state is S.ERROR


def test_starttls_answered_with_250() -> None:
    conn = connect()
    conn.send(StartTls())
    with pytest.raises(RemoteProtocolError, match="only 220"):
        feed(conn, b"250 sure\r\n")


def test_tls_established_in_the_wrong_state() -> None:
    conn = connect()
    with pytest.raises(LocalProtocolError, match="READY"):
        conn.tls_established()
    assert conn.state is S.ERROR


def test_eof_during_the_handshake_is_fine() -> None:
    conn = connect()
    conn.send(StartTls())
    feed(conn, b"220 go\r\n")
    conn.receive_data(b"")
    assert conn.state is S.CLOSED


# -- AUTH --------------------------------------------------------------------------


def test_auth_plain() -> None:
    conn = connect()
    assert conn.send(Auth("PLAIN", b"\0u\0p")) == b"AUTH PLAIN AHUAcA==\r\n"
    assert codes(conn, b"235 2.7.0 ok\r\n") == [235]
    assert conn.authenticated
    with pytest.raises(LocalProtocolError, match="already authenticated"):
        conn.send(Auth("PLAIN", b"\0u\0p"))


def test_auth_login_exchange() -> None:
    conn = connect()
    mech = Login("user", "secret")
    conn.send(Auth(mech.name, mech.initial_response()))
    (challenge,) = feed(conn, b"334 VXNlcm5hbWU6\r\n")
    assert conn.state is S.AUTH
    assert conn.send(AuthResponse(mech.respond(decode_challenge(challenge)))) == b"dXNlcg==\r\n"
    (challenge,) = feed(conn, b"334 UGFzc3dvcmQ6\r\n")
    assert conn.send(AuthResponse(mech.respond(decode_challenge(challenge)))) == b"c2VjcmV0\r\n"
    assert codes(conn, b"235 ok\r\n") == [235]
    assert conn.state is S.READY
    assert conn.authenticated


def test_auth_failure_and_retry() -> None:
    conn = connect()
    conn.send(Auth("PLAIN", b"\0u\0bad"))
    assert codes(conn, b"535 5.7.8 bad credentials\r\n") == [535]
    assert conn.state is S.READY
    assert not conn.authenticated
    conn.send(Auth("LOGIN"))
    feed(conn, b"334 VXNlcm5hbWU6\r\n")
    conn.send(AuthResponse(b"u"))
    assert codes(conn, b"535 no\r\n") == [535]
    assert conn.state is S.READY


def test_xoauth2_error_continuation() -> None:
    conn = connect()
    mech = XOAuth2("u@example.com", "expired")
    conn.send(Auth(mech.name, mech.initial_response()))
    error = base64.b64encode(b'{"status":"401"}')
    (challenge,) = feed(conn, b"334 " + error + b"\r\n")
    assert conn.send(AuthResponse(mech.respond(decode_challenge(challenge)))) == b"\r\n"
    assert codes(conn, b"535 5.7.8 Username and Password not accepted\r\n") == [535]
    assert conn.state is S.READY
    assert mech.error == '{"status":"401"}'


def test_auth_cancel() -> None:
    conn = connect()
    conn.send(Auth("LOGIN"))
    feed(conn, b"334 VXNlcm5hbWU6\r\n")
    assert conn.send(AuthCancel()) == b"*\r\n"
    assert codes(conn, b"501 5.0.0 cancelled\r\n") == [501]
    assert conn.state is S.READY

    conn = connect()
    conn.send(Auth("LOGIN"))
    feed(conn, b"334 VXNlcm5hbWU6\r\n")
    conn.send(AuthCancel())
    with pytest.raises(RemoteProtocolError, match="unexpected reply 334 to AUTH-CANCEL"):
        feed(conn, b"334 more?\r\n")


@pytest.mark.parametrize("command", [Quit(), Mail("a@b"), Noop(), Auth("PLAIN")])
def test_nothing_but_responses_inside_a_sasl_exchange(command: Command) -> None:
    conn = connect()
    conn.send(Auth("LOGIN"))
    feed(conn, b"334 VXNlcm5hbWU6\r\n")
    with pytest.raises(LocalProtocolError, match="AUTH"):
        conn.send(command)


def test_auth_needs_the_extension_and_exact_334() -> None:
    conn = connect(EHLO_PLAIN)
    with pytest.raises(LocalProtocolError, match="did not offer AUTH"):
        conn.send(Auth("PLAIN", b"x"))
    conn = connect()
    conn.send(Auth("LOGIN"))
    with pytest.raises(RemoteProtocolError, match="only 334"):
        feed(conn, b"354 what\r\n")


# -- 421, unsolicited replies, EOF, errors ------------------------------------------


def test_421_in_the_middle_of_a_pipeline_closes() -> None:
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Rcpt("e@f"), Data())
    assert codes(conn, b"250 ok\r\n421 4.3.2 shutting down\r\n") == [250, 421]
    assert conn.state is S.CLOSED
    assert conn.owed == 0
    assert conn.awaiting == ()
    with pytest.raises(LocalProtocolError, match="closed"):
        conn.next_event()
    # Whatever else arrives is ignored; end of file is fine.
    conn.receive_data(b"garbage")
    conn.receive_data(b"")
    assert conn.state is S.CLOSED


def test_421_while_sending_content() -> None:
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Data())
    feed(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    conn.send(EndOfData())
    assert codes(conn, b"421 timeout\r\n") == [421]
    assert conn.state is S.CLOSED


def test_unsolicited_421_while_idle() -> None:
    conn = connect()
    assert conn.next_event() is NEED_DATA
    assert codes(conn, b"421 4.4.2 idle timeout\r\n") == [421]
    assert conn.state is S.CLOSED


def test_unsolicited_reply_is_a_protocol_error() -> None:
    conn = connect()
    with pytest.raises(RemoteProtocolError, match="unsolicited"):
        feed(conn, b"250 surprise\r\n")
    assert conn.state is S.ERROR

    conn = connect()
    conn.send(Noop())
    with pytest.raises(RemoteProtocolError, match="unsolicited"):
        feed(conn, b"250 ok\r\n250 extra\r\n")


def test_bytes_left_after_a_reply_are_refused_before_the_next_command() -> None:
    # The extra line arrives in the same read as the EHLO reply: the driver
    # stops reading once nothing is owed, so send() must look at the buffer.
    conn = ClientConnection()
    conn.receive_data(b"220 mx.example\r\n")
    assert conn.next_event() != NEED_DATA
    conn.send(Ehlo("client.example"))
    conn.receive_data(EHLO_PLAIN + b"250 2.0.0 ok\r\n")
    assert conn.next_event() != NEED_DATA
    with pytest.raises(RemoteProtocolError, match="unsolicited"):
        conn.send(Mail("a@example.org"))
    assert conn.state is S.ERROR


def test_partial_unsolicited_bytes_are_refused_before_the_next_command() -> None:
    conn = connect()
    conn.receive_data(b"554 5.7.1 rej")
    with pytest.raises(RemoteProtocolError, match="unsolicited data"):
        conn.send(Noop())
    assert conn.state is S.ERROR


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (b"HELLO\r\n", "malformed reply line b'HELLO'"),
        (b"250 ok\r\n", "unsolicited reply: 250 'ok'"),
        (b"250-a\r\n251 b\r\n", "multi-line reply mixes codes 250 and 251"),
    ],
)
def test_bad_unsolicited_bytes_are_refused_before_the_next_command(
    extra: bytes, error: str
) -> None:
    conn = connect()
    conn.receive_data(extra)
    with pytest.raises(RemoteProtocolError) as info:
        conn.send(Noop())
    assert str(info.value) == error
    assert conn.state is S.ERROR
    with pytest.raises(LocalProtocolError, match="ERROR"):
        conn.next_event()


def test_buffered_421_closes_before_the_next_command() -> None:
    conn = connect()
    conn.receive_data(b"421 4.4.2 bye\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send(Noop())
    assert conn.owed == 0

    conn = connect()
    conn.receive_data(b"421 4.4.2 bye\r\n250 more\r\n")
    with pytest.raises(RemoteProtocolError, match="after its 421"):
        conn.send(Noop())
    assert conn.state is S.ERROR


def test_421_to_quit() -> None:
    conn = connect()
    conn.send(Quit())
    assert codes(conn, b"421 closing\r\n") == [421]
    assert conn.state is S.CLOSED


def test_quit_answered_with_an_error_still_closes() -> None:
    conn = connect(None)
    conn.send(Quit())
    assert codes(conn, b"500 what\r\n") == [500]
    assert conn.state is S.CLOSED


def test_eof_while_a_reply_is_owed() -> None:
    conn = connect()
    conn.send(Noop())
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="1 reply"):
        conn.next_event()
    assert conn.state is S.ERROR


def test_eof_in_the_middle_of_a_reply() -> None:
    conn = connect()
    conn.send(Noop())
    conn.receive_data(b"250-partial\r\n250 ")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="middle of a reply"):
        conn.next_event()


def test_eof_with_an_unsolicited_partial_reply() -> None:
    conn = connect()
    conn.receive_data(b"42")
    conn.receive_data(b"")
    assert conn.state is S.READY
    with pytest.raises(RemoteProtocolError, match="middle of a reply"):
        conn.next_event()


def test_eof_when_idle_closes() -> None:
    conn = connect()
    conn.receive_data(b"")
    assert conn.state is S.CLOSED
    conn.receive_data(b"")  # repeated end of file is harmless
    with pytest.raises(LocalProtocolError, match="after the end of file"):
        conn.receive_data(b"more")
    with pytest.raises(LocalProtocolError, match="closed"):
        conn.next_event()


def test_eof_right_after_the_last_reply() -> None:
    conn = connect()
    conn.send(Quit())
    conn.receive_data(b"221 bye\r\n")
    conn.receive_data(b"")
    assert drain_one(conn).code == 221
    assert conn.state is S.CLOSED

    conn = connect()
    conn.send(Noop())
    conn.receive_data(b"250 ok\r\n")
    conn.receive_data(b"")
    assert drain_one(conn).code == 250
    assert conn.state is S.CLOSED


def drain_one(conn: ClientConnection) -> Reply:
    event = conn.next_event()
    assert isinstance(event, Reply)
    return event


def test_malformed_reply_moves_to_error() -> None:
    conn = connect()
    conn.send(Noop())
    with pytest.raises(RemoteProtocolError):
        feed(conn, b"2x0 ok\r\n")
    assert conn.state is S.ERROR
    with pytest.raises(LocalProtocolError, match="ERROR"):
        conn.next_event()


def test_bounds_are_passed_to_the_parser() -> None:
    conn = ClientConnection(max_line_length=10, max_reply_lines=2, max_reply_size=100)
    with pytest.raises(RemoteProtocolError, match="line longer"):
        feed(conn, b"220 " + b"x" * 20 + b"\r\n")
    conn = ClientConnection(max_reply_lines=2)
    with pytest.raises(RemoteProtocolError, match="more than 2 lines"):
        feed(conn, b"220-a\r\n220-b\r\n220 c\r\n")
    with pytest.raises(ValueError, match="max_lines"):
        ClientConnection(max_reply_lines=0)


def test_bounds_survive_starttls() -> None:
    conn = ClientConnection(max_reply_lines=3)
    feed(conn, b"220 hi\r\n")
    conn.send(Ehlo("c.example"))
    feed(conn, b"250-mx\r\n250 STARTTLS\r\n")
    conn.send(StartTls())
    feed(conn, b"220 go\r\n")
    conn.tls_established()
    conn.send(Ehlo("c.example"))
    with pytest.raises(RemoteProtocolError, match="more than 3 lines"):
        feed(conn, EHLO_ALL)


ACTIONS: list[Callable[[ClientConnection], object]] = [
    lambda c: c.send(Noop()),
    lambda c: c.next_event(),
    lambda c: c.receive_data(b"x"),
    lambda c: c.tls_established(),
]


@pytest.mark.parametrize("action", ACTIONS)
def test_everything_raises_after_an_error(action: Callable[[ClientConnection], object]) -> None:
    conn = connect()
    with pytest.raises(LocalProtocolError):
        conn.send(Rcpt("b@example.com"))
    assert conn.state is S.ERROR
    with pytest.raises(LocalProtocolError):
        action(conn)
    assert conn.state is S.ERROR


def test_drain_helper_stops_at_need_data() -> None:
    conn = connect()
    assert drain(conn) == []
    assert reply(ClientConnection(), b"220 hi\r\n").code == 220


# -- recipients counted one by one, with several replies outstanding ---------------


def test_two_recipients_refused_in_lockstep_forbid_data() -> None:
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@example.com"))
    feed(conn, b"250 ok\r\n")
    conn.send(Rcpt("b@example.com"))
    feed(conn, b"550 no\r\n")
    conn.send(Rcpt("c@example.com"))
    feed(conn, b"550 no\r\n")
    with pytest.raises(
        LocalProtocolError, match=exactly("DATA after every recipient was refused: send RSET")
    ):
        conn.send(Data())
    assert conn.state is S.ERROR


def test_pipelined_recipients_refused_with_two_still_outstanding() -> None:
    # Three RCPT in flight: after the first refusal two replies are outstanding,
    # so DATA may still go; once all three are refused it may not.
    conn = connect()
    rcpts = [Rcpt("b@example.com"), Rcpt("c@example.com"), Rcpt("d@example.com")]
    conn.send_envelope(Mail("a@example.com"), rcpts)
    assert codes(conn, b"250 ok\r\n550 no\r\n") == [250, 550]
    assert conn.accepted_recipients == 0
    assert conn.send(Data()) == b"DATA\r\n"

    conn = connect()
    conn.send_envelope(Mail("a@example.com"), rcpts)
    assert codes(conn, b"250 ok\r\n550 no\r\n550 no\r\n") == [250, 550, 550]
    assert conn.send(Data()) == b"DATA\r\n"  # one RCPT reply is still owed

    conn = connect()
    conn.send_envelope(Mail("a@example.com"), rcpts)
    assert codes(conn, b"250 ok\r\n550 no\r\n550 no\r\n550 no\r\n") == [250, 550, 550, 550]
    with pytest.raises(LocalProtocolError, match="DATA after every recipient was refused"):
        conn.send(Data())


def test_two_refused_recipients_then_bdat() -> None:
    conn = connect()
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com"), Rcpt("c@example.com")])
    assert codes(conn, b"250 ok\r\n550 no\r\n550 no\r\n") == [250, 550, 550]
    with pytest.raises(
        LocalProtocolError, match=exactly("BDAT after every recipient was refused: send RSET")
    ):
        conn.send(Bdat(b"x", last=True))


def test_accepted_recipients_are_counted() -> None:
    conn = connect()
    rcpts = [Rcpt(f"{name}@example.com") for name in "bcde"]
    conn.send_envelope(Mail("a@example.com"), rcpts, data=True)
    assert conn.accepted_recipients == 0
    feed(conn, b"250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n")
    assert conn.accepted_recipients == 2
    feed(conn, b"251 forwarded\r\n354 go\r\n")
    assert conn.accepted_recipients == 3
    conn.send_content(b"hi\r\n")
    assert conn.accepted_recipients == 0  # the transaction is over


# -- MAIL parameters against a server that offers some of the extensions ------------


@pytest.mark.parametrize(
    ("offered", "mail", "needs"),
    [
        (b"SIZE 100", Mail("a@b", size=5, body="BINARYMIME"), ["BINARYMIME and CHUNKING"]),
        (
            b"BINARYMIME",
            Mail("a@b", size=5, body="BINARYMIME"),
            ["SIZE", "BINARYMIME and CHUNKING"],
        ),
        (b"CHUNKING", Mail("a@b", body="BINARYMIME"), ["BINARYMIME and CHUNKING"]),
        (b"SMTPUTF8", Mail("a@b", size=5, smtputf8=True), ["SIZE"]),
        (b"SIZE", Mail("ä@b", size=5, smtputf8=True), ["SMTPUTF8"]),
        (b"SIZE", Mail("a@b", size=5, body="8BITMIME"), ["8BITMIME"]),
        (b"8BITMIME", Mail("a@b", size=5, body="8BITMIME", smtputf8=True), ["SIZE", "SMTPUTF8"]),
        (b"SIZE", Mail("a@b", body="7BIT"), ["8BITMIME (for BODY=7BIT)"]),
        (b"SMTPUTF8", Mail("a@b", envid="x", requiretls=True), ["DSN", "REQUIRETLS"]),
        (b"DSN", Mail("a@b", ret="HDRS", requiretls=True), ["REQUIRETLS"]),
        (b"REQUIRETLS", Mail("a@b", ret="FULL"), ["DSN"]),
    ],
)
def test_mail_parameters_against_some_extensions(
    offered: bytes, mail: Mail, needs: list[str]
) -> None:
    conn = connect(b"250-mx.example\r\n250 " + offered + b"\r\n")
    message = f"MAIL needs extensions the server did not offer: {needs}"
    with pytest.raises(LocalProtocolError, match=exactly(message)):
        conn.send(mail)
    assert conn.state is S.ERROR


@pytest.mark.parametrize(
    ("offered", "mail"),
    [
        (b"250-SIZE\r\n250 SMTPUTF8", Mail("ä@b", size=5, smtputf8=True)),
        (b"250-BINARYMIME\r\n250 CHUNKING", Mail("a@b", body="BINARYMIME")),
        (b"250 BINARYMIME", Mail("a@b", body="7BIT")),
        (b"250 8BITMIME", Mail("a@b", body="7BIT")),
        (b"250 SIZE", Mail("a@b", size=5)),
        (b"250 DSN", Mail("a@b", envid="x")),
        (b"250 DSN", Mail("a@b", ret="FULL")),
        (b"250 REQUIRETLS", Mail("a@b", requiretls=True)),
    ],
)
def test_mail_parameters_with_just_their_extensions(offered: bytes, mail: Mail) -> None:
    conn = connect(b"250-mx.example\r\n" + offered + b"\r\n")
    assert conn.send(mail) == mail.to_bytes()
    assert conn.state is S.MAIL


# -- HELO after STARTTLS, error texts ----------------------------------------------


def test_helo_is_refused_again_after_starttls() -> None:
    conn = connect(None)
    conn.send(Ehlo("client.example"))
    feed(conn, b"502 not now\r\n")
    conn.send(Ehlo("client.example"))
    feed(conn, b"250-mx.example\r\n250 STARTTLS\r\n")
    conn.send(StartTls())
    feed(conn, b"220 go\r\n")
    conn.tls_established()
    # EHLO was refused before the upgrade; after it, EHLO must be tried first.
    with pytest.raises(
        LocalProtocolError, match=exactly("HELO is only sent after the server refused EHLO")
    ):
        conn.send(Helo("client.example"))


def test_local_error_texts() -> None:
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@b"))
    with pytest.raises(
        LocalProtocolError,
        match=exactly(
            "RCPT cannot be sent before the reply to MAIL: the server did not offer PIPELINING"
        ),
    ):
        conn.send(Rcpt("c@d"))
    conn = connect()
    conn.send(Noop())
    with pytest.raises(
        LocalProtocolError, match=exactly("MAIL cannot be sent before the reply to NOOP")
    ):
        conn.send(Mail("a@b"))
    conn = connect()
    with pytest.raises(LocalProtocolError, match=exactly("RCPT cannot be sent in state READY")):
        conn.send(Rcpt("c@d"))
    with pytest.raises(LocalProtocolError, match=exactly("the connection is in the ERROR state")):
        conn.send(Noop())
    conn = connect(EHLO_PLAIN)
    with pytest.raises(LocalProtocolError, match=exactly("the server did not offer STARTTLS")):
        conn.send(StartTls())
    conn = connect(EHLO_PLAIN)
    with pytest.raises(LocalProtocolError, match=exactly("the server did not offer AUTH")):
        conn.send(Auth("PLAIN", b"x"))
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@b"))
    feed(conn, b"250 ok\r\n")
    with pytest.raises(
        LocalProtocolError, match=exactly("RCPT NOTIFY and ORCPT need DSN, which the server lacks")
    ):
        conn.send(Rcpt("c@d", orcpt="c@d"))
    conn = connect()
    conn.send(Mail("a@b"))
    with pytest.raises(
        LocalProtocolError,
        match=exactly("a non-ASCII forward path needs MAIL with smtputf8=True"),
    ):
        conn.send(Rcpt("ü@d"))
    conn = connect(EHLO_PLAIN)
    conn.send(Mail("a@b"))
    feed(conn, b"250 ok\r\n")
    conn.send(Rcpt("c@d"))
    feed(conn, b"250 ok\r\n")
    with pytest.raises(
        LocalProtocolError, match=exactly("the server did not offer CHUNKING (BDAT)")
    ):
        conn.send(Bdat(b"x", last=True))


def test_remote_error_texts() -> None:
    conn = connect()
    conn.send(Noop())
    with pytest.raises(RemoteProtocolError, match=exactly("unexpected reply 354 to NOOP")):
        feed(conn, b"354 go\r\n")
    conn = connect()
    conn.send(Auth("LOGIN"))
    with pytest.raises(
        RemoteProtocolError, match=exactly("reply 335 to AUTH: only 334 makes sense")
    ):
        feed(conn, b"335 what\r\n")
    conn = connect()
    with pytest.raises(RemoteProtocolError, match=exactly("unsolicited reply: 250 'hello'")):
        feed(conn, b"250 hello\r\n")
    conn = connect()
    conn.send(Noop())
    conn.receive_data(b"")
    with pytest.raises(
        RemoteProtocolError,
        match=exactly("the server closed the connection while 1 reply(s) were owed"),
    ):
        conn.next_event()
    conn = connect()
    conn.send(Noop())
    conn.receive_data(b"250 o")
    conn.receive_data(b"")
    with pytest.raises(
        RemoteProtocolError,
        match=exactly("the server closed the connection in the middle of a reply"),
    ):
        conn.next_event()


# -- the parser's bounds, by default and passed through ----------------------------


def test_default_bounds_reach_the_parser() -> None:
    conn = ClientConnection()
    feed(conn, b"220 " + b"x" * 2044 + b"\r\n")  # 2048 octets: the longest line
    conn = ClientConnection()
    with pytest.raises(RemoteProtocolError, match=exactly("reply line longer than 2048 octets")):
        feed(conn, b"220 " + b"x" * 2045 + b"\r\n")
    many = b"".join(b"220-x\r\n" for _ in range(255)) + b"220 x\r\n"
    assert len(reply(ClientConnection(), many).lines) == 256
    conn = ClientConnection()
    with pytest.raises(RemoteProtocolError, match=exactly("reply has more than 256 lines")):
        feed(conn, b"220-x\r\n" + many)
    big = b"".join(b"220-" + b"y" * 1018 + b"\r\n" for _ in range(63)) + b"220 z\r\n"
    conn = ClientConnection()
    with pytest.raises(RemoteProtocolError, match=exactly("reply longer than 65536 octets")):
        feed(conn, big[:-7] + b"220-" + b"y" * 1018 + b"\r\n220 z\r\n")
    assert reply(ClientConnection(), big).code == 220


def test_each_bound_reaches_the_parser_and_survives_starttls() -> None:
    def upgraded(conn: ClientConnection) -> ClientConnection:
        feed(conn, b"220 hi\r\n")
        conn.send(Ehlo("c.example"))
        feed(conn, b"250-mx\r\n250 STARTTLS\r\n")
        conn.send(StartTls())
        feed(conn, b"220 go\r\n")
        conn.tls_established()
        conn.send(Ehlo("c.example"))
        return conn

    for make in (lambda c: c, upgraded):
        conn = make(ClientConnection(max_line_length=12))
        with pytest.raises(RemoteProtocolError, match=exactly("reply line longer than 12 octets")):
            feed(conn, b"250 " + b"x" * 9 + b"\r\n")
        conn = make(ClientConnection(max_reply_size=23))
        with pytest.raises(RemoteProtocolError, match=exactly("reply longer than 23 octets")):
            feed(conn, b"250-aaaa\r\n250 bbbbbbbb\r\n")
        conn = make(ClientConnection(max_reply_lines=2))
        with pytest.raises(RemoteProtocolError, match=exactly("reply has more than 2 lines")):
            feed(conn, b"250-a\r\n250-b\r\n250 c\r\n")


def test_any_2xx_reply_to_ehlo_opens_the_session() -> None:
    # The code's first digit alone decides: 200 and 201 are replies like 250.
    for code in (b"200", b"201", b"299"):
        conn = connect(None)
        conn.send(Ehlo("client.example"))
        feed(conn, code + b"-mx.example\r\n" + code + b" PIPELINING\r\n")
        assert conn.state is S.READY
        assert conn.capabilities is not None
        assert conn.capabilities.pipelining
    for code in (b"400", b"404", b"500", b"505", b"599"):
        conn = connect(None)
        conn.send(Ehlo("client.example"))
        feed(conn, code + b" no\r\n")
        assert conn.state is S.HELLO
        assert conn.capabilities is None
        assert conn.send(Helo("client.example")) == b"HELO client.example\r\n"


def test_3xx_to_data_at_the_edges() -> None:
    for code in (300, 399):
        conn = connect()
        conn.send_envelope(Mail("a@b"), [Rcpt("c@d")], data=True)
        with pytest.raises(
            RemoteProtocolError, match=exactly(f"reply {code} to DATA: only 354 makes sense")
        ):
            feed(conn, b"250 ok\r\n250 ok\r\n%d go\r\n" % code)


def test_smtputf8_envelope_in_one_flight() -> None:
    conn = connect()
    out = conn.send_envelope(Mail("a@b", smtputf8=True), [Rcpt("ü@example.com")], data=True)
    assert out == "MAIL FROM:<a@b> SMTPUTF8\r\nRCPT TO:<ü@example.com>\r\nDATA\r\n".encode()


def test_after_starttls_the_session_is_neither_extended_nor_authenticated() -> None:
    conn = connect()
    conn.send(Auth("PLAIN", b"\0u\0p"))
    feed(conn, b"235 ok\r\n")
    assert conn.authenticated is True
    assert conn.extended is True
    conn.send(StartTls())
    feed(conn, b"220 go\r\n")
    conn.tls_established()
    assert conn.authenticated is False
    assert conn.extended is False
    assert conn.capabilities is None


def test_unsolicited_data_texts() -> None:
    conn = connect()
    conn.receive_data(b"554 5.7.1 rej")
    with pytest.raises(
        RemoteProtocolError, match=exactly("unsolicited data from the server between commands")
    ):
        conn.send(Noop())
    conn = connect()
    conn.receive_data(b"421 bye\r\n250")
    with pytest.raises(
        RemoteProtocolError,
        match=exactly("unsolicited data from the server after its 421 reply"),
    ):
        conn.send(Noop())


def test_the_connection_works_on_after_a_transaction_refused_in_one_flight() -> None:
    conn = connect()
    conn.send_envelope(Mail("a@b"), [Rcpt("c@d")], data=True)
    assert codes(conn, b"550 no\r\n503 no\r\n503 no\r\n") == [550, 503, 503]
    assert conn.state is S.READY
    assert conn.accepted_recipients == 0
    conn.send(Noop())
    assert codes(conn, b"250 ok\r\n") == [250]
    conn.send(Rset())
    assert codes(conn, b"250 ok\r\n") == [250]
    assert conn.send_envelope(Mail("a@b"), [Rcpt("c@d")]) == (
        b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
    )


def test_helo_session_is_not_extended() -> None:
    conn = connect(None)
    conn.send(Ehlo("client.example"))
    feed(conn, b"500 no\r\n")
    assert conn.extended is False
    conn.send(Helo("client.example"))
    feed(conn, b"250 ok\r\n")
    assert conn.extended is False
    assert conn.capabilities is not None


def test_starttls_injection_text_when_in_the_same_read() -> None:
    conn = connect()
    conn.send(StartTls())
    with pytest.raises(
        RemoteProtocolError,
        match=exactly("the server sent data after its 220 reply to STARTTLS (response injection)"),
    ):
        feed(conn, b"220 go\r\n250 injected\r\n")


def test_transactions_after_a_bdat_last_whose_recipient_was_accepted() -> None:
    conn = connect()
    conn.send_envelope(Mail("a@b"), [Rcpt("c@d")])
    conn.send(Bdat(b"hi\r\n", last=True))
    assert conn.needs_rset  # no recipient known to be accepted yet
    assert codes(conn, b"250 ok\r\n250 ok\r\n250 queued\r\n") == [250, 250, 250]
    assert not conn.needs_rset
    # The next transactions, through DATA, go on as usual.
    for _ in range(2):
        conn.send_envelope(Mail("a@b"), [Rcpt("c@d")], data=True)
        assert codes(conn, b"250 ok\r\n250 ok\r\n354 go\r\n") == [250, 250, 354]
        conn.send_content(b"hi\r\n")
        assert codes(conn, b"250 queued\r\n") == [250]


def test_a_settled_transaction_is_forgotten_only_when_it_is_over() -> None:
    # MAIL refused (the server then accepted the RCPT anyway): the transaction is over.
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Data())
    assert codes(conn, b"550 no\r\n250 ok\r\n503 no\r\n") == [550, 250, 503]
    assert conn.state is S.READY
    assert conn.accepted_recipients == 0
    # A chunk refused: RSET must follow, and the transaction is known until then.
    conn = connect()
    send_all(conn, Mail("a@b"), Rcpt("c@d"), Bdat(b"one"))
    feed(conn, b"250 ok\r\n250 ok\r\n552 too big\r\n")
    assert conn.state is S.ABORTED
    assert conn.accepted_recipients == 1
    conn.send(Rset())
    assert conn.accepted_recipients == 0
