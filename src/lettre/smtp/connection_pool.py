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
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.lowlevel

from lettre._loops import current_clock
from lettre.errors import PoolTimeout
from lettre.smtp.pool_bookkeeping import _PoolBookkeeping
from lettre.smtp.pool_parts import (
    C,
    ConnectionFactory,
    HandOff,
    PoolConfig,
    PooledConnection,
    PoolStatistics,
    _RateLimiter,
    _Waiter,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ConnectionFactory",
    "ConnectionPool",
    "HandOff",
    "PoolConfig",
    "PoolStatistics",
    "PooledConnection",
]

logger = logging.getLogger("lettre.smtp.pool")


class ConnectionPool(_PoolBookkeeping[C]):
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
        self.wait_observer: Callable[[], Callable[[float, bool], None] | None] | None = None
        """Asked as a wait for a connection starts: a function to call when it ends (how
        long it took, whether it got one), or None when nobody listens."""

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
        # Copies first (each one step under the GIL): another thread may read
        # the statistics of this pool while its own loop changes them.
        idle = self._idle.copy()
        in_use = self._in_use.copy()
        live = sum(c.messages_accepted for c in idle) + sum(c.messages_accepted for c in in_use)
        return PoolStatistics(
            open=self._open_count(),
            idle=len(idle),
            in_use=len(in_use),
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
        observer = self.wait_observer
        on_wait = None if observer is None else observer()
        if on_wait is None:
            return await self._wait_in_line(limit, ticket, fresh)
        started = self._clock()
        try:
            outcome = await self._wait_in_line(limit, ticket, fresh)
        except BaseException:
            on_wait(self._clock() - started, False)
            raise
        on_wait(self._clock() - started, True)
        return outcome

    async def _wait_in_line(
        self, limit: float, ticket: object, fresh: bool
    ) -> tuple[C | None, bool, bool]:
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
            waiter.cancelled = True  # for HandOff.gave_up()
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

    def hand_off(self, conn: C, claim: Callable[[object], bool] | None = None) -> HandOff | None:
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
        return waiter

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

    # -- lifetime ---------------------------------------------------------------------------

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
