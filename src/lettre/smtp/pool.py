"""A bounded pool of reusable connections.

The pool is generic: it lends any object that follows :class:`PooledConnection`
(``SmtpTransport`` pools ``SmtpClient`` connections). Its rules:

- ``max_size`` is a hard cap on open connections, counting the ones being
  opened and the ones being closed. Callers beyond the cap wait in FIFO order,
  at most ``pool_timeout`` seconds (then :class:`~lettre.errors.PoolTimeout`).
- A connection is retired when it is no longer usable (it broke, timed out,
  got a 421, hit a protocol error), when it is older than ``max_lifetime``,
  has been idle longer than ``idle_timeout`` or has carried
  ``max_messages_per_connection`` messages. Retired connections never return
  to the pool.
- A connection idle longer than ``check_after_idle`` is checked (the SMTP
  connection sends NOOP or RSET) before it is lent again.
- An optional rate limit spreads checkouts: at most ``count`` per ``period``
  seconds across the whole pool.

Every decision (which connection, whether to open one, who is next) is made
synchronously; I/O (connecting, checking, closing) comes after. Closing is
shielded from cancellation. A waiting caller that is cancelled leaves the queue
and never leaks a slot. Background work (closing connections that expire while
idle) runs only inside ``async with pool:``, in a task group the pool owns.

:class:`SmtpPool` is the SMTP layer on top, used by ``SmtpTransport``: one
mail transaction per checkout, chaining on pipelining servers (the next
waiting message's envelope goes out in the same write as the current
message's content) and one retry on a new connection when a connection fails
before the server could have taken the message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from lettre._loops import current_clock, running_on_asyncio
from lettre.errors import (
    LettreError,
    OutcomeUnknown,
    PoolTimeout,
    ServerDisconnected,
    SmtpError,
    SmtpReplyError,
    SmtpTimeoutError,
)
from lettre.smtp.client import PIPELINED_BDAT_LIMIT, SmtpClient
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


class PooledConnection(Protocol):
    """What the pool needs from a connection.

    Timestamps are read with the pool's clock (``anyio.current_time`` unless
    the pool was given another one); the connection keeps them up to date.

    Attributes:
        is_usable: False once the connection broke, timed out, was told to go
            away (421) or saw a protocol error; the pool then closes it.
        created_at: when the connection was opened.
        last_used: when the connection last finished a command.
        messages_sent: how many message transactions it has started (what
            ``max_messages_per_connection`` counts).
        messages_accepted: how many messages the server accepted on it.
    """

    @property
    def is_usable(self) -> bool: ...

    @property
    def created_at(self) -> float: ...

    @property
    def last_used(self) -> float: ...

    @property
    def messages_sent(self) -> int: ...

    @property
    def messages_accepted(self) -> int: ...

    def abandon(self) -> None:
        """Shut the connection down at once, without awaiting anything.

        Called when the event loop that opened it is closed. Never raises.
        """
        ...

    async def check(self) -> bool:
        """Probe an idle connection (NOOP or RSET); False if it is not fit for use."""
        ...

    async def aclose(self) -> None:
        """Close politely (QUIT) if possible, else abruptly; bounded in time."""
        ...


C = TypeVar("C", bound=PooledConnection)

#: An async callable that opens a new connection (and raises if it cannot).
ConnectionFactory = Callable[[], Awaitable[C]]


def _check_positive(name: str, value: float | None, *, allow_none: bool, allow_zero: bool) -> None:
    if value is None:
        if not allow_none:
            raise ValueError(f"{name} must be a number, not None")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "greater than zero"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def _check_count(name: str, value: int | None, *, allow_none: bool) -> None:
    if value is None:
        if not allow_none:
            raise ValueError(f"{name} must be an integer, not None")
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Limits and ageing rules of a connection pool.

    Attributes:
        max_size: the most connections open at once, counting the ones being
            opened or closed.
        pool_timeout: how long (seconds) a caller may wait for a connection,
            including the wait for the rate limit, before ``PoolTimeout``.
        idle_timeout: close a connection idle for this many seconds (None:
            never).
        max_lifetime: close a connection this many seconds old once it is
            returned (None: never).
        max_messages_per_connection: close a connection after this many
            messages (None: no limit).
        check_after_idle: check a connection (NOOP/RSET) before reusing it
            when it has been idle longer than this many seconds (0: always;
            None: never).
        rate_limit: ``(count, period)``: at most ``count`` checkouts in any
            ``period`` seconds across the pool (None: no limit).

    Raises:
        TypeError: a value of the wrong type.
        ValueError: a count below 1, or a duration that is not a positive
            number of seconds (``check_after_idle`` may be 0).
    """

    max_size: int = 10
    pool_timeout: float = 30.0
    idle_timeout: float | None = 60.0
    max_lifetime: float | None = 600.0
    max_messages_per_connection: int | None = 100
    check_after_idle: float | None = 5.0
    rate_limit: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        _check_count("max_size", self.max_size, allow_none=False)
        _check_positive("pool_timeout", self.pool_timeout, allow_none=False, allow_zero=False)
        _check_positive("idle_timeout", self.idle_timeout, allow_none=True, allow_zero=False)
        _check_positive("max_lifetime", self.max_lifetime, allow_none=True, allow_zero=False)
        _check_count(
            "max_messages_per_connection", self.max_messages_per_connection, allow_none=True
        )
        _check_positive("check_after_idle", self.check_after_idle, allow_none=True, allow_zero=True)
        if self.rate_limit is not None:
            if not isinstance(self.rate_limit, tuple) or len(self.rate_limit) != 2:
                raise TypeError("rate_limit must be a (count, period) tuple or None")
            count, period = self.rate_limit
            _check_count("rate_limit count", count, allow_none=False)
            _check_positive("rate_limit period", period, allow_none=False, allow_zero=False)


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of a pool's state.

    Attributes:
        open: connections counted against ``max_size``: idle, in use, being
            opened and being closed.
        idle: connections waiting in the pool to be lent.
        in_use: connections lent to callers.
        opening: connections being opened.
        waiting: callers waiting for a connection.
        messages_sent: messages the server accepted, over every connection the
            pool has had.
        opened_total: connections opened since the pool was made.
        closed_total: connections closed since the pool was made.
    """

    open: int
    idle: int
    in_use: int
    opening: int
    waiting: int
    messages_sent: int
    opened_total: int
    closed_total: int


class _Waiter(Generic[C]):
    """A caller queued for a connection; filled in by whoever serves it.

    On asyncio the caller sleeps on a bare future and the pool's one expiry
    timer enforces ``pool_timeout`` (a cancel scope and an event per waiter
    cost more than the rest of a checkout); elsewhere it sleeps on an anyio
    event inside a cancel scope.
    """

    __slots__ = (
        "cancelled",
        "chained",
        "closed",
        "connection",
        "event",
        "expiry",
        "fresh",
        "future",
        "slot",
        "ticket",
        "woken",
    )

    def __init__(
        self, ticket: object, fresh: bool, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.ticket = ticket
        self.fresh = fresh
        self.expiry = math.inf  # when an asyncio waiter gives up (loop time)
        self.future: asyncio.Future[None] | None = None
        self.event: anyio.Event | None = None
        if loop is not None:
            self.future = loop.create_future()
        else:
            self.event = anyio.Event()
        self.woken = False
        self.connection: C | None = None
        self.slot = False
        self.chained = False
        self.cancelled = False
        self.closed = False

    def wake(self) -> None:
        """Let the waiting caller resume (it was served, or the pool closed)."""
        if self.woken:
            return
        self.woken = True
        future = self.future
        if future is None:
            assert self.event is not None
            self.event.set()
        elif not future.done():  # not already resumed by its timer or cancelled
            future.set_result(None)

    def expire(self) -> None:
        """Resume an asyncio waiter whose time is up; it finds itself unserved."""
        future = self.future
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self, limit: float) -> None:
        """Sleep until woken, at most ``limit`` seconds (cancellation propagates).

        On asyncio the pool's expiry timer enforces ``limit`` (see
        ``ConnectionPool._watch_expiry``).
        """
        future = self.future
        if future is None:
            event = self.event
            assert event is not None
            with anyio.move_on_after(limit):
                await event.wait()
            if not self.woken and self.chained:
                # Handed a busy connection just as pool_timeout ran out: the
                # previous owner's timeouts bound the rest of the wait, and
                # it wakes us exactly once.
                await event.wait()
            return
        try:
            await future
        finally:
            self.expiry = math.inf


class _RateLimiter:
    """At most ``count`` grants in any window of ``period`` seconds, in FIFO order.

    Each caller reserves its grant time synchronously (so order is the call
    order), then sleeps until it. A reservation of a caller that gives up is
    not handed back: the limit may be under-used, never exceeded.
    """

    __slots__ = ("_count", "_grants", "_period", "_sleep", "clock")

    def __init__(
        self,
        count: int,
        period: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._count = count
        self._period = period
        self.clock = clock
        self._sleep = sleep
        self._grants: deque[float] = deque()

    async def wait(self, max_wait: float) -> None:
        now = self.clock()
        grants = self._grants
        horizon = now - self._period
        while grants and grants[0] <= horizon:
            grants.popleft()
        # The count-th most recent grant bounds the next one.
        at = now if len(grants) < self._count else max(now, grants[-self._count] + self._period)
        if at - now > max_wait:
            raise PoolTimeout(
                f"the rate limit ({self._count} per {self._period:g} s) allows no send "
                f"within {max_wait:g} s"
            )
        grants.append(at)
        if at > now:
            await self._sleep(at - now)


class ConnectionPool(Generic[C]):
    """A bounded, FIFO-fair pool of connections made by ``factory``.

    Use :meth:`connection` (``async with pool.connection() as conn:``) or
    :meth:`acquire` / :meth:`release`. ``async with pool:`` additionally runs a
    background task that closes connections expiring while idle; without it,
    expiry is applied whenever connections are acquired or released.
    :meth:`aclose` closes every idle connection (QUIT) and makes connections
    still in use close when they are released.

    Args:
        factory: an async callable that opens a connection.
        config: the pool's limits (``PoolConfig()`` by default).
        clock: the time source for ageing and rate limiting; it must be the
            clock the connections' timestamps use.
        sleep: the matching sleep function (tests pass a fake clock and sleep).
    """

    def __init__(
        self,
        factory: Callable[[], Awaitable[C]],
        config: PoolConfig | None = None,
        *,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._factory = factory
        self._config = config if config is not None else PoolConfig()
        self._clock = clock
        # anyio's clock looks the event loop up on every call: resolve it once,
        # inside the loop, at the first checkout.
        self._resolve_clock = clock is anyio.current_time
        # The asyncio loop the pool last ran on (None: not known, or not asyncio).
        self._asyncio_loop: asyncio.AbstractEventLoop | None = None
        self._sleep = sleep
        self._idle: list[C] = []
        self._in_use: set[C] = set()
        self._opening = 0
        self._closing = 0
        self._waiters: deque[_Waiter[C]] = deque()
        self._waiting = 0
        self._retired_messages = 0
        self._opened_total = 0
        self._closed_total = 0
        self._closed = False
        self._limiter: _RateLimiter | None = None
        if self._config.rate_limit is not None:
            count, period = self._config.rate_limit
            self._limiter = _RateLimiter(count, float(period), clock, sleep)
        self._task_group: anyio.abc.TaskGroup | None = None
        self._reaper_scope: anyio.CancelScope | None = None
        self._reaper_deadline = math.inf
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_loop: asyncio.AbstractEventLoop | None = None

    @property
    def config(self) -> PoolConfig:
        """The pool's configuration."""
        return self._config

    @property
    def clock(self) -> Callable[[], float]:
        """The time source for ageing and rate limiting."""
        return self._clock

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has been called."""
        return self._closed

    @property
    def has_waiters(self) -> bool:
        """True when at least one caller is waiting for a connection."""
        return self._waiting > 0

    def statistics(self) -> PoolStatistics:
        """Return a snapshot of the pool's counters."""
        live = sum(c.messages_accepted for c in self._idle)
        live += sum(c.messages_accepted for c in self._in_use)
        return PoolStatistics(
            open=self._open_count(),
            idle=len(self._idle),
            in_use=len(self._in_use),
            opening=self._opening,
            waiting=self._waiting,
            messages_sent=self._retired_messages + live,
            opened_total=self._opened_total,
            closed_total=self._closed_total,
        )

    # -- checkout ---------------------------------------------------------------------------

    async def acquire(self, ticket: object = None, *, fresh: bool = False) -> C:
        """Lend a connection, opening one if the cap allows, else wait for one.

        Args:
            ticket: any object describing what the caller wants to do; while
                the caller waits, :meth:`hand_off` shows it to the caller
                passing a busy connection on (used for chaining).
            fresh: lend a newly opened connection, never a reused one (used
                to retry after a connection failed). At the cap, an idle
                connection is closed to make room.

        Returns:
            A connection that is now in use by the caller; give it back with
            :meth:`release` (or :meth:`discard`).

        Raises:
            PoolTimeout: no connection (or rate-limit slot) within ``pool_timeout``.
            SmtpError: the pool is closed.
            Exception: whatever the factory raised when opening a connection.
        """
        if self._closed:
            raise self._closed_error()
        if self._resolve_clock:
            self._resolve_clock = False
            self._clock = current_clock()
            if self._limiter is not None:
                self._limiter.clock = self._clock
        timeout = self._config.pool_timeout
        if self._limiter is not None:
            started = self._clock()
            await self._limiter.wait(timeout)
            timeout = max(0.0, timeout - (self._clock() - started))
            if self._closed:
                raise self._closed_error()
        if self._waiting:
            # Others wait already: queue behind them (FIFO).
            conn, slot, chained = await self._wait(timeout, ticket, fresh)
        else:
            conn, slot, expired = self._acquire_nowait(fresh)
            if expired:
                await self._close_retired(expired, keep_slot=conn is None and not slot)
                if conn is None and not slot:
                    # We took over the slot of the first retired connection.
                    slot = True
            chained = False
            if conn is None and not slot:
                conn, slot, chained = await self._wait(timeout, ticket, fresh)
        if slot:
            return await self._open_in_slot()
        assert conn is not None
        if chained:
            # Handed over mid-use: commands for this caller may already be on
            # it. Its new owner must see it as it is, broken or not.
            return conn
        return await self._prepare(conn, replace=fresh)

    def _acquire_nowait(self, fresh: bool) -> tuple[C | None, bool, list[C]]:
        """Decide synchronously: an idle connection, a slot to open one, or neither.

        Also pops retired idle connections met on the way (they stay counted,
        as closing, until the caller has closed them). With ``fresh``, an idle
        connection is only taken to be replaced, when the cap leaves no room.
        """
        expired: list[C] = []
        if self._waiting:
            return None, False, expired
        idle = self._idle
        if fresh:
            if self._open_count() < self._config.max_size:
                self._opening += 1
                return None, True, expired
            if idle:
                # The least recently used one makes room for the new connection.
                conn = idle.pop(0)
                self._in_use.add(conn)
                return conn, False, expired
            return None, False, expired
        if idle:
            now = self._clock()
            while idle:
                conn = idle.pop()
                if self._is_retired(conn, now):
                    expired.append(conn)
                    continue
                self._in_use.add(conn)
                self._closing += len(expired)
                return conn, False, expired
        self._closing += len(expired)
        if self._open_count() < self._config.max_size:
            self._opening += 1
            return None, True, expired
        return None, False, expired

    async def _wait(self, limit: float, ticket: object, fresh: bool) -> tuple[C | None, bool, bool]:
        loop = self._current_asyncio_loop()
        waiter: _Waiter[C] = _Waiter(ticket, fresh, loop)
        if loop is not None and limit != math.inf:
            expiry = waiter.expiry = loop.time() + limit
            timer = self._expiry_timer
            if timer is None or timer.when() > expiry or self._expiry_loop is not loop:
                self._watch_expiry(loop, expiry)
        self._waiters.append(waiter)
        self._waiting += 1
        try:
            future = waiter.future
            if future is not None:
                try:
                    await future
                finally:
                    waiter.expiry = math.inf
            else:
                await waiter.wait(limit)
            if (waiter.connection is not None and not waiter.chained) or waiter.slot:
                # A caller cancelled after being served gives back what it got,
                # on every backend (trio would otherwise resume it normally).
                # A chained connection's new owner handles its own cancellation.
                await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            lent = self._abandon(waiter)
            if lent is not None:
                with anyio.CancelScope(shield=True):
                    await self._close_lent(lent)
            raise
        if waiter.connection is None and not waiter.slot:
            if waiter.closed:
                raise self._closed_error()
            self._abandon(waiter)  # nothing was given: nothing to close
            raise PoolTimeout(
                f"no connection became available within {self._config.pool_timeout:g} s "
                f"(max_size={self._config.max_size})"
            )
        return waiter.connection, waiter.slot, waiter.chained

    def _current_asyncio_loop(self) -> asyncio.AbstractEventLoop | None:
        """The running asyncio loop, or None when the caller runs on another library."""
        known = self._asyncio_loop
        if known is not None:
            try:
                if asyncio.get_running_loop() is known:
                    return known
            except RuntimeError:
                pass
        loop = asyncio.get_running_loop() if running_on_asyncio() else None
        self._asyncio_loop = loop
        return loop

    def _watch_expiry(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Make sure the expiry timer fires by ``when``.

        One timer serves every asyncio waiter: waiters queue in order, so the
        timer set for the oldest one is usually early enough for the next.
        """
        timer = self._expiry_timer
        if timer is not None:
            if timer.when() <= when and self._expiry_loop is loop:
                return
            timer.cancel()
        self._expiry_loop = loop
        self._expiry_timer = loop.call_at(when, self._expire_waiters, loop)

    def _expire_waiters(self, loop: asyncio.AbstractEventLoop) -> None:
        """Resume the waiters whose ``pool_timeout`` is up; watch the rest."""
        self._expiry_timer = None
        now = loop.time()
        later = math.inf
        for waiter in self._waiters:
            expiry = waiter.expiry
            if expiry <= now:
                waiter.expiry = math.inf
                waiter.expire()
            elif expiry < later:
                later = expiry
        if later != math.inf:
            self._watch_expiry(loop, later)

    def _abandon(self, waiter: _Waiter[C]) -> C | None:
        """Undo a waiter that gives up, returning whatever it had been given.

        Returns a connection the caller must close (with :meth:`_close_lent`,
        shielded), or None.
        """
        if waiter.connection is not None:
            conn, waiter.connection = waiter.connection, None
            if waiter.chained:
                # A connection handed off while busy may already carry commands
                # written for this waiter: nobody else can use it. Closing it
                # lets the connection finish what earlier users wait for.
                return conn
            self._pass_on(conn)
        elif waiter.slot:
            waiter.slot = False
            self._opening -= 1
            self._slot_freed()
        elif not waiter.woken and not waiter.cancelled:
            waiter.cancelled = True
            self._waiting -= 1
            if len(self._waiters) > 2 * self._waiting + 32:
                # Keep the queue bounded when many waiters give up and nobody serves them.
                self._waiters = deque(w for w in self._waiters if not w.cancelled)
        return None

    async def _open_in_slot(self) -> C:
        """Open a connection in a slot already counted in ``_opening``."""
        try:
            conn = await self._factory()
        except BaseException:
            self._opening -= 1
            self._slot_freed()
            raise
        self._opening -= 1
        self._opened_total += 1
        if self._closed:
            self._closing += 1
            with anyio.CancelScope(shield=True):
                await self._close_one(conn)
            raise self._closed_error()
        self._in_use.add(conn)
        return conn

    async def _prepare(self, conn: C, *, replace: bool) -> C:
        """Make sure a reused connection is fit; replace it in its slot if not."""
        config = self._config
        try:
            now = self._clock()
            if replace or self._is_retired(conn, now):
                fit = False
            elif config.check_after_idle is not None and (
                now - conn.last_used > config.check_after_idle
            ):
                fit = await self._check(conn)
            else:
                return conn
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.discard(conn)
            raise
        if fit:
            return conn
        # Close it and open a replacement in the same slot.
        self._in_use.discard(conn)
        self._closing += 1
        await self._close_one(conn, free_slot=False)
        self._opening += 1
        return await self._open_in_slot()

    async def _check(self, conn: C) -> bool:
        try:
            return await conn.check() and conn.is_usable
        except Exception:  # any failure means "not fit"; it is logged
            logger.debug("pooled connection failed its check", exc_info=True)
            return False

    # -- check-in ---------------------------------------------------------------------------

    async def release(self, conn: C) -> None:
        """Give a connection back: to the first waiter, to the idle set, or closed.

        A connection that is no longer usable, too old, idle too long or has
        carried its maximum number of messages is closed (QUIT when possible),
        as is every connection released after :meth:`aclose`.

        Args:
            conn: a connection lent by :meth:`acquire`.

        Raises:
            ValueError: ``conn`` is not lent from this pool.
        """
        if conn not in self._in_use:
            raise ValueError("this connection is not checked out from this pool")
        if self._closed or self._is_retired(conn, self._clock()):
            await self._close_lent(conn)
            return
        self._pass_on(conn)

    def _pass_on(self, conn: C) -> None:
        """Give a returned connection to the next waiter, or keep it idle."""
        waiter = self._next_waiter()
        if waiter is not None:
            self._assign(waiter, conn, chained=False)
        else:
            self._in_use.discard(conn)
            self._put_idle(conn)

    async def _close_lent(self, conn: C) -> None:
        """Close a connection that was lent out; its slot is freed once it is closed."""
        self._in_use.discard(conn)
        self._closing += 1
        await self._close_one(conn)

    def hand_off(
        self, conn: C, claim: Callable[[object], bool] | None = None
    ) -> Callable[[], None] | None:
        """Pass a connection that is still busy straight to the first waiter.

        Used for chaining: the caller has the server's go-ahead for its
        message content and will still read the final reply, while the next
        caller's commands go out on the same connection. The waiter owns the
        connection at once but stays asleep until the returned ``wake`` is
        called (when the caller has read its last reply), so it resumes
        exactly when it may use the connection. From then on its wait is no
        longer bounded by ``pool_timeout``: the caller's own timeouts bound it.

        Nothing happens when nobody waits, when the first waiter asked for a
        fresh connection, or when ``conn`` is due for retirement.

        Args:
            conn: a connection lent to the caller.
            claim: called synchronously with the first waiter's ticket before
                it is served; returning False keeps the connection with the
                caller. It must not raise.

        Returns:
            None when the caller keeps ``conn``. Otherwise ``wake``: the first
            waiter now owns ``conn`` (the caller must not release it), and the
            caller must call ``wake()`` exactly once, even on failure.

        Raises:
            ValueError: ``conn`` is not lent from this pool.
        """
        if conn not in self._in_use:
            raise ValueError("this connection is not checked out from this pool")
        if not self._waiting or self._closed or self._is_retired(conn, self._clock()):
            return None
        waiters = self._waiters
        while waiters and waiters[0].cancelled:
            waiters.popleft()
        if not waiters or waiters[0].fresh:
            return None
        waiter = waiters[0]
        if claim is not None and not claim(waiter.ticket):
            return None
        waiters.popleft()
        self._waiting -= 1
        waiter.connection = conn
        waiter.chained = True
        waiter.expiry = math.inf  # no longer bounded by pool_timeout
        return waiter.wake

    async def discard(self, conn: C) -> None:
        """Close a lent connection and drop it from the pool, whatever its state.

        Args:
            conn: a connection lent by :meth:`acquire`.

        Raises:
            ValueError: ``conn`` is not lent from this pool.
        """
        if conn not in self._in_use:
            raise ValueError("this connection is not checked out from this pool")
        await self._close_lent(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[C]:
        """Borrow a connection for the duration of an ``async with`` block.

        The connection is released at the end of the block; if the block is
        interrupted by cancellation (or another ``BaseException`` that is not
        an ``Exception``), the connection's state is unknown and it is closed.
        Do not call :meth:`hand_off` or :meth:`release` inside the block.
        """
        conn = await self.acquire()
        try:
            yield conn
        except Exception:
            await self.release(conn)
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.discard(conn)
            raise
        await self.release(conn)

    # -- bookkeeping ------------------------------------------------------------------------

    def _open_count(self) -> int:
        return len(self._idle) + len(self._in_use) + self._opening + self._closing

    def _is_retired(self, conn: C, now: float) -> bool:
        config = self._config
        if not conn.is_usable:
            return True
        if config.max_lifetime is not None and now - conn.created_at >= config.max_lifetime:
            return True
        if config.idle_timeout is not None and now - conn.last_used >= config.idle_timeout:
            return True
        limit = config.max_messages_per_connection
        return limit is not None and conn.messages_sent >= limit

    def _expiry(self, conn: C) -> float:
        """When an idle connection will have to be retired (inf: never by age)."""
        config = self._config
        deadline = math.inf
        if config.max_lifetime is not None:
            deadline = conn.created_at + config.max_lifetime
        if config.idle_timeout is not None:
            deadline = min(deadline, conn.last_used + config.idle_timeout)
        return deadline

    def _next_waiter(self) -> _Waiter[C] | None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.cancelled:
                self._waiting -= 1
                return waiter
        return None

    def _assign(self, waiter: _Waiter[C], conn: C, *, chained: bool) -> None:
        waiter.connection = conn
        waiter.chained = chained
        waiter.wake()

    def _slot_freed(self) -> None:
        """A counted connection went away: let the first waiter open one instead."""
        if self._closed:
            return
        waiter = self._next_waiter()
        if waiter is not None:
            self._opening += 1
            waiter.slot = True
            waiter.wake()

    def _put_idle(self, conn: C) -> None:
        self._idle.append(conn)
        scope = self._reaper_scope
        if scope is not None and self._expiry(conn) < self._reaper_deadline:
            scope.cancel()

    async def _close_one(self, conn: C, *, free_slot: bool = True) -> None:
        """Close a connection already counted in ``_closing``; shielded."""
        try:
            with anyio.CancelScope(shield=True):
                await conn.aclose()
        except Exception:  # closing is best effort; it is logged
            logger.debug("error while closing a pooled connection", exc_info=True)
        finally:
            self._closing -= 1
            self._closed_total += 1
            self._retired_messages += conn.messages_accepted
            if free_slot:
                self._slot_freed()

    async def _close_retired(self, conns: list[C], *, keep_slot: bool) -> None:
        """Close connections popped as retired; optionally keep the first one's slot."""
        with anyio.CancelScope(shield=True):
            for index, conn in enumerate(conns):
                if keep_slot and index == 0:
                    await self._close_one(conn, free_slot=False)
                    # Counted again at once, so the cap holds while we close the rest.
                    self._opening += 1
                else:
                    await self._close_one(conn)

    def _closed_error(self) -> SmtpError:
        return SmtpError("the connection pool is closed", transient=False)

    # -- lifetime ---------------------------------------------------------------------------

    async def _reap(self) -> None:
        """Close idle connections as they expire, until the pool closes."""
        try:
            await self._reap_loop()
        except Exception:
            # Expiry then happens on acquire and release only; never take the
            # owner of the pool down with us.
            logger.exception("the idle-connection reaper stopped")

    async def _reap_loop(self) -> None:
        while not self._closed:
            now = self._clock()
            keep: list[C] = []
            expired: list[C] = []
            deadline = math.inf
            for conn in self._idle:
                expiry = self._expiry(conn)
                if expiry <= now or not conn.is_usable:
                    expired.append(conn)
                else:
                    keep.append(conn)
                    deadline = min(deadline, expiry)
            if expired:
                self._idle = keep
                self._closing += len(expired)
                with anyio.CancelScope(shield=True):
                    for conn in expired:
                        await self._close_one(conn)
                continue
            with anyio.CancelScope() as scope:
                self._reaper_scope = scope
                self._reaper_deadline = deadline
                await self._sleep(deadline - now if deadline != math.inf else math.inf)
            self._reaper_scope = None
            self._reaper_deadline = math.inf

    async def aclose(self) -> None:
        """Close the pool: fail waiting callers, close idle connections.

        Idle connections are closed (QUIT) concurrently; connections still in
        use are closed when they are released. Further :meth:`acquire` calls
        raise ``SmtpError``. Calling it again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.cancelled:
                waiter.closed = True
                waiter.wake()
        self._waiting = 0
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        if self._reaper_scope is not None:
            self._reaper_scope.cancel()
        idle, self._idle = self._idle, []
        self._closing += len(idle)
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as group:
                for conn in idle:
                    group.start_soon(self._close_one, conn)

    def abandon(self) -> None:
        """Drop every connection at once, without awaiting: the pool's event loop is closed.

        Each connection is shut down with its ``abandon()``; nothing runs on
        the closed loop. Callers still waiting there are forgotten (they can
        never resume). The pool is closed afterwards.
        """
        self._closed = True
        conns = [*self._idle, *self._in_use]
        self._idle = []
        self._in_use = set()
        self._waiters.clear()
        self._waiting = self._opening = self._closing = 0
        # Timers, the reaper and its task group belong to the closed loop.
        self._expiry_timer = None
        self._reaper_scope = None
        self._task_group = None
        for conn in conns:
            try:
                conn.abandon()
            except Exception:  # best effort, like every close; it is logged
                logger.debug("error while abandoning a pooled connection", exc_info=True)
            self._closed_total += 1
            self._retired_messages += conn.messages_accepted

    async def __aenter__(self) -> Self:
        if self._closed:
            raise self._closed_error()
        config = self._config
        if config.idle_timeout is not None or config.max_lifetime is not None:
            group = anyio.create_task_group()
            await group.__aenter__()
            self._task_group = group
            group.start_soon(self._reap)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group, self._task_group = self._task_group, None
        try:
            await self.aclose()
        finally:
            if group is not None:
                group.cancel_scope.cancel()
                # The body's own exception propagates unchanged (not wrapped
                # in an exception group): the reaper never raises.
                await group.__aexit__(None, None, None)
        return None


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
