"""Incremental encoders for message content: DATA and BDAT.

SMTP content is a sequence of CRLF-terminated lines. These encoders turn any
bytes into that form, chunk by chunk, with the same result however the content
is split:

- every bare CR and every bare LF becomes CRLF (a CRLF stays one CRLF, even
  when a chunk ends between its CR and its LF);
- for DATA, a line that starts with ``.`` gets a second ``.`` (RFC 5321
  4.5.2), and the end of data is ``<CRLF>.<CRLF>``, written exactly once:
  ``.<CRLF>`` when the content already ended with CRLF (or was empty),
  ``<CRLF>.<CRLF>`` otherwise.

So no content can end DATA early or smuggle a second message past a server
that reads line endings differently. The work is done with ``bytes.count``
and ``bytes.replace`` over whole chunks: content that is already CRLF-clean
is passed through untouched.

A chunk ending in CR is encoded at once as if it ended a line; the encoder
remembers it and drops an LF that starts the next chunk. So each chunk's
output is final when it is returned, which is what lets BDAT announce the
exact size of every chunk.
"""

from __future__ import annotations

from lettre.errors import LocalProtocolError

__all__ = ["BdatEncoder", "CrlfNormalizer", "DataEncoder", "encode_data"]

_CR = 0x0D
_LF = 0x0A
_DOT = 0x2E


class CrlfNormalizer:
    """Turn bare CR and bare LF into CRLF, incrementally."""

    __slots__ = ("_at_line_start", "_skip_lf")

    def __init__(self) -> None:
        self._skip_lf = False
        self._at_line_start = True

    @property
    def at_line_start(self) -> bool:
        """True when the output so far is empty or ends with CRLF."""
        return self._at_line_start

    def feed(self, data: bytes) -> bytes:
        """Normalise one chunk.

        Args:
            data: the next chunk of raw content.

        Returns:
            The chunk with CRLF line endings (possibly ``b""``).
        """
        if not data:
            return b""
        if self._skip_lf and data[0] == _LF:
            # The LF of a CRLF whose CR ended the previous chunk.
            data = data[1:]
            self._skip_lf = False
            if not data:
                return b""
        self._skip_lf = data[-1] == _CR
        newlines = data.count(b"\n")
        if b"\r" in data:
            if data.count(b"\r\n") != newlines or data.count(b"\r") != newlines:
                data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        elif newlines:
            data = data.replace(b"\n", b"\r\n")
        self._at_line_start = data.endswith(b"\r\n")
        return data


class DataEncoder:
    """Encode message content for DATA: CRLF lines, dot-stuffed, terminated once.

    Example:
        >>> encoder = DataEncoder()
        >>> encoder.feed(b"Subject: hi\\n\\n.hidden\\n") + encoder.end()
        b'Subject: hi\\r\\n\\r\\n..hidden\\r\\n.\\r\\n'
    """

    __slots__ = ("_ended", "_normalizer")

    def __init__(self) -> None:
        self._normalizer = CrlfNormalizer()
        self._ended = False

    def feed(self, data: bytes) -> bytes:
        """Encode one chunk of content.

        Args:
            data: the next chunk of raw content.

        Returns:
            The bytes to send (possibly ``b""``).

        Raises:
            LocalProtocolError: after :meth:`end`.
        """
        if self._ended:
            raise LocalProtocolError("message content after the end of data")
        at_line_start = self._normalizer.at_line_start
        out = self._normalizer.feed(data)
        if not out:
            return out
        if b"\r\n." in out:
            out = out.replace(b"\r\n.", b"\r\n..")
        if at_line_start and out[0] == _DOT:
            out = b"." + out
        return out

    def end(self) -> bytes:
        """Return the end-of-data terminator (only once).

        Raises:
            LocalProtocolError: when called a second time.
        """
        if self._ended:
            raise LocalProtocolError("the end of data was already sent")
        self._ended = True
        return b".\r\n" if self._normalizer.at_line_start else b"\r\n.\r\n"


class BdatEncoder:
    """Encode message content for BDAT chunks.

    Args:
        binary: True for a ``BODY=BINARYMIME`` transaction: the content is
            sent exactly as given. Otherwise line endings are normalised to
            CRLF, and the LAST chunk ends the content with CRLF when it does
            not already end so (as the DATA terminator would).
    """

    __slots__ = ("_binary", "_ended", "_normalizer")

    def __init__(self, *, binary: bool = False) -> None:
        self._binary = binary
        self._normalizer = CrlfNormalizer()
        self._ended = False

    def chunk(self, data: bytes, *, last: bool) -> bytes:
        """Encode one chunk; its length is the size BDAT announces.

        Args:
            data: the next chunk of raw content.
            last: True for the final chunk.

        Returns:
            The bytes to send after the BDAT command line.

        Raises:
            LocalProtocolError: after the LAST chunk.
        """
        if self._ended:
            raise LocalProtocolError("BDAT after the LAST chunk")
        self._ended = last
        if self._binary:
            return data
        out = self._normalizer.feed(data)
        if last and not self._normalizer.at_line_start:
            out += b"\r\n"
        return out


def encode_data(content: bytes) -> bytes:
    """Encode a whole message for DATA, terminator included.

    Args:
        content: the message, with any line endings.

    Returns:
        The dot-stuffed, CRLF-normalised content followed by the terminator.
    """
    if content.endswith(b"\r\n") and content[0] != _DOT:
        # The usual message: CRLF lines only (as many CRs and LFs as CRLFs) and
        # no line starting with a dot. It goes out as it is, then ".<CRLF>".
        lines = content.count(b"\n")
        if (
            content.count(b"\r") == lines
            and content.count(b"\r\n") == lines
            and b"\r\n." not in content  # the same as "\n." here, and faster to look for
        ):
            return content + b".\r\n"
    encoder = DataEncoder()
    return encoder.feed(content) + encoder.end()
