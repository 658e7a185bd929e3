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
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from lettre._loops import running_on_asyncio
from lettre.errors import (
    LettreError,
    OutcomeUnknown,
    ServerDisconnected,
    SmtpReplyError,
    SmtpTimeoutError,
)
from lettre.smtp.client import PIPELINED_BDAT_LIMIT, SmtpClient
from lettre.smtp.connection_pool import (
    ConnectionFactory,
    ConnectionPool,
    PoolConfig,
    PooledConnection,
    PoolStatistics,
)
from lettre.smtp.pipeline import Pipeline, Ticket, eligible, outcome_of

if TYPE_CHECKING:
    import ssl

    from typing_extensions import Self

    from lettre.envelope import Envelope
    from lettre.results import SendResult
    from lettre.smtp.client import Transaction
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


class _Turn:
    """One transaction's place in a connection's queue of reply readers."""

    __slots__ = ("active", "event", "orphan", "wake")

    def __init__(self, *, active: bool) -> None:
        self.active = active  # its owner will read (False: written for a waiter not yet awake)
        self.orphan = False  # its owner went away: skip it
        self.event: anyio.Event | None = None
        self.wake: Callable[[], None] | None = None


class PooledSmtpConnection:
    """An :class:`~lettre.smtp.client.SmtpClient` as the pool lends it.

    Besides what :class:`PooledConnection` asks for, it keeps the queue of
    *turns*: with chaining, several transactions are in flight on one
    connection and their replies come back in the order their commands were
    written, so each reader waits for its turn.

    Args:
        client: a connected client.
        clock: the pool's clock, for ``created_at`` and ``last_used``.
    """

    __slots__ = (
        "_changed",
        "_clock",
        "_poisoned",
        "_turns",
        "client",
        "created_at",
        "last_used",
        "pipeline",
    )

    def __init__(self, client: SmtpClient, clock: Callable[[], float] = anyio.current_time) -> None:
        self.client = client
        self.pipeline: Pipeline | None = None
        """Runs this connection's transactions from its callbacks (asyncio, plain TCP)."""
        self._clock = clock
        self.created_at = clock()
        self.last_used = self.created_at
        self._turns: deque[_Turn] = deque()
        self._poisoned = False
        self._changed: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<PooledSmtpConnection {self.client!r} turns={len(self._turns)}>"

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

    def touch(self) -> None:
        """Record that the connection was just used (by the pool's clock)."""
        self.last_used = self._clock()

    async def check(self) -> bool:
        """NOOP on an idle connection."""
        ok = await self.client.check()
        self.touch()
        return ok

    @property
    def messages_accepted(self) -> int:
        """How many messages the server accepted on this connection."""
        return self.client.messages_accepted

    def abandon(self) -> None:
        """Shut the socket down without the event loop, which is closed."""
        self._poisoned = True
        self.client.abandon()

    async def aclose(self) -> None:
        """Let the readers already queued finish, then close (QUIT if still usable)."""
        with anyio.CancelScope(shield=True):
            pipeline = self.pipeline
            if pipeline is not None:
                # Messages whose content is out get their final reply; an
                # envelope still in flight belongs to a sender that gave up.
                await pipeline.settle(_drain_limit(self.client))
                if pipeline.busy:
                    self._poisoned = True
                    pipeline.abort("the connection was closed before the message was sent")
                pipeline.cancel_timer()
            while self._turns and self._turns[0].active:
                self._changed = anyio.Event()
                with anyio.move_on_after(_drain_limit(self.client)) as scope:
                    await self._changed.wait()
                if scope.cancelled_caught:
                    break
            if self._poisoned:
                await self.client.abort()
            else:
                await self.client.aclose()

    def poison(self) -> None:
        """Never lend this connection again (commands of a vanished caller are on it)."""
        self._poisoned = True

    def _last_turn(self) -> _Turn:
        return self._turns[-1]

    def _new_turn(self, *, active: bool) -> _Turn:
        """Queue a reader for commands about to be written (``active``: its owner runs)."""
        turn = _Turn(active=active)
        self._turns.append(turn)
        return turn

    async def _wait_turn(self, turn: _Turn) -> None:
        """Wait until every transaction written before ``turn`` has read its replies."""
        if self._turns and self._turns[0] is turn:
            return
        turn.event = anyio.Event()
        with anyio.move_on_after(_drain_limit(self.client)):
            await turn.event.wait()
        if not turn.event.is_set():
            raise SmtpTimeoutError("the connection's earlier transactions never finished")

    def _end_turn(self, turn: _Turn) -> None:
        """``turn``'s owner is done reading (or gave up): the next reader may go."""
        turns = self._turns
        if not turns or turns[0] is not turn:
            turn.orphan = True
            turn.wake = None
            return
        turns.popleft()
        while turns and turns[0].orphan:
            turns.popleft()
        if turns:
            head = turns[0]
            wake, head.wake = head.wake, None
            if wake is not None:
                wake()
            if head.event is not None:
                head.event.set()
        if self._changed is not None:
            self._changed.set()


def _drain_limit(client: SmtpClient) -> float:
    # Earlier readers are bounded by their own reply timeouts; this only
    # guards against a bug leaving a turn open forever.
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
    """

    def __init__(
        self,
        settings: SmtpSettings,
        config: PoolConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._settings = settings
        if ssl_context is None and settings.uses_tls:
            ssl_context = settings.create_ssl_context()
        self._ssl_context = ssl_context
        self._pool: ConnectionPool[PooledSmtpConnection] = ConnectionPool(
            self._open, config, clock=clock, sleep=sleep
        )
        self._claimed: Ticket | None = None  # set by a claim, taken by the hand-off at once

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
        client = SmtpClient(self._settings, ssl_context=self._ssl_context)
        await client.connect()
        return PooledSmtpConnection(client, self._pool.clock)

    async def send(
        self, envelope: Envelope, data: bytes, *, deadline: float | None = None
    ) -> SendResult:
        """Send one message on a pooled connection.

        Args:
            envelope: the reverse path and the recipients.
            data: the serialised message.
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
            try:
                if deadline is None:
                    conn = await self._pool.acquire(ticket, fresh=fresh)
                else:
                    conn = await self._acquire(ticket, deadline, fresh=fresh)
                if not ticket.piped and ticket.tx is None:
                    error = self._start(conn, ticket)
                    if error is not None:
                        await self._failed(conn, ticket, error, fresh)
                if ticket.piped:
                    if ticket.result is None and ticket.error is None and not ticket.slow:
                        future = ticket.future
                        assert future is not None
                        try:
                            await future
                        except BaseException as exc:
                            await self._failed(conn, ticket, exc, fresh)
                            raise  # pragma: no cover - _failed always raises
                    result = ticket.result
                    if result is not None and not ticket.owner:
                        return result  # the usual end of a chained send: nothing left to do
                    return await self._piped(conn, ticket, fresh)
                return await self._stepwise(conn, ticket, fresh)
            except _Retry as retry:
                logger.debug("retrying on a new connection after: %s", retry.error)
        raise AssertionError("unreachable: the second attempt never asks for a retry")

    async def _acquire(
        self, ticket: Ticket | None, deadline: float | None, *, fresh: bool
    ) -> PooledSmtpConnection:
        if deadline is None:
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

    def _pipeline(self, conn: PooledSmtpConnection) -> Pipeline | None:
        """The connection's pipeline, made on first use (None when it cannot have one)."""
        pipeline = conn.pipeline
        if pipeline is None and running_on_asyncio():
            pool = self._pool

            claim = functools.partial(self._claim_piped, conn)

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

            pipeline = conn.pipeline = Pipeline.for_client(conn.client, hand_off)
        return pipeline

    def _claim_piped(self, conn: PooledSmtpConnection, other: object) -> bool:
        """Prepare the first waiter's transaction to run in the pipeline, if it can."""
        if not isinstance(other, Ticket) or other.tx is not None:
            return False
        try:
            tx = conn.client.prepare(other.envelope, other.data)
        except (LettreError, TypeError, ValueError):  # the waiter will meet it on its own
            return False
        if not eligible(tx):
            return False
        other.tx = tx
        self._claimed = other
        return True

    def _start(self, conn: PooledSmtpConnection, ticket: Ticket) -> BaseException | None:
        """Prepare ``ticket`` and start it in the connection's pipeline when it can run there.

        Returns what went wrong (for :meth:`_failed`), or None.
        """
        pipeline = self._pipeline(conn)
        if pipeline is None or not pipeline.ready():
            return None
        try:
            tx = conn.client.prepare(ticket.envelope, ticket.data)
            ticket.tx = tx
            if eligible(tx):
                pipeline.start(ticket)
        except BaseException as exc:  # noqa: BLE001 - handed to _failed, which raises it
            return exc
        return None

    async def _piped(self, conn: PooledSmtpConnection, ticket: Ticket, last: bool) -> SendResult:
        """Finish a transaction the connection's pipeline is done with."""
        client = conn.client
        tx = ticket.tx
        assert tx is not None
        try:
            if ticket.slow:
                # A refusal in the envelope: finish it the ordinary way (RSET,
                # the typed error), with the replies the pipeline read.
                async with client.operation(ticket.deadline, io_only=True):
                    await client.complete_envelope(tx)
                    await client.write(client.encode_content(tx))
                    result = await client.complete(tx)
            else:
                result = outcome_of(ticket)
        except BaseException as exc:
            await self._failed(conn, ticket, exc, last)
            raise  # pragma: no cover - _failed always raises
        await self._done(conn, ticket)
        return result

    async def _failed(
        self, conn: PooledSmtpConnection, ticket: Ticket, exc: BaseException, last: bool
    ) -> None:
        """Give the connection back after a failure and raise (``_Retry`` when retryable)."""
        client = conn.client
        if ticket.owner and client.replies_owed and not client.is_broken:
            # Replies nobody will read are on their way (say, we were
            # cancelled while an earlier user was still reading): the
            # connection cannot be reused.
            conn.poison()
        await self._done(conn, ticket)
        if (
            not last
            and isinstance(exc, (ServerDisconnected, SmtpTimeoutError, SmtpReplyError))
            and _retryable(exc, ticket.tx, ticket.deadline)
        ):
            raise _Retry(exc) from exc
        raise exc

    async def _done(self, conn: PooledSmtpConnection, ticket: Ticket) -> None:
        if ticket.owner:
            conn.touch()
            with anyio.CancelScope(shield=True):
                await self._pool.release(conn)

    async def _stepwise(self, conn: PooledSmtpConnection, ticket: Ticket, last: bool) -> SendResult:
        """Run the transaction with the sender's task reading every reply."""
        client = conn.client
        tx = ticket.tx
        turn = ticket.turn
        assert turn is None or isinstance(turn, _Turn)
        try:
            own_envelope = turn is None
            if turn is None:
                # Our own envelope; nobody else is queued on this connection.
                if tx is None:
                    tx = ticket.tx = client.prepare(ticket.envelope, ticket.data)
                turn = conn._new_turn(active=True)
            else:
                # The previous user wrote our envelope after its content.
                turn.active = True
                await conn._wait_turn(turn)
            assert tx is not None
            if tx.content_sent and client.is_broken:
                # Our content went with our envelope on a connection that
                # ended before our replies: complete() tells which error.
                await client.complete(tx)
            async with client.operation(ticket.deadline, io_only=True):
                if tx.content_in_flight:
                    # The content goes with the envelope: so do the flights
                    # of the senders waiting now.
                    if own_envelope:
                        await client.write(self._chain(conn, ticket, client.encode_envelope(tx)))
                else:
                    if own_envelope:
                        await client.write(client.encode_envelope(tx))
                    await client.complete_envelope(tx)
                    out = client.encode_content(tx)
                    if tx.pipelined:
                        out = self._chain(conn, ticket, out)
                    await client.write(out)
                result = await client.complete(tx)
        except BaseException as exc:
            if turn is not None:
                conn._end_turn(turn)
            await self._failed(conn, ticket, exc, last)
            raise  # pragma: no cover - _failed always raises
        conn._end_turn(turn)
        await self._done(conn, ticket)
        return result

    def _chain(self, conn: PooledSmtpConnection, ticket: Ticket, out: bytes) -> bytes:
        """Append the envelopes of the senders waiting for ``conn`` to ``out``.

        ``ticket``'s content is in ``out``; the first waiter's envelope
        follows it, and while the last one chained has its content in its
        envelope's flight (``content_in_flight``) and the write is shorter
        than ``PIPELINED_BDAT_LIMIT``, the next waiter's too: nothing need be
        answered first. Each chained sender owns the connection after the one
        before it and reads its replies in its turn.
        """
        pool = self._pool
        chained: list[tuple[Ticket, bytes]] = []

        def claim(other: object) -> bool:
            return self._claim(conn, other, chained)

        last = ticket
        while True:
            wake = pool.hand_off(conn, claim)
            if wake is None:
                return out
            following, flight = chained[-1]
            last.owner = False
            conn._last_turn().wake = wake
            out += flight
            tx = following.tx
            if tx is None or not tx.content_in_flight or len(out) >= PIPELINED_BDAT_LIMIT:
                return out
            last = following

    def _claim(
        self, conn: PooledSmtpConnection, other: object, out: list[tuple[Ticket, bytes]]
    ) -> bool:
        """Write the first waiter's envelope after our content, if it can go."""
        if not isinstance(other, Ticket) or other.tx is not None:
            return False
        client = conn.client
        try:
            tx = client.prepare(other.envelope, other.data)
        except (LettreError, TypeError, ValueError):  # the waiter will meet it on its own
            return False
        if not tx.pipelined:
            return False
        other.turn = conn._new_turn(active=False)
        out.append((other, client.encode_envelope(tx)))
        other.tx = tx
        return True

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

    def abandon(self) -> None:
        """Shut every connection down at once, without awaiting (the event loop is closed)."""
        self._pool.abandon()

    async def __aenter__(self) -> Self:
        await self._pool.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._pool.__aexit__(exc_type, exc, tb)


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
