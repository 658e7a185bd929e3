"""Email addresses, mailboxes and mailbox lists.

:class:`Address` is one addr-spec (``local-part@domain``) validated against
RFC 5321 and RFC 5322, with internationalised domains mapped through UTS #46
and IDNA 2008 and non-ASCII local parts allowed (RFC 6531/6532).
:class:`Mailbox` adds a display name; :class:`Mailboxes` is an immutable list of
mailboxes parsed from text such as ``"Åsa Ek" <asa@exämple.se>, bob@example.com``.

Parsing is strict and linear: every input is scanned once, by hand, with its
length capped first. Ambiguous or hostile input raises :class:`AddressError`;
the parser never picks one of several possible readings.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, overload

import idna

from lettre.errors import AddressError

__all__ = [
    "MAX_ADDRESS_LENGTH",
    "MAX_DOMAIN_LENGTH",
    "MAX_LIST_TEXT_LENGTH",
    "MAX_LOCAL_PART_LENGTH",
    "Address",
    "Mailbox",
    "Mailboxes",
]

MAX_LOCAL_PART_LENGTH: Final = 64
"""Octets allowed in a local part (RFC 5321 section 4.5.3.1.1)."""

MAX_DOMAIN_LENGTH: Final = 255
"""Octets allowed in a domain, in its ASCII form (RFC 5321 section 4.5.3.1.2)."""

MAX_ADDRESS_LENGTH: Final = 254
"""Octets allowed in an addr-spec: a path of 256 octets minus its angle brackets."""

MAX_MAILBOX_TEXT_LENGTH: Final = 4096
"""Characters accepted by :meth:`Mailbox.parse` before any parsing happens."""

MAX_LIST_TEXT_LENGTH: Final = 64 * 1024
"""Characters accepted by :meth:`Mailboxes.parse` before any parsing happens."""

# Input longer than this cannot be a valid addr-spec even with every escape
# and mapping counted generously; it is refused before it is scanned.
_MAX_ADDR_SPEC_TEXT: Final = 1024

# Characters that can end or start a header line, or that no mail system
# handles safely: C0 controls except HTAB, DEL, C1 controls, the Unicode
# line and paragraph separators, and lone surrogates (not encodable).
_FORBIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

_ATEXT_ASCII: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
# A dot-atom of ASCII atext: one character class per run and a literal dot
# between runs, so the match is deterministic (no backtracking).
_DOT_ATOM_ASCII = re.compile(
    r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*"
)
_LDH_DOMAIN = re.compile(r"[a-z0-9\-]+(?:\.[a-z0-9\-]+)*")
_ENCODED_WORD = re.compile(r"=\?([^?*\s]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")

# RFC 5322 specials (plus space): everything else that is printable is atext.
_SPECIALS: Final = frozenset('()<>[]:;@\\,." \t')
_PHRASE_SPECIALS: Final = _SPECIALS - {" "}
# Text without these characters is "Name <a@b>" or "a@b" at most (fast path).
_NOT_SIMPLE: Final = frozenset('"()[]\\,;:@')
_NOT_BARE: Final = frozenset("()<>,;: \t")


def check_header_text(value: str, what: str) -> None:
    """Raise :class:`AddressError` when ``value`` holds a line break or control.

    Args:
        value: the text to check.
        what: a short description used in the error message.
    """
    if value.isprintable():
        # Printable text (Unicode categories other than Cc, Cf, Cs, Co, Cn, Zl,
        # Zp and Zs, plus the ASCII space) holds nothing _FORBIDDEN matches.
        return
    match = _FORBIDDEN.search(value)
    if match is not None:
        raise AddressError(
            f"{what} contains the control character U+{ord(match.group()):04X}; "
            "line breaks and control characters are not allowed"
        )


def _is_dot_atom(text: str) -> bool:
    """True when ``text`` is a dot-atom (atext may include non-ASCII, RFC 6532)."""
    if not text or text[0] == "." or text[-1] == "." or ".." in text:
        return False
    if text.isascii():
        return _DOT_ATOM_ASCII.fullmatch(text) is not None
    for ch in text:
        if ch == ".":
            continue
        if ch < "\x80":
            if ch not in _ATEXT_ASCII:
                return False
        elif not ch.isprintable():
            return False
    return True


def _quote_local(content: str) -> str:
    """The canonical quoted-string form of a local part's content."""
    return '"' + content.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_local(text: str) -> str:
    """Validate a local part (dot-atom or quoted-string) and canonicalise it.

    A quoted local part whose content is a valid dot-atom loses its quotes;
    other quoted local parts keep only the escapes they need.
    """
    if not text:
        raise AddressError("has an empty local part (nothing before the @)")
    if text[0] != '"':
        if not _is_dot_atom(text):
            raise AddressError(
                f"has an invalid local part {text!r}: use letters, digits and "
                "!#$%&'*+-/=?^_`{|}~ with single dots between them, or a quoted string"
            )
        return text
    # A quoted string as _split_addr_spec cut it: from its opening quote to the
    # first quote no backslash escapes. So every backslash inside has a
    # character to escape, and no unescaped quote comes before the last.
    chars: list[str] = []
    i, end = 1, len(text) - 1
    while i < end:
        ch = text[i]
        if ch == "\\":
            ch = text[i + 1]
            if ch < " " or ch == "\x7f":
                raise AddressError(f"has an invalid escaped character in its local part {text!r}")
            i += 2
        elif ch < " ":
            raise AddressError(f"has a control character in its local part {text!r}")
        else:
            if ch >= "\x80" and not ch.isprintable():
                raise AddressError(f"has an unprintable character in its local part {text!r}")
            i += 1
        chars.append(ch)
    content = "".join(chars)
    if not content:
        raise AddressError("has an empty quoted local part")
    if _is_dot_atom(content):
        return content
    return _quote_local(content)


def _check_ldh(ascii_domain: str, original: str) -> None:
    """Check RFC 5321 sub-domain syntax on a lower-case ASCII domain."""
    if _LDH_DOMAIN.fullmatch(ascii_domain) is None:
        raise AddressError(
            f"has an invalid domain {original!r}: labels are letters, digits and hyphens "
            "separated by dots"
        )
    labels = ascii_domain.split(".")
    for label in labels:
        if len(label) > 63:
            raise AddressError(
                f"has an invalid domain {original!r}: a label is longer than 63 octets"
            )
        if label[0] == "-" or label[-1] == "-":
            raise AddressError(
                f"has an invalid domain {original!r}: a label starts or ends with a hyphen"
            )
    if labels[-1].isdigit():
        raise AddressError(
            f"has an invalid domain {original!r}: write an IP address as a literal, "
            "e.g. [192.0.2.1]"
        )
    if len(ascii_domain) > MAX_DOMAIN_LENGTH:
        raise AddressError(f"has a domain longer than {MAX_DOMAIN_LENGTH} octets")


def _parse_domain_literal(text: str) -> str:
    inner = text[1:-1]
    if len(text) < 3 or text[-1] != "]":
        raise AddressError(f"has an invalid domain literal {text!r}")
    try:
        if inner[:5].lower() != "ipv6:":
            return f"[{ipaddress.IPv4Address(inner)}]"
        ip6 = ipaddress.IPv6Address(inner[5:])
    except ValueError as exc:
        raise AddressError(
            f"has an invalid domain literal {text!r}: expected [IPv4 address] or [IPv6:address]"
        ) from exc
    if ip6.scope_id is not None:
        raise AddressError(f"has a scoped IPv6 address literal {text!r}, which is not allowed")
    return f"[IPv6:{ip6.compressed}]"


def _parse_domain(text: str) -> tuple[str, str]:
    """Validate a domain; return its Unicode (UTS #46-mapped) and ASCII forms."""
    if not text:
        raise AddressError("has an empty domain (nothing after the @)")
    if text[0] == "[":
        literal = _parse_domain_literal(text)
        return literal, literal
    if text.isascii():
        lowered = text.lower()
        _check_ldh(lowered, text)
        if "xn--" not in lowered:
            return lowered, lowered
        try:
            unicode_domain = idna.decode(lowered)
        except (idna.IDNAError, UnicodeError) as exc:
            raise AddressError(f"has an invalid internationalised domain {text!r}: {exc}") from exc
        return unicode_domain, lowered
    try:
        ascii_domain = idna.encode(text, uts46=True, transitional=False).decode("ascii")
        unicode_domain = idna.decode(ascii_domain)
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(f"has an invalid internationalised domain {text!r}: {exc}") from exc
    _check_ldh(ascii_domain, text)
    return unicode_domain, ascii_domain


def _split_addr_spec(text: str) -> tuple[str, str]:
    """Split an addr-spec at its one unquoted ``@``."""
    if text[:1] == '"':
        # The local part is a quoted string: find its closing quote.
        i, n = 1, len(text)
        while i < n:
            ch = text[i]
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                break
            i += 1
        else:
            raise AddressError("has an unterminated quoted local part")
        if text[i + 1 : i + 2] != "@":
            raise AddressError("needs an @ right after its quoted local part")
        return text[: i + 1], text[i + 2 :]
    local, at, domain = text.partition("@")
    if not at:
        raise AddressError("is not an email address: it has no @")
    if "@" in domain and not domain.startswith("["):
        raise AddressError("has more than one @")
    return local, domain


@lru_cache(maxsize=2048)
def _parse_addr_spec(text: str) -> tuple[str, str, str]:
    """Parse and validate an addr-spec: (local part, Unicode domain, ASCII domain).

    Every error quotes the whole address: ``'bob@@x' has more than one @``.
    """
    try:
        return _check_addr_spec(text)
    except AddressError as exc:
        raise AddressError(f"{_preview(text)} {exc}") from None


def _check_addr_spec(text: str) -> tuple[str, str, str]:
    # The errors raised here say what is wrong with the address; the caller
    # puts the address in front: "'a@' has an empty domain ...".
    if not text:
        raise AddressError("holds no address")
    local_text, domain_text = _split_addr_spec(text)
    local = _parse_local(local_text)
    if "=?" in local:
        # Lenient parsers decode RFC 2047 encoded words even here, turning one
        # address into another (a known way to smuggle addresses past checks).
        raise AddressError(f"has a local part {local!r} that looks like an RFC 2047 encoded word")
    if len(local) > MAX_LOCAL_PART_LENGTH or (
        not local.isascii() and len(local.encode("utf-8")) > MAX_LOCAL_PART_LENGTH
    ):
        raise AddressError(f"has a local part longer than {MAX_LOCAL_PART_LENGTH} octets")
    domain, ascii_domain = _parse_domain(domain_text)
    size = len(local.encode("utf-8")) + 1 + len(ascii_domain)
    if size > MAX_ADDRESS_LENGTH:
        raise AddressError(f"is longer than {MAX_ADDRESS_LENGTH} octets")
    return local, domain, ascii_domain


@dataclass(frozen=True, slots=True, init=False)
class Address:
    """One email address (an addr-spec), validated on construction.

    Args:
        addr_spec: the address text, such as ``"alice@example.org"``,
            ``'"john doe"@example.org'``, ``"åsa@exämple.se"`` or
            ``"postmaster@[192.0.2.1]"``. No surrounding spaces, angle
            brackets or display name: use :meth:`Mailbox.parse` for those.

    Local parts containing ``=?`` are refused: lenient parsers decode them as
    RFC 2047 encoded words, which can turn one address into another.

    Raises:
        AddressError: the text is not exactly one valid address.

    Attributes:
        local_part: the part before the ``@``, in canonical form (quotes only
            where the content needs them). Case is preserved.
        domain: the domain in its Unicode, UTS #46-mapped (lower-case) form,
            or a normalised domain literal such as ``[IPv6:2001:db8::1]``.
    """

    local_part: str
    domain: str
    _ascii_domain: str = field(repr=False, compare=False)

    def __init__(self, addr_spec: str) -> None:
        if not isinstance(addr_spec, str):
            raise TypeError(f"an address must be a str, not {type(addr_spec).__name__}")
        if len(addr_spec) > _MAX_ADDR_SPEC_TEXT:
            raise AddressError(
                f"{_preview(addr_spec)} is {len(addr_spec)} characters long; "
                f"an address has at most {MAX_ADDRESS_LENGTH} octets"
            )
        if not addr_spec.isprintable():
            check_header_text(addr_spec, f"the address {_preview(addr_spec)}")
        local, domain, ascii_domain = _parse_addr_spec(addr_spec)
        object.__setattr__(self, "local_part", local)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "_ascii_domain", ascii_domain)

    @classmethod
    def coerce(cls, value: Address | str) -> Address:
        """Return ``value`` if it is an :class:`Address`, else parse it.

        Args:
            value: an Address, or an addr-spec such as ``"bob@example.com"``.

        Raises:
            AddressError: ``value`` is a string that is not a valid address.
            TypeError: ``value`` is neither an Address nor a string.
        """
        if isinstance(value, Address):
            return value
        return cls(value)

    @property
    def needs_smtputf8(self) -> bool:
        """True when the local part is non-ASCII (the SMTPUTF8 extension is needed)."""
        return not self.local_part.isascii()

    @property
    def ascii_domain(self) -> str:
        """The domain with A-labels (``xn--...``): what DNS and plain SMTP use."""
        return self._ascii_domain

    def to_ascii(self) -> str:
        """The addr-spec with an A-label domain.

        Raises:
            AddressError: the local part is non-ASCII, so no ASCII form exists.
        """
        if not self.local_part.isascii():
            raise AddressError(
                f"{self} has a non-ASCII local part and has no ASCII form; "
                "it can only be sent to a server that offers SMTPUTF8"
            )
        return f"{self.local_part}@{self._ascii_domain}"

    def __str__(self) -> str:
        return f"{self.local_part}@{self.domain}"


def _phrase_needs_quotes(name: str) -> bool:
    """True unless ``name`` is atoms separated by single spaces.

    ``name`` is a cleaned display name (see ``_clean_name``): not empty, no white
    space around it, single spaces inside.
    """
    return not _PHRASE_SPECIALS.isdisjoint(name)


def _quote_phrase(name: str) -> str:
    if _phrase_needs_quotes(name):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"a display name must be a str, not {type(name).__name__}")
    if not name.isprintable():
        check_header_text(name, f"the display name {_preview(name)}")
    # A display name is a phrase: runs of whitespace mean one space, and
    # surrounding whitespace means nothing (readers collapse and drop it).
    return " ".join(name.split()) or None


@dataclass(frozen=True, slots=True, init=False)
class Mailbox:
    """An address with an optional display name, such as ``Åsa Ek <asa@example.se>``.

    Args:
        address: the address, as an :class:`Address` or a string.
        name: the display name, or None. Any text without line breaks or
            control characters; runs of whitespace become one space, surrounding
            whitespace is removed (an empty name is None); quoting and encoding
            happen on output.

    Raises:
        AddressError: the address is invalid or the name contains a line
            break or a control character.
    """

    address: Address
    name: str | None

    def __init__(self, address: Address | str, name: str | None = None) -> None:
        object.__setattr__(self, "address", Address.coerce(address))
        object.__setattr__(self, "name", _clean_name(name))

    @classmethod
    def parse(cls, text: str) -> Mailbox:
        """Parse one mailbox: ``Name <a@b>``, ``"Doe, J." <a@b>``, ``<a@b>`` or ``a@b``.

        Comments in parentheses are allowed and ignored; encoded words
        (RFC 2047) in the display name are decoded.

        Args:
            text: the mailbox text.

        Raises:
            AddressError: the text is not exactly one valid mailbox.
        """
        items = _parse_cached(text, MAX_MAILBOX_TEXT_LENGTH, allow_groups=False)
        if len(items) != 1:
            raise AddressError(f"expected one mailbox, found {len(items)} in {_preview(text)}")
        return items[0]

    @classmethod
    def coerce(cls, value: Mailbox | Address | str) -> Mailbox:
        """Return a :class:`Mailbox` for a Mailbox, an Address or a mailbox string.

        Args:
            value: a Mailbox, an Address (a mailbox without a name) or text
                for :meth:`parse`.

        Raises:
            AddressError: a string that is not exactly one valid mailbox.
            TypeError: any other type.
        """
        if isinstance(value, Mailbox):
            return value
        if isinstance(value, Address):
            return cls(value)
        if isinstance(value, str):
            return cls.parse(value)
        raise TypeError(f"expected a Mailbox, an Address or a str, not {type(value).__name__}")

    def __str__(self) -> str:
        if self.name is None:
            return str(self.address)
        return f"{_quote_phrase(self.name)} <{self.address}>"


class Mailboxes(Sequence[Mailbox]):
    """An immutable sequence of :class:`Mailbox`, as in a To or Cc header.

    Args:
        mailboxes: Mailbox objects, Address objects or strings (each string is
            parsed as one mailbox).

    Raises:
        AddressError: an item is not a valid mailbox.
    """

    __slots__ = ("_items",)

    _items: tuple[Mailbox, ...]

    def __init__(self, mailboxes: Iterable[Mailbox | Address | str] = ()) -> None:
        if isinstance(mailboxes, (str, Mailbox, Address)):
            raise TypeError("Mailboxes takes an iterable of mailboxes; use Mailboxes.parse(text)")
        self._items = tuple(Mailbox.coerce(m) for m in mailboxes)

    @classmethod
    def parse(cls, text: str) -> Mailboxes:
        """Parse a comma-separated mailbox list; groups are flattened.

        ``"a@b, Bob <c@d>"`` gives two mailboxes; ``"friends: a@b, c@d;"``
        gives the group's two members; ``"undisclosed-recipients:;"`` gives
        none.

        Args:
            text: the list, as in a To or Cc header.

        Raises:
            AddressError: the text is empty, malformed or ambiguous.
        """
        return cls._of(_parse_cached(text, MAX_LIST_TEXT_LENGTH, allow_groups=True))

    @classmethod
    def _of(cls, items: tuple[Mailbox, ...]) -> Mailboxes:
        result = object.__new__(cls)
        result._items = items
        return result

    @overload
    def __getitem__(self, index: int) -> Mailbox: ...

    @overload
    def __getitem__(self, index: slice) -> Mailboxes: ...

    def __getitem__(self, index: int | slice) -> Mailbox | Mailboxes:
        if isinstance(index, slice):
            result = Mailboxes()
            result._items = self._items[index]
            return result
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Mailbox]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mailboxes):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Mailboxes({list(self._items)!r})"

    def __str__(self) -> str:
        return ", ".join(map(str, self._items))

    @property
    def addresses(self) -> tuple[Address, ...]:
        """The address of each mailbox, in order."""
        return tuple(m.address for m in self._items)


# --- the mailbox-list parser -------------------------------------------------

_ATOM, _QSTRING, _LITERAL, _SPECIAL = 0, 1, 2, 3


# A token is (kind, value, start, end, space_before): value is the atom text,
# the quoted-string content, the literal text or the special character.
_Token = tuple[int, str, int, int, bool]

_ATOM_RUN = re.compile(r'[^()<>\[\]:;@\\,." \t]+')
_WS_RUN = re.compile(r"[ \t]+")


def _preview(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _skip_comment(text: str, i: int) -> int:
    """Return the index after the (possibly nested) comment starting at ``i``."""
    depth, j, n = 1, i + 1, len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if not depth:
                return j + 1
        j += 1
    raise AddressError(f"unterminated comment in {_preview(text)}")


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """Return the content of the quoted string starting at ``i`` and the index after it."""
    chars: list[str] = []
    j, n = i + 1, len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            if j + 1 >= n:
                break
            chars.append(text[j + 1])
            j += 2
        elif c == '"':
            return "".join(chars), j + 1
        else:
            chars.append(c)
            j += 1
    raise AddressError(f"unterminated quoted string in {_preview(text)}")


def _tokenize(text: str) -> list[_Token]:
    """Split mailbox-list text into tokens; comments and whitespace are dropped."""
    tokens: list[_Token] = []
    append = tokens.append
    atom_run = _ATOM_RUN.match
    ws_run = _WS_RUN.match
    i, n = 0, len(text)
    space = False
    while i < n:
        ch = text[i]
        if ch in "<>@,;:.":
            append((_SPECIAL, ch, i, i + 1, space))
            i += 1
            space = False
        elif ch in " \t":
            match = ws_run(text, i)
            i = match.end() if match is not None else i + 1
            space = True
        elif ch == "(":
            i = _skip_comment(text, i)
            space = True
        elif ch == '"':
            content, j = _read_quoted(text, i)
            append((_QSTRING, content, i, j, space))
            i = j
            space = False
        elif ch == "[":
            j = text.find("]", i + 1)
            if j < 0:
                raise AddressError(f"unterminated domain literal in {_preview(text)}")
            literal = text[i : j + 1]
            if "[" in literal[1:] or "\\" in literal:
                raise AddressError(f"invalid domain literal {literal!r}")
            append((_LITERAL, literal, i, j + 1, space))
            i = j + 1
            space = False
        elif ch in ")]\\":
            raise AddressError(f"unexpected {ch!r} at position {i} in {_preview(text)}")
        else:
            match = atom_run(text, i)
            j = match.end() if match is not None else i + 1
            append((_ATOM, text[i:j], i, j, space))
            i = j
            space = False
    return tokens


def _decode_encoded_word(word: str) -> str | None:
    """Decode one RFC 2047 encoded word, or return None if it is not one."""
    match = _ENCODED_WORD.fullmatch(word)
    if match is None:
        return None
    charset, encoding, payload = match.groups()
    try:
        codecs.lookup(charset)
        if encoding in "bB":
            raw = base64.b64decode(payload, validate=True)
        else:
            raw = binascii.a2b_qp(payload.encode("ascii"), header=True)
        decoded = raw.decode(charset)
    except (LookupError, ValueError, binascii.Error, UnicodeError):
        return None
    check_header_text(decoded, f"the display name {_preview(word)} (decoded)")
    return decoded


def _phrase(tokens: list[_Token]) -> str | None:
    """Join phrase tokens into a display name (single spaces, encoded words decoded)."""
    parts: list[str] = []
    previous_encoded = False
    for index, (kind, value, _start, _end, space_before) in enumerate(tokens):
        decoded = _decode_encoded_word(value) if kind == _ATOM and "=?" in value else None
        if index and space_before and not (previous_encoded and decoded is not None):
            parts.append(" ")
        parts.append(value if decoded is None else decoded)
        previous_encoded = decoded is not None
    return "".join(parts) or None


def _addr_spec_text(text: str, tokens: list[_Token], first: int, last: int) -> str:
    """The source text of tokens[first:last], which must hold no whitespace or comment."""
    if first >= last:
        raise AddressError(f"missing address in {_preview(text)}")
    for index in range(first + 1, last):
        if tokens[index][4]:
            raise AddressError(f"whitespace or a comment inside the address in {_preview(text)}")
    return text[tokens[first][2] : tokens[last - 1][3]]


# Mailbox text seen again (the same From on every message of a bulk run) is
# not parsed again; results are immutable, and only short texts are kept.
_CACHEABLE_TEXT: Final = 512


@lru_cache(maxsize=1024)
def _parse_short(text: str, limit: int, allow_groups: bool) -> tuple[Mailbox, ...]:
    return tuple(_parse_list(text, limit, allow_groups=allow_groups))


def _parse_cached(text: str, limit: int, *, allow_groups: bool) -> tuple[Mailbox, ...]:
    if isinstance(text, str) and len(text) <= _CACHEABLE_TEXT:
        return _parse_short(text, limit, allow_groups)
    return tuple(_parse_list(text, limit, allow_groups=allow_groups))


def _parse_simple(text: str) -> Mailbox | None:
    """Parse ``a@b`` or ``Name <a@b>`` without tokenizing; None for anything else.

    Gives the same result as the full parser for the inputs it accepts.
    """
    if "=?" in text:
        return None
    lt = text.find("<")
    if lt < 0:
        if not _NOT_BARE.isdisjoint(text) or text.count("@") != 1:
            return None
        return Mailbox(Address(text))
    gt = text.find(">")
    if gt < lt or text.count("<") != 1 or text.count(">") != 1 or text[gt + 1 :].strip(" \t"):
        return None
    name_text = text[:lt]
    addr_text = text[lt + 1 : gt].strip(" \t")
    if (
        not _NOT_SIMPLE.isdisjoint(name_text)
        or not _NOT_BARE.isdisjoint(addr_text)
        or addr_text.count("@") != 1
    ):
        return None
    return Mailbox(Address(addr_text), name_text or None)


def _parse_list(text: str, limit: int, *, allow_groups: bool) -> list[Mailbox]:
    if not isinstance(text, str):
        raise TypeError(f"expected a str, not {type(text).__name__}")
    if len(text) > limit:
        raise AddressError(f"the address text {_preview(text)} is longer than {limit} characters")
    if not text.isprintable():
        check_header_text(text, f"the address text {_preview(text)}")
    simple = _parse_simple(text)
    if simple is not None:
        return [simple]
    return _parse_full(text, allow_groups=allow_groups)


def _parse_full(text: str, *, allow_groups: bool) -> list[Mailbox]:
    """The complete RFC 5322 mailbox-list parser (input already length- and control-checked)."""
    tokens = _tokenize(text)
    if not tokens:
        raise AddressError(f"{_preview(text)} holds no address")
    n = len(tokens)
    result: list[Mailbox] = []
    pos = 0
    in_group = False

    def special(index: int) -> str | None:
        if index < n and tokens[index][0] == _SPECIAL:
            return tokens[index][1]
        return None

    while True:
        j = pos
        while j < n and (tokens[j][0] in (_ATOM, _QSTRING) or special(j) == "."):
            j += 1
        nxt = special(j)
        if nxt == ":":
            if not allow_groups:
                raise AddressError(f"a group is not a mailbox: {_preview(text)}")
            if in_group:
                raise AddressError(f"nested group in {_preview(text)}")
            if j == pos:
                raise AddressError(f"a group needs a name: {_preview(text)}")
            in_group = True
            pos = j + 1
            if special(pos) != ";":
                continue
            in_group = False
            pos += 1
        elif nxt == "<":
            name = _phrase(tokens[pos:j])
            k = j + 1
            while k < n and special(k) != ">":
                if special(k) in ("<", ",", ";", ":"):
                    raise AddressError(f"malformed angle address in {_preview(text)}")
                k += 1
            if k >= n:
                raise AddressError(f"missing '>' in {_preview(text)}")
            address = Address(_addr_spec_text(text, tokens, j + 1, k))
            result.append(Mailbox(address, name))
            pos = k + 1
        elif nxt == "@":
            # The address runs to the next separator, so that Address() sees
            # all of it and gives the same error as Address(text) would.
            k = j + 1
            while k < n and (tokens[k][0] != _SPECIAL or special(k) in (".", "@")):
                k += 1
            result.append(Mailbox(Address(_addr_spec_text(text, tokens, pos, k))))
            pos = k
        elif j > pos and (j >= n or nxt in (",", ";")):
            item = text[tokens[pos][2] : tokens[j - 1][3]]
            raise AddressError(f"{_preview(item)} is not an email address: it has no @")
        else:
            what = repr(tokens[j][1]) if j < n else "the end"
            raise AddressError(f"unexpected {what} in {_preview(text)}")
        if in_group and special(pos) == ";":
            in_group = False
            pos += 1
        if pos >= n:
            break
        if special(pos) != ",":
            raise AddressError(f"unexpected {tokens[pos][1]!r} in {_preview(text)}")
        pos += 1
        if pos >= n:
            raise AddressError(f"trailing comma in {_preview(text)}")
    if in_group:
        raise AddressError(f"unterminated group (missing ';') in {_preview(text)}")
    return result
