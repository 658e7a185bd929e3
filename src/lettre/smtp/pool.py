"""The SMTP connection pool: one mail transaction per checkout, with chaining.

:class:`SmtpPool` is what ``SmtpTransport`` sends through. It lends
:class:`PooledSmtpConnection` objects from a generic
:class:`~lettre.smtp.connection_pool.ConnectionPool` (which knows nothing of
SMTP: its limits, fairness and expiry rules are described there), runs one
mail transaction per checkout, chains on pipelining servers (the next waiting
message's envelope goes out in the same write as the current message's
content) and retries once on a new connection when a connection fails before
the server could have taken the message.

The generic names (``ConnectionPool``, ``PoolConfig``, ``PoolStatistics``,
``PooledConnection``) are importable from here too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from lettre.errors import (
    LettreError,
    OutcomeUnknown,
    ServerDisconnected,
    SmtpReplyError,
    SmtpTimeoutError,
)
from lettre.hooks import Hook, PoolObserved, PoolWaited, active, emit, send_retried
from lettre.smtp.client import SmtpClient, hook_endpoint
from lettre.smtp.connection_pool import (
    ConnectionFactory,
    ConnectionPool,
    PoolConfig,
    PooledConnection,
    PoolStatistics,
)
from lettre.smtp.driver import Ticket, TransactionDriver

if TYPE_CHECKING:
    import ssl

    from typing_extensions import Self

    from lettre.envelope import Envelope
    from lettre.message.source import MessageContent
    from lettre.protocol.transactions import Transaction
    from lettre.results import SendResult
    from lettre.smtp.settings import SmtpSettings

__all__ = [
    "ConnectionFactory",
    "ConnectionPool",
    "PoolConfig",
    "PoolStatistics",
    "PooledConnection",
    "PooledSmtpConnection",
    "SmtpPool",
]

logger = logging.getLogger(__name__)


# -- pooled SMTP connections with chaining -----------------------------------------------------


class PooledSmtpConnection:
    """An :class:`~lettre.smtp.client.SmtpClient` as the pool lends it.

    Its transactions run through the client's
    :class:`~lettre.smtp.driver.TransactionDriver`, whose ``hand_off`` the
    pool sets so that waiting sends are chained.

    Args:
        client: a connected client.
        clock: the pool's clock, for ``created_at`` and ``last_used``.
    """

    __slots__ = ("_clock", "_poisoned", "client", "created_at", "driver", "last_used")

    def __init__(self, client: SmtpClient, clock: Callable[[], float] = anyio.current_time) -> None:
        self.client = client
        self.driver: TransactionDriver | None = None
        """The client's driver, set up by the pool for chaining at the first send."""
        self._clock = clock
        self.created_at = clock()
        self.last_used = self.created_at
        self._poisoned = False

    def __repr__(self) -> str:
        return f"<PooledSmtpConnection {self.client!r}>"

    @property
    def is_usable(self) -> bool:
        """Whether the connection can carry more transactions.

        Unlike ``SmtpClient.is_usable`` this stays True while an earlier
        transaction's final reply is outstanding (that is what chaining does).
        """
        return not self._poisoned and not self.client.is_broken

    @property
    def messages_sent(self) -> int:
        """How many mail transactions the connection has started."""
        return self.client.messages_sent

    @property
    def messages_accepted(self) -> int:
        """How many messages the server accepted on this connection."""
        return self.client.messages_accepted

    def touch(self) -> None:
        """Record that the connection was just used (by the pool's clock)."""
        self.last_used = self._clock()

    async def check(self) -> bool:
        """NOOP on an idle connection."""
        ok = await self.client.check()
        self.touch()
        return ok

    def abandon(self) -> None:
        """Shut the socket down without the event loop, which is closed."""
        self._poisoned = True
        self.client.abandon()

    def poison(self) -> None:
        """Never lend this connection again (commands of a vanished caller are on it)."""
        self._poisoned = True

    async def aclose(self) -> None:
        """Let the messages whose content is out get their final reply, then close.

        QUIT when the connection is still usable; an envelope still in flight
        belongs to a sender that gave up and is failed.
        """
        with anyio.CancelScope(shield=True):
            driver = self.client.current_driver
            if driver is not None:
                await driver.settle(_drain_limit(self.client))
                if self.client.replies_owed:
                    self._poisoned = True
                driver.release()
            if self._poisoned:
                await self.client.abort()
            else:
                await self.client.aclose()


def _drain_limit(client: SmtpClient) -> float:
    # The transactions in flight are bounded by their own reply timeouts;
    # this only guards against one that never ends.
    settings = client.settings
    return settings.data_timeout + 2 * settings.timeout


class _Retry(Exception):  # an internal signal: never escapes SmtpPool.send
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class SmtpPool:
    """A :class:`ConnectionPool` of SMTP connections that chains transactions.

    ``send()`` borrows a connection, runs one mail transaction and gives the
    connection back. On a server that offers PIPELINING, when the content of
    one message is ready while other sends wait for a connection, the first
    waiter's MAIL, RCPT and DATA go in the same write as that content; the
    waiter then reads its own replies, in order, when the previous message's
    final reply is in. Each send still gets exactly its own result.

    A connection that fails before the server took the message (before the
    end of data was written) is replaced and the message sent again once, on
    a newly opened connection. A failure after that is
    :class:`~lettre.errors.OutcomeUnknown` and is never retried.

    Args:
        settings: how to connect.
        config: the pool's limits.
        ssl_context: the TLS context shared by the connections (built from
            ``settings`` when None).
        clock: the time source for ageing and rate limiting (tests pass a
            fake one, with the matching ``sleep``).
        sleep: the matching sleep function.
        hooks: told about the pool's waits and connections, besides the hooks
            registered for the process (:mod:`lettre.hooks`).
    """

    def __init__(
        self,
        settings: SmtpSettings,
        config: PoolConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        hooks: tuple[Hook, ...] = (),
    ) -> None:
        self._settings = settings
        self._hooks = hooks
        if ssl_context is None and settings.uses_tls:
            ssl_context = settings.create_ssl_context()
        self._ssl_context = ssl_context
        self._pool: ConnectionPool[PooledSmtpConnection] = ConnectionPool(
            self._open, config, clock=clock, sleep=sleep
        )
        self._claimed: Ticket | None = None  # set by a claim, taken by the hand-off at once
        self._kind, self._server = hook_endpoint(settings)
        self._pool.wait_observer = self._wait_observer
        stats = self._pool.statistics
        self._observed = PoolObserved(
            self._kind,
            self._server,
            lambda: stats().in_use,
            lambda: stats().idle,
            lambda: stats().waiting,
        )
        # The hooks told that this pool is open: those listening now, and those
        # that start listening later, told as the pool opens its next connection.
        self._told: tuple[Hook, ...] = ()
        self._tell_opened()

    def _tell_opened(self) -> None:
        hooks = active(self._hooks)
        new = tuple(hook for hook in hooks if hook not in self._told)
        if new:
            self._told += new
            emit(new, "pool_opened", self._observed)

    def _wait_observer(self) -> Callable[[float, bool], None] | None:
        return self._waited if active(self._hooks) else None

    def _waited(self, seconds: float, acquired: bool) -> None:
        hooks = active(self._hooks)
        if hooks:
            emit(hooks, "pool_waited", PoolWaited(self._kind, self._server, seconds, acquired))

    @property
    def settings(self) -> SmtpSettings:
        """The connection settings."""
        return self._settings

    @property
    def pool(self) -> ConnectionPool[PooledSmtpConnection]:
        """The underlying connection pool."""
        return self._pool

    def statistics(self) -> PoolStatistics:
        """The pool's counters."""
        return self._pool.statistics()

    async def _open(self) -> PooledSmtpConnection:
        if active(self._hooks) != self._told:
            self._tell_opened()
        client = SmtpClient(self._settings, ssl_context=self._ssl_context, hooks=self._hooks)
        await client.connect()
        return PooledSmtpConnection(client, self._pool.clock)

    async def send(
        self, envelope: Envelope, data: bytes | MessageContent, *, deadline: float | None = None
    ) -> SendResult:
        """Send one message on a pooled connection.

        Args:
            envelope: the reverse path and the recipients.
            data: the serialised message, or a content read while it is sent
                (never chained after another message's content).
            deadline: an absolute time on anyio's clock for the whole send,
                waiting for a connection and the retry included.

        Raises:
            PoolTimeout: no connection within ``pool_timeout``.
            SmtpTimeoutError: the deadline passed.
            OutcomeUnknown: the connection broke after the content was sent.
            SmtpError: any other failure, as ``SmtpClient.send`` raises it.
        """
        for fresh in (False, True):
            ticket = Ticket(envelope, data, deadline)
            if deadline is None:
                conn = await self._pool.acquire(ticket, fresh=fresh)
            else:
                conn = await self._acquire(ticket, deadline, fresh=fresh)
            driver = conn.driver
            if driver is None:
                driver = conn.driver = self._driver(conn)
            try:
                result = await driver.send(ticket)
            except BaseException as exc:
                try:
                    await self._failed(conn, ticket, exc, fresh)
                except _Retry as retry:
                    logger.debug("retrying on a new connection after: %s", retry.error)
                    send_retried(retry.error)
                    continue
                raise  # pragma: no cover - _failed always raises
            if ticket.owner:
                await self._done(conn)
            return result
        raise AssertionError("unreachable: the second attempt never asks for a retry")

    async def _acquire(
        self, ticket: Ticket | None, deadline: float | None, *, fresh: bool
    ) -> PooledSmtpConnection:
        if deadline is None:  # test_connection() without a deadline
            return await self._pool.acquire(ticket, fresh=fresh)
        with anyio.CancelScope(deadline=deadline) as scope:
            return await self._pool.acquire(ticket, fresh=fresh)
        assert scope.cancelled_caught
        if ticket is not None and ticket.tx is not None and ticket.tx.content_sent:
            raise OutcomeUnknown(
                "the deadline passed before the final reply; the message may or may not "
                "have been accepted (do not retry blindly)"
            )
        raise SmtpTimeoutError("the deadline passed while waiting for a connection")

    def _driver(self, conn: PooledSmtpConnection) -> TransactionDriver:
        """The connection's driver, set up for chaining on first use."""
        driver = conn.client.driver
        if driver.hand_off is None:
            pool = self._pool
            claim = functools.partial(self._claim, driver)

            def hand_off() -> Ticket | None:
                try:
                    wake = pool.hand_off(conn, claim)
                except ValueError:  # no longer lent out: nothing to chain
                    return None
                if wake is None:
                    return None
                ticket = self._claimed
                assert ticket is not None
                self._claimed = None
                ticket.wake = wake
                return ticket

            driver.hand_off = hand_off
        return driver

    def _claim(self, driver: TransactionDriver, other: object) -> bool:
        """Prepare the first waiter's transaction to go after ours, if it can."""
        if not isinstance(other, Ticket) or other.tx is not None or other.envelope is None:
            return False
        data = other.data
        if not isinstance(data, bytes):
            return False  # a content read while sending is written by its own sender
        try:
            tx = driver.engine.prepare(other.envelope, data)
        except (LettreError, TypeError, ValueError):  # the waiter will meet it on its own
            return False
        if not tx.pipelined:
            return False
        other.tx = tx
        self._claimed = other
        return True

    async def _failed(
        self, conn: PooledSmtpConnection, ticket: Ticket, exc: BaseException, last: bool
    ) -> None:
        """Give the connection back after a failure and raise (``_Retry`` when retryable)."""
        client = conn.client
        if ticket.owner:
            if client.replies_owed and not client.is_broken:
                # Replies nobody will read are on their way (say, we were
                # cancelled while our transaction was in flight): the
                # connection cannot be reused.
                conn.poison()
            await self._done(conn)
        if (
            not last
            and isinstance(exc, (ServerDisconnected, SmtpTimeoutError, SmtpReplyError))
            and _retryable(exc, ticket.tx, ticket.deadline)
        ):
            raise _Retry(exc) from exc
        raise exc

    async def _done(self, conn: PooledSmtpConnection) -> None:
        conn.touch()
        with anyio.CancelScope(shield=True):
            await self._pool.release(conn)

    async def test_connection(self, *, deadline: float | None = None) -> None:
        """Check that a pooled connection works (connecting if needed) with NOOP.

        A reused connection that turns out dead is replaced once.

        Raises:
            SmtpError: what went wrong, typed (connection, TLS, authentication).
        """
        for fresh in (False, True):
            conn = await self._acquire(None, deadline, fresh=fresh)
            try:
                await conn.client.noop()
            except (ServerDisconnected, SmtpReplyError) as exc:
                if fresh or (isinstance(exc, SmtpReplyError) and exc.code != 421):
                    raise
                logger.debug("the pooled connection failed NOOP (%s); trying a new one", exc)
            else:
                return
            finally:
                with anyio.CancelScope(shield=True):
                    await self._pool.release(conn)

    async def aclose(self) -> None:
        """Close every idle connection (QUIT); the others close as they come back."""
        await self._pool.aclose()
        self._closed()

    def abandon(self) -> None:
        """Shut every connection down at once, without awaiting (the event loop is closed)."""
        self._pool.abandon()
        self._closed()

    def _closed(self) -> None:
        told, self._told = self._told, ()
        emit(told, "pool_closed", self._observed)

    async def __aenter__(self) -> Self:
        await self._pool.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await self._pool.__aexit__(exc_type, exc, tb)
        finally:
            self._closed()


def _retryable(exc: BaseException, tx: Transaction | None, deadline: float | None) -> bool:
    """Whether a failed attempt may be sent again on a new connection."""
    if isinstance(exc, OutcomeUnknown):
        return False
    if tx is not None and tx.content_sent:
        return False
    if isinstance(exc, SmtpReplyError):
        return exc.code == 421
    if isinstance(exc, SmtpTimeoutError):
        return deadline is None or anyio.current_time() < deadline
    return True
