"""send_envelope() and send_content(): the same as sending each command in turn."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from protocol_support import EHLO_PLAIN, connect, feed

from lettre.errors import LocalProtocolError, ProtocolError
from lettre.protocol import (
    Bdat,
    ClientConnection,
    ClientState,
    Data,
    EndOfData,
    Mail,
    MessageData,
    Noop,
    Rcpt,
)

S = ClientState
EHLO_PIPELINING_ONLY = b"250-mx.example\r\n250 PIPELINING\r\n"

Setup = Callable[[], ClientConnection]
Outcome = tuple[object, ClientState, tuple[str, ...], int]


def outcome(conn: ClientConnection, action: Callable[[ClientConnection], bytes]) -> Outcome:
    """What an action returned (or raised) and the connection's state afterwards."""
    result: object
    try:
        result = action(conn)
    except ProtocolError as exc:
        result = (type(exc), str(exc))
    return result, conn.state, conn.awaiting, conn.accepted_recipients


def one_by_one(mail: Mail, rcpts: list[Rcpt], data: bool) -> Callable[[ClientConnection], bytes]:
    def action(conn: ClientConnection) -> bytes:
        out = [conn.send(mail)]
        out.extend(conn.send(rcpt) for rcpt in rcpts)
        if data:
            out.append(conn.send(Data()))
        return b"".join(out)

    return action


def batched(mail: Mail, rcpts: list[Rcpt], data: bool) -> Callable[[ClientConnection], bytes]:
    return lambda conn: conn.send_envelope(mail, rcpts, data)


def assert_same_envelope(setup: Setup, mail: Mail, rcpts: list[Rcpt], *, data: bool) -> Outcome:
    expected = outcome(setup(), one_by_one(mail, rcpts, data))
    assert outcome(setup(), batched(mail, rcpts, data)) == expected
    return expected


def in_data() -> ClientConnection:
    """A connection whose server answered 354 to DATA."""
    conn = connect()
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")], data=True)
    assert [r.code for r in feed(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")] == [250, 250, 354]
    return conn


def assert_same_content(setup: Setup, data: object) -> Outcome:
    def one_by_one(conn: ClientConnection) -> bytes:
        return conn.send(MessageData(data)) + conn.send(EndOfData())  # type: ignore[arg-type]

    def batched(conn: ClientConnection) -> bytes:
        return conn.send_content(data)  # type: ignore[arg-type]

    expected = outcome(setup(), one_by_one)
    assert outcome(setup(), batched) == expected
    return expected


# -- send_envelope -------------------------------------------------------------------


@pytest.mark.parametrize("data", [True, False])
def test_pipelined_envelope(data: bool) -> None:
    rcpts = [Rcpt("b@example.com"), Rcpt("c@example.com", notify=frozenset({"never"}))]
    result, state, awaiting, _ = assert_same_envelope(
        connect, Mail("a@example.com", size=10), rcpts, data=data
    )
    assert result == (
        b"MAIL FROM:<a@example.com> SIZE=10\r\nRCPT TO:<b@example.com>\r\n"
        b"RCPT TO:<c@example.com> NOTIFY=NEVER\r\n" + (b"DATA\r\n" if data else b"")
    )
    assert state is S.RCPT
    assert awaiting == ("MAIL", "RCPT", "RCPT", *(("DATA",) if data else ()))


def test_envelope_after_the_previous_content() -> None:
    def setup() -> ClientConnection:
        conn = in_data()
        conn.send_content(b"one")
        return conn

    result, state, awaiting, _ = assert_same_envelope(
        setup, Mail("a@example.com"), [Rcpt("c@example.com")], data=True
    )
    assert result == b"MAIL FROM:<a@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
    assert state is S.RCPT
    assert awaiting == ("END-OF-DATA", "MAIL", "RCPT", "DATA")


def test_envelope_without_recipients() -> None:
    result, state, awaiting, _ = assert_same_envelope(
        connect, Mail("a@example.com"), [], data=False
    )
    assert result == b"MAIL FROM:<a@example.com>\r\n"
    assert (state, awaiting) == (S.MAIL, ("MAIL",))
    result, state, _, _ = assert_same_envelope(connect, Mail("a@example.com"), [], data=True)
    assert result == (LocalProtocolError, "DATA cannot be sent in state MAIL")
    assert state is S.ERROR


def test_envelope_in_the_wrong_state() -> None:
    result, state, _, _ = assert_same_envelope(
        lambda: connect(None), Mail("a@example.com"), [Rcpt("b@example.com")], data=True
    )
    assert result == (LocalProtocolError, "MAIL cannot be sent in state HELLO")
    assert state is S.ERROR


def test_envelope_after_a_group_ender() -> None:
    def setup() -> ClientConnection:
        conn = connect()
        conn.send(Noop())
        return conn

    result, state, _, _ = assert_same_envelope(
        setup, Mail("a@example.com"), [Rcpt("b@example.com")], data=True
    )
    assert result == (LocalProtocolError, "MAIL cannot be sent before the reply to NOOP")
    assert state is S.ERROR


def test_envelope_after_unsolicited_bytes() -> None:
    def setup() -> ClientConnection:
        conn = connect()
        conn.receive_data(b"250 what\r\n")
        return conn

    result, state, _, _ = assert_same_envelope(
        setup, Mail("a@example.com"), [Rcpt("b@example.com")], data=True
    )
    assert isinstance(result, tuple)
    assert "unsolicited reply" in result[1]
    assert state is S.ERROR


def test_envelope_without_pipelining() -> None:
    result, state, awaiting, _ = assert_same_envelope(
        lambda: connect(EHLO_PLAIN), Mail("a@example.com"), [Rcpt("b@example.com")], data=False
    )
    assert isinstance(result, tuple)
    assert "did not offer PIPELINING" in result[1]
    assert (state, awaiting) == (S.ERROR, ("MAIL",))


def test_envelope_mail_needs_an_extension() -> None:
    result, state, awaiting, _ = assert_same_envelope(
        lambda: connect(EHLO_PIPELINING_ONLY),
        Mail("a@example.com", requiretls=True),
        [Rcpt("b@example.com")],
        data=True,
    )
    assert isinstance(result, tuple)
    assert "REQUIRETLS" in result[1]
    assert (state, awaiting) == (S.ERROR, ())


def test_envelope_rcpt_refused_locally() -> None:
    result, state, awaiting, _ = assert_same_envelope(
        connect,
        Mail("a@example.com"),
        [Rcpt("b@example.com"), Rcpt("dé@example.com")],
        data=True,
    )
    assert result == (
        LocalProtocolError,
        "a non-ASCII forward path needs MAIL with smtputf8=True",
    )
    assert (state, awaiting) == (S.ERROR, ("MAIL", "RCPT"))


def test_envelope_binarymime_needs_bdat() -> None:
    result, state, awaiting, _ = assert_same_envelope(
        connect, Mail("a@example.com", body="BINARYMIME"), [Rcpt("b@example.com")], data=True
    )
    assert result == (
        LocalProtocolError,
        "a BODY=BINARYMIME transaction must use BDAT, not DATA",
    )
    assert (state, awaiting) == (S.ERROR, ("MAIL", "RCPT"))


# -- send_content --------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"one\n.two", bytearray(b"one\r\n"), b"", b"ends\r\n"])
def test_content(data: bytes) -> None:
    result, state, awaiting, accepted = assert_same_content(in_data, data)
    assert isinstance(result, bytes)
    assert result.endswith(b".\r\n")
    assert (state, awaiting, accepted) == (S.READY, ("END-OF-DATA",), 0)


@pytest.mark.parametrize("data", [b"two\r\n", b".two\n", b""])
def test_content_after_content_sent_in_pieces(data: bytes) -> None:
    def setup() -> ClientConnection:
        conn = in_data()
        assert conn.send(MessageData(b"one\r")) == b"one\r\n"
        return conn

    result, state, awaiting, _ = assert_same_content(setup, data)
    assert result == {b"two\r\n": b"two\r\n.\r\n", b".two\n": b"..two\r\n.\r\n"}.get(data, b".\r\n")
    assert (state, awaiting) == (S.READY, ("END-OF-DATA",))


def test_end_of_data_without_content() -> None:
    conn = in_data()
    assert conn.send(EndOfData()) == b".\r\n"
    assert conn.state is S.READY
    # The next transaction starts with a fresh encoder.
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")], data=True)
    feed(conn, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
    assert conn.send(MessageData(b".x")) == b"..x"
    assert conn.send_content(b"\n.y") == b"\r\n..y\r\n.\r\n"


def test_content_that_is_not_bytes() -> None:
    with pytest.raises(LocalProtocolError, match="message data must be bytes"):
        in_data().send_content("text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="message data must be bytes"):
        MessageData("text")  # type: ignore[arg-type]


def test_content_in_the_wrong_state() -> None:
    result, state, _, _ = assert_same_content(connect, b"x")
    assert result == (LocalProtocolError, "DATA-CONTENT cannot be sent in state READY")
    assert state is S.ERROR


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (b"250 what\r\n", "unsolicited reply: 250 'what'"),
        (b"421 bye\r\n", "DATA-CONTENT cannot be sent in state CLOSED"),
        (b"421 bye\r\n250", "unsolicited data from the server after its 421 reply"),
    ],
)
def test_content_after_unsolicited_bytes(extra: bytes, error: str) -> None:
    def setup() -> ClientConnection:
        conn = in_data()
        conn.receive_data(extra)
        return conn

    result, state, _, _ = assert_same_content(setup, b"x")
    assert isinstance(result, tuple)
    assert result[1] == error
    assert state is S.ERROR


def _in_state(state: ClientState) -> Setup:
    """A connection whose server offered PIPELINING, brought to ``state``."""

    def setup() -> ClientConnection:
        conn = connect()
        if state is S.MAIL:
            conn.send(Mail("x@example.com"))
        elif state is S.RCPT:
            conn.send_envelope(Mail("x@example.com"), [Rcpt("y@example.com")])
        elif state is S.DATA:
            return in_data()
        assert conn.state is state
        return conn

    return setup


@pytest.mark.parametrize("state", [S.MAIL, S.RCPT, S.DATA])
@pytest.mark.parametrize("data", [True, False])
def test_envelope_in_a_wrong_state_with_pipelining(state: ClientState, data: bool) -> None:
    result, after, _, _ = assert_same_envelope(
        _in_state(state), Mail("a@example.com"), [Rcpt("b@example.com")], data=data
    )
    assert result == (LocalProtocolError, f"MAIL cannot be sent in state {state.name}")
    assert after is S.ERROR


def test_envelope_after_a_bdat_last_with_no_recipient_known() -> None:
    # With PIPELINING, the envelope's MAIL gets the same check as a MAIL sent alone.
    def setup() -> ClientConnection:
        conn = connect()
        conn.send_envelope(Mail("x@example.com"), [Rcpt("y@example.com")])
        conn.send(Bdat(b"hi", last=True))
        return conn

    result, after, _, _ = assert_same_envelope(
        setup, Mail("a@example.com"), [Rcpt("b@example.com")], data=True
    )
    assert isinstance(result, tuple)
    assert result[1].startswith("MAIL after a BDAT LAST whose transaction may still be open")
    assert result[1].endswith("send RSET first")
    assert after is S.ERROR


def test_envelope_counts_its_recipients() -> None:
    conn = connect()
    rcpts = [Rcpt("b@example.com"), Rcpt("c@example.com")]
    conn.send_envelope(Mail("a@example.com"), rcpts)
    feed(conn, b"250 ok\r\n550 no\r\n")
    assert conn.send(Data()) == b"DATA\r\n"  # one RCPT reply is still owed
    conn = connect()
    conn.send_envelope(Mail("a@example.com"), rcpts)
    feed(conn, b"250 ok\r\n550 no\r\n550 no\r\n")
    with pytest.raises(LocalProtocolError, match="DATA after every recipient was refused"):
        conn.send(Data())
