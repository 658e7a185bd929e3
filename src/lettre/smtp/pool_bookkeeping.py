"""The bookkeeping of the generic connection pool.

:class:`_PoolBookkeeping` is the base of
:class:`~lettre.smtp.connection_pool.ConnectionPool`: what keeps its counters
right (open, idle, in use, opening, closing), decides when a connection is
retired, serves the waiter queue as slots free up, closes connections, runs
the idle-connection reaper, and keeps the one timer that ends asyncio waiters'
``pool_timeout``. The pool's state is set up by ``ConnectionPool.__init__``;
checkout and check-in live in :mod:`lettre.smtp.connection_pool`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic

import anyio

from lettre._loops import running_on_asyncio
from lettre.errors import SmtpError
from lettre.smtp.pool_parts import C, PoolConfig, _Waiter

__all__: list[str] = []

logger = logging.getLogger("lettre.smtp.pool")


class _PoolBookkeeping(Generic[C]):
    """Counting, retiring and closing connections, the waiter queue, the reaper.

    The state is declared here and set up by ``ConnectionPool.__init__``.
    """

    _factory: Callable[[], Awaitable[C]]
    _config: PoolConfig
    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _asyncio_loop: asyncio.AbstractEventLoop | None
    _idle: list[C]
    _in_use: set[C]
    _opening: int
    _closing: int
    _waiters: deque[_Waiter[C]]
    _waiting: int
    _retired_messages: int
    _closed_total: int
    _closed: bool
    _reaper_scope: anyio.CancelScope | None
    _reaper_deadline: float
    _expiry_timer: asyncio.TimerHandle | None
    _expiry_loop: asyncio.AbstractEventLoop | None

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

    # -- asyncio waiters' expiry ------------------------------------------------------------

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
