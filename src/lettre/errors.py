"""The public exception hierarchy of lettre.

Every error that lettre raises on purpose derives from :class:`LettreError`.
Foreign exceptions (``OSError``, ``ssl.SSLError``, anyio's) are converted at the
I/O boundary and chained with ``raise ... from exc``. No message or repr made
here ever contains a password or a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lettre.transports.base import RecipientResult

__all__ = [
    "AddressError",
    "AuthenticationError",
    "DataRefused",
    "ExtensionNotSupported",
    "FileTransportError",
    "LettreError",
    "LocalProtocolError",
    "MessageError",
    "MessageTooLarge",
    "OutcomeUnknown",
    "PoolTimeout",
    "ProtocolError",
    "RecipientsRefused",
    "RemoteProtocolError",
    "SenderRefused",
    "SendmailError",
    "ServerDisconnected",
    "SesError",
    "SmtpConnectError",
    "SmtpError",
    "SmtpReplyError",
    "SmtpTimeoutError",
    "TlsError",
    "TransportError",
]


class LettreError(Exception):
    """Base class of every error lettre raises."""


class AddressError(LettreError, ValueError):
    """An email address, mailbox or mailbox list is invalid or ambiguous."""


class MessageError(LettreError, ValueError):
    """A message cannot be built or serialised as asked."""


class ProtocolError(LettreError):
    """The SMTP conversation broke the protocol."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol forbids (our side's mistake).

    Examples: a command argument containing CR or LF, a command sent in a state
    that does not allow it, a second command without PIPELINING.
    """


class RemoteProtocolError(ProtocolError):
    """The server sent something the protocol forbids (their side's mistake).

    Examples: a malformed or over-long reply, an unsolicited reply, bytes
    injected after the 220 to STARTTLS.
    """


class TransportError(LettreError):
    """A transport failed to deliver a message to its next hop.

    Attributes:
        transient: True when trying again later may succeed (4xx replies,
            connection trouble, throttling); False for permanent failures.
    """

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class SmtpError(TransportError):
    """An error while talking SMTP."""


class SmtpReplyError(SmtpError):
    """The server answered a command with an error reply.

    Attributes:
        code: the three-digit reply code.
        enhanced_status: the RFC 3463 enhanced status code ("5.1.1"), if any.
        text: the reply text, lines joined with newlines.
        command: the SMTP verb (or a short description) the reply answered.
    """

    def __init__(
        self,
        code: int,
        text: str,
        *,
        enhanced_status: str | None = None,
        command: str | None = None,
        message: str | None = None,
    ) -> None:
        self.code = code
        self.enhanced_status = enhanced_status
        self.text = text
        self.command = command
        if message is None:
            where = f" to {command}" if command else ""
            status = f" {enhanced_status}" if enhanced_status else ""
            message = f"server replied {code}{status}{where}: {text}"
        super().__init__(message, transient=400 <= code < 500)


class SenderRefused(SmtpReplyError):
    """The server refused the reverse path (MAIL FROM)."""


class RecipientsRefused(SmtpReplyError):
    """The server refused every recipient (or any, when refusals are fatal).

    Attributes:
        results: the outcome of every recipient of the send.
    """

    def __init__(
        self,
        code: int,
        text: str,
        *,
        results: Sequence[RecipientResult] = (),
        enhanced_status: str | None = None,
        command: str | None = "RCPT",
        message: str | None = None,
    ) -> None:
        self.results: tuple[RecipientResult, ...] = tuple(results)
        super().__init__(
            code, text, enhanced_status=enhanced_status, command=command, message=message
        )


class DataRefused(SmtpReplyError):
    """The server refused the message content (DATA, BDAT or the end of data)."""


class AuthenticationError(SmtpReplyError):
    """Authentication failed or no acceptable mechanism was available."""


class MessageTooLarge(SmtpError):
    """The message exceeds the size the server (or service) accepts."""


class SmtpConnectError(SmtpError, ConnectionError):
    """The connection to the server could not be made."""

    transient = True


class SmtpTimeoutError(SmtpError, TimeoutError):
    """The server did not answer in time, or a deadline passed."""

    transient = True


class ServerDisconnected(SmtpError, ConnectionError):
    """The server closed the connection unexpectedly."""

    transient = True


class OutcomeUnknown(ServerDisconnected):
    """The connection broke after the content was sent but before the final reply.

    The server may or may not have accepted the message; retrying may
    deliver it twice.
    """


class TlsError(SmtpError):
    """The TLS handshake failed, or TLS was required and not available."""


class ExtensionNotSupported(SmtpError):
    """The message needs an SMTP extension the server does not offer."""


class PoolTimeout(SmtpError, TimeoutError):
    """No pooled connection became available within the pool timeout."""

    transient = True


class SendmailError(TransportError):
    """The sendmail program failed.

    Attributes:
        returncode: the exit status, or None when it did not exit by itself.
        stderr: at most 64 KiB of what the program wrote to stderr.
    """

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None = None,
        stderr: bytes = b"",
        transient: bool | None = None,
    ) -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(message, transient=transient)


class SesError(TransportError):
    """Amazon SES refused or failed the request.

    Attributes:
        code: the AWS error code ("MessageRejected", "Throttling", ...), if any.
    """

    def __init__(
        self, message: str, *, code: str | None = None, transient: bool | None = None
    ) -> None:
        self.code = code
        super().__init__(message, transient=transient)


class FileTransportError(TransportError):
    """The file transport could not write or read a message."""
