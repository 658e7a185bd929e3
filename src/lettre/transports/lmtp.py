"""LmtpTransport: deliver messages to a local delivery agent over LMTP (RFC 2033).

LMTP is SMTP's sibling for the last hop, from an MTA to the mail store
(Dovecot, Cyrus, Postfix's virtual delivery...). The session opens with LHLO
instead of EHLO, and after the message's content the server answers once
per recipient it accepted, in RCPT order, so each recipient gets its own
outcome: a mailbox over quota refuses the message for its owner only.

It runs on the same engine, pool and settings as
:class:`~lettre.transports.smtp.SmtpTransport`: connections are pooled and
reused, messages are pipelined and chained on the connection (LMTP servers
must offer PIPELINING), and STARTTLS and AUTH are available, though off by
default since LMTP is local delivery. The server listens on a TCP port (24
unless configured; RFC 2033 names none) or a Unix socket
(:meth:`LmtpTransport.unix`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from lettre.hooks import Hook
from lettre.smtp.auth import AuthMechanism, Credentials, TokenProvider
from lettre.smtp.pool import PoolConfig
from lettre.smtp.settings import (
    DEFAULT_DATA_TIMEOUT,
    DEFAULT_TIMEOUT,
    LMTP_PORT,
    LmtpSettings,
)
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.transports.base import Signer
from lettre.transports.smtp import SmtpTransport

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LMTP_PORT", "LmtpTransport"]


class LmtpTransport(SmtpTransport):
    """Deliver messages over LMTP, on a TCP port or a Unix socket.

    A send returns a :class:`~lettre.results.SendResult` with every
    recipient's own outcome: those refused at RCPT carry that reply, the
    others the reply the server gave them after the content. It raises
    :class:`~lettre.errors.RecipientsRefused` only when every recipient was
    refused, at RCPT or after the content. ``require_all_recipients``
    applies to RCPT refusals: after the content, a refusal cannot undo the
    deliveries to the other recipients.

    Args:
        host: the server's host name or IP address.
        port: the TCP port (default 24).
        tls: the :class:`~lettre.smtp.tls.TlsMode`; default NONE (local
            delivery). STARTTLS and IMPLICIT work as for SMTP.
        tls_parameters: trust store, client certificate, minimum version...
        credentials: ``Credentials(username, password)`` for AUTH, if the
            server asks for it.
        token_provider: an async callable returning an OAuth 2.0 access token
            (XOAUTH2, OAUTHBEARER); the user name comes from ``credentials``.
        auth_mechanisms: the AUTH mechanisms to try, in order.
        allow_insecure_auth: allow credentials over an unencrypted connection
            (a Unix socket or loopback to a trusted server).
        hello_name: the LHLO name; default the machine's fully qualified name.
        timeout: seconds to wait for each reply.
        connect_timeout: seconds to connect (default ``timeout``).
        data_timeout: seconds to wait for the replies after the content
            (default 600).
        deadline: seconds a whole send may take, connecting included.
        local_address: the local IP address to connect from.
        require_all_recipients: when the server refuses any recipient at
            RCPT, send nothing and raise
            :class:`~lettre.errors.RecipientsRefused`.
        unix_socket: the path of a Unix socket to connect to instead of
            ``host``:``port`` (see :meth:`unix`).
        dkim: a signer (or several) that signs each message before it is sent.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send
            (see :mod:`lettre.hooks`).
        pool: the connection pool's limits (:class:`~lettre.smtp.pool.PoolConfig`;
            default ``PoolConfig()``: up to 10 connections).

    Raises:
        TypeError, ValueError: an invalid setting.
        TlsError: the TLS parameters cannot be loaded (a missing CA file...).
    """

    _settings: LmtpSettings
    transport_name = "lmtp"
    _settings_class = LmtpSettings
    _url_scheme = "lmtp://"

    def __init__(
        self,
        host: str = "localhost",
        port: int = LMTP_PORT,
        *,
        tls: TlsMode | str = TlsMode.NONE,
        tls_parameters: TlsParameters | None = None,
        credentials: Credentials | None = None,
        token_provider: TokenProvider | None = None,
        auth_mechanisms: Iterable[AuthMechanism | str] | None = None,
        allow_insecure_auth: bool = False,
        hello_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
        data_timeout: float = DEFAULT_DATA_TIMEOUT,
        deadline: float | None = None,
        local_address: str | None = None,
        require_all_recipients: bool = False,
        unix_socket: str | os.PathLike[str] | None = None,
        dkim: Signer | Sequence[Signer] | None = None,
        pool: PoolConfig | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        # SmtpSettings defines and checks every one of these.
        settings = LmtpSettings(
            host=host,
            port=port,
            tls=tls,  # type: ignore[arg-type]  # parsed by SmtpSettings
            tls_parameters=tls_parameters,
            credentials=credentials,
            token_provider=token_provider,
            auth_mechanisms=auth_mechanisms,  # type: ignore[arg-type]  # parsed there too
            allow_insecure_auth=allow_insecure_auth,
            hello_name=hello_name,
            timeout=timeout,
            connect_timeout=connect_timeout,
            data_timeout=data_timeout,
            deadline=deadline,
            local_address=local_address,
            require_all_recipients=require_all_recipients,
            unix_socket=unix_socket,  # type: ignore[arg-type]  # a path is made a str there
        )
        self._setup(settings, dkim, pool, hooks)

    @classmethod
    def unix(cls, path: str | os.PathLike[str], **kwargs: Any) -> Self:
        """A transport for an LMTP server on the Unix socket at ``path``.

        Args:
            path: the socket's path (``/var/run/dovecot/lmtp``).
            kwargs: any other keyword argument of the constructor (except
                ``host``, ``port``, ``local_address`` and ``unix_socket``).

        Raises:
            TypeError, ValueError: an invalid setting.
        """
        return cls(unix_socket=path, **kwargs)

    @classmethod
    def local(cls, port: int = LMTP_PORT, *, host: str = "localhost", **kwargs: Any) -> Self:
        """A transport for an LMTP server on this machine's TCP port ``port`` (no TLS).

        Args:
            port: the TCP port.
            host: the host to connect to.
            kwargs: any other keyword argument of the constructor (except
                ``tls``).

        Raises:
            TypeError, ValueError: an invalid setting.
        """
        return cls(host, port, tls=TlsMode.NONE, **kwargs)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        dkim: Signer | Sequence[Signer] | None = None,
        pool: PoolConfig | None = None,
        hooks: Iterable[Hook] | None = None,
        **overrides: Any,
    ) -> Self:
        """A transport from an ``lmtp://`` URL.

        ``lmtp://host:port`` (port 24 by default) or ``lmtp:///path/to/socket``
        for a Unix socket; no TLS unless ``tls=`` says otherwise. The other
        query parameters are those of ``smtp://`` URLs (:mod:`lettre.smtp.url`).
        Keyword arguments override what the URL says.

        Args:
            url: the URL.
            dkim: a signer (or several) that signs each message before it is sent.
            pool: the connection pool's limits (default ``PoolConfig()``).
            hooks: event hooks for this transport's sends and connections.
            overrides: any other keyword argument of the constructor.

        Raises:
            ValueError: the URL is invalid or is not an ``lmtp://`` URL (the
                message never shows the password).
            TlsError: the TLS parameters cannot be loaded.
        """
        return super().from_url(url, dkim=dkim, pool=pool, hooks=hooks, **overrides)
