"""LMTP (RFC 2033) on the sans-IO core: bytes in, events out.

The same ClientConnection and TransactionEngine speak LMTP when the
connection is made with ``lmtp=True``: LHLO opens the session, and the end of
a message's content owes one reply per recipient accepted at RCPT, each of
which becomes that recipient's outcome.
"""

# mypy narrows tx.stage after each assert and cannot see that the engine changes it.
# mypy: disable-error-code="comparison-overlap"

from __future__ import annotations

import pytest
from protocol_support import exactly
from test_transactions import BDAT, CONTENT, DATA, DATA_CONTENT, RCPT_B, RCPT_C, ehlo_reply

from lettre.envelope import Envelope
from lettre.errors import (
    LocalProtocolError,
    OutcomeUnknown,
    RecipientsRefused,
    RemoteProtocolError,
    SenderRefused,
)
from lettre.protocol import (
    NEED_DATA,
    Bdat,
    ClientConnection,
    ClientState,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    Mail,
    MessageData,
    Rcpt,
    Reply,
    Rset,
)
from lettre.protocol.commands import Lhlo
from lettre.protocol.transactions import (
    ContentReady,
    Replied,
    Transaction,
    TransactionDone,
    TransactionEngine,
    TransactionStage,
)
from lettre.results import SendResult

Event = ContentReady | TransactionDone | Replied

# CONTENT, RCPT_B, RCPT_C, DATA, BDAT and DATA_CONTENT are the SMTP engine
# tests' (test_transactions.py); MAIL has no SIZE here (the servers below
# announce none).
MAIL = b"MAIL FROM:<a@example.com>\r\n"
RCPT_D = b"RCPT TO:<d@example.com>\r\n"
OK = b"250 2.1.5 ok\r\n"
NO_USER = b"550 5.1.1 no such user\r\n"
GO = b"354 go ahead\r\n"

PIPELINING = ("PIPELINING", "ENHANCEDSTATUSCODES")
CHUNKING = ("PIPELINING", "CHUNKING")
LOCK_STEP = ("ENHANCEDSTATUSCODES",)


# The reply to LHLO has the form of the reply to EHLO (RFC 2033, section 4.1).
lhlo_reply = ehlo_reply


def greeted() -> ClientConnection:
    conn = ClientConnection(lmtp=True)
    assert conn.lmtp
    conn.receive_data(b"220 lmtp.example LMTP ready\r\n")
    greeting = conn.next_event()
    assert isinstance(greeting, Reply)
    assert greeting.code == 220
    return conn


def session(keywords: tuple[str, ...] = PIPELINING) -> ClientConnection:
    """An LMTP connection past the greeting and a positive LHLO announcing ``keywords``."""
    conn = greeted()
    assert conn.send(Lhlo("client.example")) == b"LHLO client.example\r\n"
    assert conn.awaiting == ("LHLO",)
    conn.receive_data(lhlo_reply(keywords))
    reply = conn.next_event()
    assert isinstance(reply, Reply)
    assert reply.code == 250
    assert conn.state is ClientState.READY
    return conn


def make_engine(keywords: tuple[str, ...] = PIPELINING) -> TransactionEngine:
    return TransactionEngine(session(keywords), peer="lmtp:24")


def envelope(*recipients: str) -> Envelope:
    return Envelope("a@example.com", list(recipients or ["b@example.com"]))


def feed(engine: TransactionEngine, data: bytes) -> list[Event]:
    engine.receive_data(data)
    out: list[Event] = []
    while (event := engine.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def outcomes(results: tuple[object, ...] | list[object]) -> list[tuple[str, bool, int]]:
    out = []
    for r in results:
        reply = r.reply  # type: ignore[attr-defined]
        out.append((r.recipient, r.accepted, reply.code))  # type: ignore[attr-defined]
    return out


def result(tx: Transaction) -> SendResult:
    assert isinstance(tx.outcome, SendResult), tx.outcome
    return tx.outcome


def refused(tx: Transaction) -> RecipientsRefused:
    assert isinstance(tx.outcome, RecipientsRefused), tx.outcome
    return tx.outcome


def data_transaction(
    engine: TransactionEngine, *recipients: str, rcpt_replies: bytes
) -> Transaction:
    """Start a pipelined DATA transaction, read its envelope's replies and send its content."""
    tx = engine.prepare(envelope(*recipients), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 2.1.0 ok\r\n" + rcpt_replies + GO) == [ContentReady(tx)]
    assert engine.send_content(tx) == DATA_CONTENT
    engine.written()
    return tx


# --------------------------------------------------------------------- the session


def test_lhlo_opens_the_session_and_its_reply_carries_the_extensions() -> None:
    conn = session(("PIPELINING", "CHUNKING", "SIZE 1000"))
    caps = conn.capabilities
    assert caps is not None
    assert (caps.pipelining, caps.chunking, caps.size) == (True, True, 1000)
    assert conn.extended
    assert not ClientConnection().lmtp


@pytest.mark.parametrize("command", [Ehlo("client.example"), Helo("client.example")])
def test_ehlo_and_helo_are_not_lmtp(command: Ehlo | Helo) -> None:
    conn = greeted()
    with pytest.raises(
        LocalProtocolError,
        match=exactly(f"{command.verb} is not sent in LMTP: the session opens with LHLO"),
    ):
        conn.send(command)
    assert conn.state is ClientState.ERROR


def test_lhlo_is_not_smtp() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 mx ESMTP\r\n")
    assert isinstance(conn.next_event(), Reply)
    with pytest.raises(
        LocalProtocolError,
        match=exactly("LHLO is only sent in LMTP mode (ClientConnection(lmtp=True))"),
    ):
        conn.send(Lhlo("client.example"))


def test_a_refused_lhlo_leaves_the_session_unopened() -> None:
    conn = greeted()
    conn.send(Lhlo("client.example"))
    conn.receive_data(b"500 5.5.1 unrecognised\r\n")
    reply = conn.next_event()
    assert isinstance(reply, Reply)
    assert reply.code == 500
    assert conn.state is ClientState.HELLO
    assert conn.capabilities is None
    # No HELO fallback in LMTP; LHLO may be tried again.
    with pytest.raises(LocalProtocolError):
        greeted().send(Helo("client.example"))
    assert conn.send(Lhlo("client.example")) == b"LHLO client.example\r\n"


def test_lhlo_again_in_an_open_session() -> None:
    conn = session()
    conn.send(Lhlo("client.example"))
    conn.receive_data(lhlo_reply(("CHUNKING",)))
    assert isinstance(conn.next_event(), Reply)
    caps = conn.capabilities
    assert caps is not None
    assert caps.chunking
    assert not caps.pipelining


def test_lhlo_hostname_is_checked() -> None:
    with pytest.raises(LocalProtocolError, match="LHLO hostname"):
        Lhlo("client example")


# --------------------------------------------------------------------- the connection


def test_the_end_of_data_owes_one_reply_per_accepted_recipient() -> None:
    conn = session()
    out = conn.send_envelope(
        Mail("a@example.com"),
        [Rcpt("b@example.com"), Rcpt("c@example.com"), Rcpt("d@example.com")],
        True,
    )
    assert out == MAIL + RCPT_B + RCPT_C + RCPT_D + DATA
    conn.receive_data(b"250 ok\r\n" + OK + NO_USER + OK + GO)
    codes = []
    while (event := conn.next_event()) is not NEED_DATA:
        codes.append(event.code)
    assert codes == [250, 250, 550, 250, 354]
    assert conn.state is ClientState.DATA
    assert conn.send_content(CONTENT) == DATA_CONTENT
    assert conn.owed == 2
    assert conn.awaiting == ("END-OF-DATA", "END-OF-DATA")
    conn.receive_data(b"250 2.0.0 b delivered\r\n")
    assert isinstance(conn.next_event(), Reply)
    assert conn.owed == 1
    conn.receive_data(b"452 4.2.2 c over quota\r\n")
    reply = conn.next_event()
    assert isinstance(reply, Reply)
    assert reply.code == 452
    assert conn.owed == 0
    assert conn.state is ClientState.READY


def test_the_end_of_data_sent_as_commands_owes_the_same() -> None:
    conn = session(LOCK_STEP)
    for command in (Mail("a@example.com"), Rcpt("b@example.com"), Rcpt("c@example.com"), Data()):
        conn.send(command)
        conn.receive_data(GO if isinstance(command, Data) else OK)
        assert isinstance(conn.next_event(), Reply)
    assert conn.send(MessageData(CONTENT)) == CONTENT
    assert conn.send(EndOfData()) == b".\r\n"
    assert conn.awaiting == ("END-OF-DATA", "END-OF-DATA")
    # A positive intermediate reply makes no sense there.
    conn.receive_data(b"354 again?\r\n")
    with pytest.raises(RemoteProtocolError, match="unexpected reply 354 to LMTP-END-OF-DATA"):
        conn.next_event()


def test_bdat_last_before_the_rcpt_replies_owes_the_rest_once_they_are_in() -> None:
    conn = session(CHUNKING)
    out = conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com"), Rcpt("c@example.com")])
    out += conn.send(Bdat(CONTENT, last=True))
    assert out == MAIL + RCPT_B + RCPT_C + BDAT
    assert conn.awaiting == ("MAIL", "RCPT", "RCPT", "BDAT")
    conn.receive_data(b"250 ok\r\n" + OK + OK + b"250 2.0.0 b delivered\r\n")
    for _ in range(4):
        assert isinstance(conn.next_event(), Reply)
    # The second recipient's reply is owed now.
    assert conn.awaiting == ("BDAT",)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"550 5.2.1 c refused\r\n")
    reply = conn.next_event()
    assert isinstance(reply, Reply)
    assert reply.code == 550
    assert conn.owed == 0


def test_bdat_chunks_then_last_after_the_rcpt_replies() -> None:
    conn = session(CHUNKING)
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com"), Rcpt("c@example.com")])
    conn.receive_data(b"250 ok\r\n" + OK + OK)
    for _ in range(3):
        assert isinstance(conn.next_event(), Reply)
    assert conn.send(Bdat(CONTENT[:10])) == b"BDAT 10\r\n" + CONTENT[:10]
    assert conn.send(Bdat(CONTENT[10:], last=True)) == b"BDAT 10 LAST\r\n" + CONTENT[10:]
    # One reply to the chunk, then one per recipient.
    assert conn.awaiting == ("BDAT", "BDAT", "BDAT")
    conn.receive_data(b"250 chunk\r\n250 b\r\n250 c\r\n")
    assert [conn.next_event() for _ in range(3)] == [
        Reply(250, None, ("chunk",)),
        Reply(250, None, ("b",)),
        Reply(250, None, ("c",)),
    ]
    assert conn.owed == 0
    assert conn.send(Rset()) == b"RSET\r\n"


def test_bdat_last_with_every_recipient_refused_owes_one_reply() -> None:
    conn = session(CHUNKING)
    out = conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")])
    out += conn.send(Bdat(CONTENT, last=True))
    conn.receive_data(b"250 ok\r\n" + NO_USER + b"554 5.5.1 no valid recipients\r\n")
    assert [conn.next_event().code for _ in range(3)] == [250, 550, 554]  # type: ignore[union-attr]
    assert conn.owed == 0
    assert conn.needs_rset


# --------------------------------------------------------------------- the engine


def test_every_recipient_gets_its_own_reply_after_data() -> None:
    engine = make_engine()
    tx = data_transaction(engine, "b@example.com", "c@example.com", rcpt_replies=OK + OK)
    assert engine.content_owed == 1
    assert engine.waiting_for() == "the reply to the end of data"
    assert feed(engine, b"250 2.0.0 b: queued as Q1\r\n") == []
    # Still owed: the content's outcome, under the data timeout.
    assert engine.content_owed == 1
    assert tx.stage is TransactionStage.CONTENT
    assert feed(engine, b"250 2.0.0 c: queued as Q2\r\n") == [TransactionDone(tx)]
    sent = result(tx)
    assert outcomes(sent.recipients) == [("b@example.com", True, 250), ("c@example.com", True, 250)]
    assert sent.recipients[1].reply == Reply(250, "2.0.0", ("c: queued as Q2",))
    assert sent.reply == Reply(250, "2.0.0", ("b: queued as Q1",))
    assert tx.reply is sent.reply
    assert sent.transport_id == "Q1"
    assert (engine.accepted, engine.content_owed, engine.in_flight) == (1, 0, 0)
    assert engine.idle
    assert engine.usable


def test_refused_at_rcpt_and_after_data() -> None:
    engine = make_engine()
    tx = data_transaction(
        engine, "b@example.com", "c@example.com", "d@example.com", rcpt_replies=OK + NO_USER + OK
    )
    assert feed(engine, b"452 4.2.2 b over quota\r\n250 2.0.0 d delivered\r\n") == [
        TransactionDone(tx)
    ]
    sent = result(tx)
    assert outcomes(sent.recipients) == [
        ("b@example.com", False, 452),
        ("c@example.com", False, 550),
        ("d@example.com", True, 250),
    ]
    assert sent.accepted == ("d@example.com",)
    assert sent.reply == Reply(250, "2.0.0", ("d delivered",))
    assert engine.accepted == 1


def test_every_recipient_refused_after_data_raises() -> None:
    engine = make_engine()
    tx = data_transaction(engine, "b@example.com", "c@example.com", rcpt_replies=OK + NO_USER)
    assert feed(engine, b"452 4.2.2 b over quota\r\n") == [TransactionDone(tx)]
    error = refused(tx)
    assert (error.code, error.command, error.transient) == (452, "DATA", True)
    assert outcomes(error.results) == [("b@example.com", False, 452), ("c@example.com", False, 550)]
    assert str(error) == (
        "the server refused every recipient (2): b@example.com: 452 b over quota; "
        "c@example.com: 550 no such user"
    )
    assert tx.reply == Reply(452, "4.2.2", ("b over quota",))
    assert tx.stage is TransactionStage.FAILED
    assert (engine.accepted, engine.content_owed) == (0, 0)
    assert engine.usable


def test_every_recipient_refused_at_rcpt_sends_no_content() -> None:
    engine = make_engine()
    tx = engine.prepare(envelope("b@example.com"), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n" + NO_USER + b"503 5.5.1 no valid recipients\r\n") == []
    assert engine.data_to_send() == b"RSET\r\n"
    assert feed(engine, b"250 ok\r\n") == [TransactionDone(tx)]
    assert refused(tx).command == "RCPT"


def test_lock_step_lmtp() -> None:
    engine = make_engine(LOCK_STEP)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    assert engine.start(tx) == MAIL
    engine.written()
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == RCPT_B
    assert feed(engine, OK) == []
    assert engine.data_to_send() == RCPT_C
    assert feed(engine, OK) == []
    assert engine.data_to_send() == DATA
    assert feed(engine, GO) == [ContentReady(tx)]
    assert engine.send_content(tx) == DATA_CONTENT
    engine.written()
    assert feed(engine, b"250 b\r\n550 c\r\n") == [TransactionDone(tx)]
    assert outcomes(result(tx).recipients) == [
        ("b@example.com", True, 250),
        ("c@example.com", False, 550),
    ]


def test_chained_transactions_read_their_own_replies() -> None:
    engine = make_engine()
    first = data_transaction(engine, "b@example.com", "c@example.com", rcpt_replies=OK + OK)
    second = engine.prepare(envelope("d@example.com"), CONTENT)
    assert engine.start(second) == MAIL + RCPT_D + DATA
    engine.written()
    events = feed(engine, b"250 b\r\n250 c\r\n250 ok\r\n" + OK + GO)
    assert events == [TransactionDone(first), ContentReady(second)]
    assert result(first).accepted == ("b@example.com", "c@example.com")
    engine.send_content(second)
    engine.written()
    assert feed(engine, b"550 5.7.1 d refused\r\n") == [TransactionDone(second)]
    assert refused(second).code == 550


def test_bdat_in_the_envelope_flight() -> None:
    engine = make_engine(CHUNKING)
    tx = engine.prepare(envelope("b@example.com", "c@example.com", "d@example.com"), CONTENT)
    assert tx.content_in_flight
    assert engine.start(tx) == MAIL + RCPT_B + RCPT_C + RCPT_D + BDAT
    engine.written()
    assert engine.waiting_for() == "the reply to MAIL"
    assert feed(engine, b"250 ok\r\n" + OK + NO_USER + OK + b"250 b\r\n") == []
    assert engine.waiting_for() == "the reply to BDAT"
    assert feed(engine, b"250 d\r\n") == [TransactionDone(tx)]
    sent = result(tx)
    assert outcomes(sent.recipients) == [
        ("b@example.com", True, 250),
        ("c@example.com", False, 550),
        ("d@example.com", True, 250),
    ]
    assert sent.reply == Reply(250, None, ("b",))


def test_bdat_in_the_flight_every_recipient_refused_after_it() -> None:
    engine = make_engine(CHUNKING)
    tx = engine.prepare(envelope("b@example.com"), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n" + OK + b"554 5.6.0 b: content refused\r\n") == [
        TransactionDone(tx)
    ]
    error = refused(tx)
    assert (error.code, error.command) == (554, "BDAT")


def test_bdat_in_the_flight_with_every_recipient_refused_at_rcpt() -> None:
    engine = make_engine(CHUNKING)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    engine.start(tx)
    engine.written()
    replies = b"250 ok\r\n" + NO_USER + NO_USER + b"554 5.5.1 no valid recipients\r\n"
    assert feed(engine, replies) == [TransactionDone(tx)]
    error = refused(tx)
    assert (error.code, error.command) == (550, "RCPT")
    assert not tx.content_sent
    # The server may still hold the sender: the next transaction opens with RSET.
    second = engine.prepare(envelope("b@example.com"), CONTENT)
    assert engine.start(second).startswith(b"RSET\r\n" + MAIL)


def test_bdat_in_the_flight_with_mail_refused() -> None:
    engine = make_engine(CHUNKING)
    tx = engine.prepare(envelope("b@example.com"), CONTENT)
    engine.start(tx)
    engine.written()
    replies = b"451 4.3.0 try later\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"
    assert feed(engine, replies) == [TransactionDone(tx)]
    assert isinstance(tx.outcome, SenderRefused)


def test_a_recipient_accepted_with_another_2xx_code_is_owed_a_reply() -> None:
    engine = make_engine()
    tx = data_transaction(
        engine, "b@example.com", "c@example.com", rcpt_replies=OK + b"252 2.1.5 will try\r\n"
    )
    assert feed(engine, b"250 b\r\n") == []
    assert feed(engine, b"250 c\r\n") == [TransactionDone(tx)]
    assert result(tx).all_accepted


def test_421_among_the_replies_answers_for_the_recipients_left() -> None:
    engine = make_engine()
    tx = data_transaction(
        engine, "b@example.com", "c@example.com", "d@example.com", rcpt_replies=OK + OK + OK
    )
    assert feed(engine, b"250 b delivered\r\n421 4.3.2 shutting down\r\n") == [TransactionDone(tx)]
    sent = result(tx)
    assert outcomes(sent.recipients) == [
        ("b@example.com", True, 250),
        ("c@example.com", False, 421),
        ("d@example.com", False, 421),
    ]
    assert not engine.usable
    assert engine.content_owed == 0


def test_421_as_the_first_reply_after_data() -> None:
    engine = make_engine()
    tx = data_transaction(engine, "b@example.com", "c@example.com", rcpt_replies=OK + OK)
    assert feed(engine, b"421 4.3.2 shutting down\r\n") == [TransactionDone(tx)]
    error = refused(tx)
    assert (error.code, error.transient) == (421, True)
    assert outcomes(error.results) == [("b@example.com", False, 421), ("c@example.com", False, 421)]


def test_421_to_bdat_in_the_flight_with_every_recipient_refused() -> None:
    engine = make_engine(CHUNKING)
    tx = engine.prepare(envelope("b@example.com"), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n" + NO_USER + b"421 4.3.2 bye\r\n") == [TransactionDone(tx)]
    assert refused(tx).code == 550
    assert not engine.usable


def test_a_failure_between_the_replies_leaves_the_outcome_unknown() -> None:
    engine = make_engine()
    tx = data_transaction(engine, "b@example.com", "c@example.com", rcpt_replies=OK + OK)
    assert feed(engine, b"250 b delivered\r\n") == []
    engine.fail("lmtp:24 closed the connection")
    assert engine.next_event() == TransactionDone(tx)
    assert isinstance(tx.outcome, OutcomeUnknown)
    assert str(tx.outcome) == (
        "lmtp:24 closed the connection; the message may or may not have been accepted "
        "(1 of its LMTP replies read) (do not retry blindly)"
    )
    assert engine.content_owed == 0
