"""SMTP commands as frozen, validated values.

Every command is checked when it is built: a text argument holding CR, LF,
NUL, any other C0 control character, DEL or a C1 control character raises
:class:`~lettre.errors.LocalProtocolError`, so no argument can ever add a
second command to the conversation. Paths may not hold spaces, ``<`` or ``>``
outside a quoted local part, where they would change the command's meaning.

Line commands serialise themselves with ``to_bytes()``. :class:`MessageData`,
:class:`EndOfData` and :class:`Bdat` carry message content whose encoding
depends on what was sent before (dot-stuffing and line endings across
chunks), so :class:`~lettre.protocol.connection.ClientConnection` encodes
them.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from lettre.errors import LocalProtocolError

__all__ = [
    "BODY_TYPES",
    "DSN_NOTIFY",
    "DSN_RET",
    "Auth",
    "AuthCancel",
    "AuthResponse",
    "Bdat",
    "Command",
    "Data",
    "Ehlo",
    "EndOfData",
    "Helo",
    "Lhlo",
    "Mail",
    "MessageData",
    "Noop",
    "Quit",
    "Rcpt",
    "Rset",
    "StartTls",
    "xtext_encode",
]

#: Values of the MAIL ``BODY=`` parameter (RFC 6152, RFC 3030).
BODY_TYPES = frozenset({"7BIT", "8BITMIME", "BINARYMIME"})
#: Values of the RCPT ``NOTIFY=`` parameter (RFC 3461).
DSN_NOTIFY = frozenset({"NEVER", "SUCCESS", "FAILURE", "DELAY"})
#: Values of the MAIL ``RET=`` parameter (RFC 3461).
DSN_RET = frozenset({"FULL", "HDRS"})

_NOTIFY_ORDER = ("SUCCESS", "FAILURE", "DELAY")
_MAX_ENVID = 100
# C0 controls (CR, LF, NUL, TAB, ...), DEL and the C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# What would end or split a path outside a quoted local part.
_PATH_BREAKERS = re.compile(r"[ <>]")
_HOSTNAME = re.compile(r"[!-~]+")
# The usual path: printable ASCII without spaces, "<" or ">", and no quoted
# local part; it passes every path check as it is.
_PLAIN_PATH = re.compile(r"[!#-;=?-~][!-;=?-~]*")
# RFC 4422 sasl-mech: 1 to 20 upper-case letters, digits, "-" or "_".
_SASL_MECH = re.compile(r"[A-Z0-9_-]{1,20}")
_CRLF = b"\r\n"


def _check_text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a str, not {type(value).__name__}")
    match = _CONTROL.search(value)
    if match is not None:
        raise LocalProtocolError(
            f"{what} contains the control character {match.group()!r}; it is never sent"
        )
    return value


def _check_path(what: str, value: object, *, allow_empty: bool) -> str:
    text = _check_text(what, value)
    if not text:
        if allow_empty:
            return text
        raise LocalProtocolError(f"{what} must not be empty")
    unquoted = text
    if text.startswith('"'):
        # A quoted local part may hold spaces and angle brackets; find its end,
        # honouring backslash escapes.
        index = 1
        end = -1
        while index < len(text):
            char = text[index]
            if char == "\\":
                index += 2
                continue
            if char == '"':
                end = index
                break
            index += 1
        if end < 0:
            raise LocalProtocolError(f"{what} has an unterminated quoted local part")
        unquoted = text[end + 1 :]
    if _PATH_BREAKERS.search(unquoted) is not None:
        raise LocalProtocolError(
            f"{what} must not contain spaces, '<' or '>' outside a quoted local part"
        )
    return text


def _check_hostname(what: str, value: object) -> str:
    text = _check_text(what, value)
    if _HOSTNAME.fullmatch(text) is None:
        raise LocalProtocolError(
            f"{what} must be a non-empty ASCII domain or address literal without spaces"
        )
    return text


def _check_bytes(what: str, value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise LocalProtocolError(f"{what} must be bytes, not {type(value).__name__}")
    return bytes(value)


def _b64(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False)


def xtext_encode(text: str) -> str:
    """Encode ``text`` as RFC 3461 xtext.

    Printable ASCII other than ``+`` and ``=`` stays as it is; every other
    character becomes ``+`` followed by two upper-case hex digits.

    Args:
        text: ASCII text (ENVID values, ORCPT addresses).

    Returns:
        The xtext form.

    Raises:
        LocalProtocolError: when ``text`` holds a non-ASCII character.
    """
    if not text.isascii():
        raise LocalProtocolError("xtext can only encode ASCII text")
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code < 0x21 or code > 0x7E or char in "+=":
            out.append(f"+{code:02X}")
        else:
            out.append(char)
    return "".join(out)


def _utf8_addr_xtext(address: str) -> str:
    # RFC 6533 utf-8-addr-xtext: ASCII graphic characters except "+", "=" and
    # "\" as they are, everything else as \x{HEX}.
    out: list[str] = []
    for char in address:
        code = ord(char)
        if code < 0x21 or code > 0x7E or char in "+=\\":
            out.append(f"\\x{{{code:02X}}}")
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Hello:
    """What EHLO, LHLO and HELO share: one hostname argument, checked."""

    verb: ClassVar[str]
    hostname: str

    def __post_init__(self) -> None:
        _check_hostname(f"{self.verb} hostname", self.hostname)


@dataclass(frozen=True, slots=True)
class Ehlo(_Hello):
    """``EHLO <hostname>``: open an extended session (RFC 5321).

    Attributes:
        hostname: the client's fully qualified domain name or an address
            literal such as ``[192.0.2.1]`` (ASCII; use A-labels).

    Raises:
        LocalProtocolError: a hostname that is not an ASCII domain name or an address
            literal, or that holds a control character.
    """

    verb: ClassVar[str] = "EHLO"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        return b"EHLO " + self.hostname.encode("ascii") + _CRLF


@dataclass(frozen=True, slots=True)
class Lhlo(_Hello):
    """``LHLO <hostname>``: open an LMTP session (RFC 2033 4.1), in place of EHLO.

    Its reply carries the server's extensions, like a reply to EHLO. Only a
    connection in LMTP mode (``ClientConnection(lmtp=True)``) sends it.

    Attributes:
        hostname: the client's fully qualified domain name or an address
            literal such as ``[192.0.2.1]`` (ASCII; use A-labels).

    Raises:
        LocalProtocolError: a hostname that is not an ASCII domain name or an address
            literal, or that holds a control character.
    """

    verb: ClassVar[str] = "LHLO"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        return b"LHLO " + self.hostname.encode("ascii") + _CRLF


@dataclass(frozen=True, slots=True)
class Helo(_Hello):
    """``HELO <hostname>``: open a plain session, when the server refused EHLO.

    Attributes:
        hostname: the client's domain name or address literal (ASCII).

    Raises:
        LocalProtocolError: a hostname that is not an ASCII domain name or an address
            literal, or that holds a control character.
    """

    verb: ClassVar[str] = "HELO"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        return b"HELO " + self.hostname.encode("ascii") + _CRLF


@dataclass(frozen=True, slots=True)
class StartTls:
    """``STARTTLS``: ask to upgrade the connection to TLS (RFC 3207)."""

    verb: ClassVar[str] = "STARTTLS"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        return b"STARTTLS\r\n"


@dataclass(frozen=True, slots=True)
class Auth:
    """``AUTH <mechanism> [initial-response]`` (RFC 4954).

    Attributes:
        mechanism: the SASL mechanism name; stored upper-case.
        initial_response: raw bytes sent base64-encoded on the command line
            (an empty value is sent as ``=``), or None to send none.

    Raises:
        LocalProtocolError: an invalid mechanism name, or a response that is not bytes.
    """

    verb: ClassVar[str] = "AUTH"
    mechanism: str
    initial_response: bytes | None = None

    def __post_init__(self) -> None:
        name = _check_text("AUTH mechanism", self.mechanism).upper()
        if _SASL_MECH.fullmatch(name) is None:
            raise LocalProtocolError(f"invalid SASL mechanism name {self.mechanism!r}")
        object.__setattr__(self, "mechanism", name)
        if self.initial_response is not None:
            response = _check_bytes("AUTH initial response", self.initial_response)
            object.__setattr__(self, "initial_response", response)

    def __repr__(self) -> str:
        # The initial response usually holds a password: never show it.
        shown = "None" if self.initial_response is None else "<hidden>"
        return f"Auth(mechanism={self.mechanism!r}, initial_response={shown})"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        line = b"AUTH " + self.mechanism.encode("ascii")
        if self.initial_response is None:
            return line + _CRLF
        encoded = _b64(self.initial_response) if self.initial_response else b"="
        return line + b" " + encoded + _CRLF


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """One client response in a SASL exchange, sent as a base64 line.

    Attributes:
        data: the raw response; ``AuthResponse(b"")`` sends an empty line.

    Raises:
        LocalProtocolError: ``data`` is not bytes.
    """

    verb: ClassVar[str] = "AUTH-RESPONSE"
    data: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _check_bytes("AUTH response", self.data))

    def __repr__(self) -> str:
        return "AuthResponse(data=<hidden>)"

    def to_bytes(self) -> bytes:
        """Return the response line, CRLF included."""
        return _b64(self.data) + _CRLF


@dataclass(frozen=True, slots=True)
class AuthCancel:
    """``*``: abandon a SASL exchange (RFC 4954); the server answers 501."""

    verb: ClassVar[str] = "AUTH-CANCEL"

    def to_bytes(self) -> bytes:
        """Return the cancel line, CRLF included."""
        return b"*\r\n"


@dataclass(frozen=True, slots=True)
class Mail:
    """``MAIL FROM:<reverse-path>`` with its ESMTP parameters.

    Attributes:
        reverse_path: the sender's address without angle brackets; ``""`` is
            the null reverse path ``<>``. A non-ASCII address needs
            ``smtputf8=True``.
        size: the message size in octets (RFC 1870 ``SIZE=``).
        body: ``"7BIT"``, ``"8BITMIME"`` or ``"BINARYMIME"`` (``BODY=``).
        smtputf8: send the ``SMTPUTF8`` parameter (RFC 6531).
        ret: ``"FULL"`` or ``"HDRS"`` (DSN ``RET=``, RFC 3461).
        envid: the DSN envelope identifier: printable ASCII, at most 100
            characters, sent xtext-encoded.
        requiretls: send the ``REQUIRETLS`` parameter (RFC 8689).

    Raises:
        LocalProtocolError: an invalid address (a control character, a non-ASCII address
            without ``smtputf8``), or an invalid parameter value.
    """

    verb: ClassVar[str] = "MAIL"
    reverse_path: str
    size: int | None = None
    body: str | None = None
    smtputf8: bool = False
    ret: str | None = None
    envid: str | None = None
    requiretls: bool = False

    def __init__(
        self,
        reverse_path: str,
        size: int | None = None,
        body: str | None = None,
        smtputf8: bool = False,
        ret: str | None = None,
        envid: str | None = None,
        requiretls: bool = False,
    ) -> None:
        # What the generated __init__ does, through the slots' own setters
        # rather than object.__setattr__ (half the time; one MAIL per message).
        _set_reverse_path(self, reverse_path)
        _set_size(self, size)
        _set_body(self, body)
        _set_smtputf8(self, smtputf8)
        _set_ret(self, ret)
        _set_envid(self, envid)
        _set_requiretls(self, requiretls)
        self.__post_init__()

    def __post_init__(self) -> None:
        path = self.reverse_path
        if (
            type(path) is str
            and (not path or _PLAIN_PATH.fullmatch(path) is not None)
            and (self.size is None or (type(self.size) is int and self.size >= 0))
            and self.body is None
            and self.smtputf8 is False
            and self.ret is None
            and self.envid is None
            and self.requiretls is False
        ):
            return  # the usual MAIL: nothing to check further, nothing to normalise
        path = _check_path("MAIL reverse path", path, allow_empty=True)
        if not path.isascii() and not self.smtputf8:
            raise LocalProtocolError("a non-ASCII reverse path needs smtputf8=True")
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0
        ):
            raise LocalProtocolError(f"MAIL SIZE must be a non-negative int, not {self.size!r}")
        if self.body is not None:
            body = _check_text("MAIL BODY", self.body).upper()
            if body not in BODY_TYPES:
                raise LocalProtocolError(f"MAIL BODY must be one of {sorted(BODY_TYPES)}")
            object.__setattr__(self, "body", body)
        if self.ret is not None:
            ret = _check_text("MAIL RET", self.ret).upper()
            if ret not in DSN_RET:
                raise LocalProtocolError("MAIL RET must be FULL or HDRS")
            object.__setattr__(self, "ret", ret)
        if self.envid is not None:
            envid = _check_text("MAIL ENVID", self.envid)
            if not envid or not envid.isascii() or len(envid) > _MAX_ENVID:
                raise LocalProtocolError("MAIL ENVID must be 1 to 100 printable ASCII characters")
        for flag in ("smtputf8", "requiretls"):
            if not isinstance(getattr(self, flag), bool):
                raise LocalProtocolError(f"MAIL {flag} must be a bool")

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included (UTF-8 for SMTPUTF8 paths)."""
        if (
            self.body is None
            and not self.smtputf8
            and self.ret is None
            and self.envid is None
            and not self.requiretls
        ):
            # The usual MAIL: a path and maybe a size.
            if self.size is None:
                return f"MAIL FROM:<{self.reverse_path}>\r\n".encode()
            return f"MAIL FROM:<{self.reverse_path}> SIZE={self.size}\r\n".encode()
        parts = [f"MAIL FROM:<{self.reverse_path}>"]
        if self.size is not None:
            parts.append(f"SIZE={self.size}")
        if self.body is not None:
            parts.append(f"BODY={self.body}")
        if self.smtputf8:
            parts.append("SMTPUTF8")
        if self.ret is not None:
            parts.append(f"RET={self.ret}")
        if self.envid is not None:
            parts.append(f"ENVID={xtext_encode(self.envid)}")
        if self.requiretls:
            parts.append("REQUIRETLS")
        return " ".join(parts).encode("utf-8") + _CRLF


@dataclass(frozen=True, slots=True)
class Rcpt:
    """``RCPT TO:<forward-path>`` with its DSN parameters (RFC 3461).

    Attributes:
        forward_path: the recipient's address without angle brackets. A
            non-ASCII address needs a transaction opened with SMTPUTF8.
        notify: None, ``{"NEVER"}`` or a non-empty subset of
            ``{"SUCCESS", "FAILURE", "DELAY"}``; stored upper-case.
        orcpt: the original recipient address, sent as
            ``ORCPT=rfc822;<xtext>`` (or RFC 6533's ``utf-8;`` form when it
            is not ASCII).

    Raises:
        LocalProtocolError: an invalid address or DSN parameter, or a control character.
    """

    verb: ClassVar[str] = "RCPT"
    forward_path: str
    notify: frozenset[str] | None = None
    orcpt: str | None = None

    def __post_init__(self) -> None:
        if (
            type(self.forward_path) is str
            and _PLAIN_PATH.fullmatch(self.forward_path) is not None
            and self.notify is None
            and self.orcpt is None
        ):
            return  # the usual RCPT: nothing to check further, nothing to normalise
        _check_path("RCPT forward path", self.forward_path, allow_empty=False)
        if self.notify is not None:
            if isinstance(self.notify, str) or not isinstance(self.notify, Iterable):
                raise LocalProtocolError("RCPT NOTIFY must be a set of keywords")
            notify = frozenset(_check_text("RCPT NOTIFY", v).upper() for v in self.notify)
            if not notify or not notify <= DSN_NOTIFY or ("NEVER" in notify and len(notify) > 1):
                raise LocalProtocolError(
                    "RCPT NOTIFY must be {'NEVER'} or a non-empty subset of "
                    "{'SUCCESS', 'FAILURE', 'DELAY'}"
                )
            object.__setattr__(self, "notify", notify)
        if self.orcpt is not None:
            orcpt = _check_text("RCPT ORCPT", self.orcpt)
            if not orcpt:
                raise LocalProtocolError("RCPT ORCPT must not be empty")

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included (UTF-8 for SMTPUTF8 paths)."""
        if self.notify is None and self.orcpt is None:
            return f"RCPT TO:<{self.forward_path}>\r\n".encode()
        parts = [f"RCPT TO:<{self.forward_path}>"]
        if self.notify is not None:
            if "NEVER" in self.notify:
                parts.append("NOTIFY=NEVER")
            else:
                keywords = ",".join(k for k in _NOTIFY_ORDER if k in self.notify)
                parts.append(f"NOTIFY={keywords}")
        if self.orcpt is not None:
            if self.orcpt.isascii():
                parts.append(f"ORCPT=rfc822;{xtext_encode(self.orcpt)}")
            else:
                parts.append(f"ORCPT=utf-8;{_utf8_addr_xtext(self.orcpt)}")
        return " ".join(parts).encode("utf-8") + _CRLF


_set_reverse_path = Mail.__dict__["reverse_path"].__set__
_set_size = Mail.__dict__["size"].__set__
_set_body = Mail.__dict__["body"].__set__
_set_smtputf8 = Mail.__dict__["smtputf8"].__set__
_set_ret = Mail.__dict__["ret"].__set__
_set_envid = Mail.__dict__["envid"].__set__
_set_requiretls = Mail.__dict__["requiretls"].__set__


@dataclass(frozen=True, slots=True)
class Data:
    """``DATA``: ask to send the message content; the server answers 354."""

    verb: ClassVar[str] = "DATA"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        return b"DATA\r\n"


@dataclass(frozen=True, slots=True)
class MessageData:
    """A chunk of message content, sent after the 354 reply to DATA.

    The connection normalises line endings (bare CR and bare LF become CRLF)
    and dot-stuffs lines that start with ``.``, across chunk boundaries. No
    reply answers a chunk.

    Attributes:
        data: the raw content bytes.

    Raises:
        LocalProtocolError: ``data`` is not bytes.
    """

    verb: ClassVar[str] = "DATA-CONTENT"
    data: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _check_bytes("message data", self.data))

    def __repr__(self) -> str:
        return f"MessageData(<{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class EndOfData:
    """The end of the message content: the ``<CRLF>.<CRLF>`` terminator."""

    verb: ClassVar[str] = "END-OF-DATA"


@dataclass(frozen=True, slots=True)
class Bdat:
    """``BDAT <size> [LAST]`` followed by a chunk of content (RFC 3030).

    Unless the transaction's MAIL said ``BODY=BINARYMIME``, the connection
    normalises line endings (carrying a trailing CR over to the next chunk)
    and, on the LAST chunk, ends the content with CRLF if it does not already;
    the size on the command line is always the exact number of octets that
    follow it.

    Attributes:
        data: the raw content bytes of this chunk.
        last: True for the final chunk of the message.

    Raises:
        LocalProtocolError: ``data`` is not bytes or ``last`` is not a bool.
    """

    verb: ClassVar[str] = "BDAT"
    data: bytes
    last: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _check_bytes("BDAT data", self.data))
        if not isinstance(self.last, bool):
            raise LocalProtocolError("BDAT last must be a bool")

    def __repr__(self) -> str:
        return f"Bdat(<{len(self.data)} bytes>, last={self.last})"


@dataclass(frozen=True, slots=True)
class Rset:
    """``RSET``: abort the current mail transaction."""

    verb: ClassVar[str] = "RSET"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        return b"RSET\r\n"


@dataclass(frozen=True, slots=True)
class Noop:
    """``NOOP``: ask for a 250 reply and nothing else."""

    verb: ClassVar[str] = "NOOP"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        return b"NOOP\r\n"


@dataclass(frozen=True, slots=True)
class Quit:
    """``QUIT``: end the session; the server answers 221 and closes."""

    verb: ClassVar[str] = "QUIT"

    def to_bytes(self) -> bytes:
        """Return the command line, CRLF included."""
        return b"QUIT\r\n"


#: Any command :meth:`ClientConnection.send` accepts. Each command class has a
#: ``verb`` class attribute: the name the state machine knows it by.
Command: TypeAlias = (
    Ehlo
    | Helo
    | Lhlo
    | StartTls
    | Auth
    | AuthResponse
    | AuthCancel
    | Mail
    | Rcpt
    | Data
    | MessageData
    | EndOfData
    | Bdat
    | Rset
    | Noop
    | Quit
)
