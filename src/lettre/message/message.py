"""The immutable :class:`Message`: headers, a MIME body, an envelope and its bytes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lettre._slots import slot_builder
from lettre.address import Mailbox, Mailboxes
from lettre.envelope import Envelope
from lettre.errors import MessageError
from lettre.message.mime import (
    Chunks,
    MultiPart,
    Part,
    SinglePart,
    TransferEncoding,
    write_body,
)
from lettre.message.source import MessageContent

if TYPE_CHECKING:
    from email.message import EmailMessage

    from lettre.message.builder import MessageBuilder
    from lettre.signing import Signer

__all__ = ["Message"]


@dataclass(frozen=True, slots=True, eq=False, init=False, repr=False)
class Message:
    """An email message, ready to send: build one with :meth:`Message.builder`.

    A Message never changes. Its Date and Message-ID, the transfer encoding
    of every part and every MIME boundary are fixed when it is built, so
    :meth:`as_bytes` returns the same bytes every time.

    Attributes:
        from_: the From mailboxes.
        sender: the Sender mailbox, if any.
        reply_to: the Reply-To mailboxes (may be empty).
        to: the To mailboxes (may be empty).
        cc: the Cc mailboxes (may be empty).
        bcc: the Bcc mailboxes: in the envelope, never in the bytes.
        subject: the subject, if any.
        date: the Date, if known.
        message_id: the Message-ID with angle brackets, if any.
        headers: every header field written, in order, as ``(name, value)``
            with readable (decoded) values.
        body: the MIME tree, or None (no body, or a message converted from the
            standard library, whose bytes are kept as they were).
        envelope: the SMTP envelope: the explicit one given to the builder,
            else Sender or From and the To, Cc and Bcc addresses.
    """

    from_: Mailboxes
    sender: Mailbox | None
    reply_to: Mailboxes
    to: Mailboxes
    cc: Mailboxes
    bcc: Mailboxes
    subject: str | None
    date: datetime | None
    message_id: str | None
    headers: tuple[tuple[str, str], ...]
    body: Part | None
    envelope: Envelope
    _head: bytes
    _data: bytes | None

    def __init__(self) -> None:
        raise TypeError("use Message.builder() (or Message.from_email_message()) to make a Message")

    @classmethod
    def _create(
        cls,
        *,
        from_: Mailboxes,
        sender: Mailbox | None,
        reply_to: Mailboxes,
        to: Mailboxes,
        cc: Mailboxes,
        bcc: Mailboxes,
        subject: str | None,
        date: datetime | None,
        message_id: str | None,
        headers: tuple[tuple[str, str], ...],
        body: Part | None,
        envelope: Envelope,
        head: bytes,
        data: bytes | None,
    ) -> Message:
        return _build_message(
            from_,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            subject,
            date,
            message_id,
            headers,
            body,
            envelope,
            head,
            data,
        )

    @staticmethod
    def builder() -> MessageBuilder:
        """Start building a message: ``Message.builder().from_(...).to(...)...build()``."""
        return _builder_class()()

    def as_bytes(self) -> bytes:
        """The message as sent: CRLF line endings, lines of at most 998 octets.

        The same bytes are returned on every call. Bcc is never included.

        A message with streamed attachments (:meth:`Attachment.from_path
        <lettre.message.Attachment.from_path>`, :meth:`Attachment.from_file
        <lettre.message.Attachment.from_file>`) is read whole into memory
        here, blocking; transports send such a message from :meth:`content`
        instead, a chunk at a time.

        Raises:
            SourceError: a streamed attachment cannot be read as the message
                was built.
        """
        content = self.content()
        return content if isinstance(content, bytes) else content.read_all()

    def content(self) -> bytes | MessageContent:
        """What a transport sends: the bytes, or segments read while sending.

        For a message without streamed attachments this is :meth:`as_bytes`.
        With some, it is a :class:`~lettre.message.source.MessageContent`:
        the bytes around each attachment, and the attachment's source, read
        and base64-encoded a chunk at a time when the message is sent. Its
        size is known in advance when every source's is. Nothing is read
        here.
        """
        if self._data is not None:
            return self._data
        body = self.body
        if body is None:
            return self._head
        if isinstance(body, SinglePart) and (
            body.transfer_encoding is TransferEncoding.SEVEN_BIT
            or body.transfer_encoding is TransferEncoding.EIGHT_BIT
        ):
            # Content that goes as it is, ending with a line break.
            content = body.body
            if content and not content.endswith(b"\r\n"):
                return b"".join((self._head, content, b"\r\n"))
            return self._head + content
        out: Chunks = [self._head]
        write_body(body, out)
        if isinstance(body, SinglePart) and body.body:
            last = out[-1]
            if not last.endswith(b"\r\n"):
                out.append(b"\r\n")
        try:
            return b"".join(out)
        except TypeError:
            # A streamed attachment's segment among the bytes.
            return MessageContent(out)

    def __bytes__(self) -> bytes:
        return self.as_bytes()

    @property
    def needs_smtputf8(self) -> bool:
        """True when the headers carry UTF-8 (an address with a non-ASCII local part).

        Such a message can only be relayed by servers that offer SMTPUTF8.
        """
        if self._data is not None:
            head, _, _ = self._data.partition(b"\r\n\r\n")
            return not head.isascii()
        return not self._head.isascii()

    @property
    def needs_8bitmime(self) -> bool:
        """True when the content has 8-bit octets (an 8bit part, or UTF-8 headers)."""
        if self._data is not None:
            return not self._data.isascii()
        if not self._head.isascii():
            return True
        return self.body is not None and _has_8bit(self.body)

    def sign(self, signer: Signer) -> Message:
        """Return a copy whose bytes are ``signer.sign(self.as_bytes())``.

        Args:
            signer: anything with ``sign(data: bytes) -> bytes`` that returns
                the data with signature headers prepended, such as a DKIM signer.

        Raises:
            MessageError: the signer did not return bytes.
        """
        signed = signer.sign(self.as_bytes())
        if not isinstance(signed, bytes):
            raise MessageError(f"the signer returned {type(signed).__name__}, not bytes")
        return Message._create(
            from_=self.from_,
            sender=self.sender,
            reply_to=self.reply_to,
            to=self.to,
            cc=self.cc,
            bcc=self.bcc,
            subject=self.subject,
            date=self.date,
            message_id=self.message_id,
            headers=self.headers,
            body=self.body,
            envelope=self.envelope,
            head=self._head,
            data=signed,
        )

    def to_email_message(self) -> EmailMessage:
        """Parse this message's bytes into a standard-library ``EmailMessage``.

        Bcc, which is never in the bytes, is added as a header so that nothing
        is lost; :func:`lettre.message.stdlib.email_message_to_bytes` removes it
        again when sending.
        """
        from lettre.message.stdlib import message_to_email_message

        return message_to_email_message(self)

    @classmethod
    def from_email_message(
        cls, message: EmailMessage, *, envelope: Envelope | None = None
    ) -> Message:
        """Convert a standard-library message; its bytes are kept as they are.

        Args:
            message: the message to convert.
            envelope: the envelope to use; by default it is derived from the
                message's headers (Resent-* when present, else Sender or From
                and To, Cc, Bcc).

        Raises:
            AddressError: an address header holds an invalid address.
            MessageError: no sender or no recipient could be found.
        """
        from lettre.message.stdlib import message_from_email_message

        return message_from_email_message(message, envelope)

    def __repr__(self) -> str:
        recipients = len(self.envelope.forward_paths)
        return (
            f"<Message {self.message_id or '(no Message-ID)'} "
            f"from {self.envelope.reverse_path or '<>'} to {recipients} recipient(s), "
            f"subject {self.subject!r}>"
        )


@functools.cache
def _builder_class() -> type[MessageBuilder]:
    # The builder module imports this one: it is imported on first use.
    from lettre.message.builder import MessageBuilder

    return MessageBuilder


def _has_8bit(part: Part) -> bool:
    if isinstance(part, MultiPart):
        return any(_has_8bit(child) for child in part.parts)
    return part.transfer_encoding is TransferEncoding.EIGHT_BIT


_build_message = slot_builder(
    Message,
    "from_",
    "sender",
    "reply_to",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message_id",
    "headers",
    "body",
    "envelope",
    "_head",
    "_data",
)
