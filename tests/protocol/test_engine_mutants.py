"""The transaction engine's details that mutation testing found unpinned (issue 21).

Bytes in, events out, as in ``test_transactions.py``: each test opens a session
with plain bytes, hands the engine a message and checks the exact bytes it
writes, the events and the outcomes; error texts are checked whole where they
are what the user reads. The modules covered: ``protocol/mail.py`` (preparing a
transaction), ``protocol/transcript.py`` (the DEBUG transcript),
``protocol/dotstuff.py`` and ``protocol/transactions.py``.
"""

from __future__ import annotations

import pytest
from protocol_support import ehlo_reply, envelope, exactly, session
from protocol_support import engine_events as events
from protocol_support import engine_feed as feed

from lettre.envelope import Envelope
from lettre.errors import (
    DataRefused,
    LocalProtocolError,
    MessageError,
    MessageTooLarge,
    OutcomeUnknown,
    RemoteProtocolError,
    ServerDisconnected,
    SmtpTimeoutError,
)
from lettre.protocol import NEED_DATA, ClientConnection, Ehlo, Noop, Rcpt, Reply
from lettre.protocol.commands import Lhlo
from lettre.protocol.extensions import Capabilities
from lettre.protocol.mail import nul_error, prepare_transaction
from lettre.protocol.transactions import (
    ContentReady,
    Replied,
    TransactionDone,
    TransactionEngine,
    TransactionStage,
)
from lettre.protocol.transcript import reply_transcript
from lettre.results import SendResult

CONTENT = b"Subject: x\r\n\r\nbody\r\n"  # 20 octets
RCPT_B = b"RCPT TO:<b@example.com>\r\n"
DATA = b"DATA\r\n"


def make_engine(
    keywords: tuple[str, ...] = ("PIPELINING",), *, transcript: list[str] | None = None
) -> TransactionEngine:
    return TransactionEngine(
        session(keywords),
        peer="mx:25",
        transcript=None if transcript is None else transcript.append,
    )


def caps(keywords: tuple[str, ...]) -> Capabilities:
    capabilities = session(keywords).capabilities
    assert capabilities is not None
    return capabilities


# --------------------------------------------------------------------- mail.py


def test_nul_error_names_the_first_nul_and_the_bytes_around_it() -> None:
    data = b"0123456789" * 4 + b"\x00" + b"abcdefghij" * 3 + b"\x00tail"
    assert str(nul_error(data)) == (
        "the message content has a NUL byte at offset 40 (near "
        "b'01234567890123456789\\x00abcdefghijabcdefghi'); "
        "SMTP cannot carry NUL in DATA or BDAT. Transfer-encode the part that holds it "
        "(quoted-printable or base64, as Message.builder() does) or remove it; nothing was sent"
    )


@pytest.mark.parametrize(
    ("data", "around"),
    [
        (b"\x00abc", b"\x00abc"),
        (b"abcde\x00fgh", b"abcde\x00fgh"),
        (b"x" * 20 + b"\x00", b"x" * 20 + b"\x00"),
        (b"y" + b"x" * 20 + b"\x00", b"x" * 20 + b"\x00"),
    ],
)
def test_nul_error_shows_at_most_twenty_bytes_before_the_nul(data: bytes, around: bytes) -> None:
    offset = data.index(b"\x00")
    with pytest.raises(MessageError, match=exactly(str(nul_error(data)))) as caught:
        make_engine().prepare(envelope(), data)
    assert f"at offset {offset} (near {around!r});" in str(caught.value)


def test_prepare_transaction_defaults_name_the_server_and_send_data_early() -> None:
    capabilities = caps(("PIPELINING", "SIZE 19"))
    with pytest.raises(
        MessageTooLarge, match=exactly("the message is 20 bytes; the server accepts at most 19")
    ):
        prepare_transaction(envelope(), CONTENT, capabilities)
    env = envelope()
    tx = prepare_transaction(env, CONTENT[:19], capabilities)
    assert tx.data_in_flight  # not require_all_recipients: DATA goes in the envelope's flight
    assert tx.envelope is env
    chunking = prepare_transaction(env, CONTENT[:19], caps(("PIPELINING", "CHUNKING")))
    assert chunking.content_in_flight
    assert chunking.envelope is env


def test_prepare_before_the_session_is_open_says_so() -> None:
    with pytest.raises(
        LocalProtocolError,
        match=exactly("the SMTP session is not open (no EHLO or HELO reply yet)"),
    ):
        prepare_transaction(envelope(), CONTENT, None)


@pytest.mark.parametrize("keywords", [("PIPELINING",), ("PIPELINING", "8BITMIME")])
def test_null_reverse_path_goes_as_empty_brackets(keywords: tuple[str, ...]) -> None:
    engine = make_engine(keywords)
    # With only 8BITMIME, the internationalised domain goes in its A-label form
    # and the null reverse path stays null.
    tx = engine.prepare(Envelope(None, ["b@bücher.example"]), CONTENT)
    rcpt = b"RCPT TO:<b@xn--bcher-kva.example>\r\n"
    assert engine.start(tx) == b"MAIL FROM:<>\r\n" + rcpt + DATA
    ascii_tx = make_engine(keywords).prepare(Envelope(None, ["b@example.com"]), CONTENT)
    assert make_engine(keywords).start(ascii_tx) == b"MAIL FROM:<>\r\n" + RCPT_B + DATA


def test_utf8_header_without_smtputf8_offered_goes_with_8bitmime_only() -> None:
    engine = make_engine(("PIPELINING", "8BITMIME"))
    data = "From: ü@example.com\r\n\r\nbody\r\n".encode()
    tx = engine.prepare(envelope(), data)
    assert engine.start(tx) == b"MAIL FROM:<a@example.com> BODY=8BITMIME\r\n" + RCPT_B + DATA


@pytest.mark.parametrize(
    ("data", "smtputf8"),
    [
        # Only the header decides: a blank line later in the body is not its end.
        ("Subject: x\r\n\r\ncafé\r\n\r\nend\r\n".encode(), False),
        # No header at all: the content starts with its blank line.
        ("\r\n\r\ncafé\r\n".encode(), False),
        # No blank line: it is all header, to its last byte.
        (b"Subject: caf\xe9", True),
    ],
)
def test_smtputf8_for_an_8bit_header_only(data: bytes, smtputf8: bool) -> None:
    engine = make_engine(("PIPELINING", "8BITMIME", "SMTPUTF8"))
    tx = engine.prepare(envelope(), data)
    mail = b"MAIL FROM:<a@example.com> BODY=8BITMIME" + (b" SMTPUTF8" if smtputf8 else b"")
    assert engine.start(tx) == mail + b"\r\n" + RCPT_B + DATA


# --------------------------------------------------------------------- transcript.py


def test_transcript_of_a_multiline_reply_marks_every_line_but_the_last() -> None:
    lines: list[str] = []
    engine = make_engine(transcript=lines)
    engine.command(Ehlo("client.example"))
    assert feed(engine, b"250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n") == [
        Replied(Reply(250, None, ("mx", "PIPELINING", "SIZE 10")))
    ]
    assert lines == [
        "C: EHLO client.example",
        "S: 250-mx",
        "S: 250-PIPELINING",
        "S: 250 SIZE 10",
    ]


def test_transcript_of_a_reply_with_an_enhanced_status() -> None:
    lines: list[str] = []
    engine = make_engine(("ENHANCEDSTATUSCODES",), transcript=lines)
    engine.command(Ehlo("client.example"))
    feed(engine, b"250-2.0.0 first\r\n250 2.0.0 second\r\n")
    assert lines[1:] == ["S: 250-2.0.0 first", "S: 250 2.0.0 second"]


def test_transcript_of_a_reply_without_lines() -> None:
    assert reply_transcript(Reply(250, None, ())) == ["S: 250 "]
    assert reply_transcript(Reply(250, "2.1.0", ())) == ["S: 250 2.1.0 "]


# --------------------------------------------------------------------- transactions.py

FULL = ("PIPELINING", "CHUNKING", "SIZE 1000")
MAIL = b"MAIL FROM:<a@example.com> SIZE=20\r\n"
BDAT = b"BDAT 20 LAST\r\n" + CONTENT


def test_streamed_content_of_exactly_the_size_limit_may_go() -> None:
    engine = make_engine(("PIPELINING", "SIZE 100"))
    tx = engine.prepare_streamed(envelope(), b"Subject: x\r\n\r\n", 100)
    assert engine.start(tx) == b"MAIL FROM:<a@example.com> SIZE=100\r\n" + RCPT_B + DATA
    with pytest.raises(
        MessageTooLarge, match=exactly("the message is 101 bytes; mx:25 accepts at most 100")
    ):
        engine.prepare_streamed(envelope(), b"Subject: x\r\n\r\n", 101)


@pytest.mark.parametrize("keywords", [("PIPELINING",), FULL])
def test_chunks_before_the_go_ahead_are_refused(keywords: tuple[str, ...]) -> None:
    engine = make_engine(keywords)
    tx = engine.prepare_streamed(envelope(), b"Subject: x\r\n\r\n", None)
    message = exactly("the content may only follow an accepted envelope")
    for call in (lambda: engine.send_chunk(tx, b"x"), lambda: engine.end_content(tx)):
        with pytest.raises(LocalProtocolError, match=message):
            call()
    engine.start(tx)
    for call in (lambda: engine.send_chunk(tx, b"x"), lambda: engine.end_content(tx)):
        with pytest.raises(LocalProtocolError, match=message):
            call()
    assert engine.usable  # refused before anything was encoded


def test_a_command_the_connection_refuses_breaks_the_engine() -> None:
    engine = make_engine()
    with pytest.raises(LocalProtocolError):
        engine.command(Rcpt("b@example.com"))
    assert engine.broken is True
    assert not engine.usable


def test_421_marks_the_engine_broken() -> None:
    engine = make_engine()
    engine.command(Noop())
    assert feed(engine, b"421 4.3.2 shutting down\r\n") == [
        Replied(Reply(421, "4.3.2", ("shutting down",)))
    ]
    assert engine.broken is True


def test_421_at_mail_of_a_bdat_flight_whose_content_was_written() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    assert engine.start(tx) == MAIL + RCPT_B + BDAT
    engine.written()
    assert engine.content_owed == 1
    assert tx.content_sent is True
    assert feed(engine, b"421 4.3.2 shutting down\r\n") == [TransactionDone(tx)]
    assert engine.content_owed == 0
    assert tx.content_sent is False
    assert engine.broken is True


def test_refused_envelope_is_failed_while_its_rset_is_owed() -> None:
    engine = make_engine()
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"550 no\r\n250 ok\r\n554 no valid sender\r\n") == []
    assert tx.stage is TransactionStage.FAILED
    assert tx.outcome is None
    assert engine.data_to_send() == b"RSET\r\n"
    assert feed(engine, b"250 reset\r\n") == [TransactionDone(tx)]
    assert tx.stage is TransactionStage.FAILED


@pytest.mark.parametrize(
    ("replies", "content_sent"),
    [
        # MAIL refused, BDAT LAST refused: the content was not taken.
        (b"550 no\r\n250 ok\r\n554 no\r\n", False),
        # Every recipient refused and BDAT LAST refused.
        (b"250 ok\r\n550 no\r\n554 no\r\n", False),
        # Every recipient refused, BDAT LAST accepted (for nobody).
        (b"250 ok\r\n550 no\r\n250 ok\r\n", True),
    ],
)
def test_bdat_flight_refused_says_whether_the_content_was_taken(
    replies: bytes, content_sent: bool
) -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, replies) == [TransactionDone(tx)]
    assert tx.content_sent is content_sent
    assert engine.content_owed == 0


@pytest.mark.parametrize("timeout", [True, False])
def test_unwritten_passes_on_whether_it_was_a_timeout(timeout: bool) -> None:
    engine = make_engine()
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.unwritten("the write to mx:25 failed", timeout=timeout)
    assert events(engine) == [TransactionDone(tx)]
    assert type(tx.outcome) is (SmtpTimeoutError if timeout else ServerDisconnected)
    assert str(tx.outcome) == "the write to mx:25 failed"


def test_bdat_flight_result_carries_the_final_reply() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n250 2.0.0 queued as Q9\r\n") == [TransactionDone(tx)]
    assert isinstance(tx.outcome, SendResult)
    assert tx.outcome.reply == Reply(250, "2.0.0", ("queued as Q9",))
    assert tx.outcome.transport_id == "Q9"


@pytest.mark.parametrize(("count", "more"), [(5, ""), (6, " (and 1 more)")], ids=["five", "six"])
def test_refused_recipients_listed_up_to_five(count: int, more: str) -> None:
    names = [f"r{i}@example.com" for i in range(count)]
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(*names), CONTENT)
    engine.start(tx)
    engine.written()
    replies = b"250 ok\r\n" + b"".join(b"550 no %d\r\n" % i for i in range(count))
    assert feed(engine, replies + b"554 no valid recipients\r\n") == [TransactionDone(tx)]
    assert str(tx.outcome) == (
        f"the server refused every recipient ({count}): "
        + "; ".join(f"r{i}@example.com: 550 no {i}" for i in range(5))
        + more
    )


def lmtp_engine() -> TransactionEngine:
    conn = ClientConnection(lmtp=True)
    conn.receive_data(b"220 lmtp.example LMTP ready\r\n")
    assert conn.next_event() is not NEED_DATA
    conn.send(Lhlo("client.example"))
    conn.receive_data(ehlo_reply(("PIPELINING",)))
    assert conn.next_event() is not NEED_DATA
    return TransactionEngine(conn, peer="lmtp:24")


def test_lmtp_counts_every_accepted_transaction() -> None:
    engine = lmtp_engine()
    for round_ in range(2):
        tx = engine.prepare(envelope("b@example.com", "c@example.com"), CONTENT)
        engine.start(tx)
        engine.written()
        assert feed(engine, b"250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n") == [ContentReady(tx)]
        engine.send_content(tx)
        engine.written()
        # One reply after the content: c was refused at RCPT.
        assert feed(engine, b"250 2.0.0 delivered to b\r\n") == [TransactionDone(tx)]
        assert isinstance(tx.outcome, SendResult)
        assert [(r.recipient, r.accepted) for r in tx.outcome.recipients] == [
            ("b@example.com", True),
            ("c@example.com", False),
        ]
        assert engine.accepted == round_ + 1


@pytest.mark.parametrize("keywords", [("PIPELINING",), ("CHUNKING",)])
def test_unsolicited_reply_before_the_content_marks_the_engine_broken(
    keywords: tuple[str, ...],
) -> None:
    engine = make_engine(keywords)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    if "CHUNKING" in keywords:  # lock-step: RCPT after the reply to MAIL
        assert feed(engine, b"250 ok\r\n") == []
        assert engine.data_to_send() == RCPT_B
        assert feed(engine, b"250 ok\r\n") == [ContentReady(tx)]
    else:
        assert feed(engine, b"250 ok\r\n250 ok\r\n354 go\r\n") == [ContentReady(tx)]
    engine.receive_data(b"250 surprise\r\n")
    with pytest.raises(RemoteProtocolError, match=exactly("unsolicited reply: 250 'surprise'")):
        engine.send_content(tx)
    assert engine.broken is True


def test_malformed_reply_marks_the_engine_broken() -> None:
    engine = make_engine()
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    engine.receive_data(b"hello\r\n")
    with pytest.raises(RemoteProtocolError, match=exactly("malformed reply line b'hello'")):
        engine.next_event()
    assert engine.broken is True


def test_421_before_a_chained_bdat_flight_was_read_leaves_its_content_unsent() -> None:
    engine = make_engine(FULL)
    first = engine.prepare(envelope(), CONTENT)
    second = engine.prepare(envelope(), CONTENT)
    engine.start(first)
    engine.start(second)
    engine.written()
    assert second.content_sent is True
    assert feed(engine, b"421 4.3.2 shutting down\r\n") == [
        TransactionDone(first),
        TransactionDone(second),
    ]
    assert first.content_sent is False
    assert second.content_sent is False
    assert engine.content_owed == 0


@pytest.mark.parametrize("timeout", [True, False])
def test_outcome_unknown_after_a_failure_has_the_timeout_as_its_cause(timeout: bool) -> None:
    engine = make_engine(FULL)
    tx = engine.prepare(envelope(), CONTENT)
    engine.start(tx)
    engine.written()
    engine.fail("no reply from mx:25", timeout=timeout)
    assert events(engine) == [TransactionDone(tx)]
    assert isinstance(tx.outcome, OutcomeUnknown)
    assert str(tx.outcome) == (
        "no reply from mx:25; the message may or may not have been accepted (do not retry blindly)"
    )
    cause = tx.outcome.__cause__
    if timeout:
        assert type(cause) is SmtpTimeoutError
        assert str(cause) == "no reply from mx:25"
    else:
        assert cause is None


def test_start_before_the_content_of_the_transaction_before_marks_the_engine_broken() -> None:
    engine = make_engine()
    first = engine.prepare(envelope(), CONTENT)
    engine.start(first)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go\r\n") == [ContentReady(first)]
    with pytest.raises(LocalProtocolError):
        engine.start(engine.prepare(envelope(), CONTENT))
    assert engine.broken is True


@pytest.mark.parametrize(
    ("unsolicited", "cls", "message"),
    [
        (
            b"421 4.4.2 idle too long\r\n",
            ServerDisconnected,
            "mx:25 closed the connection while it was idle",
        ),
        (b"hello\r\n", RemoteProtocolError, "malformed reply line b'hello'"),
    ],
    ids=["421", "malformed"],
)
def test_what_came_while_idle_marks_the_engine_broken(
    unsolicited: bytes, cls: type[Exception], message: str
) -> None:
    engine = make_engine()
    engine.receive_data(unsolicited)
    with pytest.raises(cls, match=exactly(message)):
        engine.start(engine.prepare(envelope(), CONTENT))
    assert engine.broken is True


def test_a_refused_bdat_chunk_is_reported_as_the_refusal_of_bdat() -> None:
    engine = make_engine(FULL)
    tx = engine.prepare_streamed(envelope(), b"Subject: x\r\n\r\n", None)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n") == [ContentReady(tx)]
    assert engine.send_chunk(tx, b"Subject: x\r\n\r\n") == b"BDAT 14\r\nSubject: x\r\n\r\n"
    engine.written()
    assert feed(engine, b"552 5.3.4 too much\r\n") == [TransactionDone(tx)]
    assert isinstance(tx.outcome, DataRefused)
    assert (tx.outcome.code, tx.outcome.command) == (552, "BDAT")


def test_engine_defaults_name_the_server_and_start_usable() -> None:
    engine = TransactionEngine(session(("PIPELINING", "SIZE 19")))
    assert engine.broken is False
    assert engine.usable
    with pytest.raises(
        MessageTooLarge, match=exactly("the message is 20 bytes; the server accepts at most 19")
    ):
        engine.prepare(envelope(), CONTENT)


def test_transcript_of_the_end_of_a_streamed_data_content() -> None:
    lines: list[str] = []
    engine = make_engine(transcript=lines)
    tx = engine.prepare_streamed(envelope(), b"Subject: x\r\n\r\n", None)
    engine.start(tx)
    engine.written()
    assert feed(engine, b"250 ok\r\n250 ok\r\n354 go\r\n") == [ContentReady(tx)]
    del lines[:]
    assert engine.send_chunk(tx, b"Subject: x\r\n\r\nbody\r\n") == CONTENT
    assert engine.end_content(tx) == b".\r\n"
    assert lines == ["C: <20 bytes of message content>", "C: ."]
