"""MIME parts: content types, single parts, multiparts, attachments, transfer encodings.

A message body is a tree of :class:`SinglePart` (leaves with bytes) and
:class:`MultiPart` (``multipart/*`` nodes). Parts are immutable values; the
transfer encoding of each leaf and the boundary of each multipart are fixed
when the message is built, so serialising twice gives the same bytes.
"""

from __future__ import annotations

import binascii
import enum
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO, Final, TypeAlias, cast

from lettre._slots import slot_builder
from lettre.errors import MessageError
from lettre.message.headers import (
    MAX_LINE_LENGTH,
    WRAP_LENGTH,
    check_value,
    normalize_msg_id,
    render_params,
    render_structured,
    render_unstructured,
    validate_name,
)
from lettre.message.source import FileSource, SourceSegment, encode_base64

__all__ = [
    "MAX_NESTING",
    "Attachment",
    "Chunks",
    "ContentType",
    "MultiPart",
    "Part",
    "SinglePart",
    "TransferEncoding",
]

MAX_NESTING: Final = 32
"""The deepest MIME tree accepted."""

Chunks: TypeAlias = list[bytes | bytearray]
"""Pieces of serialised output, joined once at the end."""

_MAX_FILENAME: Final = 255

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")

# Bytes 0x80-0xFF, for counting non-ASCII bytes with bytes.translate.
_ASCII_BYTES: Final = bytes(range(128))

_TYPES: Final[Mapping[str, str]] = {
    "7z": "application/x-7z-compressed",
    "aac": "audio/aac",
    "avif": "image/avif",
    "bmp": "image/bmp",
    "bz2": "application/x-bzip2",
    "css": "text/css",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "eml": "message/rfc822",
    "epub": "application/epub+zip",
    "flac": "audio/flac",
    "gif": "image/gif",
    "gz": "application/gzip",
    "heic": "image/heic",
    "htm": "text/html",
    "html": "text/html",
    "ico": "image/vnd.microsoft.icon",
    "ics": "text/calendar",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "js": "text/javascript",
    "json": "application/json",
    "m4a": "audio/mp4",
    "md": "text/markdown",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
    "mpeg": "video/mpeg",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "ogv": "video/ogg",
    "otf": "font/otf",
    "pdf": "application/pdf",
    "png": "image/png",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "rar": "application/vnd.rar",
    "rtf": "application/rtf",
    "svg": "image/svg+xml",
    "tar": "application/x-tar",
    "tgz": "application/gzip",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "ttf": "font/ttf",
    "txt": "text/plain",
    "vcf": "text/vcard",
    "wav": "audio/wav",
    "weba": "audio/webm",
    "webm": "video/webm",
    "webp": "image/webp",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xml": "application/xml",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "zip": "application/zip",
}


class TransferEncoding(str, enum.Enum):
    """A Content-Transfer-Encoding (RFC 2045 section 6)."""

    SEVEN_BIT = "7bit"
    """ASCII text in lines of at most 998 octets: the content goes as it is."""
    EIGHT_BIT = "8bit"
    """Like 7bit but with 8-bit octets; needs the server's 8BITMIME. Only used when asked."""
    QUOTED_PRINTABLE = "quoted-printable"
    """Mostly-ASCII text: readable, with non-ASCII octets as ``=XX``."""
    BASE64 = "base64"
    """Anything: 76-column lines of base64."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, init=False)
class ContentType:
    """A MIME type with parameters, such as ``text/plain; charset=utf-8``.

    Args:
        value: ``"type/subtype"`` optionally followed by ``; name=value``
            parameters (quoted values allowed).
        params: more parameters, added after those in ``value``.

    Raises:
        MessageError: the text is not a valid MIME type.

    Attributes:
        maintype: the top-level type, lower case (``"text"``).
        subtype: the subtype, lower case (``"plain"``).
        params: the parameters as ``(name, value)`` pairs, names lower case.
    """

    maintype: str
    subtype: str
    params: tuple[tuple[str, str], ...]

    def __init__(self, value: str, params: Mapping[str, str] | None = None) -> None:
        check_value(value, "a content type")
        essence, _, rest = value.partition(";")
        maintype, slash, subtype = essence.strip().partition("/")
        if not slash or not _TOKEN.fullmatch(maintype) or not _TOKEN.fullmatch(subtype):
            raise MessageError(f"invalid content type {value!r}: expected type/subtype")
        pairs = _parse_params(rest, value) if rest.strip() else []
        for name, param in (params or {}).items():
            pairs.append(_check_param(name, param))
        object.__setattr__(self, "maintype", maintype.lower())
        object.__setattr__(self, "subtype", subtype.lower())
        object.__setattr__(self, "params", tuple(pairs))

    @classmethod
    def coerce(cls, value: ContentType | str) -> ContentType:
        """Return ``value`` if it is a ContentType, else parse it.

        Args:
            value: a ContentType, or its text such as ``"text/csv; charset=utf-8"``.

        Raises:
            MessageError: the text is not a valid MIME type.
        """
        if isinstance(value, ContentType):
            return value
        if isinstance(value, str) and len(value) <= 200:
            return _parse_content_type(value)
        return cls(value)

    @classmethod
    def guess(cls, filename: str) -> ContentType:
        """Guess the type from a file name's extension.

        Uses a fixed table of common types (no system files are read, so the
        result is the same on every machine); unknown extensions give
        ``application/octet-stream``.

        Args:
            filename: a file name or path; only its extension is used.
        """
        _, dot, extension = filename.rpartition(".")
        mime = _TYPES.get(extension.lower()) if dot else None
        return cls(mime or "application/octet-stream")

    @property
    def essence(self) -> str:
        """``type/subtype`` without parameters."""
        return f"{self.maintype}/{self.subtype}"

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive), or None.

        Args:
            name: the parameter name, such as ``"charset"``.
        """
        name = name.lower()
        for key, value in self.params:
            if key == name:
                return value
        return None

    def with_param(self, name: str, value: str) -> ContentType:
        """A copy with parameter ``name`` set to ``value`` (replacing any).

        Args:
            name: the parameter name, a MIME token.
            value: its value; quoted in the header when it needs to be.

        Raises:
            MessageError: an invalid name, or a value with control characters.
        """
        pair = _check_param(name, value)
        params = [p for p in self.params if p[0] != pair[0]]
        params.append(pair)
        return _content_type(self.maintype, self.subtype, tuple(params))

    def __str__(self) -> str:
        parts = [self.essence]
        for name, value in self.params:
            if _TOKEN.fullmatch(value):
                parts.append(f"{name}={value}")
            else:
                quoted = value.replace("\\", "\\\\").replace('"', '\\"')
                parts.append(f'{name}="{quoted}"')
        return "; ".join(parts)


@lru_cache(maxsize=256)
def _parse_content_type(value: str) -> ContentType:
    return ContentType(value)


@lru_cache(maxsize=64)
def _with_charset(ctype: ContentType, charset: str) -> ContentType:
    return ctype.with_param("charset", charset)


def _content_type(maintype: str, subtype: str, params: tuple[tuple[str, str], ...]) -> ContentType:
    result = object.__new__(ContentType)
    object.__setattr__(result, "maintype", maintype)
    object.__setattr__(result, "subtype", subtype)
    object.__setattr__(result, "params", params)
    return result


def _check_param(name: str, value: str) -> tuple[str, str]:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name) or "*" in name:
        raise MessageError(f"invalid parameter name {name!r}")
    check_value(value, f"the {name} parameter")
    return name.lower(), value


def _parse_params(text: str, whole: str) -> list[tuple[str, str]]:
    """Parse ``; a=b; c="d"`` (simple values and quoted strings, no RFC 2231)."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t;":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise MessageError(f"invalid parameter in content type {whole!r}")
        name = text[i:eq].strip()
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            chars: list[str] = []
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise MessageError(f"unterminated quoted parameter in {whole!r}")
            value = "".join(chars)
            i += 1
        else:
            end = text.find(";", i)
            end = n if end < 0 else end
            value = text[i:end].strip()
            i = end
        pairs.append(_check_param(name, value))
    return pairs


def _canonical_lines(data: bytes) -> bool:
    """True when every CR and LF in ``data`` is part of a CRLF pair."""
    crlf = data.count(b"\r\n")
    return data.count(b"\r") == crlf and data.count(b"\n") == crlf


def _max_line(data: bytes) -> int:
    if len(data) <= WRAP_LENGTH:
        return len(data)
    return max(map(len, data.split(b"\r\n")))


def _fits_7bit(data: bytes, limit: int = WRAP_LENGTH) -> bool:
    return (
        data.isascii() and b"\0" not in data and _canonical_lines(data) and _max_line(data) <= limit
    )


def _fits_8bit(data: bytes) -> bool:
    return b"\0" not in data and _canonical_lines(data) and _max_line(data) <= MAX_LINE_LENGTH


def choose_encoding(content_type: ContentType, data: bytes) -> TransferEncoding:
    """Pick the transfer encoding for a leaf part's content.

    7bit for ASCII in short lines (at most 78 octets), quoted-printable for
    text that is mostly ASCII (at most a sixth of its octets non-ASCII) with
    CRLF line endings, base64 for everything else.
    """
    if _fits_7bit(data):
        return TransferEncoding.SEVEN_BIT
    if content_type.maintype == "text" and _canonical_lines(data):
        non_ascii = len(data.translate(None, _ASCII_BYTES))
        if non_ascii * 6 <= len(data):
            return TransferEncoding.QUOTED_PRINTABLE
    return TransferEncoding.BASE64


def encode_quoted_printable(data: bytes) -> bytes:
    """Quoted-printable for text with CRLF line endings (lines of at most 76)."""
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


def _normalize_text(text: str) -> str:
    """CRLF line endings, and a final line break when the text is not empty."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\n", "\r\n")
    if text and not text.endswith("\r\n"):
        text += "\r\n"
    return text


# Charsets that encode ASCII text as the same ASCII bytes, so that such text
# can be encoded first and its line endings normalised on the bytes.
_ASCII_CHARSETS: Final = frozenset({"utf-8", "us-ascii"})


def _ascii_text_lines(text: str) -> list[bytes]:
    """The lines of ASCII ``text``, split at CRLF, CR or LF, without line breaks.

    ``b"\\r\\n".join(lines + [b""])`` is :func:`_normalize_text` of the text,
    encoded: ``bytes.splitlines`` breaks at exactly CRLF, a lone CR and a lone
    LF, and drops the empty piece after a final line break.
    """
    return text.encode("ascii").splitlines()


def _encode_text(text: str, charset: str) -> bytes:
    """CRLF-normalised text, encoded with ``charset``."""
    if charset in _ASCII_CHARSETS and text.isascii():
        lines = _ascii_text_lines(text)
        lines.append(b"")
        return b"\r\n".join(lines)
    return _normalize_text(text).encode(charset)


def _normalize_content_id(value: str) -> str:
    return normalize_msg_id(value, "Content-ID")[1:-1]


def _check_filename(filename: str) -> str:
    check_value(filename, "the file name")
    if not filename or len(filename) > _MAX_FILENAME:
        raise MessageError(f"a file name must be 1 to {_MAX_FILENAME} characters long")
    if filename.strip() != filename:
        # Mail readers strip it anyway: refuse rather than send another name.
        raise MessageError(f"the file name {filename!r} starts or ends with whitespace")
    return filename


_PART_FIELDS: Final = frozenset(
    {"content-type", "content-transfer-encoding", "content-disposition", "content-id"}
)


def _extra_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    result: list[tuple[str, str]] = []
    for name, value in headers:
        validate_name(name)
        if name.lower() in _PART_FIELDS or name.lower() == "mime-version":
            raise MessageError(
                f"set {name} through the part's own arguments, not as an extra header"
            )
        check_value(value, f"the {name} header")
        result.append((name, value))
    return tuple(result)


@dataclass(frozen=True, slots=True, init=False)
class SinglePart:
    """A leaf of the MIME tree: one content type and its bytes.

    Args:
        body: the content. A ``str`` is for ``text/*`` types: its line endings
            become CRLF, a final line break is added and it is encoded with the
            type's charset (``utf-8`` unless given). ``bytes`` are kept exactly.
        content_type: a :class:`ContentType` or its text; defaults to
            ``text/plain`` for a str body, ``application/octet-stream`` for bytes.
        transfer_encoding: force a transfer encoding; by default 7bit,
            quoted-printable or base64 is chosen from the content. 8bit is only
            used when asked for (and the content must have CRLF lines of at most
            998 octets without NUL).
        disposition: ``"inline"`` or ``"attachment"`` (Content-Disposition).
        filename: the file name offered to the recipient (any Unicode; RFC
            2231-encoded when needed).
        content_id: a Content-ID (``<logo@example>`` or ``logo@example``), for
            parts referenced from HTML as ``cid:logo@example``.
        headers: extra headers of this part, such as Content-Description.

    Raises:
        MessageError: an invalid argument.
    """

    content_type: ContentType
    body: bytes
    transfer_encoding: TransferEncoding | None
    disposition: str | None
    filename: str | None
    content_id: str | None
    headers: tuple[tuple[str, str], ...]

    def __init__(
        self,
        body: bytes | str,
        content_type: ContentType | str | None = None,
        *,
        transfer_encoding: TransferEncoding | str | None = None,
        disposition: str | None = None,
        filename: str | None = None,
        content_id: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        if isinstance(body, str):
            ctype = ContentType.coerce(content_type or "text/plain")
            if ctype.maintype != "text":
                raise MessageError(
                    f"a str body needs a text/* content type, not {ctype.essence}; pass bytes"
                )
            charset = ctype.param("charset")
            if charset is None:
                charset = "utf-8"
                ctype = _with_charset(ctype, charset)
            try:
                data = _encode_text(body, charset)
            except LookupError as exc:
                raise MessageError(f"unknown charset {charset!r}") from exc
            except UnicodeError as exc:
                raise MessageError(f"the text cannot be encoded as {charset}: {exc}") from exc
        elif isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
            ctype = ContentType.coerce(content_type or "application/octet-stream")
        else:
            raise TypeError(f"a part body must be bytes or str, not {type(body).__name__}")
        if ctype.maintype == "multipart":
            raise MessageError("use MultiPart for multipart/* content")
        encoding = None if transfer_encoding is None else _coerce_encoding(transfer_encoding)
        if disposition is not None:
            disposition = disposition.lower()
            if disposition not in ("inline", "attachment"):
                raise MessageError(
                    f"disposition must be 'inline' or 'attachment', not {disposition!r}"
                )
        object.__setattr__(self, "content_type", ctype)
        object.__setattr__(self, "body", data)
        object.__setattr__(self, "transfer_encoding", encoding)
        object.__setattr__(self, "disposition", disposition)
        object.__setattr__(
            self, "filename", None if filename is None else _check_filename(filename)
        )
        object.__setattr__(
            self, "content_id", None if content_id is None else _normalize_content_id(content_id)
        )
        object.__setattr__(self, "headers", _extra_headers(headers))

    @classmethod
    def plain(cls, text: str) -> SinglePart:
        """A ``text/plain; charset=utf-8`` part.

        Args:
            text: the text; its line endings become CRLF.

        Raises:
            MessageError: the text cannot be sent in a message (see
                :class:`SinglePart`).
        """
        return cls(text, "text/plain")

    @classmethod
    def html(cls, text: str) -> SinglePart:
        """A ``text/html; charset=utf-8`` part.

        Args:
            text: the HTML; its line endings become CRLF.

        Raises:
            MessageError: the text cannot be sent in a message (see
                :class:`SinglePart`).
        """
        return cls(text, "text/html")

    def _with_encoding(self, encoding: TransferEncoding) -> SinglePart:
        return _single_part(
            self.content_type,
            self.body,
            encoding,
            self.disposition,
            self.filename,
            self.content_id,
            self.headers,
        )


def _single_part(
    content_type: ContentType,
    body: bytes,
    encoding: TransferEncoding | None,
    disposition: str | None = None,
    filename: str | None = None,
    content_id: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> SinglePart:
    """A SinglePart from already-checked field values (no validation)."""
    return _build_single_part(
        content_type, body, encoding, disposition, filename, content_id, headers
    )


_build_single_part = slot_builder(
    SinglePart,
    "content_type",
    "body",
    "transfer_encoding",
    "disposition",
    "filename",
    "content_id",
    "headers",
)


@dataclass(frozen=True, slots=True, init=False)
class _SourcePart(SinglePart):
    """A leaf whose content is read from a :class:`FileSource` while sending (base64).

    Its ``body`` is empty; serialising it for sending gives a
    :class:`~lettre.message.source.SourceSegment` in place of the content.
    """

    source: FileSource

    def _with_encoding(self, encoding: TransferEncoding) -> SinglePart:
        return self  # base64 from the start


def _source_part(
    source: FileSource,
    content_type: ContentType,
    disposition: str,
    filename: str | None,
    content_id: str | None,
) -> _SourcePart:
    part = object.__new__(_SourcePart)
    for name, value in (
        ("content_type", content_type),
        ("body", b""),
        ("transfer_encoding", TransferEncoding.BASE64),
        ("disposition", disposition),
        ("filename", filename),
        ("content_id", content_id),
        ("headers", ()),
        ("source", source),
    ):
        object.__setattr__(part, name, value)
    return part


def has_content(part: SinglePart) -> bool:
    """Whether a leaf with an empty body streams some content (an unknown size counts as some)."""
    return type(part) is _SourcePart and part.source.size != 0


TEXT_PLAIN: Final = ContentType("text/plain; charset=utf-8")
"""``text/plain; charset=utf-8``: the type of :meth:`SinglePart.plain` parts."""

TEXT_HTML: Final = ContentType("text/html; charset=utf-8")
"""``text/html; charset=utf-8``: the type of :meth:`SinglePart.html` parts."""


def text_part(text: str, content_type: ContentType) -> SinglePart:
    """A resolved ``text/*`` part: ``resolve(SinglePart(text, content_type))``, made faster.

    ``content_type`` must be a ``text/*`` type with a charset parameter (such
    as :data:`TEXT_PLAIN`). For ASCII text in a charset that keeps ASCII as
    it is, the line endings are normalised on the encoded bytes and the
    transfer encoding is chosen from the lines already split: 7bit when no
    line is longer than 78 octets and there is no NUL, otherwise by
    :func:`choose_encoding`, as for any other part.

    Raises:
        MessageError: as :class:`SinglePart` and :func:`resolve` do.
    """
    if not isinstance(text, str):
        raise TypeError(f"a text part needs a str, not {type(text).__name__}")
    charset = content_type.param("charset")
    if charset in _ASCII_CHARSETS and content_type.maintype == "text" and text.isascii():
        lines = _ascii_text_lines(text)
        longest = max(map(len, lines), default=0)
        lines.append(b"")
        data = b"\r\n".join(lines)
        if longest <= WRAP_LENGTH and "\0" not in text:
            encoding = TransferEncoding.SEVEN_BIT
        else:
            encoding = choose_encoding(content_type, data)
        return _single_part(content_type, data, encoding)
    part = SinglePart(text, content_type)
    return part._with_encoding(_resolve_encoding(part))


def _coerce_encoding(value: TransferEncoding | str) -> TransferEncoding:
    try:
        return TransferEncoding(value.lower() if isinstance(value, str) else value)
    except ValueError:
        raise MessageError(
            f"unknown transfer encoding {value!r}; use 7bit, 8bit, quoted-printable or base64"
        ) from None


@dataclass(frozen=True, slots=True, init=False)
class MultiPart:
    """A ``multipart/*`` node of the MIME tree.

    Args:
        subtype: ``"mixed"``, ``"alternative"``, ``"related"`` or another
            multipart subtype.
        parts: the children (at least one): parts or attachments.
        boundary: the boundary; by default a random one is chosen when the
            message is built, and checked not to occur in the content.
        params: more Content-Type parameters (such as ``type`` for related).
        headers: extra headers of this part.

    Raises:
        MessageError: an invalid argument.
    """

    subtype: str
    parts: tuple[Part, ...]
    boundary: str | None
    params: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]

    def __init__(
        self,
        subtype: str,
        parts: Iterable[Part | Attachment],
        *,
        boundary: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        if not isinstance(subtype, str) or not _TOKEN.fullmatch(subtype):
            raise MessageError(f"invalid multipart subtype {subtype!r}")
        children: list[Part] = []
        for part in parts:
            if isinstance(part, Attachment):
                children.append(part.to_part())
            elif isinstance(part, (SinglePart, MultiPart)):
                children.append(part)
            else:
                raise TypeError(
                    f"a multipart holds SinglePart, MultiPart or Attachment, "
                    f"not {type(part).__name__}"
                )
        if not children:
            raise MessageError("a multipart needs at least one part")
        if boundary is not None:
            check_value(boundary, "the boundary")
            if _BOUNDARY.fullmatch(boundary) is None:
                raise MessageError(
                    f"invalid boundary {boundary!r}: 1 to 70 of letters, digits and "
                    "'()+_,-./:=? (space allowed, not last)"
                )
        pairs = [_check_param(k, v) for k, v in (params or {}).items()]
        if any(name == "boundary" for name, _ in pairs):
            raise MessageError("set the boundary with the boundary argument")
        object.__setattr__(self, "subtype", subtype.lower())
        object.__setattr__(self, "parts", tuple(children))
        object.__setattr__(self, "boundary", boundary)
        object.__setattr__(self, "params", tuple(pairs))
        object.__setattr__(self, "headers", _extra_headers(headers))

    @classmethod
    def mixed(cls, *parts: Part | Attachment, boundary: str | None = None) -> MultiPart:
        """``multipart/mixed``: a body followed by attachments.

        Args:
            parts: the children, at least one: parts or attachments.
            boundary: the boundary; by default a random one is chosen when the
                message is built.

        Raises:
            MessageError: no parts, or an invalid boundary.
        """
        return cls("mixed", parts, boundary=boundary)

    @classmethod
    def alternative(cls, *parts: Part | Attachment, boundary: str | None = None) -> MultiPart:
        """``multipart/alternative``: the same content in several forms, simplest first.

        Args:
            parts: the children, at least one: parts or attachments.
            boundary: the boundary; by default a random one is chosen when the
                message is built.

        Raises:
            MessageError: no parts, or an invalid boundary.
        """
        return cls("alternative", parts, boundary=boundary)

    @classmethod
    def related(cls, *parts: Part | Attachment, boundary: str | None = None) -> MultiPart:
        """``multipart/related``: a root part (usually HTML) and the resources it uses.

        Args:
            parts: the children, at least one: parts or attachments.
            boundary: the boundary; by default a random one is chosen when the
                message is built.

        Raises:
            MessageError: no parts, or an invalid boundary.
        """
        return cls("related", parts, boundary=boundary)

    @property
    def content_type(self) -> ContentType:
        """The Content-Type, with the boundary once it is known."""
        params = self.params
        if self.boundary is not None:
            params = (("boundary", self.boundary), *params)
        return _content_type("multipart", self.subtype, params)

    def _with(self, parts: tuple[Part, ...], boundary: str) -> MultiPart:
        copy = object.__new__(MultiPart)
        for name in MultiPart.__slots__:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "parts", parts)
        object.__setattr__(copy, "boundary", boundary)
        return copy


Part: TypeAlias = SinglePart | MultiPart
"""A node of the MIME tree."""


@dataclass(frozen=True, slots=True, init=False)
class Attachment:
    """A file for the recipient: its bytes, name and type.

    Args:
        data: the file's content.
        filename: the name shown to the recipient; the content type is guessed
            from its extension unless given.
        content_type: the type, overriding the guess.
        inline: mark the part ``inline`` (shown in the message) instead of
            ``attachment``.
        content_id: a Content-ID, for images referenced from HTML.

    Raises:
        MessageError: an invalid argument.

    Attributes:
        source: for an attachment made by :meth:`from_path` or
            :meth:`from_file`, where its content is read from while the
            message is sent (``data`` is then empty); None otherwise.
    """

    data: bytes
    filename: str | None
    content_type: ContentType
    inline: bool
    content_id: str | None
    source: FileSource | None

    def __init__(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: ContentType | str | None = None,
        *,
        inline: bool = False,
        content_id: str | None = None,
    ) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"attachment data must be bytes, not {type(data).__name__}; "
                "use Attachment.from_path() for files"
            )
        if filename is not None:
            _check_filename(filename)
        if content_type is not None:
            ctype = ContentType.coerce(content_type)
        elif filename is not None:
            ctype = ContentType.guess(filename)
        else:
            ctype = ContentType("application/octet-stream")
        object.__setattr__(self, "data", bytes(data))
        object.__setattr__(self, "filename", filename)
        object.__setattr__(self, "content_type", ctype)
        object.__setattr__(self, "inline", bool(inline))
        object.__setattr__(
            self, "content_id", None if content_id is None else _normalize_content_id(content_id)
        )
        object.__setattr__(self, "source", None)

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        filename: str | None = None,
        content_type: ContentType | str | None = None,
        inline: bool = False,
        content_id: str | None = None,
    ) -> Attachment:
        """An attachment whose content is read from a file while the message is sent.

        The file is not read now: it is checked to be a regular file, and its
        size and modification time are recorded (so the message's size is
        known in advance). Each send reads it in chunks of
        :data:`~lettre.message.source.CHUNK_SIZE` octets, in a worker thread,
        and base64-encodes it on the way; a DKIM signature reads it once
        more before. A file that changed since (another size or modification
        time) makes the send fail with :class:`~lettre.message.SourceError`
        rather than send something else. :meth:`Message.as_bytes()
        <lettre.message.Message.as_bytes>` reads the whole file into memory.

        Args:
            path: the file.
            filename: the file name offered to the recipient, instead of the
                path's last component.
            content_type: the MIME type; guessed from the file name by default.
            inline: show the file in the message body (Content-Disposition:
                inline) rather than as an attachment.
            content_id: a Content-ID, for an inline part referenced from HTML.

        Raises:
            SourceError: the file does not exist or is not a regular file (a
                :class:`~lettre.errors.MessageError`).
            MessageError: an invalid argument (see :class:`Attachment`).
        """
        source = FileSource.from_path(path)
        assert source.path is not None
        return cls._streamed(
            source,
            filename if filename is not None else source.path.name,
            content_type,
            inline,
            content_id,
        )

    @classmethod
    def from_file(
        cls,
        file: BinaryIO,
        filename: str | None = None,
        content_type: ContentType | str | None = None,
        *,
        inline: bool = False,
        content_id: str | None = None,
    ) -> Attachment:
        """An attachment whose content is read from a binary file object while the message is sent.

        The object is read from its current position, in chunks, in a
        worker thread. A seekable object (a file opened with ``"rb"``, a
        ``BytesIO``) is read again from that position for each send, for a
        DKIM signature (which reads it twice) and for a retry; its size is
        known in advance. A non-seekable one (a pipe) can be sent once
        without DKIM: a second read raises
        :class:`~lettre.message.SourceError`. The object is not closed; one
        send at a time may read it.

        Args:
            file: a binary file object (``read(n)`` returning bytes).
            filename: the file name offered to the recipient (default: the
                object's ``name`` attribute's last component, if any).
            content_type: the MIME type; guessed from the file name by default.
            inline: show the file in the message body rather than as an
                attachment.
            content_id: a Content-ID, for an inline part referenced from HTML.

        Raises:
            TypeError: ``file`` is not a binary file object.
            MessageError: an invalid argument (see :class:`Attachment`).
        """
        source = FileSource.from_file(file)
        if filename is None:
            name = getattr(file, "name", None)
            if isinstance(name, str) and name:
                filename = os.path.basename(name) or None
        return cls._streamed(source, filename, content_type, inline, content_id)

    @classmethod
    def _streamed(
        cls,
        source: FileSource,
        filename: str | None,
        content_type: ContentType | str | None,
        inline: bool,
        content_id: str | None,
    ) -> Attachment:
        attachment = cls(b"", filename, content_type, inline=inline, content_id=content_id)
        object.__setattr__(attachment, "source", source)
        return attachment

    def to_part(self) -> SinglePart:
        """The :class:`SinglePart` this attachment becomes."""
        if self.source is not None:
            return _source_part(
                self.source,
                self.content_type,
                "inline" if self.inline else "attachment",
                self.filename,
                self.content_id,
            )
        return SinglePart(
            self.data,
            self.content_type,
            disposition="inline" if self.inline else "attachment",
            filename=self.filename,
            content_id=self.content_id,
        )


def new_boundary() -> str:
    """A fresh random boundary.

    It contains ``=_``, which quoted-printable and base64 output never do, so
    only 7bit and 8bit content needs to be checked for it.
    """
    return "=_" + secrets.token_hex(16)


def _encoded_bodies(part: Part) -> Iterable[bytes]:
    if isinstance(part, SinglePart):
        if type(part) is _SourcePart:
            return  # base64: never holds "--"
        chunks: Chunks = []
        encode_body(part, chunks)
        yield b"".join(chunks)
    else:
        for child in part.parts:
            yield from _encoded_bodies(child)


def resolve(part: Part, depth: int = 0) -> Part:
    """Fix transfer encodings and boundaries so that serialisation is deterministic.

    Raises:
        MessageError: the tree is too deep, a forced encoding does not fit the
            content, or an explicit boundary occurs in the content.
    """
    if depth > MAX_NESTING:
        raise MessageError(f"the MIME tree is deeper than {MAX_NESTING} levels")
    if isinstance(part, SinglePart):
        return part._with_encoding(_resolve_encoding(part))
    children = tuple(resolve(child, depth + 1) for child in part.parts)
    boundary = part.boundary
    if boundary is not None:
        delimiter = b"--" + boundary.encode("ascii")
        for child in children:
            if any(delimiter in body for body in _encoded_bodies(child)):
                raise MessageError(f"the boundary {boundary!r} occurs in the content")
    else:
        raw = [
            body
            for body, child in _leaves_with_encoding(children)
            if child in (TransferEncoding.SEVEN_BIT, TransferEncoding.EIGHT_BIT)
        ]
        while True:
            boundary = new_boundary()
            delimiter = b"--" + boundary.encode("ascii")
            if not any(delimiter in body for body in raw):
                break
    return part._with(children, boundary)


def _leaves_with_encoding(parts: Iterable[Part]) -> Iterable[tuple[bytes, TransferEncoding]]:
    for part in parts:
        if isinstance(part, SinglePart):
            assert part.transfer_encoding is not None
            yield part.body, part.transfer_encoding
        else:
            yield from _leaves_with_encoding(part.parts)


def _resolve_encoding(part: SinglePart) -> TransferEncoding:
    encoding = part.transfer_encoding
    data = part.body
    if encoding is None:
        if part.content_type.maintype == "message":
            if _fits_7bit(data, MAX_LINE_LENGTH):
                return TransferEncoding.SEVEN_BIT
            if _fits_8bit(data):
                return TransferEncoding.EIGHT_BIT
        return choose_encoding(part.content_type, data)
    if encoding is TransferEncoding.SEVEN_BIT and not _fits_7bit(data, MAX_LINE_LENGTH):
        raise MessageError(
            "7bit needs ASCII content without NUL, with CRLF lines of at most 998 octets"
        )
    if encoding is TransferEncoding.EIGHT_BIT and not _fits_8bit(data):
        raise MessageError("8bit needs content without NUL, with CRLF lines of at most 998 octets")
    if encoding is TransferEncoding.QUOTED_PRINTABLE and not _canonical_lines(data):
        raise MessageError("quoted-printable needs content with CRLF line endings; use base64")
    return encoding


def encode_body(part: SinglePart, out: Chunks) -> None:
    """Append the transfer-encoded body of a resolved leaf to ``out``."""
    encoding = part.transfer_encoding
    if encoding is TransferEncoding.BASE64:
        if part.body or type(part) is not _SourcePart:
            encode_base64(part.body, out)
        else:
            # Read while sending: Message.content() keeps it as a segment,
            # Message.as_bytes() reads it.
            out.append(cast(bytes, SourceSegment(part.source, encoding)))
    elif encoding is TransferEncoding.QUOTED_PRINTABLE:
        out.append(encode_quoted_printable(part.body))
    else:
        out.append(part.body)


@lru_cache(maxsize=256)
def _render_leaf_type(ctype: ContentType, encoding: TransferEncoding) -> bytes:
    if ctype.params:
        rendered = render_params("Content-Type", ctype.essence, ctype.params)
    else:
        rendered = render_structured("Content-Type", ctype.essence)
    return rendered + b"Content-Transfer-Encoding: " + encoding.value.encode("ascii") + b"\r\n"


@lru_cache(maxsize=256)
def _leaf_header_block(
    ctype: ContentType, encoding: TransferEncoding
) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    fields = (("Content-Type", str(ctype)), ("Content-Transfer-Encoding", encoding.value))
    return _render_leaf_type(ctype, encoding), fields


def part_header_block(part: Part) -> tuple[bytes, list[tuple[str, str]]]:
    """The Content-* headers of a resolved part: as bytes, and as readable fields.

    The same as :func:`render_part_headers` and :func:`part_header_fields`
    together; a leaf with only a type and a transfer encoding (the usual
    text body) comes from a cache.
    """
    if (
        isinstance(part, SinglePart)
        and part.transfer_encoding is not None
        and part.disposition is None
        and part.filename is None
        and part.content_id is None
        and not part.headers
    ):
        block, fields = _leaf_header_block(part.content_type, part.transfer_encoding)
        return block, list(fields)
    out: Chunks = []
    render_part_headers(part, out)
    return b"".join(out), part_header_fields(part)


def render_part_headers(part: Part, out: Chunks) -> None:
    """Append the Content-* headers (and extra headers) of a resolved part to ``out``."""
    if isinstance(part, MultiPart):
        ctype = part.content_type
        out.append(render_params("Content-Type", ctype.essence, ctype.params))
        for name, value in part.headers:
            out.append(render_unstructured(name, value))
        return
    encoding = part.transfer_encoding
    assert encoding is not None
    out.append(_render_leaf_type(part.content_type, encoding))
    if part.disposition is not None or part.filename is not None:
        params = () if part.filename is None else (("filename", part.filename),)
        out.append(render_params("Content-Disposition", part.disposition or "attachment", params))
    if part.content_id is not None:
        out.append(render_structured("Content-ID", f"<{part.content_id}>"))
    for name, value in part.headers:
        out.append(render_unstructured(name, value))


def part_header_fields(part: Part) -> list[tuple[str, str]]:
    """The Content-* headers of a resolved part as readable ``(name, value)`` pairs."""
    fields = [("Content-Type", str(part.content_type))]
    if isinstance(part, SinglePart):
        assert part.transfer_encoding is not None
        fields.append(("Content-Transfer-Encoding", part.transfer_encoding.value))
        if part.disposition is not None or part.filename is not None:
            disposition = part.disposition or "attachment"
            if part.filename is not None:
                quoted = part.filename.replace("\\", "\\\\").replace('"', '\\"')
                disposition += f'; filename="{quoted}"'
            fields.append(("Content-Disposition", disposition))
        if part.content_id is not None:
            fields.append(("Content-ID", f"<{part.content_id}>"))
    fields.extend(part.headers)
    return fields


def write_part(part: Part, out: Chunks) -> None:
    """Append a resolved part (headers, blank line, body) to ``out``."""
    render_part_headers(part, out)
    out.append(b"\r\n")
    write_body(part, out)


def write_body(part: Part, out: Chunks) -> None:
    """Append the body of a resolved part (without its headers) to ``out``."""
    if isinstance(part, SinglePart):
        encode_body(part, out)
        return
    assert part.boundary is not None
    delimiter = b"--" + part.boundary.encode("ascii")
    for child in part.parts:
        out.append(delimiter + b"\r\n")
        write_part(child, out)
        # The CRLF before the next delimiter belongs to the delimiter. Base64
        # output and nested multiparts already end with a line break that is
        # not content; other content is exact and needs one more.
        if isinstance(child, SinglePart) and not (
            child.transfer_encoding is TransferEncoding.BASE64
            and (child.body or has_content(child))
        ):
            out.append(b"\r\n")
    out.append(delimiter + b"--\r\n")
