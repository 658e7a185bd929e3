"""SMTP replies."""

from __future__ import annotations

import re
from typing import Final

from lettre.errors import RemoteProtocolError
from lettre.results import Reply

__all__ = ["Reply", "ReplyParser", "queue_id_from_reply"]


# A reply line: a three-digit code whose first digit is 2 to 5, then a space
# (last line), a hyphen (more lines follow) or nothing at all; then maybe an
# RFC 3463 enhanced status code whose class repeats the code's first digit,
# followed by a space or the end of the line.
_LINE = re.compile(
    rb"([2-5])[0-9][0-9](?:([ -])(?:((?=[245])\1\.[0-9]{1,3}\.[0-9]{1,3})(?: |$))?)?"
)
# The first (up to four) octets of a line whose end has not arrived yet.
_HEAD = re.compile(rb"[2-5](?:[0-9](?:[0-9][ \r-]?)?)?")
_CONTINUED = b"-"
# A whole one-line reply, line ending excluded: the code, then nothing or a
# space, maybe an enhanced status code as in _LINE, and the text.
_ONE_LINE = re.compile(
    rb"([2-5])[0-9][0-9](?: (?:((?=[245])\1\.[0-9]{1,3}\.[0-9]{1,3})(?: |$))?(.*))?",
    re.DOTALL,
)
# The reply cache: at most this many entries (emptied when full), for lines of
# at most this many octets, line ending included.
_CACHE_ENTRIES = 64
_CACHED_LINE_MAX = 256


_QUEUE_ID_PATTERNS = (
    re.compile(r"\bqueued as\s+<?([A-Za-z0-9][A-Za-z0-9._@-]*)", re.IGNORECASE),
    re.compile(r"\bid=<?([A-Za-z0-9][A-Za-z0-9._@-]*)", re.IGNORECASE),
)
# Both at once: one search in the usual case.
_QUEUE_ID = re.compile(
    r"\b(?:queued as\s+<?([A-Za-z0-9][A-Za-z0-9._@-]*)|id=<?([A-Za-z0-9][A-Za-z0-9._@-]*))",
    re.IGNORECASE,
)


def queue_id_from_reply(reply: Reply) -> str | None:
    """The queue id a server put in its final reply, if it shows one.

    Recognises ``queued as ABC123`` (Postfix and many others) and ``id=...``
    (Exim); returns None otherwise. ``queued as`` wins when both appear.
    """
    lines = reply.lines
    text = lines[0] if len(lines) == 1 else reply.text
    match = _QUEUE_ID.search(text)
    if match is None:
        return None
    queued = match.group(1)
    if queued is None:
        later = _QUEUE_ID_PATTERNS[0].search(text, match.end())
        queued = later.group(1) if later is not None else match.group(2)
    return queued.rstrip(".")


class ReplyParser:
    """A bounded, streaming parser of SMTP replies.

    Feed it bytes as they arrive, in chunks of any size split anywhere, and
    take complete replies out with :meth:`next_reply`. Multi-line replies
    (``250-...`` lines ending with a ``250 ...`` line) become one
    :class:`Reply`. Lines end with CRLF; a bare LF is accepted as a line end
    too. The text is decoded as UTF-8 with replacement characters, so a
    reply never fails to decode, and control characters (all C0 controls but
    HT, DEL and C1 controls) become U+FFFD, so that a server cannot write
    terminal escapes or fake log lines into errors and logs.

    The parser is strict: every line starts with three digits, the first of
    them 2 to 5; the fourth octet, if any, is a space (last line) or a hyphen
    (more lines follow); every line of a reply carries the same code. An RFC
    3463 enhanced status code whose class matches the reply code is taken out
    of each line's text and reported once, from the first line carrying one.

    It is bounded: a line longer than ``max_line_length`` octets (line ending
    excluded), a reply of more than ``max_lines`` lines or more than
    ``max_reply_size`` octets raises :class:`RemoteProtocolError` as soon as
    the excess is buffered, so the bytes held for an incomplete reply never
    exceed ``max_reply_size``. After an error the parser is unusable.

    Servers repeat the same replies (to MAIL, RCPT and DATA above all), so
    the parser keeps the last few one-line replies it built (up to 64, for
    lines of up to 256 octets) by their raw line: the same line again gives
    the same immutable :class:`Reply` without being parsed again.

    Args:
        max_line_length: the longest accepted line, without its line ending.
        max_lines: the most lines in one reply.
        max_reply_size: the most octets in one reply, line endings included.

    Raises:
        ValueError: when a bound is not a positive int.
    """

    __slots__ = (
        "_buffer",
        "_cache",
        "_code",
        "_enhanced",
        "_error",
        "_lines",
        "_max_line_length",
        "_max_lines",
        "_max_reply_size",
        "_pos",
        "_scan",
        "_size",
    )

    def __init__(
        self, max_line_length: int = 2048, max_lines: int = 256, max_reply_size: int = 65536
    ) -> None:
        for name, value, minimum in (
            ("max_line_length", max_line_length, 3),
            ("max_lines", max_lines, 1),
            ("max_reply_size", max_reply_size, 5),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, not {value!r}")
        self._max_line_length = max_line_length
        self._max_lines = max_lines
        self._max_reply_size = max_reply_size
        self._buffer = bytearray()
        self._pos = 0  # start of the unparsed bytes in _buffer
        self._scan = 0  # bytes before this offset hold no LF
        self._code = 0  # the code of the reply being assembled
        self._enhanced: str | None = None
        self._lines: list[str] = []
        self._size = 0  # octets of the complete lines of the current reply
        self._error: str | None = None
        # Complete one-line replies by their raw line (line ending included).
        self._cache: dict[bytes, Reply] = {}

    @property
    def buffered(self) -> int:
        """Octets received and not yet part of a returned reply."""
        return len(self._buffer) - self._pos + self._size

    @property
    def unparsed(self) -> int:
        """Octets received after the last complete line."""
        return len(self._buffer) - self._pos

    def feed(self, data: bytes) -> None:
        """Add received bytes. Parsing happens in :meth:`next_reply`.

        Args:
            data: the bytes, exactly as read from the connection.
        """
        if data:
            self._buffer += data

    def next_reply(self) -> Reply | None:
        """Return the next complete reply, or None when more bytes are needed.

        Raises:
            RemoteProtocolError: on a malformed reply or a bound exceeded;
                every later call raises it again.
        """
        if self._error is not None:
            raise RemoteProtocolError(self._error)
        buffer = self._buffer
        lines = self._lines
        while True:
            newline = buffer.find(b"\n", self._scan)
            if newline < 0:
                if self._pos == len(buffer):
                    # Everything was consumed: the common case, made cheap.
                    buffer.clear()
                    self._pos = self._scan = 0
                else:
                    self._check_partial()
                return None
            start = self._pos
            self._pos = self._scan = newline + 1
            if not lines:
                # A line that starts a reply: the same bytes as a one-line
                # reply already parsed give the same (immutable) reply, and
                # met the same bounds.
                raw = bytes(buffer[start : newline + 1])
                reply = self._cache.get(raw)
                if reply is not None:
                    return reply
            end = newline - 1 if newline > start and buffer[newline - 1] == 0x0D else newline
            if end - start > self._max_line_length:
                raise self._fail(f"reply line longer than {self._max_line_length} octets")
            size = self._size + newline + 1 - start
            if size > self._max_reply_size:
                raise self._fail(f"reply longer than {self._max_reply_size} octets")
            if not lines:
                # A one-line reply, the usual kind, is taken apart by one
                # pattern, with no carried state. What it does not match is
                # the first line of a multi-line reply or a malformed line.
                match = _ONE_LINE.fullmatch(raw, 0, end - start)
                if match is not None:
                    return self._one_line(raw, match)
            match = _LINE.match(buffer, start, end)
            if match is None:
                separator = enhanced = None
            else:
                _, separator, enhanced = match.groups()
            if match is None or (separator is None and match.end() != end):
                line = bytes(buffer[start:end])
                raise self._fail(f"malformed reply line {_shorten(line)!r}")
            # The three digits, checked by the pattern: "0" is 48, 48 * 111 = 5328.
            code = buffer[start] * 100 + buffer[start + 1] * 10 + buffer[start + 2] - 5328
            text = buffer[match.end() : end].decode("utf-8", "replace")
            if not text.isprintable():
                # Controls from the server never reach errors, logs or terminals.
                text = text.translate(_CONTROLS)
            if not lines:
                # Every other well-formed first line was a one-line reply: this
                # one starts a multi-line reply.
                self._code = code
            else:
                if code != self._code:
                    raise self._fail(f"multi-line reply mixes codes {self._code} and {code}")
                if len(lines) >= self._max_lines:
                    raise self._fail(f"reply has more than {self._max_lines} lines")
            self._size = size
            if enhanced is not None and self._enhanced is None:
                self._enhanced = enhanced.decode("ascii")
            lines.append(text)
            if separator != _CONTINUED:
                reply = Reply(code, self._enhanced, tuple(lines))
                self._enhanced = None
                self._lines = lines = []
                self._size = 0
                return reply

    def _one_line(self, raw: bytes, match: re.Match[bytes]) -> Reply:
        _, enhanced, text_bytes = match.groups()
        if text_bytes:
            text = text_bytes.decode("utf-8", "replace")
            if not text.isprintable():
                text = text.translate(_CONTROLS)
        else:
            text = ""
        # The three digits, checked by the pattern: "0" is 48, 48 * 111 = 5328.
        code = raw[0] * 100 + raw[1] * 10 + raw[2] - 5328
        reply = Reply(code, None if enhanced is None else enhanced.decode("ascii"), (text,))
        if len(raw) <= _CACHED_LINE_MAX:
            cache = self._cache
            if len(cache) >= _CACHE_ENTRIES:
                cache.clear()
            cache[raw] = reply
        return reply

    def _fail(self, message: str) -> RemoteProtocolError:
        """Record a parse error (every later call raises it again) and return it."""
        self._error = message
        return RemoteProtocolError(message)

    def _check_partial(self) -> None:
        pos = self._pos
        pending = len(self._buffer) - pos
        # Reject a malformed line as soon as its first octets are in, rather
        # than waiting for a line ending that may never come.
        if _HEAD.fullmatch(self._buffer, pos, pos + 4) is None:
            line = bytes(self._buffer[pos : pos + 4])
            raise self._fail(f"malformed reply line {line!r}...")
        # A partial line may end with the CR of its CRLF, hence the + 1.
        if pending > self._max_line_length + 1:
            raise self._fail(f"reply line longer than {self._max_line_length} octets")
        if self._size + pending > self._max_reply_size:
            raise self._fail(f"reply longer than {self._max_reply_size} octets")
        # Drop the consumed octets: what stays is one incomplete line.
        del self._buffer[:pos]
        self._scan -= pos
        self._pos = 0


_CONTROLS: Final = dict.fromkeys(
    [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0)], "\ufffd"
)
"""C0 controls but HT, DEL and C1 controls: replaced in reply text."""


def _shorten(line: bytes, limit: int = 80) -> bytes:
    return line if len(line) <= limit else line[:limit] + b"..."
