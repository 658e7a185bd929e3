"""The fluent :class:`MessageBuilder` that makes :class:`~lettre.message.Message` objects."""

from __future__ import annotations

import binascii
import os
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from lettre.address import MAX_LIST_TEXT_LENGTH, Address, Mailbox, Mailboxes, _parse_cached
from lettre.envelope import Envelope
from lettre.errors import AddressError, MessageError
from lettre.message.headers import (
    RESERVED_HEADERS,
    check_value,
    format_date,
    normalize_msg_id,
    render_address_field,
    render_msg_ids,
    render_structured,
    render_unstructured,
    validate_name,
)
from lettre.message.message import Message
from lettre.message.mime import (
    TEXT_HTML,
    TEXT_PLAIN,
    Attachment,
    Chunks,
    ContentType,
    MultiPart,
    Part,
    SinglePart,
    TransferEncoding,
    part_header_block,
    resolve,
    text_part,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MailboxInput", "MessageBuilder", "Priority"]

MailboxInput = Mailbox | Address | str
"""What the address methods accept: a Mailbox, an Address or mailbox text."""

Priority = Literal["high", "normal", "low"]
"""A message priority for :meth:`MessageBuilder.priority`."""

_PRIORITIES: Final = {
    "high": ("1 (Highest)", "high"),
    "normal": ("3 (Normal)", "normal"),
    "low": ("5 (Lowest)", "low"),
}
_MAX_URI_LENGTH: Final = 900
_NO_MAILBOXES: Final = Mailboxes._of(())
# base64 to its URL-safe alphabet (RFC 4648 section 5).
_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
# The Date of messages built in the current second, and its text.
_CLOCK: list[tuple[int, datetime, str]] = [(-1, datetime.min, "")]


def _now() -> tuple[datetime, str]:
    """The current time in UTC, to the second, and its RFC 5322 text.

    The same as ``datetime.now(timezone.utc).replace(microsecond=0)``; the
    value and its text are made once per second.
    """
    second = time.time_ns() // 1_000_000_000
    cached = _CLOCK[0]
    if cached[0] != second:
        date = datetime.fromtimestamp(second, timezone.utc)
        cached = (second, date, format_date(date))
        _CLOCK[0] = cached
    return cached[1], cached[2]


def _new_message_id(domain: str) -> str:
    """``<random@domain>`` with 144 random bits: ``secrets.token_urlsafe(18)`` as the left part."""
    token = binascii.b2a_base64(os.urandom(18), newline=False).translate(_URLSAFE)
    return f"<{token.decode('ascii')}@{domain}>"


def _mailboxes(
    values: tuple[MailboxInput | Iterable[MailboxInput], ...], field: str
) -> Iterable[Mailbox]:
    """The mailboxes of one address field; errors name the field (``to: 'b@@x' ...``)."""
    try:
        if len(values) == 1 and isinstance(values[0], str):
            # One mailbox-list text, the usual case: the same as Mailboxes.parse.
            return _parse_cached(values[0], MAX_LIST_TEXT_LENGTH, allow_groups=True)
        return _mailbox_list(values)
    except (AddressError, TypeError) as exc:
        raise _in_field(exc, field) from None


def _mailbox(value: MailboxInput, field: str) -> Mailbox:
    """One mailbox (Sender); errors name the field."""
    try:
        return Mailbox.coerce(value)
    except (AddressError, TypeError) as exc:
        raise _in_field(exc, field) from None


def _in_field(exc: AddressError | TypeError, field: str) -> AddressError | TypeError:
    """The same error, its message prefixed with the builder field it came from."""
    return type(exc)(f"{field}: {exc}")


def _mailbox_list(values: Iterable[MailboxInput | Iterable[MailboxInput]]) -> list[Mailbox]:
    result: list[Mailbox] = []
    for value in values:
        if isinstance(value, str):
            result.extend(Mailboxes.parse(value))
        elif isinstance(value, (Mailbox, Address)):
            result.append(Mailbox.coerce(value))
        elif isinstance(value, Iterable):
            result.extend(_mailbox_list(value))
        else:
            raise TypeError(
                f"expected a Mailbox, an Address, a str or a list of them, not "
                f"{type(value).__name__}"
            )
    return result


def _msg_ids(values: Iterable[str], what: str) -> list[str]:
    ids: list[str] = []
    for value in values:
        check_value(value, what)
        ids.extend(normalize_msg_id(item, what) for item in value.split())
    if not ids:
        raise MessageError(f"{what} needs at least one message ID")
    return ids


def _read(content: bytes | os.PathLike[str], what: str) -> tuple[bytes, str | None]:
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content), None
    if isinstance(content, os.PathLike):
        path = Path(content)
        return path.read_bytes(), path.name
    if isinstance(content, str):
        raise TypeError(
            f"{what} takes bytes or a path object: use pathlib.Path({content[:40]!r}) for a "
            "file, or .encode() for text"
        )
    raise TypeError(f"{what} takes bytes or a path object, not {type(content).__name__}")


def _check_uri(uri: str) -> str:
    check_value(uri, "a List-Unsubscribe URI")
    inner = uri[1:-1] if uri.startswith("<") and uri.endswith(">") else uri
    scheme = inner.partition(":")[0].lower()
    if (
        not inner.isascii()
        or any(ch in inner for ch in ' \t<>"')
        or scheme not in ("https", "http", "mailto")
        or len(inner) > _MAX_URI_LENGTH
    ):
        raise MessageError(
            f"invalid List-Unsubscribe URI {uri!r}: expected an ASCII https:, http: or mailto: "
            f"URI without spaces or angle brackets, at most {_MAX_URI_LENGTH} characters"
        )
    return inner


class MessageBuilder:
    """Collects the parts of a message; :meth:`build` makes the immutable Message.

    Every method validates its input at once (raising ``AddressError`` or
    ``MessageError``) and returns the builder, so calls chain. A builder can
    be reused: each :meth:`build` takes a fresh Date and Message-ID unless
    they were set.
    """

    def __init__(self) -> None:
        self._from: list[Mailbox] = []
        self._sender: Mailbox | None = None
        self._reply_to: list[Mailbox] = []
        self._to: list[Mailbox] = []
        self._cc: list[Mailbox] = []
        self._bcc: list[Mailbox] = []
        self._subject: str | None = None
        self._date: datetime | None = None
        self._message_id: str | None = None
        self._message_id_domain: str | None = None
        self._in_reply_to: list[str] = []
        self._references: list[str] = []
        self._user_agent: str | None = None
        self._priority: Priority | None = None
        self._unsubscribe: list[str] = []
        self._one_click: bool | None = None
        self._headers: list[tuple[str, str | Mailboxes]] = []
        self._text: SinglePart | None = None
        self._html: SinglePart | None = None
        # The text and HTML parts made by text_part() are already resolved.
        self._text_resolved = False
        self._html_resolved = False
        self._attachments: list[SinglePart] = []
        self._inline: list[SinglePart] = []
        self._body: Part | None = None
        self._envelope: Envelope | None = None

    # -- addresses ----------------------------------------------------------

    def from_(self, *mailboxes: MailboxInput | Iterable[MailboxInput]) -> Self:
        """Add From mailboxes (``"Name <a@b>"`` text, Mailbox or Address; lists allowed).

        With more than one From mailbox a Sender is required.

        Args:
            mailboxes: mailbox text (several may be comma-separated), Mailbox
                or Address objects, or iterables of them.

        Raises:
            AddressError: a mailbox is invalid (the error names the field).
        """
        self._from.extend(_mailboxes(mailboxes, "from"))
        return self

    def sender(self, mailbox: MailboxInput) -> Self:
        """Set the Sender: the one mailbox that actually sends (and the envelope sender).

        Args:
            mailbox: one mailbox, as text, a Mailbox or an Address.

        Raises:
            AddressError: not exactly one valid mailbox.
        """
        self._sender = _mailbox(mailbox, "sender")
        return self

    def reply_to(self, *mailboxes: MailboxInput | Iterable[MailboxInput]) -> Self:
        """Add Reply-To mailboxes.

        Args:
            mailboxes: mailbox text (several may be comma-separated), Mailbox
                or Address objects, or iterables of them.

        Raises:
            AddressError: a mailbox is invalid (the error names the field).
        """
        self._reply_to.extend(_mailboxes(mailboxes, "reply_to"))
        return self

    def to(self, *mailboxes: MailboxInput | Iterable[MailboxInput]) -> Self:
        """Add To recipients (``"a@b, Bob <c@d>"`` text is split into mailboxes).

        Args:
            mailboxes: mailbox text (several may be comma-separated), Mailbox
                or Address objects, or iterables of them.

        Raises:
            AddressError: a mailbox is invalid (the error names the field).
        """
        self._to.extend(_mailboxes(mailboxes, "to"))
        return self

    def cc(self, *mailboxes: MailboxInput | Iterable[MailboxInput]) -> Self:
        """Add Cc recipients.

        Args:
            mailboxes: mailbox text (several may be comma-separated), Mailbox
                or Address objects, or iterables of them.

        Raises:
            AddressError: a mailbox is invalid (the error names the field).
        """
        self._cc.extend(_mailboxes(mailboxes, "cc"))
        return self

    def bcc(self, *mailboxes: MailboxInput | Iterable[MailboxInput]) -> Self:
        """Add Bcc recipients: they get the message but never appear in its bytes.

        Args:
            mailboxes: mailbox text (several may be comma-separated), Mailbox
                or Address objects, or iterables of them.

        Raises:
            AddressError: a mailbox is invalid (the error names the field).
        """
        self._bcc.extend(_mailboxes(mailboxes, "bcc"))
        return self

    # -- header fields ------------------------------------------------------

    def subject(self, subject: str) -> Self:
        """Set the Subject (any text without line breaks or control characters).

        Args:
            subject: the subject; non-ASCII text is encoded (RFC 2047).

        Raises:
            MessageError: the text holds a line break or a control character.
        """
        self._subject = check_value(subject, "the subject")
        return self

    def date(self, date: datetime) -> Self:
        """Set the Date (timezone-aware); by default the time of :meth:`build`, in UTC.

        Args:
            date: an aware ``datetime``; microseconds are dropped.

        Raises:
            TypeError: ``date`` is not a ``datetime``.
            MessageError: ``date`` has no time zone.
        """
        if not isinstance(date, datetime):
            raise TypeError(f"the date must be a datetime, not {type(date).__name__}")
        format_date(date)
        self._date = date.replace(microsecond=0)
        return self

    def message_id(self, message_id: str | None = None, *, domain: str | None = None) -> Self:
        """Set the Message-ID, or the domain of the generated one.

        Args:
            message_id: ``<id@host>`` (brackets optional). None keeps the
                generated identifier: ``<random@domain>`` with 144 random bits.
            domain: the domain of generated identifiers; by default the domain
                of the (first) From address.

        Raises:
            MessageError: ``message_id`` is not a valid ``<id@host>``.
            AddressError: ``domain`` is not a valid domain name.
        """
        if message_id is not None:
            self._message_id = normalize_msg_id(message_id, "the Message-ID")
        if domain is not None:
            try:
                self._message_id_domain = Address(f"x@{domain}").ascii_domain
            except AddressError:
                raise AddressError(
                    f"message_id: the domain {domain!r} is not a valid domain name "
                    "(write it like example.com)"
                ) from None
        return self

    def in_reply_to(self, *message_ids: str) -> Self:
        """Set In-Reply-To: the Message-ID(s) of the message(s) answered.

        Args:
            message_ids: ``<id@host>`` identifiers (brackets optional).

        Raises:
            MessageError: an identifier is not valid.
        """
        self._in_reply_to = _msg_ids(message_ids, "In-Reply-To")
        return self

    def references(self, *message_ids: str) -> Self:
        """Set References: the thread's Message-IDs, oldest first (space-separated text ok).

        Args:
            message_ids: ``<id@host>`` identifiers (brackets optional).

        Raises:
            MessageError: an identifier is not valid.
        """
        self._references = _msg_ids(message_ids, "References")
        return self

    def user_agent(self, user_agent: str) -> Self:
        """Set the User-Agent header.

        Args:
            user_agent: the product text, such as ``"myapp/1.2"``.

        Raises:
            MessageError: the text holds a line break or a control character.
        """
        self._user_agent = check_value(user_agent, "the user agent")
        return self

    def priority(self, priority: Priority) -> Self:
        """Set the priority: ``"high"``, ``"normal"`` or ``"low"`` (X-Priority and Importance).

        Args:
            priority: ``"high"``, ``"normal"`` or ``"low"``.

        Raises:
            MessageError: any other value.
        """
        if priority not in _PRIORITIES:
            raise MessageError(f"priority must be 'high', 'normal' or 'low', not {priority!r}")
        self._priority = priority
        return self

    def list_unsubscribe(self, *uris: str, one_click: bool | None = None) -> Self:
        """Set List-Unsubscribe (RFC 2369) and, for one-click, List-Unsubscribe-Post (RFC 8058).

        Args:
            uris: ``https:`` and/or ``mailto:`` URIs, in order of preference.
            one_click: add ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``.
                By default it is added when an ``https:`` URI is given. It needs
                an ``https:`` URI, and the message should be DKIM-signed over
                both headers.

        Raises:
            MessageError: no URI, an invalid URI, or ``one_click`` without an
                ``https:`` URI.
        """
        if not uris:
            raise MessageError("List-Unsubscribe needs at least one URI")
        checked = [_check_uri(uri) for uri in uris]
        has_https = any(u.lower().startswith("https:") for u in checked)
        if one_click and not has_https:
            raise MessageError("one-click unsubscribe (RFC 8058) needs an https: URI")
        self._unsubscribe = checked
        self._one_click = has_https if one_click is None else one_click
        return self

    def header(self, name: str, value: str | Mailbox | Address | Mailboxes) -> Self:
        """Add any other header; it may be given several times.

        Args:
            name: the field name (printable ASCII, no spaces or colons). Fields
                with their own method (From, To, Subject, Date, Message-ID, ...)
                and ``Content-*`` are refused.
            value: text (encoded as RFC 2047 words where not ASCII), or
                addresses for address-type fields.

        Raises:
            MessageError: an invalid name, a field with its own method, or a
                value with a line break or control character.
            TypeError: ``value`` is neither text nor addresses.
        """
        validate_name(name)
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("content-"):
            raise MessageError(
                f"set {name} with its own builder method (or on the MIME part), not header()"
            )
        if isinstance(value, str):
            self._headers.append((name, check_value(value, f"the {name} header")))
        elif isinstance(value, Mailboxes):
            self._headers.append((name, value))
        elif isinstance(value, (Mailbox, Address)):
            self._headers.append((name, Mailboxes([value])))
        else:
            raise TypeError(
                f"a header value must be a str or addresses, not {type(value).__name__}"
            )
        return self

    # -- body ---------------------------------------------------------------

    def text(self, text: str, *, transfer_encoding: TransferEncoding | str | None = None) -> Self:
        """Set the plain-text body (with :meth:`html` too: multipart/alternative).

        Args:
            text: the text; its line endings become CRLF, and it is sent as
                UTF-8.
            transfer_encoding: force a transfer encoding; by default 7bit,
                quoted-printable or base64 is chosen from the text.

        Raises:
            MessageError: the text cannot be sent with the encoding asked for.
        """
        if transfer_encoding is None and isinstance(text, str):
            self._text = text_part(text, TEXT_PLAIN)
        else:
            self._text = SinglePart(text, "text/plain", transfer_encoding=transfer_encoding)
        self._text_resolved = transfer_encoding is None and isinstance(text, str)
        return self

    def html(self, html: str, *, transfer_encoding: TransferEncoding | str | None = None) -> Self:
        """Set the HTML body (with :meth:`text` too: multipart/alternative).

        Args:
            html: the HTML; its line endings become CRLF, and it is sent as
                UTF-8.
            transfer_encoding: force a transfer encoding; by default 7bit,
                quoted-printable or base64 is chosen from the HTML.

        Raises:
            MessageError: the HTML cannot be sent with the encoding asked for.
        """
        if transfer_encoding is None and isinstance(html, str):
            self._html = text_part(html, TEXT_HTML)
        else:
            self._html = SinglePart(html, "text/html", transfer_encoding=transfer_encoding)
        self._html_resolved = transfer_encoding is None and isinstance(html, str)
        return self

    def attach(
        self,
        content: bytes | os.PathLike[str] | Attachment | SinglePart,
        filename: str | None = None,
        content_type: ContentType | str | None = None,
    ) -> Self:
        """Add an attachment.

        Args:
            content: the bytes, a path (``pathlib.Path``; read now), an
                :class:`Attachment` or a prepared :class:`SinglePart`.
            filename: the name shown to the recipient (default: the path's
                name). Required for bytes.
            content_type: the type; guessed from the file name by default.

        Raises:
            MessageError: bytes without a filename, or an invalid argument.
            OSError: a path cannot be read.
        """
        if isinstance(content, SinglePart):
            self._attachments.append(content)
            return self
        if isinstance(content, Attachment):
            self._attachments.append(content.to_part())
            return self
        data, path_name = _read(content, "attach()")
        name = filename if filename is not None else path_name
        if name is None:
            raise MessageError("attach() needs a filename for bytes content")
        self._attachments.append(Attachment(data, name, content_type).to_part())
        return self

    def inline(
        self,
        content: bytes | os.PathLike[str],
        content_id: str,
        content_type: ContentType | str | None = None,
        filename: str | None = None,
    ) -> Self:
        """Add an inline part (an image, say) that the HTML body shows as ``cid:<content_id>``.

        Args:
            content: the bytes or a path (read now).
            content_id: the identifier the HTML refers to: ``<img src="cid:logo">``
                for ``content_id="logo"``.
            content_type: the type; guessed from the file name by default.
            filename: an optional file name.

        Raises:
            MessageError: neither ``content_type`` nor a file name, or an
                invalid argument.
            OSError: a path cannot be read.
        """
        data, path_name = _read(content, "inline()")
        name = filename if filename is not None else path_name
        if content_type is None and name is None:
            raise MessageError("inline() needs a content_type (e.g. 'image/png') or a filename")
        self._inline.append(
            Attachment(data, name, content_type, inline=True, content_id=content_id).to_part()
        )
        return self

    def body(self, part: SinglePart | MultiPart) -> Self:
        """Set an explicit MIME tree as the body (instead of text/html/inline).

        Args:
            part: the root of the MIME tree.

        Raises:
            TypeError: ``part`` is not a SinglePart or MultiPart.
        """
        if not isinstance(part, (SinglePart, MultiPart)):
            raise TypeError(f"body() takes a SinglePart or MultiPart, not {type(part).__name__}")
        self._body = part
        return self

    def envelope(self, envelope: Envelope) -> Self:
        """Use an explicit envelope instead of the one derived from the headers.

        Args:
            envelope: the reverse path and recipients to send with.

        Raises:
            TypeError: ``envelope`` is not an :class:`~lettre.Envelope`.
        """
        if not isinstance(envelope, Envelope):
            raise TypeError(f"expected an Envelope, not {type(envelope).__name__}")
        self._envelope = envelope
        return self

    # -- build --------------------------------------------------------------

    def _compose_body(self) -> Part | None:
        if self._body is not None:
            if self._text is not None or self._html is not None or self._inline:
                raise MessageError(
                    "an explicit body() cannot be combined with text(), html() or inline()"
                )
            main: Part | None = self._body
        else:
            html: Part | None = self._html
            if self._inline:
                if self._html is None:
                    raise MessageError("inline parts need an HTML body that refers to them")
                html = MultiPart(
                    "related", [self._html, *self._inline], params={"type": "text/html"}
                )
            if self._text is not None and html is not None:
                main = MultiPart("alternative", [self._text, html])
            else:
                main = self._text if self._text is not None else html
        if self._attachments:
            main = MultiPart("mixed", [*([main] if main is not None else []), *self._attachments])
        return main

    def build(self) -> Message:
        """Validate everything and make the immutable :class:`Message`.

        Raises:
            MessageError: no From; several From without a Sender; no recipient
                and no explicit envelope; an invalid body combination.
        """
        if not self._from:
            raise MessageError("a message needs a From address: call .from_(...)")
        if len(self._from) > 1 and self._sender is None:
            raise MessageError("a message with several From addresses needs a Sender")
        from_items = tuple(self._from)
        sender = self._sender
        sender_mailbox = sender if sender is not None else from_items[0]
        to_items = tuple(self._to)
        cc_items = tuple(self._cc)
        bcc_items = tuple(self._bcc)
        if self._envelope is not None:
            envelope = self._envelope
        else:
            if not (to_items or cc_items or bcc_items):
                raise MessageError(
                    "a message needs a recipient: call .to(), .cc() or .bcc(), "
                    "or give an explicit .envelope()"
                )
            # The addresses were validated when they were added.
            envelope = Envelope._of(
                sender_mailbox.address, [m.address for m in (*to_items, *cc_items, *bcc_items)]
            )

        if self._date is None:
            date, date_text = _now()
        else:
            date = self._date
            date_text = format_date(date)
        message_id = self._message_id
        if message_id is None:
            message_id = _new_message_id(
                self._message_id_domain or from_items[0].address.ascii_domain
            )
        body = self._compose_body()
        if body is not None and not (
            (body is self._text and self._text_resolved)
            or (body is self._html and self._html_resolved)
        ):
            body = resolve(body)

        reply_to_items = tuple(self._reply_to)
        out: Chunks = [f"Date: {date_text}\r\n".encode("ascii")]
        fields: list[tuple[str, str]] = [("Date", date_text)]
        rendered, text = render_address_field("From", from_items)
        out.append(rendered)
        fields.append(("From", text))
        if sender is not None:
            rendered, text = render_address_field("Sender", (sender,))
            out.append(rendered)
            fields.append(("Sender", text))
        for name, items in (("Reply-To", reply_to_items), ("To", to_items), ("Cc", cc_items)):
            if items:
                rendered, text = render_address_field(name, items)
                out.append(rendered)
                fields.append((name, text))
        if self._subject is not None:
            out.append(render_unstructured("Subject", self._subject))
            fields.append(("Subject", self._subject))
        out.append(render_msg_ids("Message-ID", [message_id]))
        fields.append(("Message-ID", message_id))
        for name, ids in (("In-Reply-To", self._in_reply_to), ("References", self._references)):
            if ids:
                out.append(render_msg_ids(name, ids))
                fields.append((name, " ".join(ids)))
        if self._user_agent is not None:
            out.append(render_unstructured("User-Agent", self._user_agent))
            fields.append(("User-Agent", self._user_agent))
        if self._priority is not None:
            x_priority, importance = _PRIORITIES[self._priority]
            out.append(render_structured("X-Priority", x_priority))
            out.append(render_structured("Importance", importance))
            fields.extend((("X-Priority", x_priority), ("Importance", importance)))
        if self._unsubscribe:
            value = ", ".join(f"<{uri}>" for uri in self._unsubscribe)
            out.append(render_structured("List-Unsubscribe", value))
            fields.append(("List-Unsubscribe", value))
            if self._one_click:
                post = "List-Unsubscribe=One-Click"
                out.append(render_structured("List-Unsubscribe-Post", post))
                fields.append(("List-Unsubscribe-Post", post))
        for name, header_value in self._headers:
            if isinstance(header_value, Mailboxes):
                rendered, text = render_address_field(name, header_value)
                out.append(rendered)
                fields.append((name, text))
            else:
                out.append(render_unstructured(name, header_value))
                fields.append((name, header_value))
        if body is not None:
            out.append(b"MIME-Version: 1.0\r\n")
            fields.append(("MIME-Version", "1.0"))
            block, part_fields = part_header_block(body)
            out.append(block)
            fields.extend(part_fields)
        out.append(b"\r\n")
        return Message._create(
            from_=Mailboxes._of(from_items),
            sender=sender,
            reply_to=Mailboxes._of(reply_to_items) if reply_to_items else _NO_MAILBOXES,
            to=Mailboxes._of(to_items) if to_items else _NO_MAILBOXES,
            cc=Mailboxes._of(cc_items) if cc_items else _NO_MAILBOXES,
            bcc=Mailboxes._of(bcc_items) if bcc_items else _NO_MAILBOXES,
            subject=self._subject,
            date=date,
            message_id=message_id,
            headers=tuple(fields),
            body=body,
            envelope=envelope,
            head=b"".join(out),
            data=None,
        )
