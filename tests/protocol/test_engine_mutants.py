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
from protocol_support import exactly

from lettre.envelope import Envelope
from lettre.errors import LocalProtocolError, MessageError, MessageTooLarge
from lettre.protocol import NEED_DATA, ClientConnection, ClientState, Ehlo, Reply
from lettre.protocol.extensions import Capabilities
from lettre.protocol.mail import nul_error, prepare_transaction
from lettre.protocol.transactions import (
    ContentReady,
    Replied,
    TransactionDone,
    TransactionEngine,
)
from lettre.protocol.transcript import reply_transcript

Event = ContentReady | TransactionDone | Replied

CONTENT = b"Subject: x\r\n\r\nbody\r\n"  # 20 octets
RCPT_B = b"RCPT TO:<b@example.com>\r\n"
DATA = b"DATA\r\n"


def ehlo_reply(keywords: tuple[str, ...]) -> bytes:
    lines = ["mx", *keywords]
    return b"".join(
        f"250{'-' if i < len(lines) - 1 else ' '}{line}\r\n".encode()
        for i, line in enumerate(lines)
    )


def session(keywords: tuple[str, ...]) -> ClientConnection:
    """A connection past the greeting and a positive EHLO announcing ``keywords``."""
    conn = ClientConnection()
    conn.receive_data(b"220 mx ESMTP\r\n")
    assert conn.next_event() is not NEED_DATA
    conn.send(Ehlo("client.example"))
    conn.receive_data(ehlo_reply(keywords))
    assert conn.next_event() is not NEED_DATA
    assert conn.state is ClientState.READY
    return conn


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


def envelope(*recipients: str) -> Envelope:
    return Envelope("a@example.com", list(recipients) or ["b@example.com"])


def events(engine: TransactionEngine) -> list[Event]:
    out: list[Event] = []
    while (event := engine.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def feed(engine: TransactionEngine, data: bytes) -> list[Event]:
    engine.receive_data(data)
    return events(engine)


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
