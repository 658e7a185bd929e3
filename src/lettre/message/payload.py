"""Messages as JSON-safe payloads, for task queues: lossless, versioned, bounded.

A payload is a ``dict`` of strings, lists, booleans and None that any JSON
serializer (Celery's, arq's, a Redis list) carries as it is. It holds the
exact bytes a transport would send, the envelope with its DSN options, the
Bcc mailboxes and the Message-ID, so that the message made from it on the
other side sends the same bytes to the same recipients:

    payload = message_to_payload(message)        # in the web process
    again = message_from_payload(payload)        # in the worker
    assert again.as_bytes() == message.as_bytes()
    assert again.envelope == message.envelope

A standard-library ``EmailMessage`` is turned into what a transport sends
(CRLF bytes without Bcc, and the envelope derived from its headers), so it
comes back as a lettre :class:`~lettre.message.Message` with those bytes.

This module imports no queue library.
"""

from __future__ import annotations

import base64
import binascii
from email.message import EmailMessage
from email.message import Message as Compat32Message
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any, Final

from lettre.address import Mailbox, Mailboxes
from lettre.envelope import Envelope
from lettre.errors import MessageError
from lettre.message.message import Message
from lettre.message.stdlib import message_from_email_message

__all__ = [
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "PAYLOAD_VERSION",
    "PayloadError",
    "PayloadTooLarge",
    "message_from_payload",
    "message_to_payload",
    "raw_to_payload",
]

PAYLOAD_VERSION: Final = 1
"""The payload format written by :func:`message_to_payload` (the ``"lettre"`` key)."""

DEFAULT_MAX_PAYLOAD_SIZE: Final = 20 * 1024 * 1024
"""The default bound on a message's size in a payload: 20 MiB of message bytes."""

_KEYS: Final = frozenset({"lettre", "data", "envelope", "bcc", "message_id"})


class PayloadError(MessageError):
    """A payload is not one :func:`message_to_payload` wrote (or of an unknown version)."""


class PayloadTooLarge(PayloadError):
    """A message is larger than the payload's size bound.

    Attributes:
        size: the message's size in octets.
        max_size: the bound it exceeds.
    """

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(
            f"the message is {size} octets, more than the {max_size} a payload may hold; "
            "send it directly, or raise max_size (the queue's broker must carry 4/3 of it)"
        )
        self.size = size
        self.max_size = max_size


def _check_size(size: int, max_size: int) -> None:
    if size > max_size:
        raise PayloadTooLarge(size, max_size)


def _envelope_to_json(envelope: Envelope) -> dict[str, Any]:
    return {
        "reverse_path": None if envelope.reverse_path is None else str(envelope.reverse_path),
        "forward_paths": [str(a) for a in envelope.forward_paths],
        "notify": None if envelope.notify is None else sorted(envelope.notify),
        "ret": envelope.ret,
        "envid": envelope.envid,
        "orcpt": envelope.orcpt,
    }


def _envelope_from_json(value: object) -> Envelope:
    if not isinstance(value, dict):
        raise PayloadError("the payload's envelope is not an object")
    try:
        forward = value["forward_paths"]
        if not isinstance(forward, list):
            raise PayloadError("the payload's forward paths are not a list")
        return Envelope(
            value["reverse_path"],
            forward,
            notify=value["notify"],
            ret=value["ret"],
            envid=value["envid"],
            orcpt=bool(value["orcpt"]),
        )
    except KeyError as exc:
        raise PayloadError(f"the payload's envelope has no {exc.args[0]!r}") from None


def message_to_payload(
    message: Message | EmailMessage,
    *,
    envelope: Envelope | None = None,
    max_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
) -> dict[str, Any]:
    """Turn a message into a JSON-safe payload that :func:`message_from_payload` reads.

    Args:
        message: a lettre Message (signed or not), or a stdlib
            ``EmailMessage``, which is serialised as a transport would send it.
        envelope: the envelope to send with, instead of the message's own.
        max_size: the largest message (in octets, before base64) accepted.

    Returns:
        ``{"lettre": 1, "data": <base64>, "envelope": {...}, "bcc": [...],
        "message_id": ...}``: strings, lists, booleans and None only.

    A message with streamed attachments (``Attachment.from_path()``) is read
    into the payload; its size is checked first, so a message larger than
    ``max_size`` is refused without reading the file.

    Raises:
        PayloadTooLarge: the message is larger than ``max_size``.
        SourceError: a streamed attachment cannot be read.
        MessageError: a stdlib message cannot be serialised or has no
            sender or recipient.
        TypeError: ``message`` is neither kind of message.
    """
    if isinstance(message, Compat32Message):
        message = message_from_email_message(message, envelope)
    elif not isinstance(message, Message):
        raise TypeError(f"expected a Message or an EmailMessage, not {type(message).__name__}")
    content = message.content()
    if isinstance(content, bytes):
        data = content
    else:
        # Streamed attachments: refused before reading when too large.
        if content.size is not None:
            _check_size(content.size, max_size)
        data = content.read_all()
    _check_size(len(data), max_size)
    return {
        "lettre": PAYLOAD_VERSION,
        "data": binascii.b2a_base64(data, newline=False).decode("ascii"),
        "envelope": _envelope_to_json(envelope if envelope is not None else message.envelope),
        "bcc": [str(m) for m in message.bcc],
        "message_id": message.message_id,
    }


def raw_to_payload(
    envelope: Envelope,
    data: bytes,
    *,
    message_id: str | None = None,
    max_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
) -> dict[str, Any]:
    """A payload for bytes that are ready to send, such as a Django message's.

    Args:
        envelope: who sends and who receives.
        data: the message as sent (CRLF line endings, no Bcc).
        message_id: its Message-ID, which de-duplication keys on.
        max_size: the largest message accepted, in octets.

    Raises:
        PayloadTooLarge: the message is larger than ``max_size``.
    """
    _check_size(len(data), max_size)
    return {
        "lettre": PAYLOAD_VERSION,
        "data": binascii.b2a_base64(data, newline=False).decode("ascii"),
        "envelope": _envelope_to_json(envelope),
        "bcc": [],
        "message_id": message_id,
    }


def message_from_payload(
    payload: dict[str, Any],
    *,
    max_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    parse_headers: bool = True,
) -> Message:
    """Make the Message a payload holds: the same bytes, envelope, Bcc and Message-ID.

    The header fields (From, To, Subject...) are read back from the bytes;
    the bytes themselves are kept exactly as they were, so a DKIM signature
    made before the message was queued still verifies.

    Args:
        payload: what :func:`message_to_payload` returned, after any JSON
            round trip.
        max_size: the largest message (in octets) accepted.
        parse_headers: False to skip reading the header fields back: the
            Message then has the bytes, envelope, Bcc and Message-ID, and
            empty From, To, Cc, Reply-To, Sender, Subject, Date and headers.
            Enough to send it, in a fraction of the time (a worker's case).

    Raises:
        PayloadError: not a payload, or one of an unknown version.
        PayloadTooLarge: the message is larger than ``max_size``.
        AddressError: an address in the envelope is invalid.
    """
    if not isinstance(payload, dict) or "lettre" not in payload:
        raise PayloadError("not a lettre message payload (no 'lettre' version key)")
    version = payload["lettre"]
    if version != PAYLOAD_VERSION:
        raise PayloadError(
            f"message payload version {version!r} is not supported (this lettre reads "
            f"version {PAYLOAD_VERSION}); upgrade the worker to the producer's lettre"
        )
    missing = _KEYS - payload.keys()
    if missing:
        raise PayloadError(f"the message payload has no {', '.join(sorted(missing))}")
    encoded = payload["data"]
    if not isinstance(encoded, str):
        raise PayloadError("the payload's data is not a string")
    # Refuse before decoding: base64 is 4 characters for 3 octets.
    _check_size(len(encoded) // 4 * 3, max_size + 2)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(f"the payload's data is not base64: {exc}") from None
    _check_size(len(data), max_size)
    envelope = _envelope_from_json(payload["envelope"])
    bcc = payload["bcc"]
    if not isinstance(bcc, list) or not all(isinstance(m, str) for m in bcc):
        raise PayloadError("the payload's bcc is not a list of strings")
    message_id = payload["message_id"]
    if message_id is not None and not isinstance(message_id, str):
        raise PayloadError("the payload's message_id is not a string")
    bcc_boxes = Mailboxes([Mailbox.parse(m) for m in bcc])
    if not parse_headers:
        return Message._create(
            from_=Mailboxes(),
            sender=None,
            reply_to=Mailboxes(),
            to=Mailboxes(),
            cc=Mailboxes(),
            bcc=bcc_boxes,
            subject=None,
            date=None,
            message_id=message_id,
            headers=(),
            body=None,
            envelope=envelope,
            head=b"",
            data=data,
        )
    head = BytesHeaderParser(_class=EmailMessage, policy=default_policy).parsebytes(data)
    fields = message_from_email_message(head, envelope)
    return Message._create(
        from_=fields.from_,
        sender=fields.sender,
        reply_to=fields.reply_to,
        to=fields.to,
        cc=fields.cc,
        bcc=bcc_boxes,
        subject=fields.subject,
        date=fields.date,
        message_id=message_id,
        headers=fields.headers,
        body=None,
        envelope=envelope,
        head=b"",
        data=data,
    )
