"""SmtpClient: one SMTP connection, from the greeting to QUIT.

A client connects (TCP, implicit TLS or STARTTLS, EHLO, AUTH), then carries
any number of mail transactions, then quits. :meth:`SmtpClient.send` runs a
whole transaction; connection pools drive the same transaction in phases so
that, on a pipelining server, the end of one message and the envelope of the
next go out in one write::

    tx = client.prepare(envelope, data)           # checks only, nothing sent
    async with client.operation(deadline):
        await client.write(client.encode_envelope(tx))   # MAIL, RCPT..., DATA
        await client.complete_envelope(tx)               # their replies
        await client.write(client.encode_content(tx))    # content + end of data
        result = await client.complete(tx)               # the final reply

A pool may write ``client.encode_content(tx_a) + client.encode_envelope(tx_b)``
in one :meth:`SmtpClient.write` and then read ``complete(tx_a)`` and
``complete_envelope(tx_b)`` in that order.

With PIPELINING and CHUNKING, a message of at most
:data:`PIPELINED_BDAT_LIMIT` octets goes in one flight (MAIL, RCPT...,
``BDAT <n> LAST`` and the content: ``tx.content_in_flight``); its envelope's
replies and its final reply are all read by :meth:`SmtpClient.complete`::

    await client.write(client.encode_envelope(tx))   # MAIL, RCPT..., BDAT LAST
    result = await client.complete(tx)               # every reply
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from lettre.envelope import Envelope
from lettre.errors import (
    AuthenticationError,
    DataRefused,
    ExtensionNotSupported,
    LocalProtocolError,
    MessageError,
    MessageTooLarge,
    OutcomeUnknown,
    ProtocolError,
    RecipientsRefused,
    SenderRefused,
    ServerDisconnected,
    SmtpConnectError,
    SmtpError,
    SmtpReplyError,
    TlsError,
)
from lettre.protocol.commands import (
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
)
from lettre.protocol.connection import ClientConnection
from lettre.protocol.extensions import Capabilities
from lettre.protocol.replies import queue_id_from_reply
from lettre.protocol.sasl import Mechanism, decode_challenge
from lettre.protocol.state import ClientState
from lettre.results import (
    RecipientResult,
    SendResult,
    new_recipient_result,
    new_send_result,
)
from lettre.smtp.auth import AuthMechanism, choose_mechanisms
from lettre.smtp.settings import SmtpSettings, default_hello_name
from lettre.smtp.stream import Operation, SmtpStream, transcript_logger
from lettre.smtp.tls import TlsMode

if TYPE_CHECKING:
    from lettre.protocol.commands import Command
    from lettre.protocol.replies import Reply

__all__ = ["SmtpClient", "Transaction", "TransactionStage", "queue_id_from_reply"]

_QUIT_TIMEOUT = 5.0

#: The largest message (in octets, as given) whose ``BDAT LAST`` goes in the
#: same flight as its MAIL and RCPT commands when the server offers PIPELINING
#: and CHUNKING. A larger message waits for the RCPT replies first, so that a
#: big body never goes out before any recipient is known to be accepted.
PIPELINED_BDAT_LIMIT = 64 * 1024
_ACCEPTED = frozenset({250, 251})


def _nul_error(data: bytes) -> MessageError:
    """The error for message content with a NUL byte: it must never reach DATA or BDAT.

    A server that drops NUL would read ``<CRLF>.<NUL><CRLF>`` as the end of
    data (SMTP smuggling), so such content is refused before anything is sent.
    """
    offset = data.find(b"\x00")
    around = data[max(0, offset - 20) : offset + 20]
    return MessageError(
        f"the message content has a NUL byte at offset {offset} (near {around!r}); "
        "SMTP cannot carry NUL in DATA or BDAT. Transfer-encode the part that holds it "
        "(quoted-printable or base64, as Message.builder() does) or remove it; nothing was sent"
    )


class TransactionStage(enum.Enum):
    """How far a :class:`Transaction` got.

    Attributes:
        PREPARED: checked, nothing sent.
        ENVELOPE: MAIL (and RCPT/DATA) encoded or written.
        ACCEPTING: the envelope was accepted; the content may be sent.
        CONTENT: the content and the end of data were written: from here a
            broken connection leaves the outcome unknown.
        DONE: the final reply was positive.
        FAILED: the transaction ended without delivery (refusal or error).
    """

    PREPARED = "prepared"
    ENVELOPE = "envelope"
    ACCEPTING = "accepting"
    CONTENT = "content"
    DONE = "done"
    FAILED = "failed"


@dataclass(eq=False, slots=True)
class Transaction:
    """One mail transaction on an :class:`SmtpClient`, made by :meth:`SmtpClient.prepare`.

    Attributes:
        envelope: the envelope being sent.
        data: the message bytes.
        mail: the MAIL command.
        rcpts: the RCPT commands, one per forward path.
        recipients: the forward paths as the results name them.
        use_bdat: whether the content goes with BDAT (CHUNKING) instead of DATA.
        pipelined: whether MAIL and RCPT go in one flight (PIPELINING).
        data_in_flight: whether DATA goes in the same flight as MAIL and RCPT.
        content_in_flight: whether the content (one ``BDAT <n> LAST``) goes in
            the same flight as MAIL and RCPT; :meth:`SmtpClient.complete` then
            reads every reply of the transaction.
        rset_first: whether the envelope's flight starts with RSET (the
            previous transaction may still be open on the server; see
            ``ClientConnection.needs_rset``); its reply is read first.
        stage: how far the transaction got.
        results: each recipient's outcome, once the RCPT replies are read.
        reply: the final reply, once read.
        content_sent: whether the content was handed to the connection: if
            not, sending the message again elsewhere cannot deliver it twice.
    """

    envelope: Envelope
    data: bytes
    mail: Mail
    rcpts: tuple[Rcpt, ...]
    recipients: tuple[str, ...]
    use_bdat: bool
    pipelined: bool
    data_in_flight: bool
    content_in_flight: bool = False
    rset_first: bool = False
    stage: TransactionStage = TransactionStage.PREPARED
    results: list[RecipientResult] = field(default_factory=list)
    reply: Reply | None = None
    content_sent: bool = False
    """Whether the content and the end of data were handed to the server.

    When a failure happens with this False, the server cannot have accepted
    the message: sending it again (on a fresh connection) is safe.
    """


class SmtpClient:
    """One SMTP connection.

    Args:
        settings: where to connect and how (see :class:`SmtpSettings`).
        ssl_context: the TLS context to use; built from ``settings`` when None
            (share one context between clients: building one loads the trust
            store).
        logger: the logger for the transcript; ``lettre.smtp`` by default.

    The client is not safe for concurrent use: one task at a time (a pool or
    :class:`~lettre.transports.smtp.SmtpTransport` guarantees that).
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if not isinstance(settings, SmtpSettings):
            raise TypeError("settings must be an SmtpSettings")
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
        self._pending_content: list[Transaction] = []
        self._messages_sent = 0
        self._transactions = 0
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
            and not self._pending_content
            and stream.unacknowledged_content == 0
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
        return self._transactions

    @property
    def messages_accepted(self) -> int:
        """How many messages the server accepted on this connection."""
        return self._messages_sent

    @property
    def created_at(self) -> float:
        """When the connection was opened (``anyio.current_time()``; NaN before)."""
        return self._created_at

    @property
    def last_used(self) -> float:
        """When the connection last completed a command (``anyio.current_time()``)."""
        return self._last_used

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

    def operation(self, deadline: float | None = None, *, io_only: bool = False) -> Operation:
        """An async context manager bounding the I/O inside it by one cancel scope.

        Args:
            deadline: an absolute time on anyio's clock (``anyio.current_time()``)
                after which everything inside fails with
                :class:`~lettre.errors.SmtpTimeoutError`; None for none (each
                wait still has its timeout).
            io_only: promise that nothing but this client's reads and writes
                is awaited inside (the transaction methods qualify). On asyncio
                the timeouts are then enforced by the connection's own waits,
                which is cheaper than a cancel scope; the errors are the same.
        """
        return self._require_stream().operation(deadline, io_only=io_only)

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
        settings = self._settings
        deadline = self._default_deadline(deadline)
        stream = await SmtpStream.open(
            settings.host,
            settings.effective_port,
            conn=ClientConnection(),
            connect_timeout=settings.effective_connect_timeout,
            deadline=deadline,
            local_address=settings.local_address,
            implicit_tls=self._ssl_context if settings.tls is TlsMode.IMPLICIT else None,
            server_name=settings.server_name,
            logger=self._logger,
        )
        self._stream = stream
        self._created_at = anyio.current_time()
        try:
            async with stream.operation(deadline):
                await self._handshake(stream)
        except BaseException:
            await stream.aclose()
            raise
        self._last_used = anyio.current_time()

    async def _handshake(self, stream: SmtpStream) -> None:
        settings = self._settings
        timeout = settings.timeout
        greeting = await stream.read_reply(limit=timeout, what="the greeting")
        self._greeting = greeting
        if greeting.code != 220:
            raise SmtpConnectError(
                f"{stream.peer} refused the connection: {greeting.code} {greeting.text}",
                transient=greeting.is_transient,
            )
        name = settings.hello_name
        if name is None:
            stream.relax()
            name = await default_hello_name(stream.local_ip)
        self._hello_name = name
        await self._ehlo(stream, name)

        if settings.tls in (TlsMode.STARTTLS, TlsMode.OPPORTUNISTIC) and not stream.encrypted:
            await self._starttls(stream, name)

        if settings.credentials is not None:
            await self._authenticate(stream)

    async def _ehlo(self, stream: SmtpStream, name: str) -> None:
        reply = await self._command(stream, Ehlo(name), "the reply to EHLO")
        if reply.code == 250:
            self._capabilities = stream.conn.capabilities or Capabilities()
            return
        if reply.code == 421:
            raise await self._reply_error(stream, reply, SmtpReplyError, "EHLO")
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
        await stream.start_tls(context, settings.server_name, limit=settings.timeout)
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
            stream.relax()
            token = await provider()
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

    async def _command(self, stream: SmtpStream, command: Command, what: str) -> Reply:
        await stream.write(stream.encode(command), limit=self._settings.timeout)
        reply = await stream.read_reply(limit=self._settings.timeout, what=what)
        self._last_used = stream.now()
        return reply

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
        async with stream.operation(self._default_deadline(None)):
            reply = await self._command(stream, Rset(), "the reply to RSET")
            if reply.code != 250:
                raise await self._reply_error(stream, reply, SmtpReplyError, "RSET")

    async def noop(self) -> Reply:
        """Send NOOP and return the server's reply (a liveness check).

        Raises:
            SmtpReplyError: the server answered with an error.
            ServerDisconnected, SmtpTimeoutError: the connection failed.
        """
        stream = self._require_stream()
        async with stream.operation(self._default_deadline(None)):
            reply = await self._command(stream, Noop(), "the reply to NOOP")
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
        stream = self._require_stream()
        try:
            async with stream.operation(self._default_deadline(None)):
                await self._command(stream, Quit(), "the reply to QUIT")
        finally:
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
                with (
                    anyio.move_on_after(min(self._settings.timeout, _QUIT_TIMEOUT)),
                    contextlib.suppress(SmtpError, ProtocolError),
                ):
                    await self.quit()
            await stream.aclose()

    # ------------------------------------------------------------------ sending

    async def send(
        self, envelope: Envelope, data: bytes, *, deadline: float | None = None
    ) -> SendResult:
        """Send one message over this connection.

        Args:
            envelope: the reverse path and the recipients.
            data: the message, serialised (CRLF line endings; bare CR or LF are
                normalised, leading dots stuffed).
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
        tx = self.prepare(envelope, data)
        stream = self._require_stream()
        async with stream.operation(self._default_deadline(deadline), io_only=True):
            await self.write(self.encode_envelope(tx))
            if not tx.content_in_flight:
                await self.complete_envelope(tx)
                await self.write(self.encode_content(tx))
            return await self.complete(tx)

    def prepare(self, envelope: Envelope, data: bytes) -> Transaction:
        """Check a message against the server's capabilities and build its commands.

        Nothing is sent.

        Args:
            envelope: the reverse path, the recipients and their DSN options.
            data: the message, CRLF line endings.

        Returns:
            The transaction, in the PREPARED stage.

        Raises:
            TypeError: ``envelope`` is not an Envelope or ``data`` not bytes.
            MessageError: ``data`` contains a NUL byte.
            MessageTooLarge: larger than the server's SIZE.
            ExtensionNotSupported: SMTPUTF8 or 8BITMIME needed and not offered.
            LocalProtocolError: not connected.
            ServerDisconnected: the connection is no longer usable.
        """
        if not isinstance(envelope, Envelope):
            raise TypeError(f"envelope must be an Envelope, not {type(envelope).__name__}")
        if type(data) is not bytes:
            if isinstance(data, (bytearray, memoryview)):
                data = bytes(data)
            if not isinstance(data, bytes):
                raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if b"\x00" in data:
            raise _nul_error(data)
        stream = self._stream
        if stream is None or stream.broken or stream.closed:
            stream = self._require_stream()  # raises the right error
        caps = self._capabilities
        if caps is None:
            raise LocalProtocolError("the SMTP client has not finished connecting")

        size = caps.size
        if size and len(data) > size:
            raise MessageTooLarge(
                f"the message is {len(data)} bytes; {stream.peer} accepts at most {size}"
            )

        reverse_path = envelope.reverse_path
        forward_paths = envelope.forward_paths
        # Each address is rendered once; ASCII-only envelopes (nearly all)
        # take their paths as they are.
        recipients = tuple(map(str, forward_paths))
        reverse = str(reverse_path) if reverse_path is not None else ""
        ascii_only = reverse.isascii() and all(map(str.isascii, recipients))
        body: str | None = None
        smtputf8 = False
        if not ascii_only or not data.isascii():
            smtputf8, body = self._international(envelope, data, caps, reverse, ascii_only)

        paths = recipients
        if not ascii_only and not smtputf8:
            # Internationalised domains only: their A-label forms.
            paths = tuple(
                text if text.isascii() else address.to_ascii()
                for text, address in zip(recipients, forward_paths, strict=True)
            )
            if reverse_path is not None and not reverse.isascii():
                reverse = reverse_path.to_ascii()

        notify = None
        orcpt = False
        if caps.dsn:
            mail = Mail(
                reverse,
                size=len(data) if size is not None else None,
                body=body,
                smtputf8=smtputf8,
                ret=envelope.ret,
                envid=envelope.envid,
            )
            notify = envelope.notify
            orcpt = envelope.orcpt
        else:
            if envelope.has_dsn:
                self._logger.debug(
                    "%s does not offer DSN; the DSN parameters are not sent", stream.peer
                )
            mail = Mail(
                reverse,
                size=len(data) if size is not None else None,
                body=body,
                smtputf8=smtputf8,
            )
        if notify is None and not orcpt:
            rcpts = tuple(map(Rcpt, paths))
        else:
            rcpts = tuple(
                Rcpt(forward, notify=notify, orcpt=forward if orcpt else None) for forward in paths
            )
        pipelined = caps.pipelining
        # Content that goes before the RCPT replies cannot be taken back:
        # not when every recipient must be accepted, nor for a big body.
        early = pipelined and not self._settings.require_all_recipients
        if not caps.chunking:
            return Transaction(envelope, data, mail, rcpts, recipients, False, pipelined, early)
        return Transaction(
            envelope,
            data,
            mail,
            rcpts,
            recipients,
            True,
            pipelined,
            False,
            early and len(data) <= PIPELINED_BDAT_LIMIT,
        )

    def _international(
        self,
        envelope: Envelope,
        data: bytes,
        caps: Capabilities,
        reverse: str,
        ascii_only: bool,
    ) -> tuple[bool, str | None]:
        """SMTPUTF8 and BODY for a message with non-ASCII addresses or content.

        Raises:
            ExtensionNotSupported: the server lacks what the message needs.
        """
        peer = self._require_stream().peer
        smtputf8 = False
        if not ascii_only:
            if caps.smtputf8:
                smtputf8 = True
            elif envelope.needs_smtputf8:
                raise ExtensionNotSupported(
                    f"an address has a non-ASCII local part, which needs SMTPUTF8; "
                    f"{peer} does not offer it"
                )
        body: str | None = None
        if not data.isascii():
            if not caps.eightbitmime:
                raise ExtensionNotSupported(
                    f"the message has 8-bit content and {peer} does not offer 8BITMIME"
                )
            body = "8BITMIME"
            if caps.smtputf8 and not smtputf8:
                # UTF-8 header fields (RFC 6532, e.g. an address with a
                # non-ASCII local part in From) make it an internationalised
                # message even when the envelope is plain ASCII.
                end = data.find(b"\r\n\r\n")
                smtputf8 = not data[: end if end >= 0 else len(data)].isascii()
        return smtputf8, body

    def encode_envelope(self, tx: Transaction) -> bytes:
        """The first flight of ``tx``: MAIL, and with PIPELINING every RCPT (and DATA).

        Nothing is written; pass the bytes to :meth:`write` (possibly joined
        after another transaction's :meth:`encode_content`).

        With ``tx.content_in_flight`` the flight also holds the content, as
        one ``BDAT <n> LAST``: the next :meth:`write` moves ``tx`` to the
        CONTENT stage. When the previous transaction may still be open on the
        server, the flight starts with RSET (``tx.rset_first``).

        Args:
            tx: a transaction from :meth:`prepare`.
        """
        if tx.stage is not TransactionStage.PREPARED:
            raise LocalProtocolError("this transaction's envelope was already sent")
        stream = self._stream
        if stream is None or stream.broken or stream.closed:
            stream = self._require_stream()
        if not tx.pipelined:
            out = stream.encode(tx.mail)
        elif not tx.use_bdat:
            out = stream.encode_envelope(tx.mail, tx.rcpts, tx.data_in_flight)
        else:
            out = b""
            if stream.conn.needs_rset:
                out = stream.encode(Rset())
                tx.rset_first = True
            out += stream.encode_envelope(tx.mail, tx.rcpts, False)
            if tx.content_in_flight:
                out += stream.encode(Bdat(tx.data, last=True))
                self._pending_content.append(tx)
        tx.stage = TransactionStage.ENVELOPE
        self._transactions += 1
        self.last_transaction = tx
        return out

    async def write(self, data: bytes) -> None:
        """Write a flight of bytes from ``encode_envelope``/``encode_content`` at once.

        Once the write completes, every transaction whose content was in it is
        in the CONTENT stage: a failure from then on until its final reply is
        :class:`~lettre.errors.OutcomeUnknown`.

        Args:
            data: the bytes to write.

        Raises:
            SmtpTimeoutError: the server did not read the bytes in time
                (``timeout`` seconds, ``data_timeout`` with content in them).
            ServerDisconnected: the connection broke; :class:`OutcomeUnknown`
                when earlier content had not been answered yet.
        """
        stream = self._require_stream()
        pending = self._pending_content
        if pending:
            limit = self._settings.data_timeout
            what = "the server to read the message"
        else:
            limit = self._settings.timeout
            what = "the server to read the commands"
        try:
            await stream.write(data, limit=limit, what=what)
        except BaseException:
            for tx in pending:
                tx.stage = TransactionStage.FAILED
            pending.clear()
            raise
        self.content_written()

    def content_written(self, now: float | None = None) -> None:
        """Record that everything encoded so far was handed to the connection.

        Every transaction whose content was encoded moves to the CONTENT
        stage. :meth:`write` calls it; a driver that writes the bytes itself
        (synchronously) calls it right after.

        Args:
            now: the current time on the pool's clock (seconds), if the caller
                has it; by default it is read.
        """
        stream = self._stream
        if stream is None:
            stream = self._require_stream()
        pending = self._pending_content
        for tx in pending:
            tx.stage = TransactionStage.CONTENT
            tx.content_sent = True
            stream.unacknowledged_content += 1
        pending.clear()
        self._last_used = stream.now() if now is None else now

    async def complete_envelope(self, tx: Transaction) -> None:
        """Read the replies to the envelope (sending the rest in lock-step without PIPELINING).

        Returns when the server is ready for the content.

        Args:
            tx: a transaction whose :meth:`encode_envelope` bytes were written.

        Raises:
            SenderRefused, RecipientsRefused, DataRefused: as for :meth:`send`;
                the transaction was reset and the connection stays usable
                unless the reply was 421.
        """
        if tx.stage is not TransactionStage.ENVELOPE:
            raise LocalProtocolError(
                "complete_envelope() needs a transaction whose envelope was sent"
            )
        stream = self._require_stream()
        try:
            await self._envelope_replies(stream, tx)
        except BaseException:
            if tx.stage is TransactionStage.ENVELOPE:
                tx.stage = TransactionStage.FAILED
            raise
        tx.stage = TransactionStage.ACCEPTING
        self._last_used = stream.now()

    async def _envelope_replies(self, stream: SmtpStream, tx: Transaction) -> None:
        timeout = self._settings.timeout
        if tx.rset_first:
            reply = await stream.read_reply(limit=timeout, what="the reply to RSET")
            if reply.code == 421:
                raise await self._reply_error(stream, reply, SmtpReplyError, "RSET")
        mail_reply = await stream.read_reply(limit=timeout, what="the reply to MAIL")
        if mail_reply.code == 421:
            raise await self._reply_error(stream, mail_reply, SenderRefused, "MAIL")

        if not tx.pipelined:
            if mail_reply.code != 250:
                await self._abort(stream, tx, data_reply=None)
                raise await self._reply_error(stream, mail_reply, SenderRefused, "MAIL")
            for rcpt, recipient in zip(tx.rcpts, tx.recipients, strict=True):
                reply = await self._command(stream, rcpt, "the reply to RCPT")
                if reply.code == 421:
                    raise await self._reply_error(stream, reply, SmtpReplyError, "RCPT")
                tx.results.append(RecipientResult(recipient, reply.code in (250, 251), reply))
        else:
            for recipient in tx.recipients:
                reply = await stream.read_reply(limit=timeout, what="the reply to RCPT")
                if reply.code == 421:
                    raise await self._reply_error(stream, reply, SmtpReplyError, "RCPT")
                tx.results.append(RecipientResult(recipient, reply.code in (250, 251), reply))

        data_reply: Reply | None = None
        if tx.data_in_flight:
            data_reply = await stream.read_reply(limit=timeout, what="the reply to DATA")
            if data_reply.code == 421:
                raise await self._reply_error(stream, data_reply, DataRefused, "DATA")

        if mail_reply.code != 250:
            await self._abort(stream, tx, data_reply=data_reply)
            raise await self._reply_error(stream, mail_reply, SenderRefused, "MAIL")
        refused = [r for r in tx.results if not r.accepted]
        if len(refused) == len(tx.results) or (refused and self._settings.require_all_recipients):
            await self._abort(stream, tx, data_reply=data_reply)
            raise self._recipients_refused(tx, refused)

        if not tx.use_bdat:
            if data_reply is None:
                data_reply = await self._command(stream, Data(), "the reply to DATA")
            if data_reply.code != 354:
                if data_reply.code != 421:
                    await self._abort(stream, tx, data_reply=data_reply)
                raise await self._reply_error(stream, data_reply, DataRefused, "DATA")

    def _recipients_refused(
        self, tx: Transaction, refused: list[RecipientResult]
    ) -> RecipientsRefused:
        first = refused[0].reply
        code = first.code if first is not None else 550
        text = first.text if first is not None else "recipient refused"
        count = len(refused)
        total = len(tx.results)
        if count == total:
            summary = f"the server refused every recipient ({count})"
        else:
            summary = (
                f"the server refused {count} of {total} recipients and "
                "require_all_recipients is set; nothing was sent"
            )
        details = "; ".join(
            f"{r.recipient}: {r.reply.code if r.reply else '?'} {r.reply.text if r.reply else ''}"
            for r in refused[:5]
        )
        more = f" (and {count - 5} more)" if count > 5 else ""
        return RecipientsRefused(
            code,
            text,
            results=tuple(tx.results),
            enhanced_status=first.enhanced_status if first is not None else None,
            message=f"{summary}: {details}{more}",
        )

    async def _abort(
        self, stream: SmtpStream, tx: Transaction, *, data_reply: Reply | None
    ) -> None:
        """End a refused transaction so the connection can carry the next one."""
        tx.stage = TransactionStage.FAILED
        try:
            if data_reply is not None and data_reply.code == 354:
                if any(r.accepted for r in tx.results):
                    # The server would deliver whatever ends this DATA: drop the
                    # connection instead of sending a message nobody asked for.
                    await stream.aclose()
                    return
                # No valid recipient: an empty message goes nowhere (RFC 2920 3.1).
                await stream.write(stream.encode(EndOfData()), limit=self._settings.timeout)
                await stream.read_reply(
                    limit=self._settings.timeout, what="the reply to the end of data"
                )
            reply = await self._command(stream, Rset(), "the reply to RSET")
            if reply.code != 250:
                await stream.aclose()
        except (SmtpError, ProtocolError):
            # The refusal is what the caller needs to hear; the broken
            # connection is closed by the enclosing operation.
            stream.broken = True

    def encode_content(self, tx: Transaction) -> bytes:
        """The content of ``tx`` and the end of data (DATA), or one ``BDAT ... LAST``.

        Nothing is written; the next :meth:`write` moves ``tx`` to the CONTENT
        stage.

        Args:
            tx: a transaction whose envelope was accepted
                (:meth:`complete_envelope`).
        """
        if tx.stage is not TransactionStage.ACCEPTING:
            raise LocalProtocolError(
                "encode_content() needs a transaction whose envelope was accepted"
            )
        stream = self._stream
        if stream is None or stream.broken or stream.closed:
            stream = self._require_stream()
        if tx.use_bdat:
            out = stream.encode(Bdat(tx.data, last=True))
        else:
            out = stream.encode_content(tx.data)
        self._pending_content.append(tx)
        return out

    async def complete(self, tx: Transaction) -> SendResult:
        """Read the final reply of ``tx`` and return its result.

        With ``tx.content_in_flight`` every reply of the transaction is read
        here (see :meth:`flight_outcome`).

        Args:
            tx: a transaction whose :meth:`encode_content` bytes were written
                (or, with ``tx.content_in_flight``, its :meth:`encode_envelope`
                bytes).

        Raises:
            DataRefused: the server refused the message (a 421 also closes the
                connection).
            SenderRefused, RecipientsRefused: with ``tx.content_in_flight``,
                MAIL or every recipient refused.
            OutcomeUnknown: the connection broke or timed out before the reply.
            ServerDisconnected: with ``tx.content_in_flight``, a 421 ended the
                session before the server read this transaction (nothing was
                delivered).
        """
        stream = self._stream
        if stream is None or stream.broken or stream.closed:
            self._gone(stream, tx)
            stream = self._require_stream()
        if tx.stage is not TransactionStage.CONTENT:
            raise LocalProtocolError("complete() needs a transaction whose content was written")
        try:
            if tx.content_in_flight:
                outcome = await self._flight_replies(stream, tx)
            else:
                reply = await stream.read_reply(
                    limit=self._settings.data_timeout,
                    what="the reply to BDAT" if tx.use_bdat else "the reply to the end of data",
                )
                outcome = self.final_outcome(tx, reply)
        except BaseException:
            tx.stage = TransactionStage.FAILED
            raise
        if not isinstance(outcome, SendResult):
            if stream.conn.state is ClientState.CLOSED:
                self._logger.debug("%s is closing the connection (421)", stream.peer)
                await stream.aclose()
            raise outcome
        return outcome

    def _gone(self, stream: SmtpStream | None, tx: Transaction) -> None:
        """Raise for a transaction whose connection ended before its replies were read.

        With its content in its envelope's flight and a 421 before it (the
        core is CLOSED), the server stopped before reading it: nothing was
        delivered, and sending it again is safe. Content written otherwise
        makes the outcome unknown. Anything else is left to
        :meth:`_require_stream`.
        """
        if stream is None:
            return
        if tx.content_in_flight and stream.conn.state is ClientState.CLOSED:
            tx.stage = TransactionStage.FAILED
            tx.content_sent = False
            raise ServerDisconnected(
                f"{stream.peer} closed the connection (421) before it read this message; "
                "nothing was delivered"
            )
        if tx.content_sent and tx.stage is TransactionStage.CONTENT:
            tx.stage = TransactionStage.FAILED
            raise OutcomeUnknown(
                f"the connection to {stream.peer} ended before the reply to the message; "
                "it may or may not have been accepted (do not retry blindly)"
            )

    async def _flight_replies(self, stream: SmtpStream, tx: Transaction) -> SendResult | SmtpError:
        """Read every reply of a ``content_in_flight`` transaction and make its outcome."""
        timeout = self._settings.timeout
        replies: list[Reply] = []
        steps = ["RSET"] if tx.rset_first else []
        steps.append("MAIL")
        steps.extend(["RCPT"] * len(tx.rcpts))
        for verb in steps:
            reply = await stream.read_reply(limit=timeout, what=f"the reply to {verb}")
            replies.append(reply)
            if reply.code == 421:
                return self.flight_outcome(tx, replies)
        reply = await stream.read_reply(limit=self._settings.data_timeout, what="the reply to BDAT")
        replies.append(reply)
        return self.flight_outcome(tx, replies)

    def flight_outcome(
        self, tx: Transaction, replies: list[Reply], now: float | None = None
    ) -> SendResult | SmtpError:
        """Record the replies of a ``content_in_flight`` transaction and make its result or error.

        ``replies`` answer, in order, RSET (with ``tx.rset_first``), MAIL,
        every RCPT and the BDAT LAST; fewer when one of them was a 421, which
        is then the last (the server closed: the caller closes the
        connection). The error is returned, not raised:

        - MAIL refused: :class:`~lettre.errors.SenderRefused`;
        - every RCPT refused (the server refused the content too):
          :class:`~lettre.errors.RecipientsRefused` with every recipient's
          reply; the next MAIL on this connection follows an RSET;
        - some RCPT refused: the message went to the others, whose results
          say so, unless the content was refused
          (:class:`~lettre.errors.DataRefused`);
        - MAIL refused although the content was accepted (the server applied
          it to something else): :class:`~lettre.errors.OutcomeUnknown`, and
          the connection is not used again.

        Args:
            tx: the transaction the replies answer.
            replies: the replies, in order.
            now: the current time on the pool's clock, if the caller has it.
        """
        stream = self._stream
        if stream is None:
            raise LocalProtocolError("the SMTP client is not connected")
        stream.unacknowledged_content -= 1
        self._last_used = stream.now() if now is None else now
        tx.stage = TransactionStage.FAILED
        offset = int(tx.rset_first)
        count = len(tx.rcpts)
        results = tx.results
        accepted = 0
        # Fewer RCPT replies than RCPTs after a 421.
        for recipient, reply in zip(
            tx.recipients, replies[offset + 1 : offset + 1 + count], strict=False
        ):
            ok = reply.code in _ACCEPTED
            accepted += ok
            results.append(new_recipient_result(recipient, ok, reply))
        last = replies[-1]
        if len(replies) < offset + count + 2:  # a 421 ended the session early
            position = len(replies) - 1 - offset  # -1 RSET, 0 MAIL, then RCPT...
            tx.content_sent = False  # the server stopped before reading the content
            if position <= 0:
                cls: type[SmtpReplyError] = SenderRefused if position == 0 else SmtpReplyError
                return cls(
                    last.code,
                    last.text,
                    enhanced_status=last.enhanced_status,
                    command="MAIL" if position == 0 else "RSET",
                )
            return SmtpReplyError(
                last.code, last.text, enhanced_status=last.enhanced_status, command="RCPT"
            )
        tx.reply = last
        mail = replies[offset]
        if mail.code != 250:
            if last.code == 250:
                stream.broken = True
                return OutcomeUnknown(
                    f"{stream.peer} refused MAIL ({mail.code} {mail.text}) but accepted the "
                    f"content ({last.code} {last.text}); the message may or may not have been "
                    "delivered (do not retry blindly)"
                )
            tx.content_sent = False
            return SenderRefused(
                mail.code, mail.text, enhanced_status=mail.enhanced_status, command="MAIL"
            )
        if not accepted:
            if last.code != 250:
                tx.content_sent = False
            return self._recipients_refused(tx, results)
        if last.code != 250:
            return DataRefused(
                last.code, last.text, enhanced_status=last.enhanced_status, command="BDAT"
            )
        tx.stage = TransactionStage.DONE
        self._messages_sent += 1
        return new_send_result(tuple(results), None, queue_id_from_reply(last), last)

    def final_outcome(
        self, tx: Transaction, reply: Reply, now: float | None = None
    ) -> SendResult | SmtpReplyError:
        """Record the final reply of ``tx`` (already read) and make its result or error.

        The error is returned, not raised; after a 421 the caller closes the
        connection.

        Args:
            tx: the transaction the reply answers.
            reply: the server's reply to the end of data (or the last BDAT).
            now: the current time on the pool's clock (seconds), if the caller
                has it; by default it is read.
        """
        stream = self._stream
        if stream is None:
            raise LocalProtocolError("the SMTP client is not connected")
        stream.unacknowledged_content -= 1
        tx.reply = reply
        self._last_used = stream.now() if now is None else now
        if reply.code != 250:
            tx.stage = TransactionStage.FAILED
            return DataRefused(
                reply.code,
                reply.text,
                enhanced_status=reply.enhanced_status,
                command="BDAT" if tx.use_bdat else "DATA",
            )
        tx.stage = TransactionStage.DONE
        self._messages_sent += 1
        return new_send_result(tuple(tx.results), None, queue_id_from_reply(reply), reply)
