"""SmtpClient: one SMTP connection, from the greeting to QUIT.

A client connects (TCP, implicit TLS or STARTTLS, EHLO, AUTH), then carries
any number of mail transactions, then quits. The session is set up here; the
transactions run through the connection's
:class:`~lettre.smtp.driver.TransactionDriver` (:attr:`SmtpClient.driver`),
the one send path that pools use too::

    client = SmtpClient(settings)
    await client.connect()
    result = await client.send(envelope, data)
    await client.aclose()
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, TypeVar

import anyio

from lettre.errors import (
    AuthenticationError,
    ExtensionNotSupported,
    LocalProtocolError,
    ProtocolError,
    ServerDisconnected,
    SmtpConnectError,
    SmtpError,
    SmtpReplyError,
    SmtpTimeoutError,
    TlsError,
)
from lettre.hooks import ConnectionClosed, ConnectionOpened, ConnectionStep, Hook, active, emit
from lettre.protocol.commands import (
    Auth,
    AuthCancel,
    AuthResponse,
    Ehlo,
    Helo,
    Lhlo,
    Noop,
    Quit,
    Rset,
    StartTls,
)
from lettre.protocol.connection import ClientConnection
from lettre.protocol.extensions import Capabilities
from lettre.protocol.replies import queue_id_from_reply
from lettre.protocol.sasl import Mechanism, decode_challenge
from lettre.protocol.transactions import (
    PIPELINED_BDAT_LIMIT,
    Transaction,
    TransactionEngine,
    TransactionStage,
)
from lettre.smtp.auth import AuthMechanism, choose_mechanisms
from lettre.smtp.backends import AnyioDriver, AsyncioDriver
from lettre.smtp.driver import Ticket, TransactionDriver
from lettre.smtp.settings import LmtpSettings, SmtpSettings, default_hello_name
from lettre.smtp.stream import SmtpStream, transcript_logger
from lettre.smtp.tls import TlsMode

if TYPE_CHECKING:
    from lettre.envelope import Envelope
    from lettre.message.source import MessageContent
    from lettre.protocol.commands import Command
    from lettre.protocol.replies import Reply
    from lettre.results import SendResult

__all__ = [
    "PIPELINED_BDAT_LIMIT",
    "SmtpClient",
    "Transaction",
    "TransactionStage",
    "queue_id_from_reply",
]

_QUIT_TIMEOUT = 5.0
T = TypeVar("T")


def hook_endpoint(settings: SmtpSettings) -> tuple[str, tuple[str, int | None]]:
    """How the hooks name a connection: its protocol and its server (a Unix socket has no port)."""
    if isinstance(settings, LmtpSettings):
        if settings.unix_socket is not None:
            return "lmtp", (settings.unix_socket, None)
        return "lmtp", (settings.host, settings.effective_port)
    return "smtp", (settings.host, settings.effective_port)


class _Steps:
    """The steps of opening one connection, timed for the hooks (``time.time_ns()``)."""

    __slots__ = ("done", "name", "start", "step_start")

    def __init__(self) -> None:
        self.start = self.step_start = time.time_ns()
        self.name = "connect"
        self.done: list[ConnectionStep] = []

    def begin(self, name: str) -> None:
        now = time.time_ns()
        self.done.append(ConnectionStep(self.name, self.step_start, now))
        self.name, self.step_start = name, now

    def finish(self, error: BaseException | None) -> tuple[ConnectionStep, ...]:
        self.done.append(ConnectionStep(self.name, self.step_start, time.time_ns(), error))
        return tuple(self.done)


class SmtpClient:
    """One SMTP connection.

    Args:
        settings: where to connect and how (see :class:`SmtpSettings`).
        ssl_context: the TLS context to use; built from ``settings`` when None
            (share one context between clients: building one loads the trust
            store).
        logger: the logger for the transcript; ``lettre.smtp`` by default.
        hooks: told when the connection opens (with its steps) and closes,
            besides the hooks registered for the process (:mod:`lettre.hooks`).

    The client is not safe for concurrent use: one task at a time (a pool or
    :class:`~lettre.transports.smtp.SmtpTransport` guarantees that).
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        logger: logging.Logger | None = None,
        hooks: Iterable[Hook] = (),
    ) -> None:
        if not isinstance(settings, SmtpSettings):
            raise TypeError("settings must be an SmtpSettings")
        self._hooks = tuple(hooks)
        # The steps of opening the connection, recorded while hooks listen.
        self._steps: _Steps | None = None
        self._quit_ok = False
        self._settings = settings
        if ssl_context is None and settings.uses_tls:
            ssl_context = settings.create_ssl_context()
        self._ssl_context = ssl_context
        self._logger = logger if logger is not None else transcript_logger
        self._stream: SmtpStream | None = None
        self._capabilities: Capabilities | None = None
        self._greeting: Reply | None = None
        self._hello_name: str | None = None
        self._authenticated_as: str | None = None
        self._auth_mechanism: AuthMechanism | None = None
        self._driver: TransactionDriver | None = None
        # The deadline of the commands running now (connecting, NOOP, QUIT...).
        self._deadline: float | None = None
        self._created_at = math.nan
        self._last_used = math.nan
        self.last_transaction: Transaction | None = None
        """The most recent transaction (kept so a caller can tell how far a failed one got)."""

    def __repr__(self) -> str:
        state = "usable" if self.is_usable else "closed" if self._stream is None else "broken"
        return (
            f"<SmtpClient {self._settings.host}:{self._settings.effective_port} "
            f"tls={self._settings.tls.value} {state}>"
        )

    # ------------------------------------------------------------------ state

    @property
    def settings(self) -> SmtpSettings:
        """The settings this client was made with."""
        return self._settings

    @property
    def capabilities(self) -> Capabilities | None:
        """What the server announced in its last EHLO reply (None before connecting)."""
        return self._capabilities

    @property
    def greeting(self) -> Reply | None:
        """The server's greeting."""
        return self._greeting

    @property
    def hello_name(self) -> str | None:
        """The name this client sent with EHLO."""
        return self._hello_name

    @property
    def is_connected(self) -> bool:
        """Whether the connection was made and not closed since."""
        return self._stream is not None and not self._stream.closed

    @property
    def is_usable(self) -> bool:
        """Whether the connection can carry another transaction.

        False before :meth:`connect`, and after the connection broke, timed
        out, was cancelled mid-command, got a 421 or a protocol error, or was
        closed.
        """
        stream = self._stream
        return (
            stream is not None
            and not stream.broken
            and not stream.closed
            and self._capabilities is not None
            and (self._driver is None or (not self._driver.busy and self._driver.engine.usable))
        )

    @property
    def is_broken(self) -> bool:
        """Whether the connection is gone for good: never made, closed, or broken."""
        stream = self._stream
        return stream is None or stream.broken or stream.closed

    @property
    def replies_owed(self) -> int:
        """How many replies the server still owes (commands written, replies not read)."""
        stream = self._stream
        return 0 if stream is None else stream.conn.owed

    @property
    def is_encrypted(self) -> bool:
        """Whether the connection is protected by TLS."""
        return self._stream is not None and self._stream.encrypted

    @property
    def tls_version(self) -> str | None:
        """The TLS version in use ("TLSv1.3"), or None."""
        return self._stream.tls_version if self._stream is not None else None

    @property
    def authenticated_as(self) -> str | None:
        """The user name AUTH succeeded with, or None."""
        return self._authenticated_as

    @property
    def auth_mechanism(self) -> AuthMechanism | None:
        """The mechanism AUTH succeeded with, or None."""
        return self._auth_mechanism

    @property
    def messages_sent(self) -> int:
        """How many mail transactions this connection has started."""
        return 0 if self._driver is None else self._driver.engine.started

    @property
    def messages_accepted(self) -> int:
        """How many messages the server accepted on this connection."""
        return 0 if self._driver is None else self._driver.engine.accepted

    @property
    def created_at(self) -> float:
        """When the connection was opened (``anyio.current_time()``; NaN before)."""
        return self._created_at

    @property
    def last_used(self) -> float:
        """When the connection last made progress (``anyio.current_time()``; NaN before)."""
        driver = self._driver
        return self._last_used if driver is None else max(self._last_used, driver.since)

    @property
    def stream(self) -> SmtpStream | None:
        """The stream under the connection (None before :meth:`connect`)."""
        return self._stream

    def _require_stream(self) -> SmtpStream:
        stream = self._stream
        if stream is None:
            raise LocalProtocolError("the SMTP client is not connected; call connect() first")
        if stream.broken or stream.closed:
            raise ServerDisconnected(
                f"the connection to {stream.peer} is no longer usable; open a new one"
            )
        return stream

    def _default_deadline(self, deadline: float | None) -> float | None:
        if deadline is None and self._settings.deadline is not None:
            return anyio.current_time() + self._settings.deadline
        return deadline

    # ------------------------------------------------------------------ connecting

    async def connect(self, *, deadline: float | None = None) -> None:
        """Open the connection: TCP (or TLS), greeting, EHLO, STARTTLS, AUTH.

        Args:
            deadline: an absolute time on anyio's clock bounding the whole
                connection set-up; default ``settings.deadline`` from now.

        Raises:
            SmtpConnectError: no connection, or the greeting refused it.
            SmtpTimeoutError: a step took too long.
            TlsError: TLS failed, or STARTTLS was required and not available
                (nothing else was sent then), or credentials would have gone
                over plain text.
            AuthenticationError: the server refused the credentials.
            ExtensionNotSupported: no AUTH mechanism in common.
            LocalProtocolError: the client is already connected.
        """
        if self._stream is not None:
            raise LocalProtocolError("the SMTP client is already connected; use a new one")
        hooks = active(self._hooks)
        if not hooks:
            await self._connect(deadline)
            return
        steps = self._steps = _Steps()
        try:
            await self._connect(deadline)
        except BaseException as exc:
            self._opened(hooks, steps, exc)
            raise
        self._opened(hooks, steps, None)

    def _opened(self, hooks: tuple[Hook, ...], steps: _Steps, error: BaseException | None) -> None:
        self._steps = None
        stream = self._stream
        kind, server = hook_endpoint(self._settings)
        mechanism = self._auth_mechanism
        done = steps.finish(error)
        event = ConnectionOpened(
            kind,
            server,
            steps.start,
            done[-1].end,
            done,
            self.tls_version,
            None if mechanism is None else mechanism.value,
            error,
        )
        emit(hooks, "connection_opened", event)
        if error is None and stream is not None:
            stream.on_close = self._closed

    def _closed(self, abandoned: bool) -> None:
        hooks = active(self._hooks)
        if not hooks:
            return
        kind, server = hook_endpoint(self._settings)
        reason = "abandoned" if abandoned else "quit" if self._quit_ok else "broken"
        lifetime = anyio.current_time() - self._created_at if not abandoned else math.nan
        event = ConnectionClosed(
            kind,
            server,
            reason,
            self.messages_sent,
            lifetime,
        )
        emit(hooks, "connection_closed", event)

    async def _connect(self, deadline: float | None) -> None:
        settings = self._settings
        deadline = self._default_deadline(deadline)
        lmtp = isinstance(settings, LmtpSettings)
        stream = await SmtpStream.open(
            settings.host,
            settings.effective_port,
            conn=ClientConnection(lmtp=lmtp),
            connect_timeout=settings.effective_connect_timeout,
            deadline=deadline,
            local_address=settings.local_address,
            implicit_tls=self._ssl_context if settings.tls is TlsMode.IMPLICIT else None,
            server_name=settings.server_name,
            proxy=settings.proxy,
            unix_socket=settings.unix_socket if isinstance(settings, LmtpSettings) else None,
            logger=self._logger,
        )
        self._stream = stream
        self._created_at = anyio.current_time()
        self._driver = self._new_driver(stream)
        self._deadline = deadline
        try:
            await self._handshake(stream)
        except BaseException:
            await stream.aclose()
            raise
        finally:
            self._deadline = None
        self._last_used = anyio.current_time()

    async def _handshake(self, stream: SmtpStream) -> None:
        settings = self._settings
        greeting = await self._command(stream, None, "the greeting")
        self._greeting = greeting
        if greeting.code != 220:
            raise SmtpConnectError(
                f"{stream.peer} refused the connection: {greeting.code} {greeting.text}",
                transient=greeting.is_transient,
            )
        name = settings.hello_name
        if name is None:
            name = await self._within_deadline(
                default_hello_name(stream.local_ip), "the local host name"
            )
        self._hello_name = name
        await self._ehlo(stream, name)

        steps = self._steps
        if settings.tls in (TlsMode.STARTTLS, TlsMode.OPPORTUNISTIC) and not stream.encrypted:
            if steps is not None:
                steps.begin("starttls")
            await self._starttls(stream, name)

        if settings.credentials is not None:
            if steps is not None:
                steps.begin("auth")
            await self._authenticate(stream)

    async def _ehlo(self, stream: SmtpStream, name: str) -> None:
        lmtp = stream.conn.lmtp
        hello = Lhlo(name) if lmtp else Ehlo(name)
        reply = await self._command(stream, hello, f"the reply to {hello.verb}")
        if reply.code == 250:
            self._capabilities = stream.conn.capabilities or Capabilities()
            return
        if reply.code == 421 or lmtp:  # LMTP has no HELO to fall back on
            raise await self._reply_error(stream, reply, SmtpReplyError, hello.verb)
        # STARTTLS needs ESMTP, and after STARTTLS the server must take EHLO again.
        tls = self._settings.tls
        needs_ehlo = (tls is TlsMode.STARTTLS and not stream.encrypted) or (
            stream.encrypted and tls is not TlsMode.IMPLICIT
        )
        if 500 <= reply.code < 600 and not needs_ehlo:
            # An old server without ESMTP: HELO, and no extensions.
            helo = await self._command(stream, Helo(name), "the reply to HELO")
            if helo.code == 250:
                self._capabilities = Capabilities()
                return
            raise await self._reply_error(stream, helo, SmtpReplyError, "HELO")
        raise await self._reply_error(stream, reply, SmtpReplyError, "EHLO")

    async def _starttls(self, stream: SmtpStream, name: str) -> None:
        settings = self._settings
        required = settings.tls is TlsMode.STARTTLS
        caps = self._capabilities or Capabilities()
        if not caps.starttls:
            if required:
                raise TlsError(
                    f"{stream.peer} does not offer STARTTLS, which is required "
                    "(tls=TlsMode.STARTTLS); nothing else was sent"
                )
            self._logger.debug("%s does not offer STARTTLS; continuing without TLS", stream.peer)
            return
        reply = await self._command(stream, StartTls(), "the reply to STARTTLS")
        if reply.code != 220:
            if reply.code == 421:
                raise await self._reply_error(stream, reply, SmtpReplyError, "STARTTLS")
            if required:
                raise TlsError(
                    f"{stream.peer} refused STARTTLS, which is required: "
                    f"{reply.code} {reply.text}; nothing else was sent",
                    transient=reply.is_transient,
                )
            self._logger.debug(
                "%s refused STARTTLS (%d); continuing without TLS", stream.peer, reply.code
            )
            return
        context = self._ssl_context
        if context is None:  # pragma: no cover - settings.uses_tls guarantees one
            raise TlsError("no TLS context")
        self._capabilities = None
        await stream.start_tls(
            context, settings.server_name, limit=settings.timeout, deadline=self._deadline
        )
        await self._ehlo(stream, name)

    # ------------------------------------------------------------------ AUTH

    async def _authenticate(self, stream: SmtpStream) -> None:
        settings = self._settings
        credentials = settings.credentials
        assert credentials is not None
        if not stream.encrypted and not settings.allow_insecure_auth:
            raise TlsError(
                f"refusing to send credentials to {stream.peer} over an unencrypted "
                "connection; use TLS (TlsMode.STARTTLS or IMPLICIT) or pass "
                "allow_insecure_auth=True"
            )
        caps = self._capabilities or Capabilities()
        if not caps.auth:
            raise ExtensionNotSupported(
                f"{stream.peer} does not offer AUTH, but credentials are configured"
            )
        mechanisms = choose_mechanisms(
            caps.auth,
            encrypted=stream.encrypted,
            has_password=credentials.password is not None,
            has_token_provider=settings.token_provider is not None,
            preference=settings.auth_mechanisms,
        )
        if not mechanisms:
            offered = " ".join(sorted(caps.auth))
            raise ExtensionNotSupported(
                f"no usable AUTH mechanism in common with {stream.peer} (it offers: {offered})"
            )
        for index, mechanism in enumerate(mechanisms):
            try:
                await self._auth_with(stream, mechanism)
            except AuthenticationError as exc:
                # 504: the mechanism is not available after all; try the next.
                if exc.code == 504 and index + 1 < len(mechanisms):
                    continue
                raise
            self._authenticated_as = credentials.username
            self._auth_mechanism = mechanism
            self._logger.debug(
                "authenticated to %s as %s with %s",
                stream.peer,
                credentials.username,
                mechanism.value,
            )
            return

    async def _auth_with(self, stream: SmtpStream, mechanism: AuthMechanism) -> None:
        settings = self._settings
        credentials = settings.credentials
        assert credentials is not None
        cls = mechanism.mechanism_class
        command = f"AUTH {mechanism.value}"
        # A token mechanism is repeated with a fresh token after 535 (the
        # class says how often): the cached token has probably expired.
        for attempt in range(1 + cls.refresh_attempts):
            secret = await self._auth_secret(stream, cls)
            sasl = cls.create(
                credentials.username,
                secret,
                host=settings.host,
                port=settings.effective_port,
            )
            reply = await self._sasl(stream, sasl)
            if reply.code == 235:
                # SCRAM: a server that did not prove it knows the password is refused.
                sasl.check_success()
                return
            if reply.code != 535 or attempt == cls.refresh_attempts:
                break
            self._logger.debug("%s refused with 535; asking for a fresh token", command)
        raise await self._reply_error(stream, reply, AuthenticationError, command)

    async def _auth_secret(self, stream: SmtpStream, cls: type[Mechanism]) -> str:
        """The password, or a token from the token provider, as the mechanism needs."""
        settings = self._settings
        if cls.needs == "token":
            provider = settings.token_provider
            assert provider is not None
            token = await self._within_deadline(provider(), "the token provider")
            if not isinstance(token, str) or not token:
                raise TypeError("the token provider must return a non-empty str")
            return token
        assert settings.credentials is not None
        password = settings.credentials.password
        assert password is not None
        return password

    async def _sasl(self, stream: SmtpStream, mechanism: Mechanism) -> Reply:
        what = f"the reply to AUTH {mechanism.name}"
        reply = await self._command(
            stream, Auth(mechanism.name, mechanism.initial_response()), what
        )
        while reply.code == 334:
            try:
                response = mechanism.respond(decode_challenge(reply))
            except ProtocolError:
                # A challenge we cannot answer: cancel the exchange (RFC 4954).
                await self._command(stream, AuthCancel(), what)
                raise
            reply = await self._command(stream, AuthResponse(response), what)
        return reply

    # ------------------------------------------------------------------ commands

    async def _command(self, stream: SmtpStream, command: Command | None, what: str) -> Reply:
        """One command (None: the greeting) and its reply, through the driver."""
        driver = self._driver
        if driver is None:
            driver = self._driver = self._new_driver(stream)
        reply = await driver.command(command, what=what, deadline=self._deadline)
        return reply

    async def _within_deadline(self, awaitable: Awaitable[T], what: str) -> T:
        """Await something that is not I/O on the connection within the current deadline."""
        deadline = self._deadline
        if deadline is None:
            return await awaitable
        with anyio.CancelScope(deadline=deadline):
            return await awaitable
        peer = self._stream.peer if self._stream is not None else self._settings.host
        raise SmtpTimeoutError(f"the deadline passed while waiting for {what} ({peer})")

    async def _reply_error(
        self,
        stream: SmtpStream,
        reply: Reply,
        cls: type[SmtpReplyError],
        command: str,
    ) -> SmtpReplyError:
        """Build the error for a negative reply; a 421 also closes the connection."""
        if reply.code == 421:
            self._logger.debug("%s is closing the connection (421)", stream.peer)
            await stream.aclose()
        return cls(
            reply.code,
            reply.text,
            enhanced_status=reply.enhanced_status,
            command=command,
        )

    async def rset(self) -> None:
        """Abort any transaction (RSET); the connection stays open.

        Raises:
            SmtpReplyError: the server refused RSET.
            ServerDisconnected, SmtpTimeoutError: the connection failed.
        """
        stream = self._require_stream()
        self._deadline = self._default_deadline(None)
        try:
            reply = await self._command(stream, Rset(), "the reply to RSET")
        finally:
            self._deadline = None
        if reply.code != 250:
            raise await self._reply_error(stream, reply, SmtpReplyError, "RSET")

    async def noop(self) -> Reply:
        """Send NOOP and return the server's reply (a liveness check).

        Raises:
            SmtpReplyError: the server answered with an error.
            ServerDisconnected, SmtpTimeoutError: the connection failed.
        """
        stream = self._require_stream()
        self._deadline = self._default_deadline(None)
        try:
            reply = await self._command(stream, Noop(), "the reply to NOOP")
        finally:
            self._deadline = None
        if not 200 <= reply.code < 300:
            raise await self._reply_error(stream, reply, SmtpReplyError, "NOOP")
        return reply

    async def check(self) -> bool:
        """Whether the connection still works (NOOP answered); for connection pools.

        Never raises for connection trouble: a failed check returns False and
        leaves the client unusable.
        """
        if not self.is_usable:
            return False
        try:
            await self.noop()
        except (SmtpError, ProtocolError):
            if self._stream is not None:
                await self._stream.aclose()
            return False
        return True

    async def quit(self) -> None:
        """Say QUIT, read the reply and close the connection.

        Raises:
            ServerDisconnected, SmtpTimeoutError: the connection failed first
                (it is closed anyway).
        """
        await self._quit(self._default_deadline(None))

    async def _quit(self, deadline: float | None) -> None:
        stream = self._require_stream()
        self._deadline = deadline
        try:
            await self._command(stream, Quit(), "the reply to QUIT")
            self._quit_ok = True
        finally:
            self._deadline = None
            await stream.aclose()

    async def abort(self) -> None:
        """Close the socket at once, without QUIT (shielded; never raises).

        For a connection that carries replies nobody will read.
        """
        stream = self._stream
        if stream is not None:
            await stream.aclose()

    def abandon(self) -> None:
        """Shut the socket down at once, without its event loop (never raises).

        For a connection whose event loop is closed: nothing can be awaited
        there any more.
        """
        stream = self._stream
        if stream is not None:
            stream.abandon()

    async def aclose(self) -> None:
        """Close the connection: QUIT when it is usable (bounded), then the socket.

        Shielded from cancellation, never raises for connection trouble, and
        safe to call more than once.
        """
        stream = self._stream
        if stream is None or stream.closed:
            return
        with anyio.CancelScope(shield=True):
            if self.is_usable:
                limit = min(self._settings.timeout, _QUIT_TIMEOUT)
                with contextlib.suppress(SmtpError, ProtocolError):
                    await self._quit(anyio.current_time() + limit)
            await stream.aclose()

    # ------------------------------------------------------------------ sending

    @property
    def driver(self) -> TransactionDriver:
        """What runs this connection's commands and mail transactions (after :meth:`connect`).

        Raises:
            LocalProtocolError: not connected, or the session is not open.
            ServerDisconnected: the connection is no longer usable.
        """
        driver = self._driver
        if driver is None or self._capabilities is None:
            self._require_stream()
            raise LocalProtocolError("the SMTP client has not finished connecting")
        return driver

    def _new_driver(self, stream: SmtpStream) -> TransactionDriver:
        settings = self._settings
        engine = TransactionEngine(
            stream.conn,
            require_all_recipients=settings.require_all_recipients,
            peer=stream.peer,
        )
        cls: type[TransactionDriver]
        cls = AsyncioDriver if stream.asyncio_byte_stream is not None else AnyioDriver
        return cls(
            stream,
            engine,
            timeout=settings.timeout,
            data_timeout=settings.data_timeout,
        )

    @property
    def current_driver(self) -> TransactionDriver | None:
        """The driver once the connection was made, else None."""
        return self._driver

    async def send(
        self, envelope: Envelope, data: bytes | MessageContent, *, deadline: float | None = None
    ) -> SendResult:
        """Send one message over this connection.

        Args:
            envelope: the reverse path and the recipients.
            data: the message, serialised (CRLF line endings; bare CR or LF are
                normalised, leading dots stuffed); or a
                :class:`~lettre.message.MessageContent`, read and written a
                chunk at a time.
            deadline: an absolute time on anyio's clock for the whole
                transaction; default ``settings.deadline`` from now.

        Returns:
            Every recipient's outcome and the final reply. Recipients the
            server refused are reported in it when others were accepted.

        Raises:
            MessageTooLarge: larger than the server's SIZE (nothing sent).
            ExtensionNotSupported: the message needs SMTPUTF8 or 8BITMIME and
                the server lacks it (nothing sent).
            SenderRefused: MAIL refused (after RSET; the connection stays
                usable unless the reply was 421).
            RecipientsRefused: every recipient refused, or any with
                ``require_all_recipients`` (after RSET; nothing delivered).
            DataRefused: DATA, BDAT or the content refused.
            OutcomeUnknown: the connection broke, or the deadline passed, after
                the end of data was written and before the final reply.
            ServerDisconnected, SmtpTimeoutError: the connection failed before
                the content was handed over (safe to retry).
        """
        ticket = Ticket(envelope, data, self._default_deadline(deadline))
        ticket.tx = self.prepare(envelope, data)
        return await self.driver.send(ticket)

    def prepare(self, envelope: Envelope, data: bytes | MessageContent) -> Transaction:
        """Check a message against the server's capabilities and build its transaction.

        Nothing is sent; :attr:`last_transaction` becomes this one.

        Raises:
            TypeError: ``envelope`` is not an Envelope or ``data`` not bytes.
            MessageError: ``data`` contains a NUL byte.
            MessageTooLarge: larger than the server's SIZE.
            ExtensionNotSupported: SMTPUTF8 or 8BITMIME needed and not offered.
            LocalProtocolError: not connected.
            ServerDisconnected: the connection is no longer usable.
        """
        driver = self.driver
        if self.is_broken:
            self._require_stream()
        tx = (
            driver.engine.prepare(envelope, data)
            if type(data) is bytes
            else driver.prepare(envelope, data)
        )
        self.last_transaction = tx
        return tx
