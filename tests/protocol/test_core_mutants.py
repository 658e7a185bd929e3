"""Reply parsing details that mutation testing showed no other test pinned down."""

from __future__ import annotations

import pytest

from lettre.errors import RemoteProtocolError
from lettre.protocol.replies import ReplyParser
from lettre.results import Reply


def test_an_empty_line_before_a_reply_is_malformed() -> None:
    parser = ReplyParser()
    parser.feed(b"\n250 ok\r")
    with pytest.raises(RemoteProtocolError, match=r"^malformed reply line b''$"):
        parser.next_reply()


def test_a_first_line_that_is_only_the_enhanced_code_keeps_it() -> None:
    parser = ReplyParser()
    parser.feed(b"250-2.0.0\r\n250 ok\r\n")
    assert parser.next_reply() == Reply(250, "2.0.0", ("", "ok"))
    assert parser.next_reply() is None
