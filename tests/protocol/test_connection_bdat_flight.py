"""BDAT LAST in the same flight as MAIL and RCPT (RFC 3030 with PIPELINING), bytes in and out.

A small message goes out as MAIL, every RCPT and ``BDAT <n> LAST`` with its
content, before any reply. The replies come back one per command, in order.
When every RCPT is refused the server refuses the BDAT and still holds the
reverse path, so the next MAIL must follow an RSET: the connection says so
(``needs_rset``) and refuses a MAIL sent too early.
"""

from __future__ import annotations

import pytest
from protocol_support import connect, feed

from lettre.errors import LocalProtocolError
from lettre.protocol import Bdat, ClientState, Mail, Rcpt, Rset

S = ClientState
CONTENT = b"Subject: hi\r\n\r\nbody\r\n"


def test_mail_rcpt_and_bdat_last_go_in_one_flight() -> None:
    conn = connect()
    out = conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com"), Rcpt("c@example.com")])
    out += conn.send(Bdat(CONTENT, last=True))
    assert out == (
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n"
        b"BDAT 21 LAST\r\n" + CONTENT
    )
    assert conn.awaiting == ("MAIL", "RCPT", "RCPT", "BDAT")
    assert conn.state is S.READY
    # No RCPT answered yet: a MAIL now could land in a transaction the server still holds.
    assert conn.needs_rset
    replies = feed(conn, b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no\r\n250 2.0.0 queued\r\n")
    assert [r.code for r in replies] == [250, 250, 550, 250]
    assert conn.awaiting == ()
    assert conn.state is S.READY
    assert not conn.needs_rset
    assert conn.send(Mail("a@example.com")) == b"MAIL FROM:<a@example.com>\r\n"


def test_every_rcpt_refused_then_rset_before_the_next_mail() -> None:
    conn = connect()
    out = conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")])
    out += conn.send(Bdat(CONTENT, last=True))
    replies = feed(
        conn,
        b"250 2.1.0 ok\r\n550 5.1.1 unknown user\r\n554 5.5.1 Error: no valid recipients\r\n",
    )
    assert [r.code for r in replies] == [250, 550, 554]
    assert conn.state is S.READY
    assert conn.accepted_recipients == 0
    assert conn.needs_rset
    with pytest.raises(LocalProtocolError, match="send RSET first"):
        conn.send(Mail("a@example.com"))
    assert conn.state is S.ERROR


@pytest.mark.parametrize("batched", [False, True], ids=["send", "send_envelope"])
def test_mail_chained_after_bdat_last_needs_rset_in_between(batched: bool) -> None:
    conn = connect()
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")])
    conn.send(Bdat(CONTENT, last=True))

    def mail() -> bytes:
        if batched:
            return conn.send_envelope(Mail("a@example.com"), [Rcpt("c@example.com")])
        return conn.send(Mail("a@example.com"))

    with pytest.raises(LocalProtocolError, match="send RSET first"):
        mail()

    conn = connect()
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")])
    conn.send(Bdat(CONTENT, last=True))
    second = conn.send(Rset())
    assert not conn.needs_rset
    second += conn.send_envelope(Mail("a@example.com"), [Rcpt("c@example.com")])
    second += conn.send(Bdat(CONTENT, last=True))
    assert second == (
        b"RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<c@example.com>\r\n"
        b"BDAT 21 LAST\r\n" + CONTENT
    )
    assert conn.awaiting == ("MAIL", "RCPT", "BDAT", "RSET", "MAIL", "RCPT", "BDAT")
    # The first transaction was refused whole; RSET cleared it; the second went through.
    replies = feed(
        conn,
        b"250 ok\r\n550 no\r\n554 no valid recipients\r\n250 reset\r\n"
        b"250 ok\r\n250 ok\r\n250 queued\r\n",
    )
    assert [r.code for r in replies] == [250, 550, 554, 250, 250, 250, 250]
    assert conn.awaiting == ()
    assert conn.state is S.READY
    assert not conn.needs_rset


def test_mail_refused_leaves_no_transaction_to_reset() -> None:
    conn = connect()
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")])
    conn.send(Bdat(CONTENT, last=True))
    replies = feed(
        conn, b"550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n"
    )
    assert [r.code for r in replies] == [550, 503, 503]
    assert conn.state is S.READY
    assert not conn.needs_rset
    assert conn.send(Mail("c@example.com")) == b"MAIL FROM:<c@example.com>\r\n"


def test_an_accepted_rcpt_is_enough_even_before_the_bdat_reply() -> None:
    conn = connect()
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com"), Rcpt("c@example.com")])
    conn.send(Bdat(CONTENT, last=True))
    feed(conn, b"250 ok\r\n550 no\r\n")
    assert conn.needs_rset
    feed(conn, b"250 ok\r\n")
    assert conn.awaiting == ("BDAT",)
    assert not conn.needs_rset
    conn.send(Mail("a@example.com"))  # pipelined behind the BDAT, which ends the transaction
    assert conn.awaiting == ("BDAT", "MAIL")


def test_bdat_last_after_the_rcpt_replies_needs_no_rset() -> None:
    # The path of big messages and require_all_recipients: the content waits
    # for the RCPT replies, so the next envelope may follow it at once.
    conn = connect()
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")])
    feed(conn, b"250 ok\r\n250 ok\r\n")
    out = conn.send(Bdat(CONTENT, last=True)) + conn.send(Mail("a@example.com"))
    assert out.endswith(b"MAIL FROM:<a@example.com>\r\n")
    assert not conn.needs_rset
    assert conn.awaiting == ("BDAT", "MAIL")


def test_a_421_forgets_the_open_transaction() -> None:
    conn = connect()
    conn.send_envelope(Mail("a@example.com"), [Rcpt("b@example.com")])
    conn.send(Bdat(CONTENT, last=True))
    feed(conn, b"421 4.3.2 shutting down\r\n")
    assert conn.state is S.CLOSED
    assert not conn.needs_rset
