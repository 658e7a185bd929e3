"""The message layer: build messages and serialise them to bytes. No I/O.

``Message.builder()`` collects addresses, headers, text, HTML, attachments and
inline parts and builds an immutable :class:`Message`, whose
:meth:`~Message.as_bytes` gives the exact bytes to send (and
:meth:`~Message.content` the same, with large attachments read while
sending) and whose
:attr:`~Message.envelope` says who sends and who receives.
"""

from lettre.address import Address, Mailbox, Mailboxes
from lettre.envelope import Envelope
from lettre.message.builder import MessageBuilder, Priority
from lettre.message.message import Message
from lettre.message.mime import (
    Attachment,
    ContentType,
    MultiPart,
    Part,
    SinglePart,
    TransferEncoding,
)
from lettre.message.source import FileSource, MessageContent, SourceError
from lettre.message.stdlib import email_message_to_bytes, envelope_from_email_message

__all__ = [
    "Address",
    "Attachment",
    "ContentType",
    "Envelope",
    "FileSource",
    "Mailbox",
    "Mailboxes",
    "Message",
    "MessageBuilder",
    "MessageContent",
    "MultiPart",
    "Part",
    "Priority",
    "SinglePart",
    "SourceError",
    "TransferEncoding",
    "email_message_to_bytes",
    "envelope_from_email_message",
]
