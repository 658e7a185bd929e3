"""Helpers for the protocol tests: drive a ClientConnection with plain bytes."""

from __future__ import annotations

import re
from collections.abc import Iterable

from lettre.envelope import Envelope
from lettre.protocol import NEED_DATA, ClientConnection, ClientState, Ehlo, Reply
from lettre.protocol.transactions import ContentReady, Replied, TransactionDone, TransactionEngine

EngineEvent = ContentReady | TransactionDone | Replied

EHLO_ALL = (
    b"250-mx.example greets client.example\r\n"
    b"250-PIPELINING\r\n"
    b"250-SIZE 10240000\r\n"
    b"250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n"
    b"250-CHUNKING\r\n"
    b"250-BINARYMIME\r\n"
    b"250-STARTTLS\r\n"
    b"250-DSN\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250-REQUIRETLS\r\n"
    b"250 AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2\r\n"
)
EHLO_PLAIN = b"250-mx.example\r\n250 8BITMIME\r\n"


def drain(conn: ClientConnection) -> list[Reply]:
    """Take every complete reply out of ``conn`` (stopping once it is closed)."""
    replies = []
    while conn.state is not ClientState.CLOSED:
        event = conn.next_event()
        if event is NEED_DATA:
            break
        replies.append(event)
    return replies


def feed(conn: ClientConnection, data: bytes, cuts: Iterable[int] = ()) -> list[Reply]:
    """Feed ``data`` cut at the given offsets, draining replies after each piece."""
    replies: list[Reply] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        piece = data[start:cut]
        start = max(start, cut)
        if piece:
            conn.receive_data(piece)
            replies.extend(drain(conn))
    return replies


def reply(conn: ClientConnection, data: bytes) -> Reply:
    """Feed ``data`` and return the single reply it holds."""
    replies = feed(conn, data)
    assert len(replies) == 1, replies
    return replies[0]


def connect(ehlo_reply: bytes | None = EHLO_ALL) -> ClientConnection:
    """A connection past the greeting and (unless None) a positive EHLO."""
    conn = ClientConnection()
    assert reply(conn, b"220 mx.example ESMTP\r\n").code == 220
    if ehlo_reply is not None:
        assert conn.send(Ehlo("client.example")) == b"EHLO client.example\r\n"
        assert reply(conn, ehlo_reply).code == 250
    return conn


def normalize(content: bytes) -> bytes:
    """An independent CRLF normaliser: every CR, LF or CRLF becomes CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", content)


def unstuff(encoded: bytes) -> bytes:
    """Undo DATA encoding: check and drop the terminator, drop stuffed dots."""
    assert encoded.endswith(b".\r\n")
    lines = encoded.split(b"\r\n")
    assert lines[-1] == b""
    assert lines[-2] == b"."
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines[:-2])


def exactly(text: str) -> str:
    """A ``match=`` pattern for an error message that must be ``text`` and nothing else."""
    return f"^{re.escape(text)}$"


# ------------------------------------------------------------ transaction engine


def ehlo_reply(keywords: tuple[str, ...]) -> bytes:
    """A positive EHLO reply from ``mx`` announcing ``keywords``, one per line."""
    lines = ["mx", *keywords]
    return b"".join(
        f"250{'-' if i < len(lines) - 1 else ' '}{line}\r\n".encode()
        for i, line in enumerate(lines)
    )


def session(keywords: tuple[str, ...]) -> ClientConnection:
    """A connection past the greeting and a positive EHLO announcing ``keywords``."""
    conn = ClientConnection()
    conn.receive_data(b"220 mx ESMTP\r\n")
    greeting = conn.next_event()
    assert greeting is not NEED_DATA
    assert greeting.code == 220
    assert conn.send(Ehlo("client.example")) == b"EHLO client.example\r\n"
    conn.receive_data(ehlo_reply(keywords))
    ehlo = conn.next_event()
    assert ehlo is not NEED_DATA
    assert ehlo.code == 250
    assert conn.state is ClientState.READY
    return conn


def envelope(*recipients: str, **dsn: object) -> Envelope:
    """From ``a@example.com`` to ``recipients`` (``b@example.com`` when none)."""
    return Envelope("a@example.com", recipients or ["b@example.com"], **dsn)  # type: ignore[arg-type]


def engine_events(engine: TransactionEngine) -> list[EngineEvent]:
    """Every event the engine has now, until it needs more data."""
    out: list[EngineEvent] = []
    while (event := engine.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def engine_feed(engine: TransactionEngine, data: bytes) -> list[EngineEvent]:
    """Hand the engine ``data`` and return the events it then has."""
    engine.receive_data(data)
    return engine_events(engine)
