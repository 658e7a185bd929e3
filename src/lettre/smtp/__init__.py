"""SMTP over anyio: connections, TLS, authentication, settings and URLs.

The sans-IO protocol core (:mod:`lettre.protocol`) is driven here over anyio
byte streams, so the same code runs on asyncio and on trio. Most programs only
need :class:`~lettre.transports.smtp.SmtpTransport`; :class:`SmtpClient` is one
connection, for connection pools and special cases.
"""

from lettre.smtp.auth import AuthMechanism, Credentials, TokenProvider
from lettre.smtp.client import SmtpClient, Transaction, TransactionStage
from lettre.smtp.settings import SmtpSettings
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.smtp.url import parse_smtp_url, settings_from_url

__all__ = [
    "AuthMechanism",
    "Credentials",
    "SmtpClient",
    "SmtpSettings",
    "TlsMode",
    "TlsParameters",
    "TokenProvider",
    "Transaction",
    "TransactionStage",
    "parse_smtp_url",
    "settings_from_url",
]
