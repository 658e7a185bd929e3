"""SmtpTransport: send messages to an SMTP server (submission, relay or local MTA).

The transport keeps one connection open between sends and reuses it (sends
take turns on it); a connection that broke, timed out or was closed by the
server is replaced on the next send.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from lettre.errors import (
    OutcomeUnknown,
    ServerDisconnected,
    SmtpError,
    SmtpReplyError,
    SmtpTimeoutError,
)
from lettre.smtp.auth import AuthMechanism, Credentials, TokenProvider
from lettre.smtp.client import SmtpClient
from lettre.smtp.settings import DEFAULT_DATA_TIMEOUT, DEFAULT_TIMEOUT, SmtpSettings
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.smtp.url import parse_smtp_url
from lettre.transports.base import BaseTransport, SendResult, Signer

if TYPE_CHECKING:
    from typing_extensions import Self

    from lettre.envelope import Envelope

__all__ = ["SmtpTransport"]

_logger = logging.getLogger("lettre.smtp")


class SmtpTransport(BaseTransport):
    """Send messages over SMTP.

    Args:
        host: the server's host name or IP address.
        port: the TCP port; default from ``tls``: 465 (IMPLICIT), 587
            (STARTTLS), 25 (NONE, OPPORTUNISTIC).
        tls: the :class:`~lettre.smtp.tls.TlsMode`; default STARTTLS, required.
        tls_parameters: trust store, client certificate, minimum version...
        credentials: ``Credentials(username, password)`` for AUTH.
        token_provider: an async callable returning an OAuth 2.0 access token
            (XOAUTH2); the user name comes from ``credentials``.
        auth_mechanisms: the AUTH mechanisms to try, in order (default: XOAUTH2
            with a token provider, then PLAIN, LOGIN, CRAM-MD5 over TLS).
        allow_insecure_auth: allow credentials over an unencrypted connection.
        hello_name: the EHLO name; default the machine's fully qualified name.
        timeout: seconds to wait for each reply.
        connect_timeout: seconds to connect (default ``timeout``).
        data_timeout: seconds to wait for the reply to the end of the data
            (default 600, RFC 5321).
        deadline: seconds a whole send may take, connecting included.
        local_address: the local IP address to connect from.
        require_all_recipients: when the server refuses any recipient, send
            nothing and raise :class:`~lettre.errors.RecipientsRefused` (by
            default the message goes to the accepted ones and the refusals are
            reported in the :class:`~lettre.transports.base.SendResult`).
        dkim: a signer (or several) that signs each message before it is sent.

    Raises:
        TypeError, ValueError: an invalid setting.
        TlsError: the TLS parameters cannot be loaded (a missing CA file...).
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: TlsMode | str = TlsMode.STARTTLS,
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
        dkim: Signer | Sequence[Signer] | None = None,
    ) -> None:
        settings = SmtpSettings(
            host=host,
            port=port,
            tls=TlsMode.parse(tls),
            tls_parameters=tls_parameters,
            credentials=credentials,
            token_provider=token_provider,
            auth_mechanisms=_mechanisms(auth_mechanisms),
            allow_insecure_auth=allow_insecure_auth,
            hello_name=hello_name,
            timeout=timeout,
            connect_timeout=connect_timeout,
            data_timeout=data_timeout,
            deadline=deadline,
            local_address=local_address,
            require_all_recipients=require_all_recipients,
        )
        self._setup(settings, dkim)

    def _setup(self, settings: SmtpSettings, dkim: Signer | Sequence[Signer] | None) -> None:
        BaseTransport.__init__(self, dkim=dkim)
        self._settings = settings
        self._ssl_context = settings.create_ssl_context()
        self._lock = anyio.Lock()
        self._client: SmtpClient | None = None
        self._closed = False

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_settings(
        cls, settings: SmtpSettings, *, dkim: Signer | Sequence[Signer] | None = None
    ) -> Self:
        """A transport for already-built :class:`~lettre.smtp.settings.SmtpSettings`."""
        if not isinstance(settings, SmtpSettings):
            raise TypeError("settings must be an SmtpSettings")
        transport = cls.__new__(cls)
        transport._setup(settings, dkim)
        return transport

    @classmethod
    def relay(cls, host: str, port: int | None = None, **kwargs: Any) -> Self:
        """A transport for a submission server with implicit TLS (port 465 by default).

        Keyword arguments are those of the constructor (except ``tls``).
        """
        return cls(host, port, tls=TlsMode.IMPLICIT, **kwargs)

    @classmethod
    def starttls_relay(cls, host: str, port: int | None = None, **kwargs: Any) -> Self:
        """A transport for a submission server with STARTTLS required (port 587 by default).

        Keyword arguments are those of the constructor (except ``tls``).
        """
        return cls(host, port, tls=TlsMode.STARTTLS, **kwargs)

    @classmethod
    def local(cls, port: int = 25, *, host: str = "localhost", **kwargs: Any) -> Self:
        """A transport for an MTA on this machine (no TLS, no AUTH by default).

        Keyword arguments are those of the constructor (except ``tls``).
        """
        return cls(host, port, tls=TlsMode.NONE, **kwargs)

    @classmethod
    def from_url(
        cls, url: str, *, dkim: Signer | Sequence[Signer] | None = None, **overrides: Any
    ) -> Self:
        """A transport from an ``smtp://`` or ``smtps://`` URL.

        ``smtp://user:password@host:port?tls=starttls&timeout=10``: user name
        and password are percent-decoded; ``smtp://`` means STARTTLS required
        unless ``tls=`` says otherwise (``none``, ``opportunistic``), and
        ``smtps://`` implicit TLS. See :mod:`lettre.smtp.url` for every
        parameter. Keyword arguments override what the URL says (for example
        ``tls_parameters=`` or ``token_provider=``).

        Raises:
            ValueError: the URL is invalid (the message never shows the password).
        """
        kwargs = parse_smtp_url(url)
        kwargs.update(overrides)
        if "auth_mechanisms" in kwargs:
            kwargs["auth_mechanisms"] = _mechanisms(kwargs["auth_mechanisms"])
        if "tls" in kwargs:
            kwargs["tls"] = TlsMode.parse(kwargs["tls"])
        return cls.from_settings(SmtpSettings(**kwargs), dkim=dkim)

    # ------------------------------------------------------------------ state

    @property
    def settings(self) -> SmtpSettings:
        """The connection settings."""
        return self._settings

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The ``ssl.SSLContext`` shared by this transport's connections (None without TLS)."""
        return self._ssl_context

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def __repr__(self) -> str:
        s = self._settings
        user = f" user={s.credentials.username!r}" if s.credentials is not None else ""
        return f"SmtpTransport(host={s.host!r}, port={s.effective_port}, tls={s.tls.value}{user})"

    # ------------------------------------------------------------------ sending

    async def send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        """Send serialised message bytes with an explicit envelope.

        Reuses the open connection when it is usable, else connects. When a
        reused connection turns out to be dead before the message was handed
        over (the server closed it while idle), the send is retried once on a
        fresh connection.

        Returns:
            Every recipient's outcome and the server's final reply.

        Raises:
            SmtpError: any failure, typed (see :meth:`SmtpClient.send`).
        """
        deadline = (
            anyio.current_time() + self._settings.deadline
            if self._settings.deadline is not None
            else None
        )
        with anyio.CancelScope(deadline=deadline if deadline is not None else math.inf) as scope:
            async with self._lock:
                scope.deadline = math.inf
                return await self._send_locked(envelope, data, deadline)
        raise SmtpTimeoutError("the deadline passed while waiting for the connection")

    async def _send_locked(
        self, envelope: Envelope, data: bytes, deadline: float | None
    ) -> SendResult:
        if self._closed:
            raise SmtpError("the SMTP transport is closed")
        client, reused = await self._get_client(deadline)
        try:
            return await client.send(envelope, data, deadline=deadline)
        except (ServerDisconnected, SmtpReplyError) as exc:
            tx = client.last_transaction
            retry = (
                reused
                and not isinstance(exc, OutcomeUnknown)
                and (tx is None or not tx.content_sent)
                and (
                    isinstance(exc, ServerDisconnected)
                    or (isinstance(exc, SmtpReplyError) and exc.code == 421)
                )
            )
            if not retry:
                raise
            _logger.debug("the reused connection failed (%s); retrying on a new one", exc)
        finally:
            if not client.is_usable:
                await self._drop(client)
        client, _ = await self._get_client(deadline)
        try:
            return await client.send(envelope, data, deadline=deadline)
        finally:
            if not client.is_usable:
                await self._drop(client)

    async def _get_client(self, deadline: float | None) -> tuple[SmtpClient, bool]:
        client = self._client
        if client is not None:
            if client.is_usable:
                return client, True
            await self._drop(client)
        client = SmtpClient(self._settings, ssl_context=self._ssl_context)
        await client.connect(deadline=deadline)
        self._client = client
        return client, False

    async def _drop(self, client: SmtpClient) -> None:
        if self._client is client:
            self._client = None
        await client.aclose()

    async def test_connection(self) -> None:
        """Check that the server can be reached, TLS and AUTH included, and answers NOOP.

        Uses (and keeps) the transport's connection.

        Raises:
            SmtpError: what went wrong, typed (connection, TLS, authentication).
        """
        async with self._lock:
            if self._closed:
                raise SmtpError("the SMTP transport is closed")
            deadline = (
                anyio.current_time() + self._settings.deadline
                if self._settings.deadline is not None
                else None
            )
            client, reused = await self._get_client(deadline)
            try:
                await client.noop()
            except (ServerDisconnected, SmtpReplyError):
                if not reused:
                    raise
                await self._drop(client)
                client, _ = await self._get_client(deadline)
                await client.noop()
            finally:
                if not client.is_usable:
                    await self._drop(client)

    async def aclose(self) -> None:
        """Close the connection (QUIT) after any send in progress; later sends fail.

        Shielded from cancellation; safe to call more than once.
        """
        self._closed = True
        with anyio.CancelScope(shield=True):
            async with self._lock:
                client = self._client
                self._client = None
                if client is not None:
                    await client.aclose()


def _mechanisms(
    value: Iterable[AuthMechanism | str] | str | None,
) -> tuple[AuthMechanism, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    return tuple(AuthMechanism.parse(m) for m in value)
