"""One SMTP connection's byte stream: opening it, TLS, and closing it.

This is where lettre's SMTP code touches sockets. :class:`SmtpStream`:

- opens the TCP connection (the event loop's own on asyncio, with happy
  eyeballs on the stdlib loop; anyio's elsewhere), directly or through a
  proxy (:mod:`lettre.smtp.proxy`), and, for implicit TLS, the TLS session;
  upgrades it after STARTTLS;
- converts foreign exceptions (``OSError``, ``ssl.SSLError``, anyio's) raised
  there into lettre's, chained;
- holds the sans-IO protocol state (``conn``) and the transcript logger.

What goes over it (commands, replies, mail transactions) is moved by the
connection's driver (:mod:`lettre.smtp.driver`), under its one deadline rule.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from lettre._loops import current_clock
from lettre.errors import (
    SmtpConnectError,
    SmtpError,
    SmtpTimeoutError,
)
from lettre.protocol.connection import ClientConnection
from lettre.smtp.asyncio_stream import (
    PipeConsumer,
    _AsyncioByteStream,
    open_tcp_stream,
    open_unix_stream,
)
from lettre.smtp.proxy import open_tunnel
from lettre.smtp.stream_errors import _handshake_error, _lookup_error, describe_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from lettre.smtp.proxy import Proxy

__all__ = [
    "PipeConsumer",
    "SmtpStream",
    "describe_error",
    "transcript_logger",
]

transcript_logger = logging.getLogger("lettre.smtp")
"""The logger of the SMTP transcript (DEBUG) and connection events."""


class SmtpStream:
    """One SMTP connection: an anyio byte stream and the protocol state driving it.

    Built by :meth:`open`; used by :class:`~lettre.smtp.client.SmtpClient`,
    whose driver moves the bytes (:mod:`lettre.smtp.driver`).

    Attributes:
        conn: the sans-IO protocol state.
        encrypted: whether the stream is TLS-protected now.
        broken: True once the connection can no longer be used (closed, timed
            out, cancelled mid-command, protocol error).
    """

    def __init__(
        self,
        stream: ByteStream,
        conn: ClientConnection,
        *,
        peer: str,
        encrypted: bool,
        logger: logging.Logger | None = None,
    ) -> None:
        self._stream: ByteStream = stream
        self.conn = conn
        self.peer = peer
        self.encrypted = encrypted
        self.broken = False
        self.closed = False
        self.on_close: Callable[[bool], None] | None = None
        """Called once when the stream closes: with True when its event loop was gone."""
        self.logger = logger if logger is not None else transcript_logger
        self.clock = current_clock()
        """The event loop's clock (seconds), looked up once per connection."""
        # Whether the transcript is logged: looked up as each exchange starts.
        self._debug = self.logger.isEnabledFor(logging.DEBUG)

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        conn: ClientConnection,
        connect_timeout: float,
        deadline: float | None = None,
        local_address: str | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
        proxy: Proxy | None = None,
        unix_socket: str | None = None,
        logger: logging.Logger | None = None,
    ) -> SmtpStream:
        """Connect to ``host``:``port`` (and do the TLS handshake for implicit TLS).

        Args:
            host: host name or IP address.
            port: TCP port.
            conn: a fresh protocol state.
            connect_timeout: seconds for the TCP connection and the TLS handshake
                together.
            deadline: an absolute time (anyio's clock) that also bounds them.
            local_address: the local IP address to bind to.
            implicit_tls: the context for TLS from the first byte, if any.
            server_name: the name the certificate must match (default ``host``).
            proxy: the proxy to connect through, if any (it resolves ``host``).
            unix_socket: the path of a Unix socket to connect to instead of
                ``host``:``port`` (:func:`_connect_unix`).
            logger: the transcript logger (default ``lettre.smtp``).

        Raises:
            SmtpConnectError: the connection could not be made.
            SmtpTimeoutError: it took longer than ``connect_timeout``.
            TlsError: the implicit TLS handshake failed.
        """
        log = logger if logger is not None else transcript_logger
        peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if unix_socket is not None:
            peer = f"unix:{unix_socket}"
        stream: ByteStream | None = None
        limit = anyio.current_time() + connect_timeout
        if deadline is not None:
            limit = min(limit, deadline)
        with anyio.CancelScope(deadline=limit) as scope:
            if unix_socket is not None:
                stream = await _connect_unix(unix_socket, peer)
            elif proxy is not None:
                stream = await open_tunnel(proxy, host, port, local_address=local_address)
            else:
                try:
                    stream = await open_tcp_stream(host, port, local_address)
                except socket.gaierror as exc:
                    raise _lookup_error(host, peer, exc) from exc
                except OSError as exc:
                    raise SmtpConnectError(
                        f"cannot connect to {peer}: {describe_error(exc)}"
                    ) from exc
            if implicit_tls is not None:
                stream = await _handshake(
                    stream, implicit_tls, server_name or host, peer, when="connecting"
                )
        if scope.cancelled_caught or stream is None:
            if stream is not None:
                await anyio.aclose_forcefully(stream)
            via = "" if proxy is None else f" through {proxy.description}"
            if deadline is not None and deadline <= anyio.current_time():
                raise SmtpTimeoutError(f"the deadline passed while connecting to {peer}{via}")
            raise SmtpTimeoutError(
                f"connecting to {peer}{via} timed out after {connect_timeout:g} s"
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "connected to %s%s%s",
                peer,
                "" if proxy is None else f" through {proxy.description}",
                " (implicit TLS)" if implicit_tls is not None else "",
            )
        return cls(stream, conn, peer=peer, encrypted=implicit_tls is not None, logger=log)

    @property
    def local_ip(self) -> str | None:
        """The local IP address of the connection, when known."""
        try:
            address = self._stream.extra(SocketAttribute.local_address)  # noqa: S610
        except (anyio.TypedAttributeLookupError, OSError):
            return None
        if isinstance(address, tuple) and address and isinstance(address[0], str):
            return address[0]
        return None

    @property
    def tls_version(self) -> str | None:
        """The negotiated TLS version ("TLSv1.3"), or None without TLS."""
        if not self.encrypted:
            return None
        try:
            return self._stream.extra(TLSAttribute.tls_version)  # noqa: S610
        except anyio.TypedAttributeLookupError:
            return None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS session's ``ssl.SSLObject`` (certificates, cipher...), or None without TLS."""
        if not self.encrypted:
            return None
        try:
            ssl_object: ssl.SSLObject = self._stream.extra(TLSAttribute.ssl_object)  # noqa: S610
        except anyio.TypedAttributeLookupError:
            return None
        return ssl_object

    def now(self) -> float:
        """The current time on the event loop's clock (looked up once per connection)."""
        return self.clock()

    # ------------------------------------------------------------------ TLS

    async def start_tls(
        self,
        context: ssl.SSLContext,
        server_name: str,
        *,
        limit: float,
        deadline: float | None = None,
    ) -> None:
        """Perform the TLS handshake after a 220 to STARTTLS and tell the core.

        Args:
            context: the TLS context.
            server_name: the name to check the certificate against (and SNI).
            limit: seconds the handshake may take.
            deadline: an absolute time on the event loop's clock, or None.

        Raises:
            TlsError: the handshake failed (certificate, name, protocol).
            ServerDisconnected: the connection broke during the handshake.
            SmtpTimeoutError: the handshake took too long (the connection is
                closed).
        """
        due = self.clock() + limit
        expires = due if deadline is None else min(due, deadline)
        with anyio.CancelScope(deadline=expires) as scope:
            try:
                self._stream = await _handshake(
                    self._stream, context, server_name, self.peer, when="after STARTTLS"
                )
            except SmtpError:
                self.broken = True
                raise
        if scope.cancelled_caught:
            await self.aclose()
            if deadline is not None and deadline <= due:
                raise SmtpTimeoutError(
                    f"the deadline passed while waiting for the TLS handshake from {self.peer}"
                )
            raise SmtpTimeoutError(
                f"timed out after {limit:g} s waiting for the TLS handshake from {self.peer}"
            )
        self.encrypted = True
        self.conn.tls_established()
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("TLS established with %s (%s)", self.peer, self.tls_version)

    # ------------------------------------------------------------------ closing

    @property
    def byte_stream(self) -> ByteStream:
        """The byte stream under this stream (replaced by STARTTLS)."""
        return self._stream

    @property
    def asyncio_byte_stream(self) -> _AsyncioByteStream | None:
        """The asyncio byte stream under this stream, when it is one (plain TCP on asyncio)."""
        stream = self._stream
        return stream if isinstance(stream, _AsyncioByteStream) else None

    def close_now(self) -> None:
        """Close an asyncio byte stream at once, synchronously (from a callback)."""
        if self.closed:
            return
        self.closed = True
        self.broken = True
        stream = self._stream
        assert isinstance(stream, _AsyncioByteStream)
        stream.close_now()
        self._closed(abandoned=False)

    def abandon(self) -> None:
        """Shut the socket down at once without the event loop (its loop is closed).

        The server sees the connection close; the socket's descriptor is
        released with the stream's objects. Never raises.
        """
        if self.closed:
            return
        self.closed = True
        self.broken = True
        try:
            sock = self._stream.extra(SocketAttribute.raw_socket)  # noqa: S610
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except TypeError:
                # uvloop's transport sockets refuse shutdown(): shut the
                # connection down through a duplicate of the descriptor.
                with socket.fromfd(sock.fileno(), sock.family, sock.type) as duplicate:
                    duplicate.shutdown(socket.SHUT_RDWR)
        except (anyio.TypedAttributeLookupError, OSError):
            pass  # no socket, or it is gone already
        self._closed(abandoned=True)

    async def aclose(self) -> None:
        """Close the stream at once (no QUIT), shielded from cancellation."""
        if self.closed:
            return
        self.closed = True
        self.broken = True
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(self._stream)
        self._closed(abandoned=False)

    def _closed(self, *, abandoned: bool) -> None:
        on_close = self.on_close
        if on_close is not None:
            self.on_close = None
            on_close(abandoned)

    # ------------------------------------------------------------------ logging

    def refresh_debug(self) -> bool:
        """Look again whether the transcript is on (the logger's level may change)."""
        self._debug = debug = self.logger.isEnabledFor(logging.DEBUG)
        return debug


async def _connect_unix(path: str, peer: str) -> ByteStream:
    """Connect to the Unix socket at ``path`` (the event loop's own on asyncio)."""
    try:
        return await open_unix_stream(path)
    except OSError as exc:
        raise SmtpConnectError(f"cannot connect to {peer}: {describe_error(exc)}") from exc


async def _handshake(
    stream: ByteStream, context: ssl.SSLContext, server_name: str, peer: str, *, when: str
) -> ByteStream:
    if isinstance(stream, _AsyncioByteStream):
        return await stream.start_tls(context, server_name, peer, when=when)
    try:
        return await TLSStream.wrap(
            stream,
            server_side=False,
            hostname=server_name,
            ssl_context=context,
            standard_compatible=False,
        )
    except (
        ssl.SSLError,
        anyio.EndOfStream,
        anyio.BrokenResourceError,
        anyio.ClosedResourceError,
        OSError,
        ValueError,
    ) as exc:
        await anyio.aclose_forcefully(stream)
        raise _handshake_error(exc, peer, when) from exc
