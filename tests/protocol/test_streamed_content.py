"""TransactionEngine: a content sent chunk by chunk (streamed attachments), bytes in and out."""

# mypy narrows tx.stage after each assert and cannot see that the engine changes it.
# mypy: disable-error-code="comparison-overlap"

from __future__ import annotations

import pytest
from test_transactions import (
    FULL,
    LOCK_STEP,
    PIPELINING,
    RCPT_B,
    envelope,
    events,
    feed,
    make_engine,
)

from lettre.errors import DataRefused, LocalProtocolError, MessageTooLarge, RemoteProtocolError
from lettre.protocol.transactions import ContentReady, TransactionDone, TransactionStage

Stage = TransactionStage
HEAD = b"Subject: big\r\n\r\n"


def go(engine: object, keywords: tuple[str, ...], size: int | None = 100) -> object:
    """Prepare and start a streamed transaction, and answer its envelope."""
    tx = engine.prepare_streamed(envelope(), HEAD, size)  # type: ignore[attr-defined]
    out = engine.start(tx)  # type: ignore[attr-defined]
    size_text = b"" if size is None else b" SIZE=%d" % size
    if keywords is PIPELINING:
        assert out == b"MAIL FROM:<a@example.com>" + size_text + b"\r\n" + RCPT_B + b"DATA\r\n"
        replies = b"250 ok\r\n250 ok\r\n354 go\r\n"
    else:
        assert out == b"MAIL FROM:<a@example.com>" + size_text + b"\r\n" + RCPT_B
        replies = b"250 ok\r\n250 ok\r\n"
    engine.written()  # type: ignore[attr-defined]
    assert feed(engine, replies) == [ContentReady(tx)]  # type: ignore[arg-type]
    return tx


def test_data_chunks_are_dot_stuffed_across_boundaries() -> None:
    transcript: list[str] = []
    engine = make_engine(PIPELINING, transcript=transcript)
    tx = go(engine, PIPELINING)
    assert tx.content_in_flight is False  # type: ignore[attr-defined]
    assert tx.data == b""  # type: ignore[attr-defined]
    assert engine.send_chunk(tx, HEAD + b"line\r") == HEAD + b"line\r\n"  # type: ignore[arg-type]
    assert engine.send_chunk(tx, b"\n.dot\r\n") == b"..dot\r\n"  # type: ignore[arg-type]
    assert engine.send_chunk(tx, b".also\r\nend") == b"..also\r\nend"  # type: ignore[arg-type]
    assert tx.stage is Stage.ACCEPTING  # type: ignore[attr-defined]
    assert engine.end_content(tx) == b"\r\n.\r\n"  # type: ignore[arg-type]
    assert engine.unwritten_content == 1
    engine.written()
    assert tx.stage is Stage.CONTENT  # type: ignore[attr-defined]
    (done,) = feed(engine, b"250 queued as Q1\r\n")
    assert isinstance(done, TransactionDone)
    assert done.tx.outcome.transport_id == "Q1"  # type: ignore[union-attr]
    assert "C: <21 bytes of message content>" in transcript
    assert transcript[-2] == "C: ."


def test_bdat_chunks_each_owe_a_reply() -> None:
    transcript: list[str] = []
    engine = make_engine(FULL, transcript=transcript)
    tx = go(engine, FULL)
    assert engine.send_chunk(tx, HEAD) == b"BDAT 16\r\n" + HEAD  # type: ignore[arg-type]
    assert engine.send_chunk(tx, b"bare lf\n") == b"BDAT 9\r\nbare lf\r\n"  # type: ignore[arg-type]
    assert engine.end_content(tx) == b"BDAT 0 LAST\r\n"  # type: ignore[arg-type]
    engine.written()
    assert engine.waiting_for() == "the reply to BDAT"
    assert feed(engine, b"250 16 octets\r\n250 9 octets\r\n") == []
    (done,) = feed(engine, b"250 ok\r\n")
    assert isinstance(done, TransactionDone)
    assert done.tx.outcome.reply.code == 250  # type: ignore[union-attr]
    assert engine.usable
    assert "C: BDAT <16 bytes of message content>" in transcript
    assert "C: BDAT <0 bytes of message content> LAST" in transcript


def test_a_refused_bdat_chunk_ends_the_transaction_and_the_connection() -> None:
    engine = make_engine(FULL)
    tx = go(engine, FULL)
    engine.send_chunk(tx, HEAD)  # type: ignore[arg-type]
    engine.send_chunk(tx, b"more\r\n")  # type: ignore[arg-type]
    engine.written()
    (done,) = feed(engine, b"552 5.3.4 too much\r\n")
    assert isinstance(done, TransactionDone)
    assert isinstance(tx.outcome, DataRefused)  # type: ignore[attr-defined]
    assert tx.outcome.code == 552  # type: ignore[attr-defined]
    assert not engine.usable
    # The reply to the chunk written after it changes nothing.
    assert feed(engine, b"552 5.3.4 too much\r\n") == []
    with pytest.raises(LocalProtocolError):
        engine.send_chunk(tx, b"x")  # type: ignore[arg-type]


def test_a_refused_bdat_chunk_after_the_end_was_encoded() -> None:
    engine = make_engine(FULL)
    tx = go(engine, FULL)
    engine.send_chunk(tx, HEAD)  # type: ignore[arg-type]
    engine.end_content(tx)  # type: ignore[arg-type]
    engine.written()
    assert len(feed(engine, b"554 no\r\n")) == 1
    assert isinstance(tx.outcome, DataRefused)  # type: ignore[attr-defined]
    assert not engine.usable


def test_lock_step_data_and_unknown_size() -> None:
    engine = make_engine(LOCK_STEP)
    tx = engine.prepare_streamed(envelope(), HEAD, None)
    out = engine.start(tx)
    assert out == b"MAIL FROM:<a@example.com>\r\n"
    engine.written()
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == RCPT_B
    assert feed(engine, b"250 ok\r\n") == []
    assert engine.data_to_send() == b"DATA\r\n"
    assert feed(engine, b"354 go\r\n") == [ContentReady(tx)]
    assert engine.send_chunk(tx, b"x\r\n") == b"x\r\n"
    assert engine.end_content(tx) == b".\r\n"


def test_size_is_the_whole_content() -> None:
    engine = make_engine(PIPELINING)  # SIZE 1000
    with pytest.raises(MessageTooLarge, match="2000 bytes"):
        engine.prepare_streamed(envelope(), HEAD, 2000)
    no_size = make_engine(("PIPELINING",))
    tx = no_size.prepare_streamed(envelope(), HEAD, 5000)
    assert tx.mail.size is None


def test_chunks_need_the_go_ahead() -> None:
    engine = make_engine(PIPELINING)
    tx = engine.prepare_streamed(envelope(), HEAD, 100)
    with pytest.raises(LocalProtocolError, match="accepted envelope"):
        engine.send_chunk(tx, b"x")
    with pytest.raises(LocalProtocolError, match="accepted envelope"):
        engine.end_content(tx)


def test_protocol_errors_break_the_engine() -> None:
    engine = make_engine(PIPELINING)
    tx = go(engine, PIPELINING)
    engine.send_chunk(tx, b"x")  # type: ignore[arg-type]
    engine.receive_data(b"250 unasked\r\n")  # the server talks during the content
    with pytest.raises(RemoteProtocolError):
        engine.send_chunk(tx, b"y")  # type: ignore[arg-type]
    assert engine.broken
    other = make_engine(PIPELINING)
    tx = go(other, PIPELINING)
    other.receive_data(b"250 unasked\r\n")
    with pytest.raises(RemoteProtocolError):
        other.end_content(tx)  # type: ignore[arg-type]
    assert other.broken
    events(other)
