"""The public exception hierarchy of lettre.

Every error that lettre raises on purpose derives from :class:`LettreError`.
Foreign exceptions (``OSError``, ``ssl.SSLError``, anyio's) are converted at the
I/O boundary and chained with ``raise ... from exc``. No message or repr made
here ever contains a password or a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lettre.results import RecipientResult, SendResult

__all__ = [
    "AddressError",
    "AuthenticationError",
    "BlockingCallError",
    "DataRefused",
    "DeliveryError",
    "DnsError",
    "ExtensionNotSupported",
    "FileTransportError",
    "HttpApiError",
    "LettreError",
    "LocalProtocolError",
    "MessageError",
    "MessageTooLarge",
    "NoMailExchanger",
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
    "SourceError",
    "TlsError",
    "TlsPolicyError",
    "TransportError",
]


class LettreError(Exception):
    """Base class of every error lettre raises.

    Catch it to handle any of lettre's errors in one place; the subclasses
    tell a bad address or message (also ``ValueError``), a protocol violation
    and a failed delivery apart.
    """


class AddressError(LettreError, ValueError):
    """An email address, mailbox or mailbox list is invalid or ambiguous.

    Raised where addresses are parsed: :class:`~lettre.address.Mailbox`,
    :class:`~lettre.address.Address`, the message builder's address methods,
    envelopes, and a stdlib message's address headers. Also a ``ValueError``.
    """


class MessageError(LettreError, ValueError):
    """A message cannot be built or serialised as asked.

    Raised by the builder, the MIME parts and the stdlib interop (a missing
    From, a header that could break the header block, a bad DSN option...).
    Also a ``ValueError``.
    """


class BlockingCallError(LettreError, RuntimeError):
    """A blocking call was made from a thread that runs an event loop.

    Raised by :class:`~lettre.BlockingTransport` and
    :func:`~lettre.send_blocking` when the calling thread runs an asyncio
    (uvloop included) or trio event loop: waiting there would stall every
    task of that loop, and deadlock if the loop is the transport's own. Use
    the async API there (``await transport.send(message)``). Also a
    ``RuntimeError``.
    """


class SourceError(MessageError):
    """A streamed attachment's source cannot be read as the message was built.

    The file is missing or unreadable, changed since the message was built
    (another size or modification time), or is a file object that cannot be
    read a second time. Nothing more of the message is sent: SMTP drops the
    connection before the end of the data, sendmail is killed before it sees
    the end of its input, and the file transport leaves no file.
    """


class ProtocolError(LettreError):
    """The SMTP conversation broke the protocol.

    Raised by the sans-IO core (:mod:`lettre.protocol`); the SMTP transport
    lets the two subclasses through unchanged and closes the connection.
    """


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

    Args:
        message: the error message.
        transient: overrides the class's default ``transient`` value.
        outcome_unknown: overrides the class's default ``outcome_unknown``.

    Attributes:
        transient: True when trying again later may succeed (4xx replies,
            connection trouble, throttling); False for permanent failures.
        outcome_unknown: True when the message may have been accepted all
            the same: it was handed over and no answer came (an SMTP
            connection lost after the content, :class:`OutcomeUnknown`; an
            SES or HTTP API request sent and not answered; a sendmail
            program killed at its timeout). Sending it again may deliver it
            twice: lettre never does so by itself (the pool's retry,
            failover).
    """

    transient: bool = False
    outcome_unknown: bool = False

    def __init__(
        self,
        message: str,
        *,
        transient: bool | None = None,
        outcome_unknown: bool | None = None,
    ) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient
        if outcome_unknown is not None:
            self.outcome_unknown = outcome_unknown


class SmtpError(TransportError):
    """An error while talking SMTP (from :class:`~lettre.SmtpTransport` and ``SmtpClient``)."""


class SmtpReplyError(SmtpError):
    """The server answered a command with an error reply.

    A 4xx reply makes the error transient, a 5xx permanent.

    Args:
        code: the three-digit reply code.
        text: the reply text, lines joined with newlines.
        enhanced_status: the RFC 3463 enhanced status code, if any.
        command: the SMTP verb (or a short description) the reply answered.
        message: the error message; by default one is made from the reply.

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
    """The server refused the reverse path (the reply to MAIL FROM)."""


class RecipientsRefused(SmtpReplyError):
    """The server refused every recipient (or any, when refusals are fatal).

    When only some recipients are refused, the send succeeds and its
    :class:`~lettre.SendResult` names them instead, unless
    ``require_all_recipients`` is set.

    Args:
        code: the reply code of the first refusal.
        text: the text of that reply.
        results: the outcome of every recipient of the send.
        enhanced_status: the enhanced status code of that reply, if any.
        command: the command refused (``"RCPT"``).
        message: the error message; by default one is made from the reply.

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
    """Authentication failed or no acceptable mechanism was available.

    Raised when connecting, when the server refuses the credentials (for
    example with 535). A server that offers no AUTH, or no mechanism in
    common, raises :class:`ExtensionNotSupported`; credentials that would go
    over a connection without TLS raise :class:`TlsError`.
    """


class MessageTooLarge(SmtpError):
    """The message exceeds the size the server (or service) accepts.

    Raised before the content is sent when the server's SIZE limit (or the
    SES limit) is smaller than the message; permanent.
    """


class SmtpConnectError(SmtpError, ConnectionError):
    """The connection to the server could not be made (DNS, refused, unreachable).

    Transient, except for a host name that does not exist (the resolver
    answered that there is no such name or no address for it): that one will
    not resolve on the next try either. A connection attempt that runs out of
    time raises :class:`SmtpTimeoutError` instead.
    """

    transient = True


class SmtpTimeoutError(SmtpError, TimeoutError):
    """The server did not answer in time, or a deadline passed.

    Raised when ``connect_timeout``, ``timeout`` (per reply), ``data_timeout``
    or a send's ``deadline`` (all in seconds) runs out. Always transient.
    """

    transient = True


class ServerDisconnected(SmtpError, ConnectionError):
    """The server closed the connection unexpectedly. Always transient."""

    transient = True


class OutcomeUnknown(ServerDisconnected):
    """The connection broke after the content was sent but before the final reply.

    The server may or may not have accepted the message; retrying may
    deliver it twice. The pool retries a send once when the connection
    breaks before the content is sent, never after: this error is what is
    raised then. Transient, like :class:`ServerDisconnected`; its
    ``outcome_unknown`` is True.
    """

    outcome_unknown = True


class TlsError(SmtpError):
    """The TLS handshake failed, or TLS was required and not available.

    Raised when connecting: a certificate that does not verify, a STARTTLS
    that the server does not offer in ``TlsMode.STARTTLS``, a handshake that
    fails, or credentials that would be sent without TLS. Permanent unless
    the server refused STARTTLS with a 4xx reply or closed the connection
    during the handshake (a blip cannot be told from a refusal there).
    """


class ExtensionNotSupported(SmtpError):
    """The message needs an SMTP extension the server does not offer.

    For example a non-ASCII local part on a server without SMTPUTF8, 8-bit
    content on a server without 8BITMIME, or credentials for a server that
    offers no AUTH (or no mechanism in common). Raised before the message
    is sent.
    """


class PoolTimeout(SmtpError, TimeoutError):
    """No pooled connection became available within the pool timeout.

    Raised by :meth:`~lettre.SmtpTransport.send` when every connection stayed
    busy for ``PoolConfig.pool_timeout`` seconds. Always transient.
    """

    transient = True


class SendmailError(TransportError):
    """The sendmail program failed.

    Raised when the program cannot be started, exits with a non-zero status
    or runs past its timeout (then it is killed). A timeout and the exit
    statuses ``EX_TEMPFAIL`` (75) and ``EX_OSERR`` (71) are transient.

    Args:
        message: the error message.
        returncode: the exit status, if the program exited by itself.
        stderr: what the program wrote to its standard error (at most 64 KiB).
        transient: overrides the default (False).

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
        outcome_unknown: bool | None = None,
    ) -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(message, transient=transient, outcome_unknown=outcome_unknown)


class SesError(TransportError):
    """Amazon SES refused or failed the request.

    Throttling, service errors and network failures are transient; rejected
    messages, bad credentials and unverified identities are not.

    Args:
        message: the error message.
        code: the AWS error code, if any.
        transient: overrides the default (False).

    Attributes:
        code: the AWS error code ("MessageRejected", "Throttling", ...), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        transient: bool | None = None,
        outcome_unknown: bool | None = None,
    ) -> None:
        self.code = code
        super().__init__(message, transient=transient, outcome_unknown=outcome_unknown)


class HttpApiError(TransportError):
    """An HTTP email API refused the message, failed, or could not be reached.

    Raised by the transports of :mod:`lettre.transports.http`. Rate limiting
    (HTTP 429), service errors (5xx), timeouts and network failures are
    transient; a refused API key (401, 403), a rejected request (other 4xx)
    and a message that the API cannot carry are permanent. The message
    quotes what the service said (never the API key).

    Args:
        message: the error message.
        service: the service's name ("Postmark", "SendGrid", "Mailgun", "Resend").
        status: the HTTP status of the answer, if one came.
        code: the service's own error code or name, if it gave one.
        retry_after: the seconds the service asked to wait (``Retry-After``).
        transient: whether trying again later may succeed.

    Attributes:
        service: the service's name.
        status: the HTTP status, or None when no answer came (network
            failure, timeout) or the message was refused before any request.
        code: the service's error code (Postmark's ``ErrorCode``, Resend's
            error ``name``...) or one of lettre's (``"envelope_mismatch"``,
            ``"dkim_not_supported"``, ``"no_to_recipient"``...), if any.
        retry_after: seconds to wait before trying again, when the service
            said (``Retry-After`` on a 429 or 503); None otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        transient: bool | None = None,
        outcome_unknown: bool | None = None,
    ) -> None:
        self.service = service
        self.status = status
        self.code = code
        self.retry_after = retry_after
        super().__init__(message, transient=transient, outcome_unknown=outcome_unknown)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments: say how to make it again (pickling, for
        # task queues and process pools).
        return (
            _rebuild_error,
            (
                type(self),
                str(self),
                self.service,
                self.status,
                self.code,
                self.retry_after,
                self.transient,
                self.outcome_unknown,
            ),
        )


def _rebuild_error(
    cls: type[HttpApiError],
    message: str,
    service: str,
    status: int | None,
    code: str | None,
    retry_after: float | None,
    transient: bool,
    outcome_unknown: bool,
) -> HttpApiError:
    return cls(
        message,
        service=service,
        status=status,
        code=code,
        retry_after=retry_after,
        transient=transient,
        outcome_unknown=outcome_unknown,
    )


class FileTransportError(TransportError):
    """The file transport could not write or read a message.

    Raised by :class:`~lettre.FileTransport` for an unusable directory, a
    failed write, or a message id with no stored message.
    """


class DnsError(TransportError):
    """A DNS lookup needed to deliver a message failed (direct delivery).

    Raised (or reported for the recipients concerned) by
    :class:`~lettre.MxTransport`. A name that does not exist (NXDOMAIN) or
    that is not a valid domain is permanent; a server failure (SERVFAIL), a
    timeout or no reachable name server is transient.

    Args:
        message: what failed, quoting the name.
        name: the name looked up.
        rdtype: the record type asked for ("MX", "A", "TLSA"...).
        transient: whether a later lookup may succeed.

    Attributes:
        name: the name looked up.
        rdtype: the record type asked for.
    """

    def __init__(
        self, message: str, *, name: str, rdtype: str, transient: bool | None = None
    ) -> None:
        self.name = name
        self.rdtype = rdtype
        super().__init__(message, transient=transient)


class NoMailExchanger(DnsError):
    """The recipient's domain takes no mail: a null MX (RFC 7505), or no host to deliver to.

    Permanent: the domain published that it accepts no mail, or it has no MX
    and no address (or none of its exchangers has an address).
    """


class DeliveryError(TransportError):
    """Direct delivery reached none of the recipients.

    Raised by :class:`~lettre.MxTransport` when no recipient was accepted;
    ``result`` says, per recipient and per domain, why. Transient when any
    recipient's failure is transient (trying again later may deliver to
    them), permanent otherwise.

    Args:
        message: the summary.
        result: the outcome of every recipient and every domain.
        transient: whether a later try may succeed.

    Attributes:
        result: the outcome of every recipient (a ``SendResult``; from
            ``MxTransport``, an :class:`~lettre.transports.mx.MxSendResult`).
    """

    def __init__(self, message: str, *, result: SendResult, transient: bool | None = None) -> None:
        self.result = result
        super().__init__(message, transient=transient)


class TlsPolicyError(TransportError):
    """The recipient domain's TLS policy (MTA-STS) forbade every delivery that was possible.

    Reported for the domain's recipients (and raised in a
    :class:`DeliveryError`'s result) by :class:`~lettre.MxTransport` when the
    domain's MTA-STS policy is in ``enforce`` mode and no exchanger both
    matches the policy and presents a certificate valid for its name.
    Transient (RFC 8461 section 5): the domain or its exchangers may be
    fixed, and a later try may succeed.
    """

    transient = True
