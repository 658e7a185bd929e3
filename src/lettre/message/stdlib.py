"""Interop with the standard library's :mod:`email` package.

Transports accept a stdlib ``email.message.EmailMessage`` as well as a lettre
:class:`~lettre.message.Message`; these functions turn the former into what a
transport sends: an :class:`~lettre.envelope.Envelope` and CRLF bytes without
Bcc.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from email import errors as email_errors
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.message import Message as Compat32Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final

from lettre.address import Mailbox, Mailboxes
from lettre.envelope import Envelope
from lettre.errors import AddressError, MessageError

if TYPE_CHECKING:
    from lettre.message.message import Message

__all__ = [
    "email_message_to_bytes",
    "envelope_from_email_message",
    "message_from_email_message",
    "message_to_email_message",
]

_HIDDEN: Final = frozenset({b"bcc", b"resent-bcc"})
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_FIELD_LINE = re.compile(rb"[!-9;-~]+:")


def _check_header_value(name: str, value: str) -> None:
    """Refuse a raw header value that could end or break the header block."""
    if "\x00" in value:
        raise MessageError(f"the {name} header contains a NUL character")
    if "\r" not in value and "\n" not in value:
        return
    lines = value.replace("\r\n", "\n").split("\n")
    if any("\r" in line for line in lines):
        raise MessageError(f"the {name} header contains a bare CR")
    for line in lines[1:]:
        if line[:1] not in (" ", "\t") or not line.strip():
            raise MessageError(
                f"the {name} header contains a line break that is not folding white space"
            )


def _check_header_block(head: bytes) -> None:
    """Every generated header line is a field or the continuation of one."""
    if b"\x00" in head:
        raise MessageError("the message's header block contains a NUL character")
    for line in head.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t") and not _FIELD_LINE.match(line):
            raise MessageError(f"the message's header block holds a malformed line: {line[:60]!r}")


def _check_type(message: object) -> Compat32Message:
    if not isinstance(message, Compat32Message):
        raise TypeError(f"expected an email.message.EmailMessage, not {type(message).__name__}")
    return message


def email_message_to_bytes(message: EmailMessage) -> bytes:
    """Serialise a stdlib message for sending: CRLF line endings, no Bcc or Resent-Bcc.

    The message itself is not modified. Non-ASCII addresses are written as
    UTF-8 (RFC 6532) when the message's policy allows it (``policy.SMTPUTF8``).

    Args:
        message: the message to serialise.

    Returns:
        The bytes a transport sends.

    Raises:
        MessageError: the standard library cannot serialise the message, or a
            header value could end or break the header block.
        TypeError: ``message`` is not an ``email.message.Message``.
    """
    msg = _check_type(message)
    for name, value in msg.raw_items():
        # A compat32 Header object is checked as the text it stands for: its
        # line breaks would reach the bytes as much as a string's.
        _check_header_value(name, value if isinstance(value, str) else str(value))
    policy = msg.policy.clone(linesep="\r\n")
    buffer = io.BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, policy=policy).flatten(msg, linesep="\r\n")
    except (
        ValueError,
        TypeError,
        AttributeError,  # a payload that is neither text, bytes nor a list of parts
        LookupError,
        UnicodeError,
        email_errors.MessageError,
    ) as exc:
        raise MessageError(f"the standard library could not serialise the message: {exc}") from exc
    data = buffer.getvalue()
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    head, separator, body = data.partition(b"\r\n\r\n")
    _check_header_block(head)
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.partition(b":")[0].strip().lower() in _HIDDEN
        if not skipping:
            kept.append(line)
    return b"\r\n".join(kept) + separator + body


def _text(value: object) -> str:
    return _UNFOLD.sub("", str(value))


def _mailboxes(message: Compat32Message, name: str) -> list[Mailbox]:
    result: list[Mailbox] = []
    for value in message.get_all(name) or ():
        text = _text(value)
        if text.strip():
            result.extend(_parse_header(name, value, text))
    return result


def _parse_header(name: str, value: object, text: str) -> Mailboxes:
    """Parse an address header; errors name the header and quote what it holds."""
    try:
        return Mailboxes.parse(text)
    except AddressError as exc:
        error = exc
    # A header object of the email package renders an invalid address as "<>":
    # the text it was made from says what is wrong.
    tree = getattr(value, "_parse_tree", None)
    if tree is not None:
        try:
            Mailboxes.parse(_text(tree))
        except AddressError as exc:
            error = exc
    raise AddressError(f"{name}: {error}") from None


def envelope_from_email_message(message: EmailMessage) -> Envelope:
    """Derive the envelope of a stdlib message, as ``smtplib.send_message`` does.

    With one Resent- block (one Resent-Date), Resent-Sender or Resent-From and
    Resent-To, Resent-Cc, Resent-Bcc are used; otherwise Sender or From and
    To, Cc, Bcc. Recipients are deduplicated.

    Args:
        message: the message whose headers name the sender and recipients.

    Raises:
        AddressError: an address header holds an invalid address.
        MessageError: several Resent- blocks, no sender, or no recipient.
        TypeError: ``message`` is not an ``email.message.Message``.
    """
    msg = _check_type(message)
    resent = msg.get_all("Resent-Date")
    if resent is None:
        prefix = ""
    elif len(resent) == 1:
        prefix = "Resent-"
    else:
        raise MessageError("the message has several Resent- blocks; give the envelope explicitly")
    senders = _mailboxes(msg, prefix + "Sender") or _mailboxes(msg, prefix + "From")
    if not senders:
        raise MessageError(f"the message has no {prefix}From or {prefix}Sender address")
    recipients = [m.address for name in ("To", "Cc", "Bcc") for m in _mailboxes(msg, prefix + name)]
    return Envelope(senders[0].address, recipients)


def _date(message: Compat32Message) -> datetime | None:
    value = message.get("Date")
    if value is None:
        return None
    parsed = getattr(value, "datetime", None)
    if isinstance(parsed, datetime):
        return parsed
    try:
        return parsedate_to_datetime(_text(value))
    except (TypeError, ValueError, IndexError):
        return None


def message_from_email_message(message: EmailMessage, envelope: Envelope | None = None) -> Message:
    """Make a lettre Message from a stdlib message, keeping its bytes as they are.

    The same as :meth:`lettre.message.Message.from_email_message`.

    Args:
        message: the message to convert.
        envelope: the envelope to use; by default it is derived from the
            message's headers (see :func:`envelope_from_email_message`).

    Raises:
        AddressError: an address header holds an invalid address, or Sender
            holds more than one mailbox.
        MessageError: the message cannot be serialised, or it has no sender
            or no recipient.
        TypeError: ``message`` is not an ``email.message.Message``.
    """
    from lettre.message.message import Message

    msg = _check_type(message)
    data = email_message_to_bytes(message)
    env = envelope if envelope is not None else envelope_from_email_message(message)
    senders = _mailboxes(msg, "Sender")
    if len(senders) > 1:
        raise AddressError("the Sender header must hold exactly one mailbox")
    subject = msg.get("Subject")
    raw_id = msg.get("Message-ID")
    message_id = _text(raw_id).strip() or None if raw_id is not None else None
    headers = tuple(
        (name, _text(value))
        for name, value in msg.items()
        if name.lower() not in ("bcc", "resent-bcc")
    )
    return Message._create(
        from_=Mailboxes(_mailboxes(msg, "From")),
        sender=senders[0] if senders else None,
        reply_to=Mailboxes(_mailboxes(msg, "Reply-To")),
        to=Mailboxes(_mailboxes(msg, "To")),
        cc=Mailboxes(_mailboxes(msg, "Cc")),
        bcc=Mailboxes(_mailboxes(msg, "Bcc")),
        subject=None if subject is None else _text(subject),
        date=_date(msg),
        message_id=message_id,
        headers=headers,
        body=None,
        envelope=env,
        head=b"",
        data=data,
    )


def message_to_email_message(message: Message) -> EmailMessage:
    """Parse a lettre Message's bytes into an ``EmailMessage`` (``policy.default``).

    Bcc is added back as a header, since the bytes never hold it.

    Args:
        message: the lettre message to convert.

    Returns:
        A new ``EmailMessage``; changing it does not change ``message``.
    """
    parser = BytesParser(_class=EmailMessage, policy=email_policy.default)
    result = parser.parsebytes(message.as_bytes())
    assert isinstance(result, EmailMessage)
    if message.bcc:
        result["Bcc"] = str(message.bcc)
    return result
