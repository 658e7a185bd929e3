"""Properties of content sent through a ClientConnection, for any chunking."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_support import connect, feed, normalize, unstuff

from lettre.protocol import Bdat, Data, EndOfData, Mail, MessageData, Rcpt

PIECES = st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"\r\n.\r\n", b"a", b"\xff", b"\x00"])
CHUNKS = st.lists(st.lists(PIECES, max_size=20).map(b"".join), max_size=8)


def expected(content: bytes) -> bytes:
    clean = normalize(content)
    return clean if not clean or clean.endswith(b"\r\n") else clean + b"\r\n"


@settings(max_examples=200, deadline=None)
@given(CHUNKS)
def test_data_through_the_connection(chunks: list[bytes]) -> None:
    conn = connect()
    sent = b"".join(conn.send(c) for c in (Mail("a@b"), Rcpt("c@d"), Data()))
    feed(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
    for chunk in chunks:
        sent += conn.send(MessageData(chunk))
    sent += conn.send(EndOfData())
    # The whole stream, commands included, holds the terminator exactly once, at the end.
    assert sent.count(b"\r\n.\r\n") == 1
    assert sent.endswith(b"\r\n.\r\n")
    content = sent[sent.index(b"DATA\r\n") + len(b"DATA\r\n") :]
    assert unstuff(content) == expected(b"".join(chunks))


BDAT_HEADER = re.compile(rb"BDAT ([0-9]+)( LAST)?\r\n")


@settings(max_examples=200, deadline=None)
@given(CHUNKS, st.booleans())
def test_bdat_sizes_are_exact(chunks: list[bytes], binary: bool) -> None:
    conn = connect()
    mail = Mail("a@b", body="BINARYMIME" if binary else None)
    conn.send(mail)
    conn.send(Rcpt("c@d"))
    stream = b""
    chunks = [*chunks, b""]
    for index, chunk in enumerate(chunks):
        stream += conn.send(Bdat(chunk, last=index == len(chunks) - 1))
    # Walk the stream using only the announced sizes.
    content = b""
    position = 0
    lasts = 0
    while position < len(stream):
        header = BDAT_HEADER.match(stream, position)
        assert header is not None
        size = int(header.group(1))
        position = header.end() + size
        content += stream[header.end() : position]
        lasts += header.group(2) is not None
    assert position == len(stream)
    assert lasts == 1
    assert content == (b"".join(chunks) if binary else expected(b"".join(chunks)))


@settings(max_examples=200, deadline=None)
@given(CHUNKS, st.integers(0, 8))
def test_send_content_equals_content_in_pieces(chunks: list[bytes], whole_from: int) -> None:
    # The first chunks one by one, the rest as one piece with send_content().
    pieces = [*chunks[:whole_from], b"".join(chunks[whole_from:])]
    sent = {}
    for batched in (False, True):
        conn = connect()
        conn.send_envelope(Mail("a@b"), [Rcpt("c@d")], data=True)
        feed(conn, b"250 ok\r\n250 ok\r\n354 go\r\n")
        out = b"".join(conn.send(MessageData(piece)) for piece in pieces[:-1])
        if batched:
            out += conn.send_content(pieces[-1])
        else:
            out += conn.send(MessageData(pieces[-1])) + conn.send(EndOfData())
        sent[batched] = out
    assert sent[True] == sent[False]
    assert unstuff(sent[True]) == expected(b"".join(chunks))
