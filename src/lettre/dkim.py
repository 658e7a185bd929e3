"""DKIM signing (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463).

A :class:`DkimSigner` signs serialised message bytes: it computes the
``DKIM-Signature`` header field and prepends it. It follows the
:class:`lettre.transports.base.Signer` protocol, so it can be given to
``Message.sign()`` or to any transport as ``dkim=``.

Canonicalization (RFC 6376 section 3.4) is done here; the public-key
operations use the ``cryptography`` package (the ``dkim`` extra), which is
imported only when a signer is created, so ``import lettre`` never needs it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, Union

import idna

from lettre.errors import MessageError

if TYPE_CHECKING:
    from lettre.message.source import MessageContent

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = [
    "DEFAULT_OVERSIGNED_HEADERS",
    "DEFAULT_SIGNED_HEADERS",
    "Canonicalization",
    "DkimSigner",
    "PrivateKey",
]

PrivateKey = Union[bytes, str, "RSAPrivateKey", "Ed25519PrivateKey"]
"""What :class:`DkimSigner` accepts as a key: PEM or DER bytes, PEM text, a
raw 32-byte Ed25519 private key, or a loaded ``cryptography`` key object."""

DEFAULT_SIGNED_HEADERS: tuple[str, ...] = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    "content-description",
    "content-language",
    "in-reply-to",
    "references",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-message-id",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
)
"""Header fields signed by default (RFC 6376 section 5.4.1, plus the MIME and
RFC 8058 one-click unsubscribe fields). Each is signed as often as it occurs."""

DEFAULT_OVERSIGNED_HEADERS: tuple[str, ...] = (
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "reply-to",
    "message-id",
)
"""Header fields listed in ``h=`` one time more than they occur, so that a
field of that name added after signing breaks the signature."""

_MAX_LINE = 78
_MIN_RSA_BITS = 1024
_HEADER_NAME = "DKIM-Signature"

_NEWLINE = re.compile(rb"\r\n|\r|\n")
_WSP_RUN = re.compile(rb"[ \t]+")
_SPACE_RUN = re.compile(rb"  +")
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_LOCAL_PART = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")


class Canonicalization(str, Enum):
    """A DKIM canonicalization algorithm (RFC 6376 section 3.4)."""

    SIMPLE = "simple"
    """Tolerates almost no change in transit."""
    RELAXED = "relaxed"
    """Tolerates whitespace changes and header refolding (the default)."""


def _missing_cryptography(exc: ImportError) -> ImportError:
    error = ImportError(
        "DKIM signing needs the 'cryptography' package; install it with: pip install 'lettre[dkim]'"
    )
    error.__cause__ = exc
    return error


def _coerce_canonicalization(value: Canonicalization | str, what: str) -> Canonicalization:
    try:
        return Canonicalization(value)
    except ValueError:
        raise MessageError(
            f"{what} canonicalization must be 'simple' or 'relaxed', not {value!r}"
        ) from None


def _dns_name(value: object, what: str) -> str:
    """Validate a domain or selector and return its lower-case A-label form."""
    if not isinstance(value, str):
        raise MessageError(f"the DKIM {what} must be a string, not {type(value).__name__}")
    text = value[:-1] if value.endswith(".") else value
    if not text:
        raise MessageError(f"the DKIM {what} is empty")
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise MessageError(f"invalid DKIM {what} {value!r}: {exc}") from exc
    text = text.lower()
    if len(text) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in text.split(".")):
        raise MessageError(
            f"invalid DKIM {what} {value!r}: expected dot-separated DNS labels "
            "(letters, digits and inner hyphens, at most 63 characters each)"
        )
    return text


def _quoted_printable(text: str) -> str:
    """Encode ``text`` as DKIM-Quoted-Printable (RFC 6376 section 2.11)."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if 0x21 <= byte <= 0x7E and byte not in (0x3B, 0x3D):
            out.append(chr(byte))
        else:
            out.append(f"={byte:02X}")
    return "".join(out)


def _identity(value: str, domain: str) -> str:
    """Validate an ``i=`` identity and return its tag value."""
    local, at, raw_domain = value.rpartition("@")
    if not at:
        raise MessageError(f"the DKIM identity {value!r} must contain '@' (as in '@{domain}')")
    if local and not _LOCAL_PART.fullmatch(local):
        raise MessageError(f"invalid local part in the DKIM identity {value!r}")
    identity_domain = _dns_name(raw_domain, "identity domain")
    if identity_domain != domain and not identity_domain.endswith("." + domain):
        raise MessageError(
            f"the DKIM identity domain {identity_domain!r} must be {domain!r} or a subdomain of it"
        )
    return f"{_quoted_printable(local)}@{identity_domain}"


def _field_names(names: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise MessageError(f"{what} must be a sequence of header field names, not one string")
    seen: dict[str, None] = {}
    for name in names:
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise MessageError(f"invalid header field name {name!r} in {what}")
        seen.setdefault(name.lower(), None)
    return tuple(seen)


def _load_key(private_key: PrivateKey, password: bytes | None) -> RSAPrivateKey | Ed25519PrivateKey:
    """Load ``private_key`` into a ``cryptography`` RSA or Ed25519 key object."""
    try:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    except ImportError as exc:
        raise _missing_cryptography(exc) from exc

    if isinstance(private_key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        key: object = private_key
    elif isinstance(private_key, (bytes, bytearray, memoryview, str)):
        if isinstance(private_key, str):
            if "-----BEGIN" not in private_key:
                raise MessageError(
                    "a DKIM private key given as text must be PEM ('-----BEGIN ...')"
                )
            data = private_key.encode("ascii", "replace")
        else:
            data = bytes(private_key)
        try:
            if b"-----BEGIN" in data:
                key = serialization.load_pem_private_key(data, password=password)
            elif len(data) == 32:
                key = ed25519.Ed25519PrivateKey.from_private_bytes(data)
            else:
                key = serialization.load_der_private_key(data, password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # The library's text never contains key material, but keep ours generic.
            raise MessageError(
                f"cannot load the DKIM private key ({type(exc).__name__}): expected an RSA or "
                "Ed25519 private key in PEM (PKCS#1 or PKCS#8) or DER form, or 32 raw Ed25519 "
                "bytes; an encrypted key needs password="
            ) from exc
    else:
        raise MessageError(
            f"unsupported DKIM private key type {type(private_key).__name__}; expected PEM "
            "bytes or text, DER bytes, 32 raw Ed25519 bytes, or a cryptography RSA or "
            "Ed25519 private key"
        )

    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise MessageError(
                f"the RSA key has {key.key_size} bits; DKIM needs at least {_MIN_RSA_BITS} "
                "(RFC 8301; 2048 is recommended)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise MessageError(
        f"DKIM signs with RSA or Ed25519 keys only, not {type(key).__name__.lstrip('_')}"
    )


def _normalise(data: bytes) -> bytes:
    """Return ``data`` with CRLF line endings everywhere and a final CRLF."""
    crlf = data.count(b"\r\n")
    if crlf != data.count(b"\n") or crlf != data.count(b"\r"):
        data = _NEWLINE.sub(b"\r\n", data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _split_message(data: bytes) -> tuple[dict[str, list[bytes]], bytes]:
    """Split CRLF message bytes into header fields (by lower-case name) and body.

    Each field keeps its exact bytes, continuation lines and final CRLF included.
    """
    if not data or data.startswith(b"\r\n"):
        raise MessageError("cannot DKIM-sign a message without header fields")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        section, body = data, b""
    else:
        section, body = data[: end + 2], data[end + 4 :]
    fields: dict[str, list[bytes]] = {}
    name = ""
    current: list[bytes] = []
    for line in section[:-2].split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not current:
                raise MessageError("the message's header section starts with a continuation line")
            current.append(line)
            continue
        if current:
            fields.setdefault(name, []).append(b"\r\n".join(current) + b"\r\n")
        raw_name, colon, _ = line.partition(b":")
        raw_name = raw_name.rstrip(b" \t")
        if not colon or not raw_name or b" " in raw_name or b"\t" in raw_name:
            raise MessageError(
                f"cannot DKIM-sign: malformed header line {line[:60]!r} (no field name and colon)"
            )
        name = raw_name.decode("latin-1").lower()
        current = [line]
    fields.setdefault(name, []).append(b"\r\n".join(current) + b"\r\n")
    return fields, body


def _canonical_header(field: bytes, canonicalization: Canonicalization) -> bytes:
    if canonicalization is Canonicalization.SIMPLE:
        return field
    name, _, value = field.partition(b":")
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" \t")
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


def _canonical_body(body: bytes, canonicalization: Canonicalization) -> bytes:
    # The body is CRLF-normalised and ends with CRLF (or is empty), so CR and LF
    # only occur as CRLF pairs.
    if canonicalization is Canonicalization.RELAXED:
        # Every run of WSP becomes one SP: turning tabs into spaces first, then
        # collapsing runs of spaces, gives the same result with fast byte searches.
        if b"\t" in body:
            body = body.replace(b"\t", b" ")
        if b"  " in body:
            body = _SPACE_RUN.sub(b" ", body)
        # After collapsing, trailing white space is at most one SP before CRLF.
        body = body.replace(b" \r\n", b"\r\n").rstrip(b"\r\n")
        return body + b"\r\n" if body else b""
    return body.rstrip(b"\r\n") + b"\r\n"


class _BodyHasher:
    """The body hash of :func:`_canonical_body`, computed over the body fed in pieces.

    Complete lines are canonicalised as they come; the last, incomplete line
    waits for the next piece, and empty lines are held back (as a count)
    until a line with content follows, since trailing empty lines are not
    hashed.
    """

    __slots__ = ("_hash", "_length", "_partial", "_pending", "_relaxed")

    def __init__(self, canonicalization: Canonicalization) -> None:
        self._hash = hashlib.sha256()
        self._relaxed = canonicalization is Canonicalization.RELAXED
        self._partial = b""
        self._pending = 0
        self._length = 0

    def update(self, data: bytes) -> None:
        """Hash the next piece of the (CRLF) body."""
        if self._partial:
            data = self._partial + data
        end = data.rfind(b"\r\n")
        if end < 0:
            self._partial = data
            return
        self._partial = data[end + 2 :]
        self._lines(data[: end + 2])

    def _lines(self, block: bytes) -> None:
        if self._relaxed:
            if b"\t" in block:
                block = block.replace(b"\t", b" ")
            if b"  " in block:
                block = _SPACE_RUN.sub(b" ", block)
            block = block.replace(b" \r\n", b"\r\n")
        text = block.rstrip(b"\r\n")
        if not text:
            self._pending += len(block) // 2
            return
        if self._pending:
            self._emit(b"\r\n" * self._pending)
        self._emit(text + b"\r\n")
        self._pending = (len(block) - len(text)) // 2 - 1

    def _emit(self, data: bytes) -> None:
        self._hash.update(data)
        self._length += len(data)

    def digest(self) -> tuple[bytes, int]:
        """The SHA-256 of the canonical body, and the canonical body's length."""
        if self._partial:
            self._lines(self._partial + b"\r\n")
            self._partial = b""
        if not self._length and not self._relaxed:
            self._emit(b"\r\n")  # simple: an empty body is one CRLF
        return self._hash.digest(), self._length


class _Folder:
    """Lays tag=value pieces out in lines of at most 78 columns."""

    __slots__ = ("current", "lines")

    def __init__(self, start: str) -> None:
        self.lines: list[str] = []
        self.current = start

    @property
    def fresh(self) -> bool:
        return self.current == " "

    def newline(self) -> None:
        if not self.fresh:
            self.lines.append(self.current)
            self.current = " "

    def add(self, piece: str, sep: str = " ") -> None:
        if self.fresh:
            self.current += piece
        elif len(self.current) + len(sep) + len(piece) <= _MAX_LINE:
            self.current += sep + piece
        else:
            self.newline()
            self.current += piece

    def add_split(self, text: str) -> None:
        """Add text that may be broken anywhere (base64 values allow FWS inside)."""
        if not self.fresh and len(self.current) + 1 + len(text) <= _MAX_LINE:
            self.current += " " + text
            return
        self.newline()
        self.fill(text)

    def fill(self, text: str) -> None:
        """Append ``text`` to the current line, continuing on new lines as needed."""
        while text:
            room = max(_MAX_LINE - len(self.current), 1)
            self.current += text[:room]
            text = text[room:]
            if text:
                self.newline()

    def render(self) -> str:
        return "\r\n".join([*self.lines, self.current])


class DkimSigner:
    """Signs serialised messages with DKIM (RFC 6376; Ed25519 per RFC 8463).

    The algorithm follows the key: ``rsa-sha256`` for an RSA key,
    ``ed25519-sha256`` for an Ed25519 key. A signer is immutable and can be
    shared by any number of concurrent sends.

    Args:
        domain: the signing domain (``d=``); Unicode names are converted to
            A-labels.
        selector: the selector (``s=``); the public key is published at
            ``<selector>._domainkey.<domain>``.
        private_key: an RSA (at least 1024 bits; 2048 recommended) or Ed25519
            private key: PEM bytes or text (PKCS#1 or PKCS#8), DER bytes, the
            raw 32-byte Ed25519 key, or a loaded ``cryptography`` key object.
        password: the password of an encrypted PEM or DER key.
        header_canonicalization: ``"relaxed"`` (default) or ``"simple"``.
        body_canonicalization: ``"relaxed"`` (default) or ``"simple"``.
        signed_headers: the header field names to sign (case-insensitive);
            each is listed in ``h=`` as often as it occurs in the message.
            Must include ``From``. Defaults to :data:`DEFAULT_SIGNED_HEADERS`.
        oversigned_headers: names listed one time more than they occur, so a
            field added later breaks the signature (these are signed even if
            missing from ``signed_headers``). Defaults to
            :data:`DEFAULT_OVERSIGNED_HEADERS`; pass ``()`` to disable.
        identity: the agent or user identifier (``i=``), such as
            ``"@mail.example.com"`` or ``"user@example.com"``; its domain must
            be ``domain`` or a subdomain of it. Omitted by default.
        timestamp: add the signing time (``t=``). Default True.
        expire_after: add an expiry (``x=``) this long after the signing time
            (seconds or a timedelta); None (the default) for no expiry.
        body_length: add the body length tag (``l=``). Off by default: it
            lets anyone append content to a signed message.
        clock: returns the current time in seconds since the epoch (for
            ``t=`` and ``x=``); defaults to :func:`time.time`.

    Raises:
        MessageError: a bad key, domain, selector, identity or option.
        ImportError: the ``cryptography`` package is not installed
            (``pip install 'lettre[dkim]'``).
    """

    __slots__ = (
        "_algorithm",
        "_body_canonicalization",
        "_body_length",
        "_clock",
        "_domain",
        "_expire_after",
        "_header_canonicalization",
        "_identity",
        "_key",
        "_oversigned",
        "_selector",
        "_signed",
        "_timestamp",
    )

    def __init__(
        self,
        domain: str,
        selector: str,
        private_key: PrivateKey,
        *,
        password: bytes | None = None,
        header_canonicalization: Canonicalization | str = Canonicalization.RELAXED,
        body_canonicalization: Canonicalization | str = Canonicalization.RELAXED,
        signed_headers: Iterable[str] = DEFAULT_SIGNED_HEADERS,
        oversigned_headers: Iterable[str] = DEFAULT_OVERSIGNED_HEADERS,
        identity: str | None = None,
        timestamp: bool = True,
        expire_after: float | timedelta | None = None,
        body_length: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._domain = _dns_name(domain, "domain")
        self._selector = _dns_name(selector, "selector")
        self._header_canonicalization = _coerce_canonicalization(header_canonicalization, "header")
        self._body_canonicalization = _coerce_canonicalization(body_canonicalization, "body")
        oversigned = _field_names(oversigned_headers, "oversigned_headers")
        signed = _field_names(signed_headers, "signed_headers")
        if "from" not in signed and "from" not in oversigned:
            raise MessageError("the From header field must be signed (RFC 6376 section 5.4)")
        self._signed = signed + tuple(name for name in oversigned if name not in signed)
        self._oversigned = frozenset(oversigned)
        if identity is None:
            self._identity: str | None = None
        elif isinstance(identity, str):
            self._identity = _identity(identity, self._domain)
        else:
            raise MessageError(f"the DKIM identity must be a string, not {type(identity).__name__}")
        if isinstance(expire_after, timedelta):
            expire_after = expire_after.total_seconds()
        if expire_after is not None and not expire_after > 0:
            raise MessageError("expire_after must be a positive duration")
        self._expire_after = expire_after
        self._timestamp = timestamp
        self._body_length = body_length
        self._clock = clock
        self._key = _load_key(private_key, password)
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._algorithm = (
            "rsa-sha256" if isinstance(self._key, rsa.RSAPrivateKey) else "ed25519-sha256"
        )

    @property
    def domain(self) -> str:
        """The signing domain (``d=``), lower-case A-label form."""
        return self._domain

    @property
    def selector(self) -> str:
        """The selector (``s=``), lower-case A-label form."""
        return self._selector

    @property
    def algorithm(self) -> str:
        """``"rsa-sha256"`` or ``"ed25519-sha256"``."""
        return self._algorithm

    @property
    def canonicalization(self) -> tuple[Canonicalization, Canonicalization]:
        """The header and body canonicalization algorithms."""
        return self._header_canonicalization, self._body_canonicalization

    @property
    def signed_headers(self) -> tuple[str, ...]:
        """The lower-case names of the header fields this signer signs."""
        return self._signed

    @property
    def oversigned_headers(self) -> frozenset[str]:
        """The lower-case names listed one time more than they occur."""
        return self._oversigned

    @property
    def dns_name(self) -> str:
        """Where the public key is published: ``<selector>._domainkey.<domain>``."""
        return f"{self._selector}._domainkey.{self._domain}"

    def dns_record(self) -> str:
        """The TXT record to publish at :attr:`dns_name` for this key.

        Returns:
            ``"v=DKIM1; k=rsa; p=..."`` or ``"v=DKIM1; k=ed25519; p=..."``. A
            record longer than 255 characters (any RSA key of 2048 bits or
            more) must be published as several strings in one TXT record;
            most DNS consoles split it automatically.
        """
        from cryptography.hazmat.primitives import serialization

        public = self._key.public_key()
        if self._algorithm == "rsa-sha256":
            der = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"

    def sign(self, data: bytes) -> bytes:
        """Sign a serialised message.

        Args:
            data: the message bytes (header section, empty line, body). Bare
                CR or LF line endings are turned into CRLF, as SMTP will, and
                a final CRLF is added if missing, before signing.

        Returns:
            The ``DKIM-Signature`` header field followed by the (normalised)
            message bytes. Signing signed bytes again prepends another
            signature, so one message can carry RSA and Ed25519 signatures.

        Raises:
            MessageError: the bytes have no header section, no From field or
                a malformed header line.
        """
        data = _normalise(bytes(data))
        return self._signature(data) + data

    def signature_header(self, data: bytes) -> bytes:
        """Compute the ``DKIM-Signature`` header field for a serialised message.

        Args:
            data: the message bytes, as for :meth:`sign`.

        Returns:
            The folded header field, ending with CRLF, to prepend to the
            (CRLF-normalised) message.

        Raises:
            MessageError: as for :meth:`sign`.
        """
        return self._signature(_normalise(bytes(data)))

    def sign_content(self, content: MessageContent) -> MessageContent:
        """Sign a message whose attachments are read while sending, in two passes.

        The first pass reads the content a chunk at a time and hashes its
        body; the signature header field is then computed over the header
        section and prepended. Sending reads the content again (the second
        pass): if a source changed in between, that read raises
        :class:`~lettre.message.SourceError` instead of sending content
        the signature does not match. Blocking: transports call it in a
        worker thread.

        Args:
            content: the message as :meth:`Message.content()
                <lettre.message.Message.content>` gives it; its line endings
                are CRLF (the serializer's).

        Returns:
            The same content with the ``DKIM-Signature`` field before it.

        Raises:
            MessageError: as for :meth:`sign`.
            SourceError: a source cannot be read as the message was built,
                or cannot be read twice (a non-seekable file object).
        """
        head = content.head
        end = head.find(b"\r\n\r\n")
        if end < 0 or not content.seekable:
            if end >= 0:
                from lettre.message.source import SourceError

                raise SourceError(
                    "a DKIM signature reads the message twice, and a non-seekable file "
                    "object can be read once: attach a path or a seekable file"
                )
            raise MessageError("cannot DKIM-sign: the message has no end of its header section")
        fields, _ = _split_message(head[: end + 4])
        hasher = _BodyHasher(self._body_canonicalization)
        chunks = content.chunks()
        try:
            first = next(chunks)
            hasher.update(first[end + 4 :])
            for chunk in chunks:
                hasher.update(chunk)
        finally:
            chunks.close()
        digest, length = hasher.digest()
        return content.prepend(self._header(fields, digest, length))

    def _signature(self, data: bytes) -> bytes:
        fields, body = _split_message(data)
        canonical_body = _canonical_body(body, self._body_canonicalization)
        return self._header(fields, hashlib.sha256(canonical_body).digest(), len(canonical_body))

    def _header(self, fields: dict[str, list[bytes]], digest: bytes, length: int) -> bytes:
        """The signature header field over ``fields``, with the body's hash and length."""
        if "from" not in fields:
            raise MessageError("cannot DKIM-sign a message without a From header field")
        body_hash = base64.b64encode(digest).decode("ascii")

        names: list[str] = []
        for name in self._signed:
            count = len(fields.get(name, ())) + (name in self._oversigned)
            names.extend([name] * count)

        folder = _Folder(f"{_HEADER_NAME}:")
        folder.add("v=1;")
        folder.add(f"a={self._algorithm};")
        folder.add(f"c={self._header_canonicalization.value}/{self._body_canonicalization.value};")
        folder.add(f"d={self._domain};")
        folder.add(f"s={self._selector};")
        if self._timestamp or self._expire_after is not None:
            now = int(self._clock())
            if self._timestamp:
                folder.add(f"t={now};")
            if self._expire_after is not None:
                folder.add(f"x={now + max(int(self._expire_after), 1)};")
        if self._identity is not None:
            folder.add(f"i={self._identity};")
        if self._body_length:
            folder.add(f"l={length};")
        for index, name in enumerate(names):
            text = name + (";" if index == len(names) - 1 else ":")
            folder.add("h=" + text if index == 0 else text, sep="" if index else " ")
        folder.add_split(f"bh={body_hash};")
        folder.newline()
        folder.current += "b="
        unsigned = folder.render().encode("ascii")

        canonicalization = self._header_canonicalization
        remaining = {name: list(instances) for name, instances in fields.items()}
        parts: list[bytes] = []
        for name in names:
            instances = remaining.get(name)
            if instances:
                # Instances are used from the bottom of the header up (section 5.4.2).
                parts.append(_canonical_header(instances.pop(), canonicalization))
        parts.append(_canonical_header(unsigned + b"\r\n", canonicalization)[:-2])
        signature = base64.b64encode(self._sign_bytes(b"".join(parts))).decode("ascii")

        folder.fill(signature)
        return folder.render().encode("ascii") + b"\r\n"

    def _sign_bytes(self, header_data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        key = self._key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(header_data, padding.PKCS1v15(), hashes.SHA256())
        # RFC 8463: Ed25519 signs the SHA-256 hash of the canonical header data.
        return key.sign(hashlib.sha256(header_data).digest())

    def __repr__(self) -> str:
        header, body = self.canonicalization
        return (
            f"DkimSigner(domain={self._domain!r}, selector={self._selector!r}, "
            f"algorithm={self._algorithm!r}, canonicalization='{header.value}/{body.value}')"
        )
