"""SMTP transports pointed at the test servers, shared by the tests of several folders.

``smtp_transport`` speaks plain SMTP with a fixed hello name and a bounded
timeout; ``starttls_transport`` adds STARTTLS trusting the session's test CA,
then AUTH (aiosmtpd's test user is ``alice``, password ``wonderland``).
"""

from __future__ import annotations

from typing import Any

from lettre.smtp.auth import Credentials
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.transports.smtp import SmtpTransport
from servers import AiosmtpdServer

HELLO = "client.lettre.test"


def smtp_transport(host: str, port: int, **kwargs: Any) -> SmtpTransport:
    """A transport to ``host:port``: no TLS, :data:`HELLO`, 10 s timeout (each overridable)."""
    kwargs.setdefault("tls", TlsMode.NONE)
    kwargs.setdefault("hello_name", HELLO)
    kwargs.setdefault("timeout", 10.0)
    return SmtpTransport(host, port, **kwargs)


def starttls_transport(
    server: AiosmtpdServer,
    tls_params: TlsParameters,
    password: str = "wonderland",
    *,
    user: str = "alice",
    **kwargs: Any,
) -> SmtpTransport:
    """A transport to ``server`` over STARTTLS (trusting ``tls_params``), logging in as ``user``."""
    return smtp_transport(
        server.host,
        server.port,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        credentials=Credentials(user, password),
        **kwargs,
    )
