"""Header fields: names, values, RFC 2047 encoded words, RFC 2231 parameters, folding.

Every function here returns complete header lines as bytes, CRLF-terminated,
folded at 78 columns where the syntax allows it and never longer than 998
octets. Each rendered header passes :func:`finish_header`, a last check that
no value can end the header early or start a new header line, whatever bug
or input got it there.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Final

from lettre.address import Address, Mailbox, check_header_text
from lettre.errors import AddressError, MessageError

__all__ = [
    "MAX_LINE_LENGTH",
    "RESERVED_HEADERS",
    "WRAP_LENGTH",
    "check_value",
    "encode_words",
    "finish_header",
    "format_date",
    "normalize_msg_id",
    "render_address_field",
    "render_address_list",
    "render_msg_ids",
    "render_params",
    "render_structured",
    "render_unstructured",
    "validate_name",
]

WRAP_LENGTH: Final = 78
"""Headers are folded to lines of at most this many characters where possible."""

MAX_LINE_LENGTH: Final = 998
"""No line of a message is ever longer than this many octets (RFC 5322 2.1.1)."""

MAX_MSG_ID_LENGTH: Final = 250
"""The longest message identifier accepted, angle brackets included."""

RESERVED_HEADERS: Final = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
    }
)
"""Header names set through dedicated builder methods (``Content-*`` too)."""

# Longest raw (unencoded) word in an unstructured value; longer words become
# encoded words, which can be split across lines.
_MAX_RAW_WORD: Final = 900

_ATEXT: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_NAME = re.compile(r"[!-9;-~]+")
_WSP_SPLIT = re.compile(r"([ \t]+)")
# The final check: a control character, a CR not starting a fold (CRLF WSP),
# a bare LF, or a continuation line holding only whitespace.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\u2028\u2029]"
    r"|\r(?!\n[ \t])|(?<!\r)\n|\n[ \t]*(?:\r|\Z)"
)
_MSG_ID_CHARS = re.compile(r"[!-;=?-~]+")  # printable ASCII except < and >

# Characters that stand for themselves in a "Q" encoded word in any context
# (RFC 2047 section 5 (3), the most restrictive rule).
_Q_SAFE: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_TABLE: Final = tuple(
    "_" if b == 0x20 else chr(b) if b in _Q_SAFE else f"={b:02X}" for b in range(256)
)
# RFC 2231 attribute-char that needs no percent-encoding (a conservative subset).
_PCT_SAFE: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)
_PCT_TABLE: Final = tuple(chr(b) if b in _PCT_SAFE else f"%{b:02X}" for b in range(256))
# Parameter values written bare: RFC 2045 token characters, minus those that
# some parsers treat specially (% ' * { }, which RFC 2231 gives meaning).
_BARE_VALUE = re.compile(r"[!#$&+\-.0-9A-Z^_`a-z|~]+")

_ENCODED_WORD_MAX: Final = 75
_EW_OVERHEAD: Final = len("=?utf-8?q??=")
# The first encoded word of a display name fits after "Reply-To: " and other
# header names of up to 16 characters.
_FIRST_NAME_WORD: Final = WRAP_LENGTH - 18

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def validate_name(name: str) -> str:
    """Check a header field name (RFC 5322 ftext, at most 76 characters).

    Returns:
        The name, unchanged.

    Raises:
        MessageError: the name is empty, too long or has a forbidden character.
    """
    if not isinstance(name, str):
        raise TypeError(f"a header name must be a str, not {type(name).__name__}")
    if len(name) > WRAP_LENGTH - 2 or _NAME.fullmatch(name) is None:
        raise MessageError(
            f"invalid header name {name!r}: use 1 to 76 printable ASCII characters "
            "without spaces or ':'"
        )
    return name


def check_value(value: str, what: str) -> str:
    """Reject text holding CR, LF, NUL, other controls or Unicode line separators.

    Returns:
        The value, unchanged.

    Raises:
        MessageError: the value contains a forbidden character.
        TypeError: the value is not a str.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        check_header_text(value, what)
    except AddressError as exc:
        raise MessageError(str(exc)) from None
    return value


def finish_header(text: str) -> bytes:
    """Run the final safety check on rendered header line(s) and encode them.

    Args:
        text: ``Name: value`` with folds (CRLF followed by a space or tab) and
            a final CRLF.

    Raises:
        MessageError: the header could start a new header line, contains a
            control character or has a line longer than 998 octets.
    """
    if not text.endswith("\r\n"):
        raise MessageError("internal error: a header line must end with CRLF")
    body = text[:-2]
    # Printable text has no control character, CR or LF: nothing to search.
    match = None if body.isprintable() else _UNSAFE.search(body)
    if match is not None:
        raise MessageError(
            f"refusing to write header {body.split(':', 1)[0]!r}: "
            f"unsafe character U+{ord(match.group()[0]):04X} in the value"
        )
    data = text.encode("utf-8") if not text.isascii() else text.encode("ascii")
    if len(data) > MAX_LINE_LENGTH + 2 and any(
        len(line) > MAX_LINE_LENGTH for line in data.split(b"\r\n")
    ):
        raise MessageError(f"a line of header {body.split(':', 1)[0]!r} exceeds 998 octets")
    return data


def _fold(name: str, pieces: Iterable[str]) -> bytes:
    """Join pieces (each starting with a space or tab) into folded header lines."""
    out = [name, ":"]
    line = len(name) + 1
    for piece in pieces:
        size = len(piece)
        if line + size > WRAP_LENGTH and line > 1 and not piece.isspace():
            out.append("\r\n")
            line = 0
        out.append(piece)
        line += size
    out.append("\r\n")
    return finish_header("".join(out))


def encode_words(text: str, first_max: int = _ENCODED_WORD_MAX) -> list[str]:
    """Encode ``text`` as RFC 2047 UTF-8 encoded words of at most 75 characters.

    "Q" is used unless "B" is much shorter; characters are never split across
    words. The words are meant to be separated by folding whitespace, which
    decoders drop between adjacent encoded words.

    Args:
        text: the text to encode.
        first_max: the longest the first word may be (to fit after a header
            name on the first line).
    """
    data = text.encode("utf-8")
    n = len(data)
    full = _ENCODED_WORD_MAX - _EW_OVERHEAD
    budget = max(min(first_max, _ENCODED_WORD_MAX) - _EW_OVERHEAD, 12)
    q_parts = [_Q_TABLE[b] for b in data]
    q_length = sum(map(len, q_parts))
    b_length = 4 * ((n + 2) // 3)
    words: list[str] = []
    if q_length * 2 <= b_length * 3:  # Q stays readable: prefer it unless much longer
        if q_length <= budget:
            return ["=?utf-8?q?" + "".join(q_parts) + "?="]
        current: list[str] = []
        size = i = 0
        while i < n:
            lead = data[i]
            step = 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
            piece = q_parts[i] if step == 1 else "".join(q_parts[i : i + step])
            if size + len(piece) > budget and current:
                words.append("=?utf-8?q?" + "".join(current) + "?=")
                current, size, budget = [], 0, full
            current.append(piece)
            size += len(piece)
            i += step
        words.append("=?utf-8?q?" + "".join(current) + "?=")
        return words
    i = 0
    while True:
        end = i + budget // 4 * 3
        if end >= n:
            end = n
        else:
            while 0x80 <= data[end] < 0xC0:  # never split a character
                end -= 1
        payload = binascii.b2a_base64(data[i:end], newline=False).decode("ascii")
        words.append("=?utf-8?b?" + payload + "?=")
        if end >= n:
            return words
        i, budget = end, full


def _needs_encoding(word: str) -> bool:
    return not word.isascii() or "=?" in word or len(word) > _MAX_RAW_WORD


def _unstructured_pieces(value: str, first_max: int) -> list[str]:
    """Pieces of an unstructured value: raw words, or runs of encoded words."""
    stripped = value.strip(" \t")
    if not stripped:
        return [" " + w for w in encode_words(value, first_max)]
    parts = _WSP_SPLIT.split(stripped)  # word, whitespace, word, ..., word
    words = [
        (parts[k - 1] if k else " ", parts[k], _needs_encoding(parts[k]))
        for k in range(0, len(parts), 2)
    ]
    # Parsers drop leading and trailing whitespace when unfolding, so any is
    # kept inside an encoded word.
    lead = value[: len(value) - len(value.lstrip(" \t"))]
    trail = value[len(value.rstrip(" \t")) :]
    if lead:
        words[0] = (" ", lead + words[0][1], True)
    if trail:
        space, word, _ = words[-1]
        words[-1] = (space, word + trail, True)
    pieces: list[str] = []
    i, n = 0, len(words)
    while i < n:
        space, word, encode = words[i]
        if not encode:
            pieces.append(space + word)
            i += 1
            continue
        run = [word]
        j = i + 1
        while j < n and words[j][2]:
            run.append(words[j][0])
            run.append(words[j][1])
            j += 1
        encoded = encode_words("".join(run), first_max if i == 0 else _ENCODED_WORD_MAX)
        pieces.append(space + encoded[0])
        pieces.extend(" " + w for w in encoded[1:])
        i = j
    return pieces


def render_unstructured(name: str, value: str) -> bytes:
    """Render an unstructured header (Subject, Comments, X-anything).

    Non-ASCII words (and words that look like encoded words) become RFC 2047
    encoded words; the rest stays readable.

    Raises:
        MessageError: the value contains a line break or a control character.
    """
    check_value(value, f"the {name} header")
    if (
        value.isascii()
        and len(name) + 2 + len(value) <= WRAP_LENGTH
        and "=?" not in value
        and value.strip(" \t") == value
    ):
        if not value:
            return finish_header(f"{name}:\r\n")
        return finish_header(f"{name}: {value}\r\n")
    return _fold(name, _unstructured_pieces(value, WRAP_LENGTH - len(name) - 2))


def render_structured(name: str, value: str) -> bytes:
    """Render an ASCII structured value, folding at existing spaces only.

    Raises:
        MessageError: the value is not ASCII or holds a forbidden character.
    """
    check_value(value, f"the {name} header")
    if not value.isascii():
        raise MessageError(f"the {name} header must be ASCII")
    if len(name) + 2 + len(value) <= WRAP_LENGTH:
        return finish_header(f"{name}: {value}\r\n")
    words = value.split(" ")
    return _fold(name, [" " + w for w in words if w])


def _phrase_pieces(name: str) -> list[str]:
    """Pieces for a display name: atoms, a quoted string or encoded words."""
    if name.isascii() and "=?" not in name:
        words = name.split(" ")
        if all(word and _ATEXT.issuperset(word) for word in words):
            return [" " + word for word in words]
        quoted = _quote(name)
        if len(quoted) <= _FIRST_NAME_WORD:
            return [" " + quoted]
        # A long name is quoted word by word, so that it can be folded between
        # words: a phrase means its words joined by single spaces.
        pieces = [" " + (w if w and _ATEXT.issuperset(w) else _quote(w)) for w in words]
        if all(len(piece) <= _MAX_RAW_WORD for piece in pieces):
            return pieces
    return [" " + word for word in encode_words(name, _FIRST_NAME_WORD)]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=1024)
def _mailbox_pieces(mailbox: Mailbox) -> tuple[str, ...]:
    address = mailbox.address
    text = str(address) if address.needs_smtputf8 else address.to_ascii()
    if mailbox.name is None:
        return (" " + text,)
    return (*_phrase_pieces(mailbox.name), f" <{text}>")


def render_address_list(name: str, mailboxes: Sequence[Mailbox | Address]) -> bytes:
    """Render an address header (From, To, Cc, Reply-To, Sender, ...).

    ASCII-only local parts are written with A-label domains; addresses with a
    non-ASCII local part are written as UTF-8 (RFC 6532). Display names are
    quoted or encoded as needed.

    Raises:
        MessageError: the list is empty.
    """
    if not mailboxes:
        raise MessageError(f"the {name} header needs at least one address")
    if len(mailboxes) == 1:
        only = mailboxes[0]
        return _render_one(name, only if isinstance(only, Mailbox) else Mailbox(only))
    pieces: list[str] = []
    last = len(mailboxes) - 1
    for index, item in enumerate(mailboxes):
        mailbox = item if isinstance(item, Mailbox) else Mailbox(item)
        parts = list(_mailbox_pieces(mailbox))
        if index < last:
            parts[-1] += ","
        pieces.extend(parts)
    return _fold(name, pieces)


@lru_cache(maxsize=1024)
def _render_one(name: str, mailbox: Mailbox) -> bytes:
    return _fold(name, _mailbox_pieces(mailbox))


def render_address_field(name: str, mailboxes: Sequence[Mailbox]) -> tuple[bytes, str]:
    """Render an address header and give its readable value too.

    Returns:
        ``render_address_list(name, mailboxes)`` and the mailboxes as text
        joined by ``", "`` (``str(Mailboxes(mailboxes))``).

    Raises:
        MessageError: the list is empty.
    """
    if len(mailboxes) == 1:
        return _render_one_field(name, mailboxes[0])
    return render_address_list(name, mailboxes), ", ".join(map(str, mailboxes))


@lru_cache(maxsize=1024)
def _render_one_field(name: str, mailbox: Mailbox) -> tuple[bytes, str]:
    return _render_one(name, mailbox), str(mailbox)


def normalize_msg_id(value: str, what: str = "a message ID") -> str:
    """Validate a message identifier and return it with angle brackets.

    Accepts ``<id@host>`` or ``id@host``: printable ASCII without spaces or
    angle brackets inside, at most 250 characters.

    Raises:
        MessageError: the identifier is empty, too long or malformed.
    """
    check_value(value, what)
    inner = value[1:-1] if value.startswith("<") and value.endswith(">") else value
    if not inner or len(inner) + 2 > MAX_MSG_ID_LENGTH or _MSG_ID_CHARS.fullmatch(inner) is None:
        raise MessageError(
            f"invalid {what} {value!r}: expected <id@host> in printable ASCII without spaces"
        )
    return f"<{inner}>"


def render_msg_ids(name: str, ids: Sequence[str]) -> bytes:
    """Render Message-ID, In-Reply-To or References (already normalised IDs)."""
    if not ids:
        raise MessageError(f"the {name} header needs at least one message ID")
    if len(ids) == 1 and len(name) + 2 + len(ids[0]) <= WRAP_LENGTH:
        return finish_header(f"{name}: {ids[0]}\r\n")
    return _fold(name, [" " + i for i in ids])


@lru_cache(maxsize=64)
def format_date(value: datetime) -> str:
    """Format an aware datetime as an RFC 5322 date (``Tue, 04 Mar 2025 10:00:00 +0100``).

    Raises:
        MessageError: the datetime has no time zone.
    """
    offset = value.utcoffset()
    if offset is None:
        raise MessageError("the Date must be timezone-aware, e.g. datetime.now(timezone.utc)")
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return (
        f"{_DAYS[value.weekday()]}, {value.day:02d} {_MONTHS[value.month - 1]} "
        f"{value.year:04d} {value.hour:02d}:{value.minute:02d}:{value.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def _param_pieces(attribute: str, value: str) -> list[str]:
    """``; attribute=value`` pieces: token, quoted string or RFC 2231 (non-ASCII, long)."""
    if value.isascii() and len(attribute) + len(value) + 4 <= WRAP_LENGTH - 2:
        if _BARE_VALUE.fullmatch(value):
            return [f" {attribute}={value}"]
        return [" " + attribute + '="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"']
    # RFC 2231: charset, empty language, percent-encoded UTF-8, in continuations
    # short enough that every line stays within 78 columns. Segments end on
    # character boundaries.
    budget = WRAP_LENGTH - len(attribute) - 10
    segments: list[str] = []
    current = "utf-8''"
    for ch in value:
        encoded = "".join(_PCT_TABLE[b] for b in ch.encode("utf-8"))
        if len(current) + len(encoded) > budget and current:
            segments.append(current)
            current = ""
        current += encoded
    segments.append(current)
    if len(segments) == 1:
        return [f" {attribute}*={segments[0]}"]
    last = len(segments) - 1
    return [
        f" {attribute}*{index}*={segment}" + (";" if index < last else "")
        for index, segment in enumerate(segments)
    ]


def render_params(name: str, value: str, params: Sequence[tuple[str, str]]) -> bytes:
    """Render ``Name: value; a=b; c="d e"`` (Content-Type, Content-Disposition).

    Parameter values are tokens, quoted strings or, when non-ASCII or long,
    RFC 2231 extended values with continuations.
    """
    pieces = [" " + value]
    for attribute, param in params:
        check_value(param, f"the {attribute} parameter")
        pieces[-1] += ";"
        pieces.extend(_param_pieces(attribute, param))
    return _fold(name, pieces)
