"""SmtpTransport: send messages to an SMTP server (submission, relay or local MTA).

The transport keeps a pool of connections (:class:`~lettre.smtp.pool.PoolConfig`)
shared by every send: up to ``max_size`` connections, reused, retired by age,
idleness and use. On a server that offers PIPELINING, a connection carries the
next waiting message's envelope in the same write as the current message's
content (chaining). A connection that dies before the message was handed over
is replaced and the message sent again, once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from lettre._loops import call_in_loop, current_loop, loop_is_closed
from lettre.errors import SmtpError
from lettre.hooks import Hook
from lettre.smtp.auth import AuthMechanism, Credentials, TokenProvider
from lettre.smtp.pool import PoolConfig, PoolStatistics, SmtpPool
from lettre.smtp.proxy import Proxy
from lettre.smtp.settings import (
    DEFAULT_DATA_TIMEOUT,
    DEFAULT_TIMEOUT,
    LmtpSettings,
    SmtpSettings,
)
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.smtp.url import settings_from_url
from lettre.transports.base import BaseTransport, SendResult, Signer

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

    from typing_extensions import Self

    from lettre.envelope import Envelope
    from lettre.message.source import MessageContent

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
            (XOAUTH2, OAUTHBEARER); the user name comes from ``credentials``.
        auth_mechanisms: the AUTH mechanisms to try, in order (default: XOAUTH2
            and OAUTHBEARER with a token provider, then SCRAM-SHA-256, PLAIN,
            LOGIN, CRAM-MD5 over TLS).
        allow_insecure_auth: allow credentials over an unencrypted connection.
        hello_name: the EHLO name; default the machine's fully qualified name.
        timeout: seconds to wait for each reply.
        connect_timeout: seconds to connect (default ``timeout``).
        data_timeout: seconds to wait for the reply to the end of the data
            (default 600, RFC 5321).
        deadline: seconds a whole send may take, connecting included.
        local_address: the local IP address to connect from.
        proxy: a proxy to connect through, as a URL (``socks5://user:password@host:1080``,
            ``socks4a://host:1080``, ``http://user:password@host:3128``) or a
            :class:`~lettre.smtp.proxy.Proxy`; the proxy resolves ``host``,
            and the certificate is checked against ``host``. SOCKS needs the
            ``proxy`` extra.
        require_all_recipients: when the server refuses any recipient, send
            nothing and raise :class:`~lettre.errors.RecipientsRefused` (by
            default the message goes to the accepted ones and the refusals are
            reported in the :class:`~lettre.transports.base.SendResult`).
        dkim: a signer (or several) that signs each message before it is sent.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send
            (see :mod:`lettre.hooks`).
        pool: the connection pool's limits (:class:`~lettre.smtp.pool.PoolConfig`;
            default ``PoolConfig()``: up to 10 connections).

    Raises:
        TypeError, ValueError: an invalid setting.
        TlsError: the TLS parameters cannot be loaded (a missing CA file...).
    """

    transport_name = "smtp"
    _streams = True  # streamed attachments go out a chunk at a time
    # What from_settings() and from_url() accept: LmtpTransport narrows both.
    _settings_class: ClassVar[type[SmtpSettings]] = SmtpSettings
    _url_scheme: ClassVar[str] = "smtp://"

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
        proxy: Proxy | str | None = None,
        require_all_recipients: bool = False,
        dkim: Signer | Sequence[Signer] | None = None,
        pool: PoolConfig | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        # SmtpSettings defines and checks every one of these.
        settings = SmtpSettings(
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
            proxy=proxy,  # type: ignore[arg-type]  # a URL is parsed by SmtpSettings
            require_all_recipients=require_all_recipients,
        )
        self._setup(settings, dkim, pool, hooks)

    def _setup(
        self,
        settings: SmtpSettings,
        dkim: Signer | Sequence[Signer] | None,
        pool: PoolConfig | None,
        hooks: Iterable[Hook] | None,
    ) -> None:
        if pool is not None and not isinstance(pool, PoolConfig):
            raise TypeError(f"pool must be a PoolConfig, not {type(pool).__name__}")
        BaseTransport.__init__(self, dkim=dkim, hooks=hooks)
        self._settings = settings
        if isinstance(settings, LmtpSettings) and settings.unix_socket is not None:
            self._server = None  # no host and port: a Unix socket
        else:
            self._server = (settings.host, settings.effective_port)
        self._ssl_context = settings.create_ssl_context()
        self._pool_config = pool if pool is not None else PoolConfig()
        # A connection belongs to the event loop (or trio run) that opened it:
        # each loop that sends gets a pool of its own, and the pools of loops
        # that are gone are dropped without running anything on them.
        self._pools: dict[object, SmtpPool] = {}
        self._current: tuple[object, SmtpPool] | None = None  # the last loop and its pool
        # Per loop, the pool entered with `async with` and how many times
        # (nested blocks); guarded by the lock, like the other pool tables.
        self._entered: dict[object, tuple[SmtpPool, int]] = {}
        self._retired: list[SmtpPool] = []  # closed pools whose connections may still finish
        self._retired_totals = _total([])  # the counters of pools gone
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_settings(
        cls,
        settings: SmtpSettings,
        *,
        dkim: Signer | Sequence[Signer] | None = None,
        pool: PoolConfig | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> Self:
        """A transport for already-built :class:`~lettre.smtp.settings.SmtpSettings`.

        Args:
            settings: the connection settings.
            dkim: a signer (or several) that signs each message before it is sent.
            pool: the connection pool's limits (default ``PoolConfig()``).
            hooks: event hooks for this transport's sends and connections.

        Raises:
            TypeError: ``settings`` is not an SmtpSettings.
            TlsError: the TLS parameters cannot be loaded.
        """
        if not isinstance(settings, cls._settings_class):
            raise TypeError(
                f"{cls.__name__} needs {cls._settings_class.__name__} "
                f"(or an {cls._url_scheme} URL), not {type(settings).__name__}"
            )
        transport = cls.__new__(cls)
        transport._setup(settings, dkim, pool, hooks)
        return transport

    @classmethod
    def relay(cls, host: str, port: int | None = None, **kwargs: Any) -> Self:
        """A transport for a submission server with implicit TLS (port 465 by default).

        Args:
            host: the server's host name or IP address.
            port: the TCP port; by default 465.
            kwargs: any other keyword argument of the constructor (except
                ``tls``).

        Raises:
            TypeError, ValueError: an invalid setting.
            TlsError: the TLS parameters cannot be loaded.
        """
        return cls(host, port, tls=TlsMode.IMPLICIT, **kwargs)

    @classmethod
    def starttls_relay(cls, host: str, port: int | None = None, **kwargs: Any) -> Self:
        """A transport for a submission server with STARTTLS required (port 587 by default).

        Args:
            host: the server's host name or IP address.
            port: the TCP port; by default 587.
            kwargs: any other keyword argument of the constructor (except
                ``tls``).

        Raises:
            TypeError, ValueError: an invalid setting.
            TlsError: the TLS parameters cannot be loaded.
        """
        return cls(host, port, tls=TlsMode.STARTTLS, **kwargs)

    @classmethod
    def local(cls, port: int = 25, *, host: str = "localhost", **kwargs: Any) -> Self:
        """A transport for an MTA on this machine (no TLS, no AUTH by default).

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
        """A transport from an ``smtp://`` or ``smtps://`` URL.

        ``smtp://user:password@host:port?tls=starttls&timeout=10``: user name
        and password are percent-decoded; ``smtp://`` means STARTTLS required
        unless ``tls=`` says otherwise (``none``, ``opportunistic``), and
        ``smtps://`` implicit TLS. See :mod:`lettre.smtp.url` for every
        parameter. Keyword arguments override what the URL says (for example
        ``tls_parameters=`` or ``token_provider=``).

        Args:
            url: the URL.
            dkim: a signer (or several) that signs each message before it is sent.
            pool: the connection pool's limits (default ``PoolConfig()``).
            overrides: any other keyword argument of the constructor.

        Raises:
            ValueError: the URL is invalid (the message never shows the password).
            TlsError: the TLS parameters cannot be loaded.
        """
        settings = settings_from_url(url, **overrides)
        if not isinstance(settings, cls._settings_class):
            raise ValueError(  # noqa: TRY004 - a bad URL
                f"{cls.__name__}.from_url takes an {cls._url_scheme} URL"
            )
        return cls.from_settings(settings, dkim=dkim, pool=pool, hooks=hooks)

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
    def pool_config(self) -> PoolConfig:
        """The connection pool's limits (those of each event loop's pool)."""
        return self._pool_config

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def statistics(self) -> PoolStatistics:
        """A snapshot of the connection pool: open, idle, in use, waiting, messages sent.

        Summed over the pools of every event loop that used the transport;
        ``messages_sent`` counts the messages servers accepted.
        """
        with self._lock:
            self._drop_finished()
            pools = [*self._pools.values(), *self._retired]
            gone = self._retired_totals
        return _total([gone, *(pool.statistics() for pool in pools)])

    def __repr__(self) -> str:
        s = self._settings
        if isinstance(s, LmtpSettings) and s.unix_socket is not None:
            where = f"unix_socket={s.unix_socket!r}"
        else:
            where = f"host={s.host!r}, port={s.effective_port}"
        user = f" user={s.credentials.username!r}" if s.credentials is not None else ""
        proxy = f" proxy={str(s.proxy)!r}" if s.proxy is not None else ""
        return f"{type(self).__name__}({where}, tls={s.tls.value}{user}{proxy})"

    # ------------------------------------------------------------------ sending

    def _deadline(self) -> float | None:
        seconds = self._settings.deadline
        return None if seconds is None else anyio.current_time() + seconds

    # ------------------------------------------------------------------ event loops

    def _pool_here(self) -> SmtpPool:
        """The pool of the event loop running the caller (made on first use)."""
        loop = current_loop()
        current = self._current
        if current is not None and current[0] is loop:
            return current[1]
        with self._lock:
            pool = self._pools.get(loop)
            if pool is None:
                if self._closed:
                    # Closed by another thread since the caller looked.
                    raise _closed_error()
                self._drop_finished()
                pool = SmtpPool(
                    self._settings,
                    self._pool_config,
                    ssl_context=self._ssl_context,
                    hooks=self._hooks,
                )
                self._pools[loop] = pool
            self._current = (loop, pool)
        return pool

    def _drop_finished(self) -> None:
        """Drop the pools of event loops that are closed (with the lock held).

        Their connections are shut down at once: nothing can be awaited on a
        closed loop. Pools that finished closing are folded into the totals.
        """
        for loop in [loop for loop in self._pools if loop_is_closed(loop)]:
            pool = self._pools.pop(loop)
            self._entered.pop(loop, None)
            if self._current is not None and self._current[0] is loop:
                self._current = None
            pool.abandon()
            self._retired.append(pool)
        for loop in [loop for loop in self._entered if loop_is_closed(loop)]:
            del self._entered[loop]
        keep: list[SmtpPool] = []
        done = [self._retired_totals]
        for pool in self._retired:
            stats = pool.statistics()
            if stats.open or stats.in_use:
                keep.append(pool)
            else:
                done.append(stats)
        self._retired = keep
        self._retired_totals = _total(done)

    async def _close_pools(self, keep: SmtpPool | None = None) -> None:
        """Close every pool: this loop's with QUIT, the others' without awaiting them.

        ``keep`` (this loop's entered pool) is left to its ``__aexit__``.
        """
        here = current_loop()
        with self._lock:
            pools, self._pools = self._pools, {}
            self._current = None
            self._retired.extend(pools.values())
        with anyio.CancelScope(shield=True):
            for loop, pool in pools.items():
                if pool is keep:
                    continue
                if loop is here:
                    await pool.aclose()
                elif loop_is_closed(loop) or not call_in_loop(loop, pool.aclose):
                    pool.abandon()

    async def _send_raw(self, envelope: Envelope, data: bytes | MessageContent) -> SendResult:
        """Send serialised message bytes with an explicit envelope.

        Takes a pooled connection (waiting, first come first served, at most
        ``pool_timeout`` seconds when all ``max_size`` are busy), runs one
        mail transaction on it and gives it back. When the connection dies
        before the message was handed over (the server closed it while idle,
        or went away mid-envelope), the send is retried once on a new
        connection.

        Args:
            envelope: the reverse path, the recipients and their DSN options.
            data: the message, CRLF line endings, sent as it is (no signing);
                a message with streamed attachments is read a chunk at a time.

        Returns:
            Every recipient's outcome and the server's final reply.

        Raises:
            PoolTimeout: every connection stayed busy for ``pool_timeout``.
            OutcomeUnknown: the connection broke after the content was sent;
                the server may have accepted the message (never retried).
            SmtpError: any other failure, typed (see :meth:`SmtpClient.send`).
        """
        if self._closed:
            raise _closed_error()
        pool = self._pool_here()
        seconds = self._settings.deadline
        if seconds is None:
            return await pool.send(envelope, data)
        return await pool.send(envelope, data, deadline=anyio.current_time() + seconds)

    def _default_concurrency(self) -> int:
        """Twice the pool's ``max_size``: each connection always has a next message to chain."""
        return 2 * self.pool_config.max_size

    async def test_connection(self) -> None:
        """Check that the server can be reached, TLS and AUTH included, and answers NOOP.

        Uses a pooled connection (opening one if needed) and keeps it.

        Raises:
            SmtpError: what went wrong, typed (connection, TLS, authentication).
        """
        if self._closed:
            raise _closed_error()
        await self._pool_here().test_connection(deadline=self._deadline())

    def for_new_process(self) -> Self:
        """A new, unopened transport with the same settings, signers and pool limits.

        It shares no connection with this one: use it in a forked child.
        """
        return self.from_settings(
            self._settings, dkim=self._signers, pool=self._pool_config, hooks=self._hooks
        )

    # ------------------------------------------------------------------ closing

    async def aclose(self) -> None:
        """Close the pool's idle connections (QUIT); later sends fail.

        Connections still busy with a send are closed when that send ends.
        The connections of other event loops are closed on their own loop
        (or shut down at once if that loop is closed); nothing here waits for
        another loop. Shielded from cancellation; safe to call more than once.
        """
        self._closed = True
        await self._close_pools()

    async def __aenter__(self) -> Self:
        """Open the transport's context: a task that closes connections as they expire.

        A transport closed before (an application's lifespan that runs
        again, as in tests) opens again with new connections. Blocks may
        nest; each is left in the task that entered it.
        """
        loop = current_loop()
        with self._lock:
            self._closed = False
            entry = self._entered.get(loop)
            if entry is not None:
                self._entered[loop] = (entry[0], entry[1] + 1)
                return self
        pool = self._pool_here()
        with self._lock:
            self._entered[loop] = (pool, 1)
        try:
            await pool.__aenter__()
        except BaseException:
            with self._lock:
                self._entered.pop(loop, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave the context: the last block to end closes the transport.

        While another event loop is still inside its own ``async with``, only
        this loop's connections are closed and the transport stays open there.
        """
        loop = current_loop()
        with self._lock:
            entry = self._entered.get(loop)
            if entry is not None and entry[1] > 1:
                self._entered[loop] = (entry[0], entry[1] - 1)
                return
            self._entered.pop(loop, None)
            pool = entry[0] if entry is not None else None
            others = any(not loop_is_closed(other) for other in self._entered)
            if others and pool is not None:
                # Only this loop's pool goes; the other loops keep theirs.
                if self._pools.get(loop) is pool:
                    del self._pools[loop]
                if self._current is not None and self._current[0] is loop:
                    self._current = None
                self._retired.append(pool)
            else:
                self._closed = True
        if not others:
            await self._close_pools(keep=pool)
        if pool is not None:
            await pool.__aexit__(exc_type, exc, tb)


def _total(snapshots: list[PoolStatistics]) -> PoolStatistics:
    """The statistics of several pools added up, field by field."""
    return PoolStatistics(
        *(sum(getattr(s, f.name) for s in snapshots) for f in dataclasses.fields(PoolStatistics))
    )


def _closed_error() -> SmtpError:
    return SmtpError(
        "the SMTP transport is closed; open it again with `async with transport:` "
        "or make a new one",
        transient=False,
    )
