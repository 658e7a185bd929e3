"""Drive the sans-IO :class:`~lettre.protocol.connection.ClientConnection` over anyio.

This is the only place where lettre's SMTP code touches sockets. It:

- opens the TCP connection (anyio's happy eyeballs) and, for implicit TLS,
  the TLS session; upgrades with STARTTLS through ``TLSStream.wrap``;
- writes the bytes the core produces (one ``send`` per flight) and feeds
  what it reads back into the core until a reply is complete;
- keeps ONE cancel scope per operation (:class:`Operation`) whose deadline is
  moved before each wait, instead of a timeout object per command (the
  session's set-up and the commands around transactions; transactions run
  through :mod:`lettre.smtp.driver`);
- converts foreign exceptions (``OSError``, ``ssl.SSLError``, anyio's) into
  lettre's, chained, at this boundary;
- writes the DEBUG transcript to the ``lettre.smtp`` logger: ``C: ...`` for
  what the client sends, ``S: ...`` for what the server answers. AUTH
  payloads are never logged, and message content only by its size.

No SMTP text is parsed here: replies come from the core as
:class:`~lettre.protocol.replies.Reply` objects.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from lettre._loops import current_clock, running_on_asyncio
from lettre.errors import (
    ProtocolError,
    ServerDisconnected,
    SmtpConnectError,
    SmtpError,
    SmtpTimeoutError,
)
from lettre.protocol.commands import (
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    EndOfData,
    MessageData,
)
from lettre.protocol.connection import NEED_DATA, ClientConnection
from lettre.protocol.state import ClientState
from lettre.smtp.asyncio_stream import _READ_SIZE, PipeConsumer, _AsyncioByteStream
from lettre.smtp.stream_errors import _handshake_error, _lookup_error, describe_error

if TYPE_CHECKING:
    from lettre.protocol.commands import Command
    from lettre.protocol.replies import Reply

__all__ = [
    "Operation",
    "PipeConsumer",
    "SmtpStream",
    "describe_error",
    "transcript_logger",
]

transcript_logger = logging.getLogger("lettre.smtp")
"""The logger of the SMTP transcript (DEBUG) and connection events."""

# Message content follows the server's go-ahead: it never starts a flight.
_CONTENT_VERBS = frozenset({"DATA-CONTENT", "END-OF-DATA"})


class SmtpStream:
    """One SMTP connection: an anyio byte stream and the protocol state driving it.

    Built by :meth:`open`; used by :class:`~lettre.smtp.client.SmtpClient`.
    Every read and write must happen inside an :class:`Operation`, whose
    single cancel scope enforces the per-reply timeouts and the overall
    deadline.

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
        self.logger = logger if logger is not None else transcript_logger
        self._scope: anyio.CancelScope | None = None
        self._deadline = math.inf
        self._waiting_for = "the server"
        self._armed_timeout = 0.0
        self._clock = current_clock()
        # Whether the transcript is logged: decided once per operation.
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
            logger: the transcript logger (default ``lettre.smtp``).

        Raises:
            SmtpConnectError: the connection could not be made.
            SmtpTimeoutError: it took longer than ``connect_timeout``.
            TlsError: the implicit TLS handshake failed.
        """
        log = logger if logger is not None else transcript_logger
        peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        stream: ByteStream | None = None
        limit = anyio.current_time() + connect_timeout
        if deadline is not None:
            limit = min(limit, deadline)
        with anyio.CancelScope(deadline=limit) as scope:
            try:
                if running_on_asyncio():
                    stream = await _AsyncioByteStream.connect(host, port, local_address)
                else:
                    stream = await anyio.connect_tcp(host, port, local_host=local_address)
            except socket.gaierror as exc:
                raise _lookup_error(host, peer, exc) from exc
            except OSError as exc:
                raise SmtpConnectError(f"cannot connect to {peer}: {describe_error(exc)}") from exc
            if implicit_tls is not None:
                stream = await _handshake(
                    stream, implicit_tls, server_name or host, peer, when="connecting"
                )
        if scope.cancelled_caught or stream is None:
            if stream is not None:
                await anyio.aclose_forcefully(stream)
            if deadline is not None and deadline <= anyio.current_time():
                raise SmtpTimeoutError(f"the deadline passed while connecting to {peer}")
            raise SmtpTimeoutError(f"connecting to {peer} timed out after {connect_timeout:g} s")
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "connected to %s%s", peer, " (implicit TLS)" if implicit_tls is not None else ""
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

    # ------------------------------------------------------------------ deadlines

    def operation(self, deadline: float | None = None) -> Operation:
        """An async context manager bounding the I/O inside it.

        Args:
            deadline: an absolute time on anyio's clock (``anyio.current_time()``)
                after which everything inside fails with a timeout; None for no
                overall deadline (each wait still has its own timeout).
        """
        return Operation(self, deadline)

    def now(self) -> float:
        """The current time on anyio's clock (looked up once per connection)."""
        return self._clock()

    def _arm(self, timeout: float, waiting_for: str) -> None:
        scope = self._scope
        self._waiting_for = waiting_for
        self._armed_timeout = timeout
        target = self._clock() + timeout
        deadline = self._deadline
        if scope is None:
            raise RuntimeError("SMTP I/O outside an operation; use `async with stream.operation()`")
        if target >= deadline:
            if scope.deadline != deadline:
                scope.deadline = deadline
            return
        # Moving a timer costs a reschedule; replies come every few hundred
        # microseconds. A timer already set a little later than needed is
        # kept: a wait may last up to 1/16 of its timeout (at most 1 s) longer
        # than the timeout, never shorter.
        slack = min(timeout / 16, 1.0)
        current = scope.deadline
        if not target <= current <= target + slack:
            scope.deadline = min(deadline, target + slack / 2)

    def relax(self) -> None:
        """Lift the per-wait timeout until the next wait (the overall deadline stays).

        Used before awaiting user code (a token provider) or a name lookup, so
        a timeout armed for an earlier reply cannot cut them short.
        """
        if self._scope is not None:
            self._waiting_for = "the client"
            self._scope.deadline = self._deadline

    def _timeout_error(self, deadline: float) -> SmtpError:
        expired_deadline = deadline <= anyio.current_time()
        if expired_deadline:
            message = f"the deadline passed while waiting for {self._waiting_for} from {self.peer}"
        else:
            message = (
                f"timed out after {self._armed_timeout:g} s waiting for "
                f"{self._waiting_for} from {self.peer}"
            )
        if self._waiting_for == "the greeting" and not self.encrypted:
            # A port that expects TLS from the first byte waits for our
            # handshake and never greets in plaintext.
            message += (
                "; if this port expects TLS from the first byte (usually 465), "
                "use tls=TlsMode.IMPLICIT"
            )
        return SmtpTimeoutError(message)

    # ------------------------------------------------------------------ writing

    def encode(self, command: Command) -> bytes:
        """Hand ``command`` to the protocol state and return the bytes to write.

        Nothing is written: callers collect the bytes of a whole flight and
        write them with one :meth:`write`.

        Raises:
            LocalProtocolError: the command is not allowed now.
        """
        conn = self.conn
        if not conn.owed and command.verb not in _CONTENT_VERBS:
            # The start of a flight: anything the server said while idle first.
            self._check_idle()
        try:
            data = conn.send(command)
        except ProtocolError:
            # The protocol state is now ERROR: this connection is done.
            self.broken = True
            raise
        if self._debug:
            self._log_command(command, data)
        return data

    def _check_idle(self) -> None:
        """Before a new flight: did the server say goodbye (421) while we were idle?

        Bytes read with an earlier reply may hold it. Anything else that
        arrived unasked is a protocol error, raised by the core.
        """
        conn = self.conn
        try:
            if conn.state is ClientState.CLOSED:
                event: object = conn
            else:
                event = conn.next_event()
        except ProtocolError:
            self.broken = True
            raise
        if event is not NEED_DATA:
            self.broken = True
            raise ServerDisconnected(f"{self.peer} closed the connection while it was idle")

    async def write(self, data: bytes, *, limit: float, what: str = "the server to read") -> None:
        """Write ``data`` with one stream send.

        Raises:
            ServerDisconnected: the connection broke (OutcomeUnknown when a
                message's final reply was still owed).
        """
        if self.broken:
            raise ServerDisconnected(f"the connection to {self.peer} is no longer usable")
        self._arm(limit, what)
        try:
            await self._stream.send(data)
        except (
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.EndOfStream,
            OSError,
            ssl.SSLError,
        ) as exc:
            self.broken = True
            raise self._lost(f"writing to {self.peer} failed: {describe_error(exc)}") from exc

    # ------------------------------------------------------------------ reading

    async def read_reply(self, *, limit: float, what: str) -> Reply:
        """Read until the protocol state yields the next reply.

        Args:
            limit: seconds allowed for the reply to arrive complete.
            what: what is awaited, for error messages ("the reply to RCPT").

        Raises:
            ServerDisconnected: the server closed the connection.
            RemoteProtocolError: the server broke the protocol.
        """
        conn = self.conn
        try:
            event = conn.next_event()
            if event is NEED_DATA:
                self._arm(limit, what)
                while event is NEED_DATA:
                    try:
                        data = await self._stream.receive(_READ_SIZE)
                    except anyio.EndOfStream:
                        self.broken = True
                        raise self._lost(
                            f"{self.peer} closed the connection while we waited for {what}"
                        ) from None
                    except (
                        anyio.BrokenResourceError,
                        anyio.ClosedResourceError,
                        OSError,
                        ssl.SSLError,
                    ) as exc:
                        self.broken = True
                        raise self._lost(
                            f"reading {what} from {self.peer} failed: {describe_error(exc)}"
                        ) from exc
                    conn.receive_data(data)
                    event = conn.next_event()
        except SmtpError:
            raise
        except Exception:
            # RemoteProtocolError from the core, or anything unexpected: the
            # connection's state is unknown from here on.
            self.broken = True
            raise
        if self._debug:
            self._log_reply(event)
        return event

    def _lost(self, message: str) -> ServerDisconnected:
        return ServerDisconnected(message)

    # ------------------------------------------------------------------ TLS

    async def start_tls(self, context: ssl.SSLContext, server_name: str, *, limit: float) -> None:
        """Perform the TLS handshake after a 220 to STARTTLS and tell the core.

        Raises:
            TlsError: the handshake failed (certificate, name, protocol).
            ServerDisconnected: the connection broke during the handshake.
        """
        self._arm(limit, "the TLS handshake")
        try:
            self._stream = await _handshake(
                self._stream, context, server_name, self.peer, when="after STARTTLS"
            )
        except SmtpError:
            self.broken = True
            raise
        self.encrypted = True
        self.conn.tls_established()
        if self._debug:
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
            sock.shutdown(socket.SHUT_RDWR)
        except (anyio.TypedAttributeLookupError, OSError):
            pass  # no socket, or it is gone already

    async def aclose(self) -> None:
        """Close the stream at once (no QUIT), shielded from cancellation."""
        if self.closed:
            return
        self.closed = True
        self.broken = True
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(self._stream)

    # ------------------------------------------------------------------ logging

    def _log_command(self, command: Command, data: bytes) -> None:
        log = self.logger.debug
        if isinstance(command, Auth):
            suffix = " <redacted>" if command.initial_response is not None else ""
            log("C: AUTH %s%s", command.mechanism, suffix)
        elif isinstance(command, AuthResponse):
            log("C: <redacted>")
        elif isinstance(command, AuthCancel):
            log("C: *")
        elif isinstance(command, MessageData):
            log("C: <%d bytes of message content>", len(command.data))
        elif isinstance(command, EndOfData):
            log("C: .")
        elif isinstance(command, Bdat):
            log(
                "C: BDAT <%d bytes of message content>%s",
                len(command.data),
                " LAST" if command.last else "",
            )
        else:
            self._log_lines(data)

    def _log_lines(self, data: bytes) -> None:
        """Log command lines as written (never AUTH payloads or content: see _log_command)."""
        log = self.logger.debug
        for line in data.decode("utf-8", "replace").split("\r\n"):
            if line:
                log("C: %s", line)

    def log_reply(self, reply: Reply) -> None:
        """Log ``reply`` in the transcript, when it is on (DEBUG)."""
        if self._debug:
            self._log_reply(reply)

    def refresh_debug(self) -> bool:
        """Look again whether the transcript is on (the logger's level may change)."""
        self._debug = debug = self.logger.isEnabledFor(logging.DEBUG)
        return debug

    def _log_reply(self, reply: Reply) -> None:
        lines = reply.lines or ("",)
        status = f"{reply.enhanced_status} " if reply.enhanced_status else ""
        last = len(lines) - 1
        for index, line in enumerate(lines):
            sep = " " if index == last else "-"
            self.logger.debug("S: %d%s%s%s", reply.code, sep, status, line)


class Operation:
    """One cancel scope around a sequence of SMTP reads and writes.

    Created by :meth:`SmtpStream.operation`. Inside it each wait moves the
    scope's deadline to ``min(overall deadline, now + that wait's timeout)``.
    On exit:

    - a deadline that fired becomes :class:`~lettre.errors.SmtpTimeoutError`
      and the connection is closed;
    - cancellation from outside, or any exception that is not a lettre error,
      closes the connection (its state is unknown) and propagates;
    - a lettre error that left the connection broken closes it too.

    Operations nest: an inner one only tightens the deadline.
    """

    __slots__ = ("_deadline", "_outer", "_scope", "_stream")

    def __init__(self, stream: SmtpStream, deadline: float | None) -> None:
        self._stream = stream
        self._deadline = math.inf if deadline is None else deadline
        self._scope: anyio.CancelScope | None = None
        self._outer: tuple[anyio.CancelScope | None, float] = (None, math.inf)

    async def __aenter__(self) -> Operation:
        stream = self._stream
        self._outer = (stream._scope, stream._deadline)
        deadline = min(self._deadline, stream._deadline)
        if stream._scope is None:
            scope = anyio.CancelScope(deadline=deadline)
            scope.__enter__()
            self._scope = scope
            stream._scope = scope
            stream._debug = stream.logger.isEnabledFor(logging.DEBUG)
        stream._deadline = deadline
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stream = self._stream
        scope = self._scope
        outer_scope, outer_deadline = self._outer
        own_deadline = stream._deadline
        stream._deadline = outer_deadline
        if scope is None:
            # Nested: the outermost operation handles timeouts and closing.
            if stream._scope is not None:
                stream._scope.deadline = outer_deadline
            return
        stream._scope = outer_scope
        try:
            swallowed = scope.__exit__(exc_type, exc, tb)
        except BaseException:
            await stream.aclose()
            raise
        if scope.cancelled_caught or (exc is not None and swallowed):
            # Our own deadline fired (cancellation from outside is not caught here).
            error = stream._timeout_error(own_deadline)
            await stream.aclose()
            raise error
        if exc is not None and (not isinstance(exc, SmtpError) or stream.broken):
            await stream.aclose()


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
