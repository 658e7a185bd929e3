"""The streaming reply parser: any chunking, strictness, bounds."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from protocol_support import exactly

from lettre.errors import RemoteProtocolError
from lettre.protocol.replies import Reply, ReplyParser, queue_id_from_reply

SAMPLES: list[tuple[bytes, Reply]] = [
    (b"220 mx.example ESMTP ready\r\n", Reply(220, None, ("mx.example ESMTP ready",))),
    (
        b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
        Reply(250, None, ("mx.example", "PIPELINING", "SIZE 1000")),
    ),
    (b"550 5.1.1 <x@y>: no such user\r\n", Reply(550, "5.1.1", ("<x@y>: no such user",))),
    (
        b"452-4.5.3 Too many recipients\r\n452 4.5.3 Try later\r\n",
        Reply(452, "4.5.3", ("Too many recipients", "Try later")),
    ),
    (b"250\r\n", Reply(250, None, ("",))),
    (b"250-\r\n250 \r\n", Reply(250, None, ("", ""))),
    (b"250 2.0.0\r\n", Reply(250, "2.0.0", ("",))),
    (
        b"354 End data with <CR><LF>.<CR><LF>\n",
        Reply(354, None, ("End data with <CR><LF>.<CR><LF>",)),
    ),
    ("250 Grüße\r\n".encode(), Reply(250, None, ("Grüße",))),
    (b"250 bad \xff\xfe utf8\r\n", Reply(250, None, ("bad \ufffd\ufffd utf8",))),
    # The enhanced code's class must match the reply code to count as one.
    (b"250 5.1.1 looks like a code\r\n", Reply(250, None, ("5.1.1 looks like a code",))),
    (b"250 2.1.0x not a code\r\n", Reply(250, None, ("2.1.0x not a code",))),
    (b"334 VXNlcm5hbWU6\r\n", Reply(334, None, ("VXNlcm5hbWU6",))),
    (
        b"250-first line\r\n250-2.0.0 second line\r\n250 2.0.1 third\r\n",
        Reply(250, "2.0.0", ("first line", "second line", "third")),
    ),
]


def parse_all(parser: ReplyParser, data: bytes, cuts: list[int]) -> list[Reply]:
    replies = []
    start = 0
    for cut in [*cuts, len(data)]:
        parser.feed(data[start:cut])
        start = cut
        while (reply := parser.next_reply()) is not None:
            replies.append(reply)
    return replies


@pytest.mark.parametrize(("raw", "expected"), SAMPLES)
def test_every_split_offset(raw: bytes, expected: Reply) -> None:
    for cut in range(len(raw) + 1):
        assert parse_all(ReplyParser(), raw, [cut]) == [expected], cut
    assert parse_all(ReplyParser(), raw, list(range(1, len(raw)))) == [expected]


def test_many_replies_in_one_chunk_and_across_chunks() -> None:
    stream = b"".join(raw for raw, _ in SAMPLES)
    expected = [reply for _, reply in SAMPLES]
    assert parse_all(ReplyParser(), stream, []) == expected
    for cut in range(0, len(stream), 7):
        assert parse_all(ReplyParser(), stream, [cut, min(cut + 13, len(stream))]) == expected


def test_reply_properties() -> None:
    reply = Reply(452, "4.5.3", ("a", "b"))
    assert reply.text == "a\nb"
    assert reply.is_transient
    assert not reply.is_permanent
    assert not reply.is_positive


def test_buffered_and_unparsed() -> None:
    parser = ReplyParser()
    parser.feed(b"250-a\r\n250")
    assert parser.next_reply() is None
    assert parser.unparsed == 3
    assert parser.buffered == 10
    parser.feed(b" b\r\n220 next\r\n")
    assert parser.next_reply() == Reply(250, None, ("a", "b"))
    assert parser.buffered == parser.unparsed == 10
    assert parser.next_reply() == Reply(220, None, ("next",))
    assert parser.buffered == 0
    assert parser.next_reply() is None
    parser.feed(b"")
    assert parser.buffered == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"\r\n",
        b"25\r\n",
        b"2500 x\r\n",
        b"250x\r\n",
        b"25a ok\r\n",
        b"a50 ok\r\n",
        b"150 preliminary\r\n",
        b"650 nonsense\r\n",
        b"099 nonsense\r\n",
        b"250\tok\r\n",
        b"250\r\r\n",
        b"250-a\r\n251 b\r\n",
        b"HTTP/1.1 400 Bad Request\r\n",
        b" 250 ok\r\n",
    ],
)
def test_malformed_lines(raw: bytes) -> None:
    for cut in range(len(raw) + 1):
        parser = ReplyParser()
        with pytest.raises(RemoteProtocolError):
            parse_all(parser, raw, [cut])
        # The parser stays broken.
        with pytest.raises(RemoteProtocolError):
            parser.next_reply()


def test_garbage_is_rejected_before_any_line_end() -> None:
    parser = ReplyParser()
    parser.feed(b"HTTP/1.1")
    with pytest.raises(RemoteProtocolError, match="malformed"):
        parser.next_reply()
    parser = ReplyParser()
    parser.feed(b"250;")
    with pytest.raises(RemoteProtocolError, match="malformed"):
        parser.next_reply()


def test_partial_code_and_cr_wait_for_more() -> None:
    for partial in (b"2", b"25", b"250", b"250\r", b"250-", b"250 "):
        parser = ReplyParser()
        parser.feed(partial)
        assert parser.next_reply() is None


def test_line_length_bound() -> None:
    ok = b"250 " + b"x" * 12 + b"\r\n"
    assert parse_all(ReplyParser(max_line_length=16), ok, []) == [Reply(250, None, ("x" * 12,))]
    long = b"250 " + b"x" * 13 + b"\r\n"
    with pytest.raises(RemoteProtocolError, match="line longer"):
        parse_all(ReplyParser(max_line_length=16), long, [])
    # Without a line end: detected as soon as the excess is buffered.
    parser = ReplyParser(max_line_length=16)
    parser.feed(b"250 " + b"x" * 13)
    assert parser.next_reply() is None  # 17 octets: could still be 16 + CR
    parser.feed(b"x")
    with pytest.raises(RemoteProtocolError, match="line longer"):
        parser.next_reply()


def test_lines_per_reply_bound() -> None:
    three = b"250-a\r\n250-b\r\n250 c\r\n"
    assert parse_all(ReplyParser(max_lines=3), three, [])[0].lines == ("a", "b", "c")
    with pytest.raises(RemoteProtocolError, match="more than 2 lines"):
        parse_all(ReplyParser(max_lines=2), three, [])


def test_reply_size_bound() -> None:
    raw = b"250-aaaa\r\n250 bbbb\r\n"  # 20 octets
    assert len(parse_all(ReplyParser(max_reply_size=20), raw, [])) == 1
    with pytest.raises(RemoteProtocolError, match="reply longer"):
        parse_all(ReplyParser(max_reply_size=19), raw, [])
    # Detected on a partial line too.
    parser = ReplyParser(max_reply_size=12)
    parser.feed(b"250-aaaa\r\n250")
    with pytest.raises(RemoteProtocolError, match="reply longer"):
        parser.next_reply()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_line_length": 2},
        {"max_lines": 0},
        {"max_reply_size": 4},
        {"max_line_length": True},
        {"max_lines": 2.0},
    ],
)
def test_bad_bounds(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be an int"):
        ReplyParser(**kwargs)  # type: ignore[arg-type]


def test_long_message_is_shortened_in_errors() -> None:
    parser = ReplyParser()
    parser.feed(b"250-a\r\n" + b"251 " + b"y" * 200 + b"\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_reply()
    assert len(str(info.value)) < 200


def test_buffer_is_released_once_consumed() -> None:
    parser = ReplyParser()
    parser.feed(b"250 ok\r\n" * 1000 + b"25")
    for _ in range(1000):
        assert parser.next_reply() == Reply(250, None, ("ok",))
    assert parser.next_reply() is None
    assert parser.buffered == 2
    parser.feed(b"0 end\r\n")
    assert parser.next_reply() == Reply(250, None, ("end",))
    assert parser.next_reply() is None
    assert parser.buffered == 0


# -- properties --------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="\r\n"),
    max_size=40,
)
CODES = st.integers(200, 599)


@st.composite
def replies(draw: st.DrawFn) -> tuple[bytes, int, list[str]]:
    code = draw(CODES)
    lines = draw(st.lists(TEXT, min_size=1, max_size=5))
    raw = b"".join(
        f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n".encode()
        for i, line in enumerate(lines)
    )
    return raw, code, lines


@settings(max_examples=200, deadline=None)
@given(replies(), st.lists(st.integers(0, 400), max_size=6))
def test_any_valid_reply_any_chunking(
    sample: tuple[bytes, int, list[str]], cuts: list[int]
) -> None:
    raw, code, lines = sample
    cuts = sorted(min(c, len(raw)) for c in cuts)
    (parsed,) = parse_all(ReplyParser(), raw, cuts)
    assert parsed.code == code
    assert len(parsed.lines) == len(lines)
    if parsed.enhanced_status is None:
        assert list(parsed.lines) == lines
    else:
        # The enhanced status code was taken out of the text.
        assert parsed.enhanced_status[0] == str(code)[0]
        assert any(line.startswith(parsed.enhanced_status) for line in lines)


PIECES = st.sampled_from(
    [
        b"250",
        b"354",
        b"-",
        b" ",
        b"\r\n",
        b"\n",
        b"\r",
        b"2.1.0 ",
        b"x" * 30,
        b"\xff",
        b"1",
        b"\x00",
    ]
)
NOISE = st.one_of(st.binary(max_size=300), st.lists(PIECES, max_size=60).map(b"".join))


@settings(max_examples=200, deadline=None)
@given(st.lists(NOISE, min_size=1, max_size=8))
def test_random_bytes_never_hang_nor_grow(chunks: list[bytes]) -> None:
    max_line, max_lines, max_size = 64, 4, 160
    parser = ReplyParser(max_line_length=max_line, max_lines=max_lines, max_reply_size=max_size)
    for chunk in chunks:
        parser.feed(chunk)
        try:
            for _ in range(parser.buffered + 1):  # each reply consumes octets
                reply = parser.next_reply()
                if reply is None:
                    break
                assert len(reply.lines) <= max_lines
                assert all(len(line) <= max_line for line in reply.lines)
            else:
                pytest.fail("the parser returned more replies than octets")
        except RemoteProtocolError:
            return
        # After a None, only an incomplete reply is held, and within bounds.
        assert parser.buffered <= max_size
        assert parser.unparsed <= max_line + 1


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"550 no\rFAKE LOG LINE\r\n", "no\ufffdFAKE LOG LINE"),
        (b"550 \x1b[2Jcleared\r\n", "\ufffd[2Jcleared"),
        (b"550 a\x00b\x07c\x7fd\r\n", "a\ufffdb\ufffdc\ufffdd"),
        (b"550 c1 \xc2\x9b controls\r\n", "c1 \ufffd controls"),
        (b"550 tab\tkept, \xc3\xa5 kept\r\n", "tab\tkept, \u00e5 kept"),
    ],
)
def test_control_characters_in_reply_text_are_replaced(raw: bytes, text: str) -> None:
    parser = ReplyParser()
    parser.feed(raw)
    reply = parser.next_reply()
    assert reply is not None
    assert reply.text == text


# -- the per-parser cache of one-line replies --------------------------------------


def one(parser: ReplyParser, raw: bytes) -> Reply:
    parser.feed(raw)
    reply = parser.next_reply()
    assert reply is not None
    assert parser.next_reply() is None
    return reply


def test_a_repeated_one_line_reply_is_the_same_object() -> None:
    parser = ReplyParser()
    first = one(parser, b"250 2.1.5 ok\r\n")
    assert first == Reply(250, "2.1.5", ("ok",))
    assert one(parser, b"250 2.1.5 ok\r\n") is first
    # Several in one chunk, and split anywhere.
    parser.feed(b"250 2.1.5 ok\r\n250 2.1.5 ok\r\n")
    assert parser.next_reply() is first
    assert parser.next_reply() is first
    assert parser.next_reply() is None
    parser.feed(b"250 2.1")
    assert parser.next_reply() is None
    parser.feed(b".5 ok\r\n")
    assert parser.next_reply() is first
    assert parser.buffered == 0
    # The line ending is part of the key: a bare LF is a line of its own.
    assert one(parser, b"250 2.1.5 ok\n") == first
    assert one(parser, b"250 2.1.5 ok\n") is not first


def test_other_parsers_do_not_share_the_cache() -> None:
    line = b"250 " + b"x" * 12 + b"\r\n"
    assert one(ReplyParser(max_line_length=16), line).lines == ("x" * 12,)
    strict = ReplyParser(max_line_length=15)
    strict.feed(line)
    with pytest.raises(RemoteProtocolError, match="line longer"):
        strict.next_reply()


def test_cache_is_emptied_when_full() -> None:
    parser = ReplyParser()
    first = one(parser, b"250 0\r\n")
    others = [one(parser, b"250 %d\r\n" % n) for n in range(1, 64)]
    assert one(parser, b"250 0\r\n") is first
    assert [one(parser, b"250 %d\r\n" % n) for n in range(1, 64)] == others
    # A 65th distinct line empties the cache before it is stored.
    newest = one(parser, b"250 64\r\n")
    assert one(parser, b"250 64\r\n") is newest
    again = one(parser, b"250 0\r\n")
    assert again == first
    assert again is not first


def test_long_lines_are_not_cached() -> None:
    parser = ReplyParser()
    at_limit = b"250 " + b"y" * 250 + b"\r\n"  # 256 octets: cached
    over = b"250 " + b"z" * 251 + b"\r\n"  # 257 octets: parsed every time
    kept = one(parser, at_limit)
    assert one(parser, at_limit) is kept
    parsed = one(parser, over)
    again = one(parser, over)
    assert again == parsed == Reply(250, None, ("z" * 251,))
    assert again is not parsed


def test_cached_line_inside_a_multi_line_reply_is_parsed_as_a_line() -> None:
    parser = ReplyParser()
    ok = one(parser, b"250 ok\r\n")
    assert one(parser, b"250-first\r\n250 ok\r\n") == Reply(250, None, ("first", "ok"))
    # The last line of a multi-line reply is not cached as a reply of its own.
    assert one(parser, b"250 ok\r\n") is ok
    assert one(parser, b"250-a\r\n250 last\r\n") == Reply(250, None, ("a", "last"))
    assert one(parser, b"250 last\r\n") == Reply(250, None, ("last",))
    # Codes are still checked against the reply being assembled.
    one(parser, b"251 ok\r\n")
    parser.feed(b"250-a\r\n251 ok\r\n")
    with pytest.raises(RemoteProtocolError, match="mixes codes"):
        parser.next_reply()


def test_cached_line_still_counts_against_the_reply_bounds() -> None:
    line = b"250 " + b"x" * 14 + b"\r\n"  # 20 octets
    parser = ReplyParser(max_reply_size=20)
    cached = one(parser, line)
    assert one(parser, line) is cached
    parser.feed(b"250-a\r\n" + line)
    with pytest.raises(RemoteProtocolError, match="reply longer"):
        parser.next_reply()
    parser = ReplyParser(max_lines=1)
    one(parser, b"250 b\r\n")
    parser.feed(b"250-a\r\n250 b\r\n")
    with pytest.raises(RemoteProtocolError, match="more than 1 lines"):
        parser.next_reply()


def test_a_broken_parser_never_answers_from_the_cache() -> None:
    parser = ReplyParser()
    one(parser, b"250 ok\r\n")
    parser.feed(b"bad\r\n250 ok\r\n")
    with pytest.raises(RemoteProtocolError, match="malformed"):
        parser.next_reply()
    with pytest.raises(RemoteProtocolError, match="malformed"):
        parser.next_reply()


POOL = st.lists(replies(), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(POOL, st.lists(st.integers(0, 3), min_size=1, max_size=12), st.lists(st.integers(0, 2000)))
def test_one_parser_for_a_stream_equals_a_fresh_parser_per_reply(
    pool: list[tuple[bytes, int, list[str]]], picks: list[int], cuts: list[int]
) -> None:
    # Replies drawn from a small pool repeat, so the cache answers most of them.
    raws = [pool[pick % len(pool)][0] for pick in picks]
    expected = [parse_all(ReplyParser(), raw, [])[0] for raw in raws]
    stream = b"".join(raws)
    cuts = sorted(min(c, len(stream)) for c in cuts)
    assert parse_all(ReplyParser(), stream, cuts) == expected


# -- one-line replies: the short way and the long way agree --------------------------


def test_one_line_reply_bounds_at_the_edges() -> None:
    # max_line_length=16: a one-line reply of 16 octets is accepted with either
    # line ending, one of 17 octets is not.
    for ending in (b"\r\n", b"\n"):
        ok = b"250 " + b"x" * 12 + ending
        assert one(ReplyParser(max_line_length=16), ok) == Reply(250, None, ("x" * 12,))
        parser = ReplyParser(max_line_length=16)
        parser.feed(b"250 " + b"x" * 13 + ending)
        with pytest.raises(RemoteProtocolError, match="line longer"):
            parser.next_reply()
    # max_reply_size=12 counts the line ending.
    assert one(ReplyParser(max_reply_size=12), b"250 2.0.0 \r\n") == Reply(250, "2.0.0", ("",))
    assert one(ReplyParser(max_reply_size=12), b"250 abcdefg\n") == Reply(250, None, ("abcdefg",))
    for raw in (b"250 abcdefg\r\n", b"250 abcdefgh\n"):
        parser = ReplyParser(max_reply_size=12)
        parser.feed(raw)
        with pytest.raises(RemoteProtocolError, match="reply longer"):
            parser.next_reply()


LINE_PIECES = st.sampled_from(
    [b"250", b"2", b"5", b" ", b"-", b".", b"2.1.5", b"5.1.1", b"2.0.0 ", b"x", b"\r", b"\xff"]
)
ONE_LINES = st.tuples(
    st.sampled_from([b"250", b"221", b"354", b"452", b"550", b"199", b"25x"]),
    st.lists(LINE_PIECES, max_size=8).map(b"".join),
    st.sampled_from([b"\r\n", b"\n"]),
)


@settings(max_examples=300, deadline=None)
@given(ONE_LINES)
def test_one_line_reply_parses_as_the_last_line_of_a_longer_one(
    parts: tuple[bytes, bytes, bytes],
) -> None:
    code, rest, ending = parts
    assume(not rest.startswith(b"-"))  # that would start a multi-line reply
    line = code + rest + ending
    # As the last line of a two-line reply, the line is parsed the long way.
    longer = code + b"-first\r\n" + line
    single, joined = parse_or_error(line), parse_or_error(longer)
    if isinstance(single, str):
        assert isinstance(joined, str)
        if code.isdigit() and code[0] in b"2345":
            assert joined == single
        return
    (reply,) = single
    assert joined == [Reply(reply.code, reply.enhanced_status, ("first", *reply.lines))]


def parse_or_error(raw: bytes) -> list[Reply] | str:
    try:
        return parse_all(ReplyParser(), raw, [])
    except RemoteProtocolError as exc:
        return str(exc)


def test_parsed_replies_are_ordinary_frozen_replies() -> None:
    # The parser builds replies without Reply.__init__: they must not differ.
    assert [field.name for field in dataclasses.fields(Reply)] == [
        "code",
        "enhanced_status",
        "lines",
    ]
    for raw, expected in SAMPLES:
        (parsed,) = parse_all(ReplyParser(), raw, [])
        assert type(parsed) is Reply
        assert parsed == expected
        assert hash(parsed) == hash(expected)
        assert repr(parsed) == repr(expected)
        assert dataclasses.astuple(parsed) == dataclasses.astuple(expected)
        assert dataclasses.replace(parsed, code=599) == dataclasses.replace(expected, code=599)
        with pytest.raises(dataclasses.FrozenInstanceError):
            parsed.code = 200  # type: ignore[misc]


# -- error texts, bounds with several lines buffered, the default bounds --------------


@pytest.mark.parametrize("length", [79, 80])
def test_a_malformed_line_of_up_to_80_octets_is_quoted_whole(length: int) -> None:
    line = b"250x" + b"y" * (length - 4)
    parser = ReplyParser()
    parser.feed(line + b"\r\n")
    with pytest.raises(RemoteProtocolError, match=exactly(f"malformed reply line {line!r}")):
        parser.next_reply()


@pytest.mark.parametrize("length", [81, 300])
def test_a_malformed_line_over_80_octets_is_shortened(length: int) -> None:
    line = b"250x" + b"y" * (length - 4)
    parser = ReplyParser()
    parser.feed(b"250-first\r\n" + line + b"\r\n")
    shown = repr(line[:80] + b"...")
    with pytest.raises(RemoteProtocolError, match=exactly(f"malformed reply line {shown}")):
        parser.next_reply()
    # The parser stays broken, with the same message.
    with pytest.raises(RemoteProtocolError, match=exactly(f"malformed reply line {shown}")):
        parser.next_reply()


def test_a_malformed_partial_line_shows_its_first_four_octets() -> None:
    parser = ReplyParser()
    parser.feed(b"HTTP/1.1 200 OK")
    with pytest.raises(RemoteProtocolError, match=exactly("malformed reply line b'HTTP'...")):
        parser.next_reply()


def test_the_bound_error_texts() -> None:
    parser = ReplyParser(max_line_length=10)
    parser.feed(b"250 " + b"x" * 7 + b"\r\n")
    with pytest.raises(RemoteProtocolError, match=exactly("reply line longer than 10 octets")):
        parser.next_reply()
    parser = ReplyParser(max_lines=2)
    parser.feed(b"250-a\r\n250-b\r\n250 c\r\n")
    with pytest.raises(RemoteProtocolError, match=exactly("reply has more than 2 lines")):
        parser.next_reply()
    parser = ReplyParser(max_reply_size=10)
    parser.feed(b"250-a\r\n250 b\r\n")
    with pytest.raises(RemoteProtocolError, match=exactly("reply longer than 10 octets")):
        parser.next_reply()
    parser = ReplyParser()
    parser.feed(b"250-a\r\n550 b\r\n")
    with pytest.raises(
        RemoteProtocolError, match=exactly("multi-line reply mixes codes 250 and 550")
    ):
        parser.next_reply()
    with pytest.raises(ValueError, match=exactly("max_line_length must be an int >= 3, not 2")):
        ReplyParser(max_line_length=2)
    with pytest.raises(ValueError, match=exactly("max_lines must be an int >= 1, not 0")):
        ReplyParser(max_lines=0)
    with pytest.raises(ValueError, match=exactly("max_reply_size must be an int >= 5, not 4")):
        ReplyParser(max_reply_size=4)


def test_the_smallest_bounds_are_accepted() -> None:
    parser = ReplyParser(max_line_length=3, max_lines=1, max_reply_size=5)
    assert one(parser, b"250\r\n") == Reply(250, None, ("",))
    assert one(ReplyParser(max_reply_size=5), b"250\r\n") == Reply(250, None, ("",))


def test_line_length_with_several_lines_buffered() -> None:
    # Complete lines after the first: each is measured from its own start.
    raw = b"250-aaaaaa\r\n250-bbbbbb\r\n250 cccccc\r\n"  # lines of 10 octets
    assert parse_all(ReplyParser(max_line_length=10), raw, [])[0].lines == (
        "aaaaaa",
        "bbbbbb",
        "cccccc",
    )
    with pytest.raises(RemoteProtocolError, match="line longer than 9"):
        parse_all(ReplyParser(max_line_length=9), raw, [])
    # Replies one after the other in one chunk: the same.
    two = b"250 aaaaaa\r\n251 bbbbbb\r\n"
    assert [r.code for r in parse_all(ReplyParser(max_line_length=10), two, [])] == [250, 251]
    # A partial line after complete ones: measured from its own start, CR allowed.
    parser = ReplyParser(max_line_length=10)
    parser.feed(b"250-first\r\n250 abcdefg")  # 11 octets pending: 10 and a CR, maybe
    assert parser.next_reply() is None
    assert parser.unparsed == 11
    parser.feed(b"h")
    with pytest.raises(RemoteProtocolError, match=exactly("reply line longer than 10 octets")):
        parser.next_reply()
    # The same with a whole reply before the partial line.
    parser = ReplyParser(max_line_length=10)
    parser.feed(b"250 one\r\n250 abcdef")
    assert parser.next_reply() == Reply(250, None, ("one",))
    assert parser.next_reply() is None
    parser.feed(b"\r")
    assert parser.next_reply() is None
    parser.feed(b"\n")
    assert parser.next_reply() == Reply(250, None, ("abcdef",))


def test_reply_size_counts_the_lines_already_taken_from_the_buffer() -> None:
    # 250-aaaa\r\n is 10 octets; the partial second line brings the total over 15.
    parser = ReplyParser(max_reply_size=15)
    parser.feed(b"250-aaaa\r\n25")
    assert parser.next_reply() is None
    assert parser.buffered == 12
    parser.feed(b"0 b")
    assert parser.next_reply() is None  # 15 octets
    parser.feed(b"b")
    with pytest.raises(RemoteProtocolError, match=exactly("reply longer than 15 octets")):
        parser.next_reply()


def _long_reply(lines: int, text: bytes = b"x") -> bytes:
    return b"".join(b"250-" + text + b"\r\n" for _ in range(lines - 1)) + b"250 " + text + b"\r\n"


def test_the_default_bounds() -> None:
    # max_line_length=2048
    ok = b"250 " + b"x" * 2044 + b"\r\n"
    assert one(ReplyParser(), ok).text == "x" * 2044
    parser = ReplyParser()
    parser.feed(b"250 " + b"x" * 2045 + b"\r\n")
    with pytest.raises(RemoteProtocolError, match=exactly("reply line longer than 2048 octets")):
        parser.next_reply()
    # max_lines=256
    assert len(one(ReplyParser(), _long_reply(256)).lines) == 256
    parser = ReplyParser()
    parser.feed(_long_reply(257))
    with pytest.raises(RemoteProtocolError, match=exactly("reply has more than 256 lines")):
        parser.next_reply()
    # max_reply_size=65536: 64 lines of 1024 octets, line endings included.
    assert len(one(ReplyParser(), _long_reply(64, b"y" * 1018)).lines) == 64
    parser = ReplyParser()
    parser.feed(_long_reply(64, b"y" * 1018) + b"250 z\r\n")
    assert parser.next_reply() is not None
    parser = ReplyParser()
    parser.feed(b"250-z\r\n" + _long_reply(64, b"y" * 1018))
    with pytest.raises(RemoteProtocolError, match=exactly("reply longer than 65536 octets")):
        parser.next_reply()


# -- queue ids in final replies ------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "queue_id"),
    [
        (("Ok: queued as 4Xyz1234AB",), "4Xyz1234AB"),
        (("2.0.0 Ok: QUEUED AS  <abc.def@x>",), "abc.def@x"),
        (("OK id=1rABCD-0001AB-CD",), "1rABCD-0001AB-CD"),
        (("OK ID=<1rABCD-0001AB-CD>",), "1rABCD-0001AB-CD"),
        (("Ok: queued as ABC123.",), "ABC123"),
        (("Ok: queued as ABC123...",), "ABC123"),
        (("OK",), None),
        (("queued as", ""), None),
        (("queued as -x",), None),
        (("xid=ABC",), None),
        (("OK id=abc, queued as XYZ",), "XYZ"),
        (("OK id=abc", "then queued as XYZ"), "XYZ"),
        (("mx.example", "id=abc"), "abc"),
        (("first", "Ok: queued as Q1"), "Q1"),
    ],
)
def test_queue_id_from_reply(lines: tuple[str, ...], queue_id: str | None) -> None:
    assert queue_id_from_reply(Reply(250, None, lines)) == queue_id


def test_queue_id_loses_only_trailing_dots() -> None:
    assert queue_id_from_reply(Reply(250, None, ("queued as 4XYZX.",))) == "4XYZX"
    assert queue_id_from_reply(Reply(250, None, ("id=X.X..",))) == "X.X"
