"""Property tests (Hypothesis) of the parsers and encoders that face hostile input.

Bounded for CI: at most a few hundred examples each, no per-example deadline.

- The reply parser: any bytes, cut anywhere, give replies or a
  RemoteProtocolError, never another exception, and never hold more than its
  bound; well-formed replies come back exactly, however they are cut.
- The protocol core: whatever a server sends, only RemoteProtocolError.
- The address parser: any text is an Address or an AddressError; a parsed
  address holds no line break or control, fits in a command and parses back
  to itself.
- The header encoder: any text is refused (controls) or encoded so that the
  header has no CR or LF except CRLF + WSP folds, no line over 998 octets, and
  the stdlib parser reads back the same text (Subject, display names, file
  names).
"""

from __future__ import annotations

import itertools
import os
import re
import string
import unicodedata
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lettre.address import Address, Mailbox, Mailboxes
from lettre.errors import AddressError, LocalProtocolError, MessageError, RemoteProtocolError
from lettre.message import Message
from lettre.message.headers import render_address_list, render_unstructured
from lettre.protocol.commands import Ehlo, Mail, Rcpt
from lettre.protocol.connection import NEED_DATA, ClientConnection
from lettre.protocol.replies import Reply, ReplyParser

FUZZ = settings(
    max_examples=int(os.environ.get("LETTRE_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --------------------------------------------------------------------------- replies

LINE_BYTES = st.binary(max_size=40) | st.sampled_from(
    [b"250 ok", b"250-more", b"220 hi", b"354 go", b"", b"\r", b"421 bye", b"2", b"25", b"250"]
)
NOISE = st.lists(
    st.tuples(LINE_BYTES, st.sampled_from([b"\r\n", b"\n", b"\r", b""])), max_size=12
).map(lambda parts: b"".join(a + b for a, b in parts))
CUTS = st.lists(st.integers(0, 600), max_size=8)


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@FUZZ
@given(NOISE, CUTS)
def test_reply_parser_is_total_and_bounded(data: bytes, cuts: list[int]) -> None:
    parser = ReplyParser(max_line_length=32, max_lines=3, max_reply_size=64)
    try:
        for piece in pieces(data, cuts):
            parser.feed(piece)
            while (reply := parser.next_reply()) is not None:
                assert 200 <= reply.code <= 599
                assert 1 <= len(reply.lines) <= 3
                # A line ending never survives into the text. (Other control
                # characters do; see test_reply_text_controls_never_reach_errors_or_logs.)
                assert all("\n" not in ln for ln in reply.lines)
            # An incomplete reply never holds more than the bound (+ a CR).
            assert parser.buffered <= 64 + 1
    except RemoteProtocolError:
        with pytest.raises(RemoteProtocolError):
            parser.next_reply()  # and it stays failed


REPLY_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85"
    ),
    max_size=30,
).map(lambda t: "x" + t)  # a letter first: no enhanced status code to strip


@st.composite
def well_formed_replies(draw: st.DrawFn) -> Reply:
    code = draw(st.integers(200, 599))
    lines = draw(st.lists(REPLY_TEXT, min_size=1, max_size=5))
    return Reply(code, None, tuple(lines))


def serialise(reply: Reply, line_end: bytes = b"\r\n") -> bytes:
    last = len(reply.lines) - 1
    return b"".join(
        f"{reply.code}{' ' if i == last else '-'}{line}".encode() + line_end
        for i, line in enumerate(reply.lines)
    )


@FUZZ
@given(st.lists(well_formed_replies(), min_size=1, max_size=4), CUTS, st.booleans())
def test_well_formed_replies_round_trip_however_cut(
    replies: list[Reply], cuts: list[int], bare_lf: bool
) -> None:
    data = b"".join(serialise(r, b"\n" if bare_lf else b"\r\n") for r in replies)
    parser = ReplyParser()
    got: list[Reply] = []
    for piece in pieces(data, cuts):
        parser.feed(piece)
        while (reply := parser.next_reply()) is not None:
            got.append(reply)
    assert got == replies
    assert parser.buffered == 0


@FUZZ
@given(NOISE, CUTS)
def test_protocol_core_only_raises_remote_protocol_errors(data: bytes, cuts: list[int]) -> None:
    conn = ClientConnection(max_line_length=64, max_reply_lines=4, max_reply_size=256)
    try:
        for piece in [*pieces(data, cuts), b""]:
            if piece == b"" and conn.owed == 0:
                break
            conn.receive_data(piece)
            while conn.owed and (event := conn.next_event()) is not NEED_DATA:
                assert isinstance(event, Reply)
                if conn.owed == 0 and event.code == 220:
                    conn.send(Ehlo("client.example.com"))
    except RemoteProtocolError:
        return
    except LocalProtocolError:
        # Only for a command the state refused after a strange (but valid) reply.
        return


# --------------------------------------------------------------------------- addresses

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
NASTY = '\r\n\x00\t "\\()<>[]:;@,.\u2028\u2029\x85\x7f\u00e9\u00df\u4e2d\U0001f600'


@st.composite
def address_like(draw: st.DrawFn) -> str:
    """Mostly-valid addr-specs with hostile bits sprinkled in."""
    local = draw(st.text(alphabet=ATEXT + ".\u00e9" + NASTY, min_size=1, max_size=20))
    if draw(st.booleans()):
        local = '"' + draw(st.text(alphabet=ATEXT + NASTY, max_size=12)) + '"'
    labels = draw(
        st.lists(
            st.text(
                alphabet=string.ascii_lowercase + string.digits + "-\u00e4" + NASTY,
                min_size=1,
                max_size=10,
            ),
            min_size=1,
            max_size=4,
        )
    )
    domain = ".".join(labels)
    if draw(st.integers(0, 9)) == 0:
        domain = "[" + draw(st.sampled_from(["127.0.0.1", "IPv6:::1", "300.1.1.1", "x"])) + "]"
    return f"{local}@{domain}"


ANY_ADDRESS_TEXT = address_like() | st.text(max_size=60)
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@FUZZ
@given(ANY_ADDRESS_TEXT)
def test_address_parser_is_total_and_safe(text: str) -> None:
    try:
        address = Address(text)
    except AddressError:
        return
    rendered = str(address)
    assert CONTROL.search(rendered) is None
    assert Address(rendered) == address
    assert len(address.local_part.encode()) <= 64 or address.local_part.startswith('"')
    # It goes into SMTP commands as one path on one line.
    if address.needs_smtputf8:
        path = rendered
        line = Mail(path, smtputf8=True).to_bytes()
    else:
        path = address.to_ascii()
        assert path.isascii()
        line = Rcpt(path).to_bytes()
    assert line.count(b"\r") == 1
    assert line.count(b"\n") == 1
    assert line.endswith(b"\r\n")
    assert f":<{path}>".encode() in line


@FUZZ
@given(st.text(max_size=80) | address_like().map(lambda a: f'"N\\"a,me" <{a}>, x@y.z'))
def test_mailbox_list_parser_is_total(text: str) -> None:
    try:
        mailboxes = Mailboxes.parse(text)
    except AddressError:
        return
    for mailbox in mailboxes:
        assert CONTROL.search(str(mailbox.address)) is None
        if mailbox.name is not None:
            assert CONTROL.search(mailbox.name) is None


# --------------------------------------------------------------------------- headers

HEADER_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]),
    max_size=200,
) | st.text(alphabet=' \t=?_abcQB\u00e9\u20ac\U0001f600"\\', max_size=120)

FOLD_OK = re.compile(rb"\r\n(?![ \t])|\r(?!\n)|(?<!\r)\n")


def assert_well_formed_header(data: bytes) -> None:
    assert data.endswith(b"\r\n")
    body = data[:-2]
    # CR and LF only as CRLF + WSP (a fold).
    assert FOLD_OK.search(body) is None, data
    for line in body.split(b"\r\n"):
        assert len(line) <= 998
        assert line.strip(b" \t"), "an all-whitespace continuation line"
    assert b"\x00" not in data


def header_field(data: bytes, name: bytes, *, last: bool = False) -> bytes:
    """The raw field ``name`` (first or last occurrence), folds and final CRLF included."""
    lines = data.split(b"\r\n")
    starts = [i for i, ln in enumerate(lines) if ln.lower().startswith(name + b":")]
    assert starts, name
    start = starts[-1] if last else starts[0]
    end = start + 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    return b"\r\n".join(lines[start:end]) + b"\r\n"


def stdlib_header(data: bytes, name: str) -> str:
    parsed = message_from_bytes(data + b"\r\n", policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    value = parsed[name]
    assert value is not None
    return str(value)


def is_refused_text(text: str) -> bool:
    return CONTROL.search(text.replace("\t", "")) is not None


@FUZZ
@given(HEADER_TEXT)
def test_encoded_subject_is_well_formed_and_round_trips(text: str) -> None:
    try:
        data = render_unstructured("Subject", text)
    except MessageError:
        assert is_refused_text(text)
        return
    assert not is_refused_text(text)
    assert_well_formed_header(data)
    assert stdlib_header(data, "Subject") == text


NAME_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=60,
) | st.text(alphabet=' "\\,;:<>@()=?\u00e9\u4e2d', min_size=1, max_size=30)


@FUZZ
@given(NAME_TEXT)
def test_encoded_display_name_round_trips(name: str) -> None:
    assume(name.strip() == name and name.strip())
    assume(CONTROL.search(name) is None)
    try:
        mailbox = Mailbox("someone@example.com", name)
    except AddressError:
        return
    data = render_address_list("To", [mailbox])
    assert_well_formed_header(data)
    # The stdlib's legacy parser is the reference: the modern one (policy.default)
    # wrongly keeps the space between two adjacent encoded words of a phrase
    # (RFC 2047 6.2 says to drop it), which lettre uses to split long names.
    parsed = message_from_bytes(data + b"\r\n", policy=policy.compat32)
    ((raw_name, addr_spec),) = getaddresses([str(parsed["To"])])
    assert addr_spec == "someone@example.com"
    assert str(make_header(decode_header(raw_name))) == mailbox.name


@FUZZ
@given(NAME_TEXT)
def test_attachment_filename_round_trips(filename: str) -> None:
    assume(CONTROL.search(filename) is None)
    # email.utils.unquote strips one pair of "..." or <...> from a parameter
    # value even after lettre quoted it properly: a stdlib quirk, not a loss.
    assume(len(filename) < 2 or (filename[0], filename[-1]) not in (('"', '"'), ("<", ">")))
    try:
        message = (
            Message.builder()
            .from_("a@example.com")
            .to("b@example.com")
            .text("see attached")
            .attach(b"data", filename, "application/octet-stream")
            .build()
        )
    except MessageError:
        return
    data = message.as_bytes()
    assert_well_formed_header(header_field(data, b"content-disposition"))
    assert_well_formed_header(header_field(data, b"content-type", last=True))
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    (attachment,) = parsed.iter_attachments()
    got = attachment.get_filename()
    assert got is not None
    assert unicodedata.normalize("NFC", got) == unicodedata.normalize("NFC", filename)
