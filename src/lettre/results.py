"""What a send returns: the server's replies and an outcome for every recipient.

These value types sit at the bottom of the layers: the protocol core parses
:class:`Reply` objects, the SMTP client and every transport return
:class:`SendResult` objects, and errors carry both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RecipientResult", "Reply", "SendResult"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete SMTP reply.

    Attributes:
        code: the three-digit reply code (200-599).
        enhanced_status: the RFC 3463 enhanced status code ("2.1.5") when the
            server uses ENHANCEDSTATUSCODES and the reply carries one, else None.
        lines: the text of each line, without the code, the separator, the
            enhanced status code or the line ending.
    """

    code: int
    enhanced_status: str | None
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The reply's lines joined with newlines."""
        return "\n".join(self.lines)

    @property
    def is_positive(self) -> bool:
        """True for 2xx and 3xx replies."""
        return 200 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """True for 4xx replies (try again later)."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """True for 5xx replies."""
        return 500 <= self.code < 600


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The outcome for one recipient (forward path) of a send.

    Attributes:
        recipient: the recipient's address as it went into the envelope.
        accepted: True when the transport (or server) took responsibility for
            delivering to this recipient.
        reply: the server's reply to this recipient's RCPT, when SMTP was used.
        error: why a refused recipient was not accepted, when the transport
            reports it as an error rather than a reply (for example the SES
            call that would have covered it failed): a lettre
            :class:`~lettre.errors.TransportError`.
    """

    recipient: str
    accepted: bool
    reply: Reply | None = None
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a successful send returns: an outcome for every recipient.

    Attributes:
        recipients: one entry per envelope recipient, in envelope order.
        message_id: the Message-ID header of the sent message, when known.
        transport_id: the identifier the transport gave the message: the
            SES MessageId, the file transport's file id, or the queue id an
            SMTP server reported (None when the server reported none).
        reply: the final SMTP reply (to the end of data or the last BDAT).
    """

    recipients: tuple[RecipientResult, ...]
    message_id: str | None = None
    transport_id: str | None = None
    reply: Reply | None = field(default=None)

    @property
    def accepted(self) -> tuple[str, ...]:
        """The recipients that were accepted."""
        return tuple(r.recipient for r in self.recipients if r.accepted)

    @property
    def refused(self) -> tuple[RecipientResult, ...]:
        """The outcomes of the recipients that were refused."""
        return tuple(r for r in self.recipients if not r.accepted)

    @property
    def all_accepted(self) -> bool:
        """True when no recipient was refused."""
        return all(r.accepted for r in self.recipients)
