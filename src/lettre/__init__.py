"""lettre: an asyncio-native email client for asyncio and trio.

Build a message with :meth:`Message.builder`, then send it with a transport::

    async with SmtpTransport.starttls_relay("smtp.example.org", credentials=...) as smtp:
        result = await smtp.send(message)

Names are imported on first use, so that ``import lettre`` (and the message
layer and the protocol core) load no I/O library; the SES transport and the
DKIM signer also need optional extras (``lettre[ses]``, ``lettre[dkim]``), and
direct delivery (``MxTransport``) ``lettre[direct]``, the HTTP API transports
``lettre[http]``, SOCKS proxies ``lettre[proxy]`` and OpenTelemetry
(:mod:`lettre.otel`) ``lettre[otel]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lettre.errors import (
    AddressError,
    AuthenticationError,
    BlockingCallError,
    DataRefused,
    DeliveryError,
    DnsError,
    ExtensionNotSupported,
    FileTransportError,
    HttpApiError,
    LettreError,
    LocalProtocolError,
    MessageError,
    MessageTooLarge,
    NoMailExchanger,
    OutcomeUnknown,
    PoolTimeout,
    ProtocolError,
    RecipientsRefused,
    RemoteProtocolError,
    SenderRefused,
    SendmailError,
    ServerDisconnected,
    SesError,
    SmtpConnectError,
    SmtpError,
    SmtpReplyError,
    SmtpTimeoutError,
    SourceError,
    TlsError,
    TlsPolicyError,
    TransportError,
)

if TYPE_CHECKING:
    from lettre.address import Address, Mailbox, Mailboxes
    from lettre.dkim import DkimSigner
    from lettre.envelope import Envelope
    from lettre.message import (
        Attachment,
        ContentType,
        Message,
        MessageBuilder,
        MultiPart,
        Priority,
        SinglePart,
        TransferEncoding,
    )
    from lettre.oneshot import send
    from lettre.results import RecipientResult, SendResult
    from lettre.signing import Signer
    from lettre.smtp.auth import AuthMechanism, Credentials
    from lettre.smtp.pool import PoolConfig, PoolStatistics
    from lettre.smtp.proxy import Proxy, ProxyKind
    from lettre.smtp.tls import TlsMode, TlsParameters
    from lettre.sync import BlockingTransport, send_blocking
    from lettre.transports.base import BaseTransport, Transport
    from lettre.transports.failover import (
        AllTransportsFailed,
        FailoverTransport,
        RoundRobinTransport,
    )
    from lettre.transports.file import FileTransport
    from lettre.transports.http import (
        MailgunTransport,
        PostmarkTransport,
        ResendTransport,
        SendGridTransport,
    )
    from lettre.transports.lmtp import LmtpTransport
    from lettre.transports.memory import MemoryTransport
    from lettre.transports.mx import MxTransport
    from lettre.transports.sendmail import SendmailTransport
    from lettre.transports.ses import AwsCredentials, SesTransport
    from lettre.transports.smtp import SmtpTransport

__version__ = "0.1.0"

# Every name but the errors is imported on first use: the transports need
# anyio (and SES and DKIM optional extras), and the message layer and the
# protocol core must load without any of that.
_LAZY = {
    "Address": "lettre.address",
    "Attachment": "lettre.message",
    "BaseTransport": "lettre.transports.base",
    "BlockingTransport": "lettre.sync",
    "ContentType": "lettre.message",
    "Envelope": "lettre.envelope",
    "Mailbox": "lettre.address",
    "Mailboxes": "lettre.address",
    "Message": "lettre.message",
    "MessageBuilder": "lettre.message",
    "MultiPart": "lettre.message",
    "Priority": "lettre.message",
    "RecipientResult": "lettre.results",
    "SendResult": "lettre.results",
    "Signer": "lettre.signing",
    "SinglePart": "lettre.message",
    "TransferEncoding": "lettre.message",
    "Transport": "lettre.transports.base",
    "AuthMechanism": "lettre.smtp.auth",
    "AwsCredentials": "lettre.transports.ses",
    "Credentials": "lettre.smtp.auth",
    "DkimSigner": "lettre.dkim",
    "FileTransport": "lettre.transports.file",
    "AllTransportsFailed": "lettre.transports.failover",
    "FailoverTransport": "lettre.transports.failover",
    "RoundRobinTransport": "lettre.transports.failover",
    "MailgunTransport": "lettre.transports.http",
    "PostmarkTransport": "lettre.transports.http",
    "ResendTransport": "lettre.transports.http",
    "SendGridTransport": "lettre.transports.http",
    "LmtpTransport": "lettre.transports.lmtp",
    "Proxy": "lettre.smtp.proxy",
    "ProxyKind": "lettre.smtp.proxy",
    "MemoryTransport": "lettre.transports.memory",
    "MxTransport": "lettre.transports.mx",
    "PoolConfig": "lettre.smtp.pool",
    "PoolStatistics": "lettre.smtp.pool",
    "SendmailTransport": "lettre.transports.sendmail",
    "SesTransport": "lettre.transports.ses",
    "SmtpTransport": "lettre.transports.smtp",
    "TlsMode": "lettre.smtp.tls",
    "TlsParameters": "lettre.smtp.tls",
    "send": "lettre.oneshot",
    "send_blocking": "lettre.sync",
}

__all__ = [
    "Address",
    "AddressError",
    "AllTransportsFailed",
    "Attachment",
    "AuthMechanism",
    "AuthenticationError",
    "AwsCredentials",
    "BaseTransport",
    "BlockingCallError",
    "BlockingTransport",
    "ContentType",
    "Credentials",
    "DataRefused",
    "DeliveryError",
    "DkimSigner",
    "DnsError",
    "Envelope",
    "ExtensionNotSupported",
    "FailoverTransport",
    "FileTransport",
    "FileTransportError",
    "HttpApiError",
    "LettreError",
    "LmtpTransport",
    "LocalProtocolError",
    "Mailbox",
    "Mailboxes",
    "MailgunTransport",
    "MemoryTransport",
    "Message",
    "MessageBuilder",
    "MessageError",
    "MessageTooLarge",
    "MultiPart",
    "MxTransport",
    "NoMailExchanger",
    "OutcomeUnknown",
    "PoolConfig",
    "PoolStatistics",
    "PoolTimeout",
    "PostmarkTransport",
    "Priority",
    "ProtocolError",
    "Proxy",
    "ProxyKind",
    "RecipientResult",
    "RecipientsRefused",
    "RemoteProtocolError",
    "ResendTransport",
    "RoundRobinTransport",
    "SendGridTransport",
    "SendResult",
    "SenderRefused",
    "SendmailError",
    "SendmailTransport",
    "ServerDisconnected",
    "SesError",
    "SesTransport",
    "Signer",
    "SinglePart",
    "SmtpConnectError",
    "SmtpError",
    "SmtpReplyError",
    "SmtpTimeoutError",
    "SmtpTransport",
    "SourceError",
    "TlsError",
    "TlsMode",
    "TlsParameters",
    "TlsPolicyError",
    "TransferEncoding",
    "Transport",
    "TransportError",
    "send",
    "send_blocking",
]


def __getattr__(name: str) -> Any:
    """Import the transports and signers with optional dependencies on first use."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lettre' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
