"""Content encoding for DATA and BDAT: CRLF normalisation, dot-stuffing, terminator."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_support import exactly, normalize, unstuff

from lettre.errors import LocalProtocolError
from lettre.protocol.dotstuff import BdatEncoder, CrlfNormalizer, DataEncoder, encode_data


def encode_chunks(chunks: list[bytes]) -> bytes:
    encoder = DataEncoder()
    return b"".join(encoder.feed(chunk) for chunk in chunks) + encoder.end()


@pytest.mark.parametrize(
    ("content", "encoded"),
    [
        (b"", b".\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a\n", b"a\r\n.\r\n"),
        (b"a\r", b"a\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\n.\nb\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\n\rb", b"a\r\n\r\nb\r\n.\r\n"),
        (b"..x\r\n..", b"...x\r\n...\r\n.\r\n"),
        (b"\r\n", b"\r\n.\r\n"),
        (b"\n\n", b"\r\n\r\n.\r\n"),
        (b"x\r\r\n", b"x\r\n\r\n.\r\n"),
        # Whole messages ending with CRLF: the clean ones go out as they are.
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b"a.b\r\n\r\nc.\r\n", b"a.b\r\n\r\nc.\r\n.\r\n"),
        (b".a\r\n", b"..a\r\n.\r\n"),
        (b"a\r\n.b\r\n", b"a\r\n..b\r\n.\r\n"),
        (b"a\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b"a\rb\r\n", b"a\r\nb\r\n.\r\n"),
        # As many CRs and LFs as lines, yet not all CRLF.
        (b"a\n\rb\r\n", b"a\r\n\r\nb\r\n.\r\n"),
        (b"a\r\r\nb\n\r\n", b"a\r\n\r\nb\r\n\r\n.\r\n"),
    ],
)
def test_examples_at_every_split(content: bytes, encoded: bytes) -> None:
    assert encode_data(content) == encoded
    for cut in range(len(content) + 1):
        assert encode_chunks([content[:cut], content[cut:]]) == encoded
    assert encode_chunks([bytes([b]) for b in content]) == encoded


def test_smuggling_sequences_cannot_end_data_early() -> None:
    for attack in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r"):
        content = b"first" + attack + b"MAIL FROM:<evil@example.com>\r\n"
        stream = b"\r\n" + encode_data(content)  # the CRLF ending the DATA line
        assert stream.count(b"\r\n.\r\n") == 1
        assert stream.endswith(b"\r\n.\r\n")


def test_clean_content_is_passed_through() -> None:
    clean = b"Subject: x\r\n\r\nbody\r\n"
    normalizer = CrlfNormalizer()
    assert normalizer.feed(clean) is clean
    assert normalizer.at_line_start
    assert normalizer.feed(b"") == b""
    assert normalizer.feed(b"abc") == b"abc"
    assert not normalizer.at_line_start


def test_lone_cr_at_chunk_end_is_carried() -> None:
    normalizer = CrlfNormalizer()
    assert normalizer.feed(b"a\r") == b"a\r\n"
    assert normalizer.feed(b"\n") == b""
    assert normalizer.feed(b"\nb") == b"\r\nb"
    assert normalizer.feed(b"\r") == b"\r\n"
    assert normalizer.feed(b"c") == b"c"


def test_data_encoder_misuse() -> None:
    encoder = DataEncoder()
    assert encoder.feed(b"") == b""
    assert encoder.end() == b".\r\n"
    with pytest.raises(LocalProtocolError, match=exactly("message content after the end of data")):
        encoder.feed(b"more")
    with pytest.raises(LocalProtocolError, match=exactly("the end of data was already sent")):
        encoder.end()


def test_bdat_encoder() -> None:
    encoder = BdatEncoder()
    assert encoder.chunk(b"a\nb\r", last=False) == b"a\r\nb\r\n"
    assert encoder.chunk(b"\nc", last=True) == b"c\r\n"
    with pytest.raises(LocalProtocolError, match=exactly("BDAT after the LAST chunk")):
        encoder.chunk(b"", last=True)
    assert BdatEncoder().chunk(b"", last=True) == b""
    assert BdatEncoder().chunk(b"x\r\n", last=True) == b"x\r\n"
    binary = BdatEncoder(binary=True)
    assert binary.chunk(b"\x00\r\x00\n.", last=False) == b"\x00\r\x00\n."
    assert binary.chunk(b"z", last=True) == b"z"


# -- properties --------------------------------------------------------------------

PIECES = st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b"\x00", b"\xff", b" "])
CONTENT = st.one_of(st.binary(max_size=200), st.lists(PIECES, max_size=80).map(b"".join))
CUTS = st.lists(st.integers(0, 200), max_size=8)


def split(content: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(content)) for c in cuts})
    bounds = [0, *points, len(content)]
    return [content[a:b] for a, b in itertools.pairwise(bounds)]


def expected_content(content: bytes) -> bytes:
    clean = normalize(content)
    return clean if not clean or clean.endswith(b"\r\n") else clean + b"\r\n"


@settings(max_examples=200, deadline=None)
@given(CONTENT, CUTS)
def test_data_stream_has_exactly_one_terminator(content: bytes, cuts: list[int]) -> None:
    encoded = encode_chunks(split(content, cuts))
    stream = b"\r\n" + encoded  # the DATA command line's CRLF comes first
    assert stream.count(b"\r\n.\r\n") == 1
    assert stream.endswith(b"\r\n.\r\n")
    # No bare CR or LF survives.
    assert encoded.count(b"\r") == encoded.count(b"\n") == encoded.count(b"\r\n")
    assert unstuff(encoded) == expected_content(content)
    assert encoded == encode_data(content)


@settings(max_examples=200, deadline=None)
@given(CONTENT, CUTS, st.booleans())
def test_bdat_chunks_normalise_like_data(content: bytes, cuts: list[int], binary: bool) -> None:
    chunks = split(content, cuts)
    encoder = BdatEncoder(binary=binary)
    out = [encoder.chunk(c, last=i == len(chunks) - 1) for i, c in enumerate(chunks)]
    joined = b"".join(out)
    if binary:
        assert joined == content
    else:
        assert joined == expected_content(content)


LINE = st.lists(st.sampled_from([b".", b"a", b" ", b"\xff", b"\x00", b"\r", b"\n"]), max_size=12)
# Mostly CRLF-clean messages ending with CRLF (the common case), some not.
MESSAGES = st.lists(LINE.map(b"".join), min_size=1, max_size=12).map(
    lambda lines: b"".join(line + b"\r\n" for line in lines)
)


@settings(max_examples=300, deadline=None)
@given(MESSAGES, CUTS)
def test_whole_message_encodes_like_the_encoder(content: bytes, cuts: list[int]) -> None:
    encoded = encode_data(content)
    encoder = DataEncoder()
    assert encoded == encoder.feed(content) + encoder.end()
    assert encoded == encode_chunks(split(content, cuts))
    assert unstuff(encoded) == expected_content(content)
