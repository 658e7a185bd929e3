"""TransactionEngine: mail transactions with bytes in and events out, no I/O.

Each test opens a session on a ClientConnection with plain bytes (greeting,
EHLO), hands the engine envelopes and messages, checks the exact bytes it
writes, feeds it the server's replies and checks the events, the outcomes
and the commands the engine sends on its own (RSET, lock-step RCPT/DATA).
"""

# mypy narrows tx.stage after each assert and cannot see that the engine changes it.
# mypy: disable-error-code="comparison-overlap"

from __future__ import annotations

import pytest
from protocol_support import ehlo_reply, envelope, exactly, session
from protocol_support import engine_events as events
from protocol_support import engine_feed as feed

from lettre.envelope import Envelope
from lettre.errors import (
    DataRefused,
    ExtensionNotSupported,
    LocalProtocolError,
    MessageError,
    MessageTooLarge,
    OutcomeUnknown,
    RecipientsRefused,
    RemoteProtocolError,
    SenderRefused,
    ServerDisconnected,
    SmtpReplyError,
    SmtpTimeoutError,
)
from lettre.protocol import (
    NEED_DATA,
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    ClientConnection,
    ClientState,
    Ehlo,
    MessageData,
    Noop,
    Reply,
    Rset,
)
from lettre.protocol.transactions import (
    PIPELINED_BDAT_LIMIT,
    ContentReady,
    Replied,
    Transaction,
    TransactionDone,
    TransactionEngine,
    TransactionStage,
)
from lettre.protocol.transcript import command_transcript
from lettre.results import SendResult

Stage = TransactionStage
Event = ContentReady | TransactionDone | Replied

CONTENT = b"Subject: x\r\n\r\nbody\r\n"  # 20 octets
MAIL = b"MAIL FROM:<a@example.com> SIZE=20\r\n"
RCPT_B = b"RCPT TO:<b@example.com>\r\n"
RCPT_C = b"RCPT TO:<c@example.com>\r\n"
DATA = b"DATA\r\n"
RSET = b"RSET\r\n"
BDAT = b"BDAT 20 LAST\r\n" + CONTENT
DATA_CONTENT = CONTENT + b".\r\n"

# What the server announces after its first EHLO line.
FULL = ("PIPELINING", "CHUNKING", "SIZE 1000")
PIPELINING = ("PIPELINING", "SIZE 1000")
LOCK_STEP = ("SIZE 1000",)
LOCK_STEP_CHUNKING = ("CHUNKING", "SIZE 1000")

CLOSED_421 = "mx:25 closed the connection (421) before it read this message; nothing was delivered"


def make_engine(
    keywords: tuple[str, ...] = FULL,
    *,
    require_all: bool = False,
    transcript: list[str] | None = None,
) -> TransactionEngine:
    return TransactionEngine(
        session(keywords),
        require_all_recipients=require_all,
        peer="mx:25",
        transcript=None if transcript is None else transcript.append,
    )


def client_lines(transcript: list[str]) -> list[str]:
    """The transcript's client lines; the rest must be server lines."""
    assert all(line.startswith(("C: ", "S: ")) for line in transcript), transcript
    return [line for line in transcript if line.startswith("C: ")]


def result(tx: Transaction) -> SendResult:
    assert isinstance(tx.outcome, SendResult), tx.outcome
    return tx.outcome


def recipients(outcome: SendResult | RecipientsRefused) -> list[tuple[str, bool, int | None]]:
    """Each recipient's address, whether it was accepted and its RCPT reply code."""
    return [
        (r.recipient, r.accepted, r.reply.code if r.reply is not None else None)
        for r in (outcome.recipients if isinstance(outcome, SendResult) else outcome.results)
    ]


def error(tx: Transaction, cls: type[Exception]) -> Exception:
    assert type(tx.outcome) is cls, repr(tx.outcome)
    return tx.outcome


# --------------------------------------------------------------------- servers


def test_pipelining_without_chunking_sends_data_in_the_envelope_flight() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    assert tx.stage is Stage.PREPARED
    assert (tx.pipelined, tx.use_bdat, tx.data_in_flight, tx.content_in_flight) == (
        True,
        False,
        True,
        False,
    )
    assert engine.start(tx) == MAIL + RCPT_B + RCPT_C + DATA
    engine.written()
    assert tx.stage is Stage.ENVELOPE
    assert not tx.content_sent
    assert engine.content_owed == 0
    assert engine.in_flight == 1

    assert feed(engine, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(tx)]
    assert tx.stage is Stage.ACCEPTING
    assert engine.data_to_send() == b""
    assert engine.send_content(tx) == DATA_CONTENT
    engine.written()
    assert tx.stage is Stage.CONTENT
    assert tx.content_sent
    assert engine.content_owed == 1

    assert feed(engine, b"250 2.0.0 Ok: queued as ABC123\r\n") == [TransactionDone(tx)]
    sent = result(tx)
    assert recipients(sent) == [("b@example.com", True, 250), ("c@example.com", True, 250)]
    assert sent.transport_id == "ABC123"
    assert sent.reply is not None
    assert sent.reply.code == 250
    assert tx.reply is sent.reply
    assert tx.stage is Stage.DONE
    assert engine.data_to_send() == b""
    assert engine.idle
    assert engine.usable
    assert (engine.started, engine.accepted, engine.content_owed, engine.in_flight) == (1, 1, 0, 0)


def test_lock_step_without_pipelining_sends_one_command_per_reply() -> None:
    engine = make_engine(LOCK_STEP)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    assert (tx.pipelined, tx.use_bdat, tx.data_in_flight, tx.content_in_flight) == (
        False,
        False,
        False,
        False,
    )
    assert engine.start(tx) == MAIL
    engine.written()
    assert engine.waiting_for() == "the reply to MAIL"

    assert feed(engine, b"250 sender ok\r\n") == []
    assert engine.data_to_send() == RCPT_B
    assert engine.data_to_send() == b""
    assert engine.waiting_for() == "the reply to RCPT"
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == RCPT_C
    assert feed(engine, b"550 5.1.1 no such user\r\n") == []
    assert engine.data_to_send() == DATA
    assert engine.waiting_for() == "the reply to DATA"
    assert feed(engine, b"354 go ahead\r\n") == [ContentReady(tx)]
    assert engine.data_to_send() == b""

    assert engine.send_content(tx) == DATA_CONTENT
    engine.written()
    assert engine.waiting_for() == "the reply to the end of data"
    assert feed(engine, b"250 queued\r\n") == [TransactionDone(tx)]
    sent = result(tx)
    assert recipients(sent) == [("b@example.com", True, 250), ("c@example.com", False, 550)]
    assert sent.accepted == ("b@example.com",)
    assert engine.usable
    assert engine.idle


def test_lock_step_with_chunking_sends_bdat_after_the_last_rcpt_reply() -> None:
    engine = make_engine(LOCK_STEP_CHUNKING)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    assert (tx.pipelined, tx.use_bdat, tx.data_in_flight, tx.content_in_flight) == (
        False,
        True,
        False,
        False,
    )
    assert engine.start(tx) == MAIL
    engine.written()
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == RCPT_B
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == RCPT_C
    assert feed(engine, b"250 ok\r\n") == [ContentReady(tx)]
    assert engine.data_to_send() == b""  # no DATA with CHUNKING
    assert engine.send_content(tx) == BDAT
    engine.written()
    assert engine.waiting_for() == "the reply to BDAT"
    assert feed(engine, b"250 queued as Q1\r\n") == [TransactionDone(tx)]
    assert result(tx).transport_id == "Q1"
    assert recipients(result(tx)) == [("b@example.com", True, 250), ("c@example.com", True, 250)]


def test_small_message_goes_whole_in_its_envelope_flight_with_bdat_last() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    assert (tx.pipelined, tx.use_bdat, tx.data_in_flight, tx.content_in_flight) == (
        True,
        True,
        False,
        True,
    )
    assert engine.start(tx) == MAIL + RCPT_B + BDAT
    assert not tx.rset_first
    assert not tx.content_sent  # encoded, not yet written
    assert engine.content_owed == 0
    engine.written()
    assert tx.stage is Stage.CONTENT
    assert tx.content_sent
    assert engine.content_owed == 1
    assert engine.waiting_for() == "the reply to MAIL"

    assert feed(engine, b"250 ok\r\n250 ok\r\n250 queued as Q1\r\n") == [TransactionDone(tx)]
    assert result(tx).transport_id == "Q1"
    assert recipients(result(tx)) == [("b@example.com", True, 250)]
    assert engine.data_to_send() == b""
    assert (engine.accepted, engine.content_owed) == (1, 0)
    assert engine.idle


@pytest.mark.parametrize(
    ("size", "in_flight"),
    [(PIPELINED_BDAT_LIMIT, True), (PIPELINED_BDAT_LIMIT + 1, False)],
    ids=["at-limit", "over-limit"],
)
def test_bdat_in_flight_only_up_to_the_limit(size: int, in_flight: bool) -> None:
    engine = make_engine(("PIPELINING", "CHUNKING"))
    data = b"x" * (size - 2) + b"\r\n"
    tx = engine.prepare(envelope(), data)
    assert tx.content_in_flight is in_flight
    envelope_bytes = b"MAIL FROM:<a@example.com>\r\n" + RCPT_B
    bdat = b"BDAT %d LAST\r\n" % size + data
    if in_flight:
        assert engine.start(tx) == envelope_bytes + bdat
        engine.written()
        assert feed(engine, b"250 ok\r\n250 ok\r\n250 queued\r\n") == [TransactionDone(tx)]
    else:
        assert engine.start(tx) == envelope_bytes
        engine.written()
        assert engine.content_owed == 0
        assert feed(engine, b"250 ok\r\n250 ok\r\n") == [ContentReady(tx)]
        assert engine.data_to_send() == b""
        assert engine.send_content(tx) == bdat
        engine.written()
        assert engine.content_owed == 1
        assert feed(engine, b"250 queued\r\n") == [TransactionDone(tx)]
    assert recipients(result(tx)) == [("b@example.com", True, 250)]


def test_require_all_recipients_holds_data_until_every_rcpt_reply() -> None:
    engine = make_engine(PIPELINING, require_all=True)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    assert not tx.data_in_flight
    assert engine.start(tx) == MAIL + RCPT_B + RCPT_C
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n250 ok\r\n") == []
    assert engine.data_to_send() == DATA
    assert feed(engine, b"354 go ahead\r\n") == [ContentReady(tx)]
    assert engine.send_content(tx) == DATA_CONTENT
    engine.written()
    assert feed(engine, b"250 queued\r\n") == [TransactionDone(tx)]
    assert result(tx).all_accepted


def test_require_all_recipients_keeps_small_bdat_out_of_the_flight() -> None:
    engine = make_engine(FULL, require_all=True)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    assert tx.use_bdat
    assert not tx.content_in_flight
    assert engine.start(tx) == MAIL + RCPT_B + RCPT_C
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n250 ok\r\n") == [ContentReady(tx)]
    assert engine.send_content(tx) == BDAT
    engine.written()
    assert feed(engine, b"250 queued\r\n") == [TransactionDone(tx)]
    assert result(tx).all_accepted


@pytest.mark.parametrize("keywords", [PIPELINING, FULL], ids=["data", "bdat"])
def test_require_all_recipients_refuses_the_message_when_one_recipient_is_refused(
    keywords: tuple[str, ...],
) -> None:
    engine = make_engine(keywords, require_all=True)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    assert engine.start(tx) == MAIL + RCPT_B + RCPT_C
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n") == []
    assert engine.data_to_send() == RSET
    assert engine.waiting_for() == "the reply to RSET"
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    err = error(tx, RecipientsRefused)
    assert isinstance(err, RecipientsRefused)
    assert (err.code, err.enhanced_status, err.command) == (550, "5.1.1", "RCPT")
    assert recipients(err) == [("b@example.com", True, 250), ("c@example.com", False, 550)]
    assert str(err) == (
        "the server refused 1 of 2 recipients and require_all_recipients is set; "
        "nothing was sent: c@example.com: 550 no such user"
    )
    assert not tx.content_sent
    assert engine.usable
    assert engine.accepted == 0


# --------------------------------------------------------------------- chaining


def test_chained_data_transactions_share_one_write_and_one_read() -> None:
    engine = make_engine(PIPELINING)
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    second = engine.prepare(envelope("c@example.com"), b"Subject: y\r\n\r\n.dot\r\n")
    assert engine.start(first) == MAIL + RCPT_B + DATA
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(first)]

    out = engine.send_content(first)
    out += engine.start(second)
    assert out == (DATA_CONTENT + b"MAIL FROM:<a@example.com> SIZE=20\r\n" + RCPT_C + DATA)
    engine.written()
    assert engine.in_flight == 2
    assert (engine.started, engine.content_owed) == (2, 1)

    assert feed(engine, b"250 queued as A1\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n") == [
        TransactionDone(first),
        ContentReady(second),
    ]
    assert result(first).transport_id == "A1"
    assert engine.content_owed == 0
    assert engine.send_content(second) == b"Subject: y\r\n\r\n..dot\r\n.\r\n"
    engine.written()
    assert feed(engine, b"250 queued as A2\r\n") == [TransactionDone(second)]
    assert result(second).transport_id == "A2"
    assert recipients(result(first)) == [("b@example.com", True, 250)]
    assert recipients(result(second)) == [("c@example.com", True, 250)]
    assert (engine.started, engine.accepted, engine.content_owed) == (2, 2, 0)
    assert engine.idle


def test_chained_bdat_flight_after_big_content_replies_read_in_one_chunk() -> None:
    engine = make_engine(("PIPELINING", "CHUNKING"))
    big = b"y" * PIPELINED_BDAT_LIMIT + b"\r\n"
    first = engine.prepare(envelope("b@example.com"), big)
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    assert not first.content_in_flight
    assert second.content_in_flight
    mail = b"MAIL FROM:<a@example.com>\r\n"
    assert engine.start(first) == mail + RCPT_B
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n") == [ContentReady(first)]

    out = engine.send_content(first) + engine.start(second)
    assert out == b"BDAT %d LAST\r\n" % len(big) + big + mail + RCPT_C + BDAT
    assert not second.rset_first  # a recipient of the first was accepted
    engine.written()
    assert engine.content_owed == 2
    assert feed(engine, b"250 queued as A1\r\n250 ok\r\n250 ok\r\n250 queued as A2\r\n") == [
        TransactionDone(first),
        TransactionDone(second),
    ]
    assert result(first).transport_id == "A1"
    assert result(second).transport_id == "A2"
    assert recipients(result(second)) == [("c@example.com", True, 250)]
    assert (engine.accepted, engine.content_owed) == (2, 0)


def test_three_bdat_flights_in_one_write_each_opened_by_rset() -> None:
    engine = make_engine(FULL)
    txs = [engine.prepare(envelope(f"{name}@example.com"), CONTENT) for name in "bcd"]
    out = b"".join(engine.start(tx) for tx in txs)
    assert out == (
        MAIL
        + RCPT_B
        + BDAT
        + RSET
        + MAIL
        + RCPT_C
        + BDAT
        + RSET
        + MAIL
        + b"RCPT TO:<d@example.com>\r\n"
        + BDAT
    )
    assert [tx.rset_first for tx in txs] == [False, True, True]
    engine.written()
    assert (engine.started, engine.content_owed, engine.in_flight) == (3, 3, 3)
    replies = b"250 ok\r\n250 ok\r\n250 queued as Q1\r\n"
    replies += b"250 reset\r\n250 ok\r\n250 ok\r\n250 queued as Q2\r\n"
    replies += b"250 reset\r\n250 ok\r\n250 ok\r\n250 queued as Q3\r\n"
    assert feed(engine, replies) == [TransactionDone(tx) for tx in txs]
    assert [result(tx).transport_id for tx in txs] == ["Q1", "Q2", "Q3"]
    assert [recipients(result(tx)) for tx in txs] == [
        [("b@example.com", True, 250)],
        [("c@example.com", True, 250)],
        [("d@example.com", True, 250)],
    ]
    assert (engine.accepted, engine.content_owed, engine.in_flight) == (3, 0, 0)
    assert engine.data_to_send() == b""


def test_rset_opens_the_flight_after_a_bdat_flight_whose_recipients_were_all_refused() -> None:
    engine = make_engine(FULL)
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    assert engine.start(first) == MAIL + RCPT_B + BDAT
    engine.written()
    assert feed(
        engine, b"250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"
    ) == [TransactionDone(first)]
    err = error(first, RecipientsRefused)
    assert isinstance(err, RecipientsRefused)
    assert recipients(err) == [("b@example.com", False, 550)]
    assert not first.content_sent  # the server refused the BDAT: nothing delivered
    assert engine.content_owed == 0
    assert engine.data_to_send() == b""
    assert engine.usable
    assert engine.conn.needs_rset

    second = engine.prepare(envelope("c@example.com"), CONTENT)
    assert engine.start(second) == RSET + MAIL + RCPT_C + BDAT
    assert second.rset_first
    engine.written()
    assert engine.waiting_for() == "the reply to RSET"
    assert feed(engine, b"250 reset\r\n250 ok\r\n250 ok\r\n250 queued\r\n") == [
        TransactionDone(second)
    ]
    assert recipients(result(second)) == [("c@example.com", True, 250)]


# --------------------------------------------------------------------- refusals


def test_mail_refused_in_a_data_flight_is_reported_after_the_rset_reply() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    assert engine.start(tx) == MAIL + RCPT_B + DATA
    engine.written()
    replies = (
        b"550 5.7.1 sender rejected\r\n503 5.5.1 need MAIL\r\n554 5.5.1 no valid recipients\r\n"
    )
    assert feed(engine, replies) == []
    assert engine.data_to_send() == RSET
    assert tx.outcome is None
    assert engine.waiting_for() == "the reply to RSET"
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    err = error(tx, SenderRefused)
    assert isinstance(err, SenderRefused)
    assert (err.code, err.enhanced_status, err.command, err.text) == (
        550,
        "5.7.1",
        "MAIL",
        "sender rejected",
    )
    assert str(err) == "server replied 550 5.7.1 to MAIL: sender rejected"
    assert not err.transient
    assert not tx.content_sent
    assert engine.usable
    assert engine.idle


def test_mail_refused_in_lock_step_sends_rset_at_once() -> None:
    engine = make_engine(LOCK_STEP)
    tx = engine.prepare(envelope(), CONTENT)
    assert engine.start(tx) == MAIL
    engine.written()
    assert feed(engine, b"451 4.3.0 try later\r\n") == []
    assert engine.data_to_send() == RSET
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    err = error(tx, SenderRefused)
    assert isinstance(err, SenderRefused)
    assert (err.code, err.command) == (451, "MAIL")
    assert err.transient
    assert engine.usable


def test_rset_refused_after_a_refusal_makes_the_engine_unusable() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"550 no\r\n503 need MAIL\r\n503 need MAIL\r\n") == []
    assert engine.data_to_send() == RSET
    assert feed(engine, b"502 RSET not implemented\r\n") == [TransactionDone(tx)]
    assert isinstance(error(tx, SenderRefused), SenderRefused)
    assert not engine.usable


def test_some_recipients_refused_the_message_is_still_sent() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope("b@example.com", "c@example.com", "d@example.com"), CONTENT)
    assert engine.start(tx) == MAIL + RCPT_B + RCPT_C + b"RCPT TO:<d@example.com>\r\n" + DATA
    engine.written()
    replies = b"250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n354 go ahead\r\n"
    assert feed(engine, replies) == [ContentReady(tx)]
    assert engine.send_content(tx) == DATA_CONTENT
    engine.written()
    assert feed(engine, b"250 queued\r\n") == [TransactionDone(tx)]
    sent = result(tx)
    assert recipients(sent) == [
        ("b@example.com", True, 250),
        ("c@example.com", False, 550),
        ("d@example.com", True, 250),
    ]
    assert [r.recipient for r in sent.refused] == ["c@example.com"]
    assert not sent.all_accepted
    assert engine.accepted == 1


@pytest.mark.parametrize(
    ("keywords", "flight", "replies", "rset_after"),
    [
        (
            PIPELINING,
            MAIL + RCPT_B + RCPT_C + DATA,
            b"250 ok\r\n550 5.1.1 no such user\r\n551 5.1.6 moved\r\n554 no valid recipients\r\n",
            True,
        ),
        (
            FULL,
            MAIL + RCPT_B + RCPT_C + BDAT,
            b"250 ok\r\n550 5.1.1 no such user\r\n551 5.1.6 moved\r\n554 no valid recipients\r\n",
            False,
        ),
    ],
    ids=["data-flight", "bdat-flight"],
)
def test_every_recipient_refused(
    keywords: tuple[str, ...], flight: bytes, replies: bytes, rset_after: bool
) -> None:
    engine = make_engine(keywords)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    assert engine.start(tx) == flight
    engine.written()
    if rset_after:
        assert feed(engine, replies) == []
        assert engine.data_to_send() == RSET
        assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    else:
        assert feed(engine, replies) == [TransactionDone(tx)]
        assert engine.data_to_send() == b""
    err = error(tx, RecipientsRefused)
    assert isinstance(err, RecipientsRefused)
    assert (err.code, err.enhanced_status, err.command, err.text) == (
        550,
        "5.1.1",
        "RCPT",
        "no such user",
    )
    assert recipients(err) == [("b@example.com", False, 550), ("c@example.com", False, 551)]
    assert str(err) == (
        "the server refused every recipient (2): "
        "b@example.com: 550 no such user; c@example.com: 551 moved"
    )
    assert not tx.content_sent
    assert engine.usable
    assert (engine.accepted, engine.content_owed) == (0, 0)


def test_every_recipient_refused_in_lock_step_sends_rset_instead_of_data() -> None:
    engine = make_engine(LOCK_STEP)
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == RCPT_B
    assert feed(engine, b"550 no\r\n") == []
    assert engine.data_to_send() == RCPT_C
    assert feed(engine, b"550 no\r\n") == []
    assert engine.data_to_send() == RSET
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    err = error(tx, RecipientsRefused)
    assert isinstance(err, RecipientsRefused)
    assert recipients(err) == [("b@example.com", False, 550), ("c@example.com", False, 550)]


def test_every_recipient_of_a_big_bdat_message_refused_sends_rset() -> None:
    engine = make_engine(("PIPELINING", "CHUNKING"))
    big = b"z" * PIPELINED_BDAT_LIMIT + b"\r\n"
    tx = engine.prepare(envelope(), big)
    assert engine.start(tx) == b"MAIL FROM:<a@example.com>\r\n" + RCPT_B
    engine.written()
    assert feed(engine, b"250 ok\r\n550 no\r\n") == []
    assert engine.data_to_send() == RSET
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    assert isinstance(error(tx, RecipientsRefused), RecipientsRefused)
    assert not tx.content_sent


@pytest.mark.parametrize("code", [554, 451])
def test_data_refused_ends_with_rset(code: int) -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n%d no data today\r\n" % code) == []
    assert engine.data_to_send() == RSET
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    err = error(tx, DataRefused)
    assert isinstance(err, DataRefused)
    assert (err.code, err.command, err.text) == (code, "DATA", "no data today")
    assert err.transient is (code == 451)
    assert not tx.content_sent
    assert engine.usable


def test_data_refused_in_lock_step() -> None:
    engine = make_engine(LOCK_STEP)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == RCPT_B
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == DATA
    assert feed(engine, b"554 no\r\n") == []
    assert engine.data_to_send() == RSET
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    err = error(tx, DataRefused)
    assert isinstance(err, DataRefused)
    assert (err.code, err.command) == (554, "DATA")


def test_data_354_after_every_recipient_refused_sends_an_empty_end_of_data_then_rset() -> None:
    transcript: list[str] = []
    engine = make_engine(PIPELINING, transcript=transcript)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n") == []
    assert engine.data_to_send() == b".\r\n"
    assert engine.waiting_for() == "the reply to the end of data"
    assert feed(engine, b"554 5.5.1 no valid recipients\r\n") == []
    assert engine.data_to_send() == RSET
    assert engine.waiting_for() == "the reply to RSET"
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    err = error(tx, RecipientsRefused)
    assert isinstance(err, RecipientsRefused)
    assert recipients(err) == [("b@example.com", False, 550)]
    assert not tx.content_sent
    assert engine.usable
    assert client_lines(transcript)[-2:] == ["C: .", "C: RSET"]


def test_data_354_with_require_all_and_a_refused_recipient_drops_the_connection() -> None:
    # DATA goes in the flight of a transaction prepared without
    # require_all_recipients; the engine that sends it requires them all.
    conn = session(PIPELINING)
    tx = TransactionEngine(conn, peer="mx:25").prepare(
        envelope("b@example.com", "c@example.com"), CONTENT
    )
    assert tx.data_in_flight
    engine = TransactionEngine(conn, require_all_recipients=True, peer="mx:25")
    assert engine.start(tx) == MAIL + RCPT_B + RCPT_C + DATA
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n550 no\r\n354 go ahead\r\n") == [TransactionDone(tx)]
    err = error(tx, RecipientsRefused)
    assert isinstance(err, RecipientsRefused)
    assert recipients(err) == [("b@example.com", True, 250), ("c@example.com", False, 550)]
    # Whatever ended this DATA would deliver an unwanted message: nothing is sent.
    assert engine.data_to_send() == b""
    assert not engine.usable
    assert not tx.content_sent


def test_mail_refused_but_data_354_with_an_accepted_recipient_drops_the_connection() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"550 no\r\n250 ok\r\n354 go ahead\r\n") == [TransactionDone(tx)]
    err = error(tx, SenderRefused)
    assert isinstance(err, SenderRefused)
    assert err.code == 550
    assert engine.data_to_send() == b""
    assert not engine.usable


@pytest.mark.parametrize(
    ("keywords", "command"),
    [(PIPELINING, "DATA"), (LOCK_STEP_CHUNKING, "BDAT"), (FULL, "BDAT")],
    ids=["data", "bdat-after-rcpt", "bdat-in-flight"],
)
def test_final_reply_refused(keywords: tuple[str, ...], command: str) -> None:
    engine = make_engine(keywords)
    tx = engine.prepare(envelope(), CONTENT)
    out = engine.start(tx)
    engine.written()
    if keywords == PIPELINING:
        assert out == MAIL + RCPT_B + DATA
        assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(tx)]
        assert engine.send_content(tx) == DATA_CONTENT
        engine.written()
    elif keywords == LOCK_STEP_CHUNKING:
        assert out == MAIL
        assert feed(engine, b"250 ok\r\n") == []
        assert engine.data_to_send() == RCPT_B
        assert feed(engine, b"250 ok\r\n") == [ContentReady(tx)]
        assert engine.send_content(tx) == BDAT
        engine.written()
    else:
        assert out == MAIL + RCPT_B + BDAT
        engine.written()
        assert feed(engine, b"250 ok\r\n250 ok\r\n") == []
    assert feed(engine, b"552 5.3.4 message too big\r\n") == [TransactionDone(tx)]
    err = error(tx, DataRefused)
    assert isinstance(err, DataRefused)
    assert (err.code, err.enhanced_status, err.command) == (552, "5.3.4", command)
    assert str(err) == f"server replied 552 5.3.4 to {command}: message too big"
    assert tx.content_sent
    assert tx.reply is not None
    assert tx.reply.code == 552
    assert engine.data_to_send() == b""
    assert engine.usable
    assert (engine.accepted, engine.content_owed) == (0, 0)


@pytest.mark.parametrize(
    ("replies", "cls", "command", "content_sent"),
    [
        (b"", SenderRefused, "MAIL", False),
        (b"250 ok\r\n", SmtpReplyError, "RCPT", False),
        (b"250 ok\r\n250 ok\r\n", DataRefused, "BDAT", True),
    ],
    ids=["at-mail", "at-rcpt", "at-final-reply"],
)
def test_421_in_a_bdat_flight_ends_the_chained_transaction_too(
    replies: bytes, cls: type[SmtpReplyError], command: str, content_sent: bool
) -> None:
    engine = make_engine(FULL)
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    assert engine.start(first) + engine.start(second) == (
        MAIL + RCPT_B + BDAT + RSET + MAIL + RCPT_C + BDAT
    )
    engine.written()
    assert engine.content_owed == 2
    assert feed(engine, replies + b"421 4.3.2 shutting down\r\n") == [
        TransactionDone(first),
        TransactionDone(second),
    ]
    err = error(first, cls)
    assert isinstance(err, SmtpReplyError)
    assert (err.code, err.enhanced_status, err.command) == (421, "4.3.2", command)
    assert err.transient
    assert first.content_sent is content_sent
    other = error(second, ServerDisconnected)
    assert str(other) == CLOSED_421
    assert not second.content_sent
    assert not engine.usable
    assert engine.conn.state is ClientState.CLOSED
    assert engine.content_owed == 0
    assert engine.accepted == 0
    assert engine.in_flight == 0
    assert engine.data_to_send() == b""
    assert engine.next_event() is NEED_DATA


@pytest.mark.parametrize(
    ("replies", "cls", "command"),
    [
        (b"", SenderRefused, "MAIL"),
        (b"250 ok\r\n", SmtpReplyError, "RCPT"),
        (b"250 ok\r\n250 ok\r\n", DataRefused, "DATA"),
    ],
    ids=["at-mail", "at-rcpt", "at-data"],
)
def test_421_in_a_data_flight(replies: bytes, cls: type[SmtpReplyError], command: str) -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, replies + b"421 4.3.2 shutting down\r\n") == [TransactionDone(tx)]
    err = error(tx, cls)
    assert isinstance(err, SmtpReplyError)
    assert (err.code, err.command) == (421, command)
    assert not tx.content_sent
    assert engine.data_to_send() == b""  # no RSET to a closed session
    assert not engine.usable


def test_421_at_the_final_reply_ends_the_chained_transaction() -> None:
    engine = make_engine(PIPELINING)
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    engine.start(first)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(first)]
    assert engine.send_content(first) + engine.start(second) == (
        DATA_CONTENT + MAIL + RCPT_C + DATA
    )
    engine.written()
    assert feed(engine, b"421 4.3.2 shutting down\r\n") == [
        TransactionDone(first),
        TransactionDone(second),
    ]
    err = error(first, DataRefused)
    assert isinstance(err, DataRefused)
    assert (err.code, err.command) == (421, "DATA")
    assert str(error(second, ServerDisconnected)) == CLOSED_421
    assert not second.content_sent
    assert not engine.usable
    assert engine.content_owed == 0


def test_lock_step_421_at_rcpt() -> None:
    engine = make_engine(LOCK_STEP)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == RCPT_B
    assert feed(engine, b"421 bye\r\n") == [TransactionDone(tx)]
    err = error(tx, SmtpReplyError)
    assert isinstance(err, SmtpReplyError)
    assert (err.code, err.command) == (421, "RCPT")
    assert engine.data_to_send() == b""
    assert not engine.usable


def test_mail_refused_but_bdat_accepted_in_a_flight_leaves_the_outcome_unknown() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"550 sender rejected\r\n503 need MAIL\r\n250 queued\r\n") == [
        TransactionDone(tx)
    ]
    err = error(tx, OutcomeUnknown)
    assert str(err) == (
        "mx:25 refused MAIL (550 sender rejected) but accepted the content (250 queued); "
        "the message may or may not have been delivered (do not retry blindly)"
    )
    assert tx.content_sent
    assert not engine.usable
    assert (engine.accepted, engine.content_owed) == (0, 0)


def test_mail_refused_and_bdat_refused_in_a_flight_needs_no_rset() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"550 sender rejected\r\n503 need MAIL\r\n503 need MAIL\r\n") == [
        TransactionDone(tx)
    ]
    err = error(tx, SenderRefused)
    assert isinstance(err, SenderRefused)
    assert (err.code, err.command) == (550, "MAIL")
    assert not tx.content_sent
    assert engine.data_to_send() == b""
    assert engine.usable
    second = engine.prepare(envelope(), CONTENT)
    assert engine.start(second) == MAIL + RCPT_B + BDAT  # no RSET: the server holds nothing
    assert not second.rset_first


# --------------------------------------------------------------------- failing


def _content_written_and_envelope_chained(
    engine: TransactionEngine,
) -> tuple[Transaction, Transaction]:
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    engine.start(first)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(first)]
    engine.send_content(first)
    engine.start(second)
    engine.written()
    assert first.stage is Stage.CONTENT
    assert second.stage is Stage.ENVELOPE
    assert engine.content_owed == 1
    return first, second


def test_fail_on_timeout() -> None:
    engine = make_engine(PIPELINING)
    first, second = _content_written_and_envelope_chained(engine)
    engine.fail("no reply from mx:25 in 30 s", timeout=True)
    assert events(engine) == [TransactionDone(first), TransactionDone(second)]
    assert str(error(first, OutcomeUnknown)) == (
        "no reply from mx:25 in 30 s; the message may or may not have been accepted "
        "(do not retry blindly)"
    )
    assert first.content_sent
    assert type(error(first, OutcomeUnknown).__cause__) is SmtpTimeoutError
    assert str(error(second, SmtpTimeoutError)) == "no reply from mx:25 in 30 s"
    assert not second.content_sent
    assert not engine.usable
    assert (engine.content_owed, engine.in_flight) == (0, 0)
    assert engine.idle


def test_fail_on_disconnect() -> None:
    engine = make_engine(PIPELINING)
    first, second = _content_written_and_envelope_chained(engine)
    engine.fail("mx:25 closed the connection")
    assert events(engine) == [TransactionDone(first), TransactionDone(second)]
    assert isinstance(error(first, OutcomeUnknown), ServerDisconnected)
    assert str(error(second, ServerDisconnected)) == "mx:25 closed the connection"
    assert not engine.usable
    assert engine.content_owed == 0


def test_fail_with_a_protocol_error_as_cause() -> None:
    engine = make_engine(PIPELINING)
    first, second = _content_written_and_envelope_chained(engine)
    cause = RemoteProtocolError("malformed reply line")
    engine.fail("mx:25 broke the protocol", cause=cause)
    assert events(engine) == [TransactionDone(first), TransactionDone(second)]
    unknown = error(first, OutcomeUnknown)
    assert unknown.__cause__ is cause
    assert second.outcome is cause
    assert not engine.usable


def test_fail_during_the_clean_up_of_a_refusal_reports_the_refusal() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"550 5.7.1 sender rejected\r\n503 no\r\n503 no\r\n") == []
    assert engine.data_to_send() == RSET
    engine.fail("mx:25 closed the connection")
    assert events(engine) == [TransactionDone(tx)]
    err = error(tx, SenderRefused)
    assert isinstance(err, SenderRefused)
    assert err.code == 550


def test_fail_with_a_go_ahead_not_yet_taken() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    engine.receive_data(b"250 ok\r\n250 ok\r\n354 go ahead\r\n")
    engine.fail("mx:25 closed the connection")
    assert events(engine) == [TransactionDone(tx)]
    assert str(error(tx, ServerDisconnected)) == "mx:25 closed the connection"
    assert not tx.content_sent


def test_fail_with_a_go_ahead_taken_and_the_content_not_yet_sent() -> None:
    # The driver may hold a ContentReady to chain more envelopes after it.
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(tx)]
    assert tx.stage is Stage.ACCEPTING
    engine.fail("mx:25 closed the connection")
    assert events(engine) == [TransactionDone(tx)]
    assert str(error(tx, ServerDisconnected)) == "mx:25 closed the connection"
    assert not tx.content_sent


def test_unwritten_content_is_not_counted_as_sent() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(tx)]
    assert engine.send_content(tx) == DATA_CONTENT
    assert engine.unwritten_content == 1
    engine.unwritten("the write to mx:25 failed")
    assert engine.unwritten_content == 0
    assert events(engine) == [TransactionDone(tx)]
    assert str(error(tx, ServerDisconnected)) == "the write to mx:25 failed"
    assert not tx.content_sent
    assert tx.stage is Stage.FAILED
    assert engine.content_owed == 0
    assert not engine.usable


def test_unwritten_bdat_flight_after_written_content() -> None:
    engine = make_engine(FULL)
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    engine.start(first)
    engine.written()
    assert engine.start(second) == RSET + MAIL + RCPT_C + BDAT
    engine.unwritten("the write to mx:25 failed")
    assert events(engine) == [TransactionDone(first), TransactionDone(second)]
    assert isinstance(error(first, OutcomeUnknown), OutcomeUnknown)
    assert first.content_sent
    assert str(error(second, ServerDisconnected)) == "the write to mx:25 failed"
    assert not second.content_sent
    assert engine.content_owed == 0


# --------------------------------------------------------------------- prepare


def test_prepare_refuses_a_nul_byte() -> None:
    engine = make_engine(FULL)
    data = b"Subject: x\r\n\r\nbo\x00dy\r\n"
    with pytest.raises(MessageError, match=r"NUL byte at offset 16 .*nothing was sent$"):
        engine.prepare(envelope(), data)
    assert engine.started == 0
    assert engine.conn.owed == 0


def test_prepare_refuses_a_message_over_the_size_limit() -> None:
    engine = make_engine(("PIPELINING", "SIZE 19"))
    with pytest.raises(
        MessageTooLarge, match=exactly("the message is 20 bytes; mx:25 accepts at most 19")
    ):
        engine.prepare(envelope(), CONTENT)
    at_limit = make_engine(("PIPELINING", "SIZE 20"))
    tx = at_limit.prepare(envelope(), CONTENT)
    assert at_limit.start(tx) == MAIL + RCPT_B + DATA


def test_prepare_refuses_8bit_content_without_8bitmime() -> None:
    engine = make_engine(PIPELINING)
    with pytest.raises(
        ExtensionNotSupported,
        match=exactly("the message has 8-bit content and mx:25 does not offer 8BITMIME"),
    ):
        engine.prepare(envelope(), "Subject: x\r\n\r\ncafé\r\n".encode())


def test_prepare_refuses_a_non_ascii_local_part_without_smtputf8() -> None:
    engine = make_engine(("PIPELINING", "8BITMIME"))
    with pytest.raises(
        ExtensionNotSupported,
        match=exactly(
            "an address has a non-ASCII local part, which needs SMTPUTF8; mx:25 does not offer it"
        ),
    ):
        engine.prepare(envelope("ü@example.com"), CONTENT)


def test_prepare_before_the_session_is_open() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 mx ESMTP\r\n")
    conn.next_event()
    engine = TransactionEngine(conn, peer="mx:25")
    with pytest.raises(LocalProtocolError, match="the SMTP session is not open"):
        engine.prepare(envelope(), CONTENT)


def test_prepare_checks_argument_types() -> None:
    engine = make_engine(FULL)
    with pytest.raises(TypeError, match=exactly("data must be bytes, not str")):
        engine.prepare(envelope(), CONTENT.decode())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=exactly("envelope must be an Envelope, not tuple")):
        engine.prepare(("a@example.com", ["b@example.com"]), CONTENT)  # type: ignore[arg-type]
    tx = engine.prepare(envelope(), bytearray(CONTENT))  # type: ignore[arg-type]
    assert type(tx.data) is bytes
    assert engine.start(tx) == MAIL + RCPT_B + BDAT


DSN_ENVELOPE = {"notify": ["success", "failure"], "ret": "hdrs", "envid": "QQ+1=x", "orcpt": True}


def test_dsn_parameters_are_dropped_when_the_server_lacks_dsn() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope("b@example.com", **DSN_ENVELOPE), CONTENT)
    assert engine.start(tx) == MAIL + RCPT_B + DATA


def test_dsn_parameters_are_sent_when_the_server_offers_dsn() -> None:
    engine = make_engine(("PIPELINING", "DSN", "SIZE 1000"))
    tx = engine.prepare(envelope("b@example.com", "c@example.com", **DSN_ENVELOPE), CONTENT)
    assert engine.start(tx) == (
        b"MAIL FROM:<a@example.com> SIZE=20 RET=HDRS ENVID=QQ+2B1+3Dx\r\n"
        b"RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com\r\n"
        b"RCPT TO:<c@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@example.com\r\n"
        b"DATA\r\n"
    )


def test_dsn_notify_never_and_orcpt_alone() -> None:
    engine = make_engine(("PIPELINING", "DSN"))
    never = engine.prepare(envelope("b@example.com", notify="NEVER"), CONTENT)
    assert engine.start(never) == (
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com> NOTIFY=NEVER\r\nDATA\r\n"
    )
    engine = make_engine(("PIPELINING", "DSN"))
    orcpt = engine.prepare(envelope("b@example.com", orcpt=True), CONTENT)
    assert engine.start(orcpt) == (
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com> ORCPT=rfc822;b@example.com\r\n"
        b"DATA\r\n"
    )


def test_8bit_content_goes_with_body_8bitmime() -> None:
    engine = make_engine(("PIPELINING", "8BITMIME", "SIZE 1000"))
    data = "Subject: x\r\n\r\ncafé\r\n".encode()
    tx = engine.prepare(envelope(), data)
    assert engine.start(tx) == (
        b"MAIL FROM:<a@example.com> SIZE=%d BODY=8BITMIME\r\n" % len(data) + RCPT_B + DATA
    )


def test_utf8_header_goes_with_smtputf8_when_offered() -> None:
    engine = make_engine(("PIPELINING", "8BITMIME", "SMTPUTF8"))
    data = "From: ü@example.com\r\nSubject: x\r\n\r\nbody\r\n".encode()
    tx = engine.prepare(envelope(), data)
    assert engine.start(tx) == (
        b"MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8\r\n" + RCPT_B + DATA
    )


def test_8bit_body_with_an_ascii_header_does_not_need_smtputf8() -> None:
    engine = make_engine(("PIPELINING", "8BITMIME", "SMTPUTF8"))
    tx = engine.prepare(envelope(), "Subject: x\r\n\r\ncafé\r\n".encode())
    assert engine.start(tx) == b"MAIL FROM:<a@example.com> BODY=8BITMIME\r\n" + RCPT_B + DATA


def test_non_ascii_local_part_goes_with_smtputf8_when_offered() -> None:
    engine = make_engine(("PIPELINING", "8BITMIME", "SMTPUTF8"))
    tx = engine.prepare(Envelope("ä@example.com", ["ü@example.com"]), CONTENT)
    assert engine.start(tx) == (
        "MAIL FROM:<ä@example.com> SMTPUTF8\r\nRCPT TO:<ü@example.com>\r\nDATA\r\n".encode()
    )
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(tx)]
    engine.send_content(tx)
    engine.written()
    assert feed(engine, b"250 queued\r\n") == [TransactionDone(tx)]
    assert recipients(result(tx)) == [("ü@example.com", True, 250)]


def test_internationalised_domain_goes_as_a_label_without_smtputf8() -> None:
    engine = make_engine(("PIPELINING", "8BITMIME"))
    tx = engine.prepare(envelope("b@bücher.example"), CONTENT)
    assert engine.start(tx) == (
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@xn--bcher-kva.example>\r\nDATA\r\n"
    )
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(tx)]
    engine.send_content(tx)
    engine.written()
    assert feed(engine, b"250 queued\r\n") == [TransactionDone(tx)]
    # Results name the recipient as the envelope gave it.
    assert recipients(result(tx)) == [("b@bücher.example", True, 250)]


# --------------------------------------------------------------------- state


def test_waiting_for_names_the_oldest_owed_reply() -> None:
    engine = make_engine(FULL)
    assert engine.waiting_for() == "the server"
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    engine.start(first)
    engine.written()
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    engine.start(second)
    engine.written()
    seen = []
    for reply in [b"250 ok\r\n", b"250 ok\r\n", b"250 queued\r\n"]:
        seen.append(engine.waiting_for())
        feed(engine, reply)
    for reply in [b"250 reset\r\n", b"250 ok\r\n", b"250 ok\r\n", b"250 queued\r\n"]:
        seen.append(engine.waiting_for())
        feed(engine, reply)
    assert seen == [
        "the reply to MAIL",
        "the reply to RCPT",
        "the reply to BDAT",
        "the reply to RSET",
        "the reply to MAIL",
        "the reply to RCPT",
        "the reply to BDAT",
    ]
    assert engine.waiting_for() == "the server"


def test_counters_with_several_transactions() -> None:
    engine = make_engine(FULL)
    assert (engine.started, engine.accepted, engine.content_owed, engine.in_flight) == (0, 0, 0, 0)
    txs = [engine.prepare(envelope(f"{name}@example.com"), CONTENT) for name in "bcd"]
    engine.start(txs[0])
    engine.start(txs[1])
    assert (engine.started, engine.content_owed, engine.in_flight) == (2, 0, 2)
    engine.written()
    assert engine.content_owed == 2
    assert feed(engine, b"250 ok\r\n250 ok\r\n250 queued\r\n") == [TransactionDone(txs[0])]
    assert (engine.accepted, engine.content_owed, engine.in_flight) == (1, 1, 1)
    assert feed(engine, b"250 reset\r\n250 ok\r\n550 no\r\n554 no valid recipients\r\n") == [
        TransactionDone(txs[1])
    ]
    assert (engine.accepted, engine.content_owed, engine.in_flight) == (1, 0, 0)
    engine.start(txs[2])
    engine.written()
    assert (engine.started, engine.content_owed) == (3, 1)
    assert feed(engine, b"250 reset\r\n250 ok\r\n250 ok\r\n250 queued\r\n") == [
        TransactionDone(txs[2])
    ]
    assert (engine.started, engine.accepted, engine.content_owed, engine.in_flight) == (3, 2, 0, 0)
    assert engine.idle


def test_421_while_idle_makes_start_raise() -> None:
    engine = make_engine(FULL)
    first = engine.prepare(envelope(), CONTENT)
    engine.start(first)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n250 queued\r\n") == [TransactionDone(first)]
    assert engine.usable
    engine.receive_data(b"421 4.4.2 idle too long\r\n")
    assert engine.next_event() is NEED_DATA  # no reply owed: read at the next start()
    second = engine.prepare(envelope(), CONTENT)
    with pytest.raises(
        ServerDisconnected, match=exactly("mx:25 closed the connection while it was idle")
    ):
        engine.start(second)
    assert second.stage is Stage.PREPARED
    assert engine.started == 1
    assert not engine.usable
    assert engine.conn.state is ClientState.CLOSED


def test_unsolicited_reply_while_idle_makes_start_raise() -> None:
    engine = make_engine(FULL)
    engine.receive_data(b"250 surprise\r\n")
    with pytest.raises(RemoteProtocolError, match="unsolicited reply"):
        engine.start(engine.prepare(envelope(), CONTENT))
    assert not engine.usable


def test_start_twice_and_content_before_the_go_ahead_are_refused() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    with pytest.raises(LocalProtocolError, match="only follow an accepted envelope"):
        engine.send_content(tx)
    engine.start(tx)
    with pytest.raises(LocalProtocolError, match=exactly("this transaction was already started")):
        engine.start(tx)
    with pytest.raises(LocalProtocolError, match="only follow an accepted envelope"):
        engine.send_content(tx)


def test_transcript_shows_commands_and_only_the_size_of_the_content() -> None:
    lines: list[str] = []
    engine = make_engine(PIPELINING, transcript=lines)
    secret = b"Subject: secret\r\n\r\ntop secret body\r\n"
    tx = engine.prepare(envelope("b@example.com", "c@example.com"), secret)
    engine.start(tx)
    engine.written()
    feed(engine, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n")
    engine.send_content(tx)
    engine.written()
    feed(engine, b"250 queued\r\n")
    refused = engine.prepare(envelope("d@example.com"), secret)
    engine.start(refused)
    engine.written()
    feed(engine, b"250 ok\r\n550 no\r\n554 no valid recipients\r\n")
    engine.data_to_send()
    feed(engine, b"250 reset\r\n")
    size = len(secret)
    assert client_lines(lines) == [
        f"C: MAIL FROM:<a@example.com> SIZE={size}",
        "C: RCPT TO:<b@example.com>",
        "C: RCPT TO:<c@example.com>",
        "C: DATA",
        f"C: <{size} bytes of message content>",
        "C: .",
        f"C: MAIL FROM:<a@example.com> SIZE={size}",
        "C: RCPT TO:<d@example.com>",
        "C: DATA",
        "C: RSET",
    ]
    assert not any("secret" in line for line in lines)


def test_transcript_of_bdat_flights_and_lock_step_commands() -> None:
    lines: list[str] = []
    engine = make_engine(FULL, transcript=lines)
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    engine.start(first)
    engine.start(second)
    assert client_lines(lines) == [
        "C: MAIL FROM:<a@example.com> SIZE=20",
        "C: RCPT TO:<b@example.com>",
        "C: BDAT <20 bytes of message content> LAST",
        "C: RSET",
        "C: MAIL FROM:<a@example.com> SIZE=20",
        "C: RCPT TO:<c@example.com>",
        "C: BDAT <20 bytes of message content> LAST",
    ]
    lines.clear()
    engine = make_engine(LOCK_STEP_CHUNKING, transcript=lines)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    feed(engine, b"250 ok\r\n")
    feed(engine, b"250 ok\r\n")
    engine.send_content(tx)
    assert client_lines(lines) == [
        "C: MAIL FROM:<a@example.com> SIZE=20",
        "C: RCPT TO:<b@example.com>",
        "C: BDAT <20 bytes of message content> LAST",
    ]
    assert not any("body" in line for line in lines)


# --------------------------------------------------------------------- coverage of the edges


def test_repr_shows_the_transactions_in_flight_and_whether_the_engine_is_usable() -> None:
    engine = make_engine(FULL)
    assert repr(engine) == "<TransactionEngine in_flight=0 usable=True>"
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert repr(engine) == "<TransactionEngine in_flight=1 usable=True>"
    engine.fail("mx:25 closed the connection")
    assert repr(engine) == "<TransactionEngine in_flight=1 usable=False>"  # the event is pending
    assert events(engine) == [TransactionDone(tx)]
    assert repr(engine) == "<TransactionEngine in_flight=0 usable=False>"


def test_start_chained_before_the_content_of_the_one_before_breaks_the_engine() -> None:
    # DATA ends the first flight: the next MAIL may only follow the content.
    engine = make_engine(PIPELINING)
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    assert engine.start(first) == MAIL + RCPT_B + DATA
    assert engine.usable
    with pytest.raises(LocalProtocolError, match=exactly("MAIL cannot be sent in state RCPT")):
        engine.start(second)
    assert not engine.usable
    assert engine.conn.state is ClientState.ERROR
    assert second.stage is Stage.PREPARED
    assert engine.started == 1
    assert engine.data_to_send() == b""


def test_malformed_reply_breaks_the_engine_and_start_then_refuses() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    engine.receive_data(b"hello\r\n")
    with pytest.raises(RemoteProtocolError, match=exactly("malformed reply line b'hello'")) as info:
        engine.next_event()
    assert not engine.usable
    assert engine.conn.state is ClientState.ERROR
    assert engine.replies == 0
    assert engine.waiting_for() == "the reply to MAIL"  # still owed: fail() ends it

    later = engine.prepare(envelope("c@example.com"), CONTENT)
    with pytest.raises(LocalProtocolError, match=exactly("the connection is in the ERROR state")):
        engine.start(later)
    assert later.stage is Stage.PREPARED
    assert engine.started == 1

    engine.fail("mx:25 broke the protocol", cause=info.value)
    assert events(engine) == [TransactionDone(tx)]
    unknown = error(tx, OutcomeUnknown)
    assert str(unknown) == (
        "mx:25 broke the protocol; the message may or may not have been accepted "
        "(do not retry blindly)"
    )
    assert unknown.__cause__ is info.value
    assert later.outcome is None  # never started: nothing to end
    assert engine.content_owed == 0


@pytest.mark.parametrize("keywords", [PIPELINING, LOCK_STEP_CHUNKING], ids=["data", "bdat"])
def test_unsolicited_reply_before_the_content_makes_send_content_raise(
    keywords: tuple[str, ...],
) -> None:
    engine = make_engine(keywords)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    if keywords == PIPELINING:
        assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(tx)]
    else:
        assert feed(engine, b"250 ok\r\n") == []
        assert engine.data_to_send() == RCPT_B
        assert feed(engine, b"250 ok\r\n") == [ContentReady(tx)]
    assert engine.usable
    engine.receive_data(b"250 surprise\r\n")
    assert engine.next_event() is NEED_DATA  # no reply owed: not read until the next send
    with pytest.raises(RemoteProtocolError, match=exactly("unsolicited reply: 250 'surprise'")):
        engine.send_content(tx)
    assert not engine.usable
    assert engine.conn.state is ClientState.ERROR
    assert tx.stage is Stage.ACCEPTING
    assert engine.unwritten_content == 0
    engine.fail("mx:25 broke the protocol")
    assert events(engine) == [TransactionDone(tx)]
    assert str(error(tx, ServerDisconnected)) == "mx:25 broke the protocol"
    assert not tx.content_sent
    assert engine.content_owed == 0


def test_bdat_accepted_in_a_flight_whose_recipients_were_all_refused() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n550 5.1.1 no such user\r\n250 queued\r\n") == [
        TransactionDone(tx)
    ]
    err = error(tx, RecipientsRefused)
    assert isinstance(err, RecipientsRefused)
    assert str(err) == "the server refused every recipient (1): b@example.com: 550 no such user"
    assert recipients(err) == [("b@example.com", False, 550)]
    assert tx.reply is not None
    assert tx.reply.code == 250
    assert tx.content_sent  # the server took the content: it is not known to be discarded
    assert (engine.accepted, engine.content_owed) == (0, 0)
    assert engine.usable
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    assert engine.start(second) == RSET + MAIL + RCPT_C + BDAT


@pytest.mark.parametrize(
    ("replies", "owed", "cls", "code"),
    [
        (
            b"550 5.7.1 sender rejected\r\n503 need MAIL\r\n503 need MAIL\r\n",
            RSET,
            SenderRefused,
            550,
        ),
        (b"250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n", b".\r\n", RecipientsRefused, 550),
    ],
    ids=["rset-owed", "end-of-data-owed"],
)
def test_421_while_a_refused_envelope_is_being_ended_reports_the_refusal(
    replies: bytes, owed: bytes, cls: type[SmtpReplyError], code: int
) -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    later = engine.prepare(envelope("c@example.com"), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, replies) == []
    assert engine.data_to_send() == owed
    assert engine.usable
    assert feed(engine, b"421 4.3.2 shutting down\r\n") == [TransactionDone(tx)]
    err = error(tx, cls)
    assert isinstance(err, SmtpReplyError)
    assert err.code == code  # the refusal, not the 421
    assert not tx.content_sent
    assert not engine.usable
    assert engine.conn.state is ClientState.CLOSED
    assert engine.data_to_send() == b""
    assert engine.idle
    with pytest.raises(ServerDisconnected, match="closed the connection while it was idle"):
        engine.start(later)


def test_written_after_the_final_reply_does_not_count_the_content_as_owed() -> None:
    # A driver that reads while it writes may see the replies to a BDAT flight
    # before it records the write as done.
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    assert engine.start(tx) == MAIL + RCPT_B + BDAT
    assert engine.unwritten_content == 1
    assert feed(engine, b"250 ok\r\n250 ok\r\n250 queued as Q1\r\n") == [TransactionDone(tx)]
    assert result(tx).transport_id == "Q1"
    engine.written()
    assert engine.unwritten_content == 0
    assert tx.stage is Stage.DONE
    assert engine.content_owed == 0
    assert (engine.accepted, engine.in_flight) == (1, 0)
    assert engine.idle


def test_fail_before_the_content_was_recorded_as_written() -> None:
    engine = make_engine(FULL)
    first = engine.prepare(envelope("b@example.com"), CONTENT)
    second = engine.prepare(envelope("c@example.com"), CONTENT)
    assert engine.start(first) + engine.start(second) == (
        MAIL + RCPT_B + BDAT + RSET + MAIL + RCPT_C + BDAT
    )
    assert engine.unwritten_content == 2
    engine.fail("no reply from mx:25 in 30 s", timeout=True)
    assert engine.unwritten_content == 0
    assert events(engine) == [TransactionDone(first), TransactionDone(second)]
    for tx in (first, second):
        assert str(error(tx, SmtpTimeoutError)) == "no reply from mx:25 in 30 s"
        assert not tx.content_sent
        assert tx.stage is Stage.FAILED
    engine.written()  # too late: nothing to record
    assert engine.content_owed == 0
    assert not first.content_sent
    assert not engine.usable


def test_more_than_five_refused_recipients_are_summed_up() -> None:
    names = [f"r{i}@example.com" for i in range(7)]
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(*names), CONTENT)
    engine.start(tx)
    engine.written()
    replies = b"250 ok\r\n" + b"".join(b"550 no %d\r\n" % i for i in range(7))
    assert feed(engine, replies + b"554 no valid recipients\r\n") == [TransactionDone(tx)]
    err = error(tx, RecipientsRefused)
    assert isinstance(err, RecipientsRefused)
    assert len(err.results) == 7
    assert str(err) == (
        "the server refused every recipient (7): "
        + "; ".join(f"r{i}@example.com: 550 no {i}" for i in range(5))
        + " (and 2 more)"
    )


def test_prepare_takes_a_memoryview_and_refuses_other_types() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), memoryview(CONTENT))  # type: ignore[arg-type]
    assert type(tx.data) is bytes
    assert tx.data == CONTENT
    with pytest.raises(TypeError, match=exactly("data must be bytes, not int")):
        engine.prepare(envelope(), 20)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=exactly("data must be bytes, not list")):
        engine.prepare(envelope(), [CONTENT])  # type: ignore[arg-type]
    assert engine.start(tx) == MAIL + RCPT_B + BDAT


def test_internationalised_sender_domain_goes_as_an_a_label_without_smtputf8() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(
        Envelope("a@bücher.example", ["b@bücher.example", "c@example.com"]), CONTENT
    )
    assert engine.start(tx) == (
        b"MAIL FROM:<a@xn--bcher-kva.example> SIZE=20\r\n"
        b"RCPT TO:<b@xn--bcher-kva.example>\r\n" + RCPT_C + DATA
    )
    assert tx.recipients == ("b@bücher.example", "c@example.com")


def test_internationalised_sender_domain_goes_as_it_is_with_smtputf8() -> None:
    engine = make_engine(("PIPELINING", "SMTPUTF8"))
    tx = engine.prepare(Envelope("a@bücher.example", ["b@example.com"]), CONTENT)
    assert engine.start(tx) == (
        "MAIL FROM:<a@bücher.example> SMTPUTF8\r\n".encode() + RCPT_B + DATA
    )


def test_utf8_header_without_a_body_goes_with_smtputf8() -> None:
    # No empty line: the whole message is header fields.
    engine = make_engine(("PIPELINING", "8BITMIME", "SMTPUTF8"))
    data = "From: ü@example.com\r\nSubject: x\r\n".encode()
    tx = engine.prepare(envelope(), data)
    assert engine.start(tx) == (
        b"MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8\r\n" + RCPT_B + DATA
    )


# --------------------------------------------------------------------- commands


def reply_of(event: Event) -> Reply:
    assert isinstance(event, Replied), event
    assert event.error is None
    assert event.reply is not None
    return event.reply


def test_greeting_and_commands_outside_a_transaction_come_as_replied_events() -> None:
    lines: list[str] = []
    engine = TransactionEngine(ClientConnection(), peer="mx:25", transcript=lines.append)
    engine.expect_reply()
    assert engine.waiting_for() == "the reply"
    assert engine.in_flight == 0  # a command is not a transaction
    assert not engine.idle
    [greeting] = feed(engine, b"220 mx ESMTP\r\n")
    assert reply_of(greeting).code == 220
    assert engine.idle
    assert engine.command(Ehlo("client.example")) == b"EHLO client.example\r\n"
    assert engine.waiting_for() == "the reply"
    [ehlo] = feed(engine, ehlo_reply(PIPELINING))
    assert reply_of(ehlo).lines == ("mx", "PIPELINING", "SIZE 1000")
    assert engine.conn.state is ClientState.READY
    assert engine.replies == 2

    tx = engine.prepare(envelope(), CONTENT)
    assert engine.start(tx) == MAIL + RCPT_B + DATA
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go ahead\r\n") == [ContentReady(tx)]
    assert engine.send_content(tx) + engine.command(Noop()) == DATA_CONTENT + b"NOOP\r\n"
    engine.written()
    done, noop = feed(engine, b"250 queued\r\n250 2.0.0 ok\r\n")
    assert done == TransactionDone(tx)
    assert result(tx).reply is not None
    assert reply_of(noop).enhanced_status == "2.0.0"
    assert engine.idle
    assert engine.usable
    assert client_lines(lines) == [
        "C: EHLO client.example",
        "C: MAIL FROM:<a@example.com> SIZE=20",
        "C: RCPT TO:<b@example.com>",
        "C: DATA",
        "C: <20 bytes of message content>",
        "C: .",
        "C: NOOP",
    ]
    assert lines[:2] == ["S: 220 mx ESMTP", "C: EHLO client.example"]


def test_transcript_of_auth_commands_hides_the_credentials() -> None:
    lines: list[str] = []
    engine = make_engine(("PIPELINING", "AUTH PLAIN LOGIN"), transcript=lines)
    assert engine.command(Auth("LOGIN")) == b"AUTH LOGIN\r\n"
    assert reply_of(*feed(engine, b"334 VXNlcm5hbWU6\r\n")).code == 334
    assert engine.command(AuthResponse(b"user")) == b"dXNlcg==\r\n"
    assert reply_of(*feed(engine, b"334 UGFzc3dvcmQ6\r\n")).code == 334
    assert engine.command(AuthCancel()) == b"*\r\n"
    assert reply_of(*feed(engine, b"501 5.7.0 cancelled\r\n")).code == 501
    assert engine.command(Auth("PLAIN", b"\0user\0pass")) == b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"
    assert reply_of(*feed(engine, b"235 2.7.0 ok\r\n")).code == 235
    assert lines == [
        "C: AUTH LOGIN",
        "S: 334 VXNlcm5hbWU6",
        "C: <redacted>",
        "S: 334 UGFzc3dvcmQ6",
        "C: *",
        "S: 501 5.7.0 cancelled",
        "C: AUTH PLAIN <redacted>",
        "S: 235 2.7.0 ok",
    ]
    assert not any("dXNlcg" in line or "AHVzZXIAcGFzcw" in line for line in lines)


def test_transcript_of_content_commands_shows_only_their_size() -> None:
    assert command_transcript(MessageData(CONTENT), b"ignored") == [
        "C: <20 bytes of message content>"
    ]
    assert command_transcript(Bdat(CONTENT), b"ignored") == [
        "C: BDAT <20 bytes of message content>"
    ]
    assert command_transcript(Bdat(CONTENT, last=True), b"ignored") == [
        "C: BDAT <20 bytes of message content> LAST"
    ]


def test_command_the_connection_refuses_breaks_the_engine() -> None:
    engine = make_engine(LOCK_STEP)
    assert engine.usable
    with pytest.raises(LocalProtocolError, match=exactly("the server did not offer AUTH")):
        engine.command(Auth("PLAIN", b"\0user\0pass"))
    assert not engine.usable
    assert engine.conn.state is ClientState.ERROR
    assert engine.idle


def test_command_after_a_421_while_idle_raises() -> None:
    engine = make_engine(FULL)
    engine.receive_data(b"421 4.4.2 idle too long\r\n")
    with pytest.raises(
        ServerDisconnected, match=exactly("mx:25 closed the connection while it was idle")
    ):
        engine.command(Noop())
    assert not engine.usable
    assert engine.idle


def test_421_answering_pipelined_commands_ends_those_after_it() -> None:
    engine = make_engine(PIPELINING)
    assert engine.command(Rset()) + engine.command(Noop()) == RSET + b"NOOP\r\n"
    first, second = feed(engine, b"421 4.3.2 shutting down\r\n")
    assert reply_of(first).code == 421
    assert isinstance(second, Replied)
    assert second.reply is None
    assert type(second.error) is ServerDisconnected
    assert str(second.error) == "mx:25 closed the connection (421)"
    assert not engine.usable
    assert engine.conn.state is ClientState.CLOSED
    assert engine.idle


@pytest.mark.parametrize(
    ("kwargs", "cls"),
    [
        ({}, ServerDisconnected),
        ({"timeout": True}, SmtpTimeoutError),
        ({"cause": RemoteProtocolError("malformed reply line")}, RemoteProtocolError),
    ],
    ids=["disconnected", "timeout", "protocol-error"],
)
def test_fail_with_command_replies_owed(kwargs: dict[str, object], cls: type[Exception]) -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare(envelope(), CONTENT)
    assert engine.command(Rset()) + engine.start(tx) == RSET + MAIL + RCPT_B + DATA
    engine.written()
    engine.fail("mx:25 went away", **kwargs)  # type: ignore[arg-type]
    done, replied = events(engine)
    assert done == TransactionDone(tx)
    assert isinstance(replied, Replied)
    assert replied.reply is None
    assert type(replied.error) is cls
    assert type(tx.outcome) is cls
    if "cause" in kwargs:
        assert replied.error is kwargs["cause"]
        assert tx.outcome is kwargs["cause"]
    else:
        assert str(replied.error) == "mx:25 went away"
    assert not engine.usable
    assert engine.idle
