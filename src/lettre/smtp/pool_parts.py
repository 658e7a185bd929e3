"""The parts the generic connection pool is built from.

:class:`~lettre.smtp.connection_pool.ConnectionPool` lends connections that
follow :class:`PooledConnection`, within the limits of a :class:`PoolConfig`,
and reports its state as :class:`PoolStatistics`. Callers beyond the cap wait
as a ``_Waiter`` each (a busy connection handed to one is a :class:`HandOff`),
and ``_RateLimiter`` spreads checkouts over time. Everything here is
re-exported by :mod:`lettre.smtp.connection_pool`.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import anyio

from lettre.errors import PoolTimeout

__all__ = [
    "ConnectionFactory",
    "HandOff",
    "PoolConfig",
    "PoolStatistics",
    "PooledConnection",
]


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


#: The type of the connections a pool lends.
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


class HandOff(Protocol):
    """A waiter that :meth:`ConnectionPool.hand_off` gave a busy connection to.

    Call it, exactly once, to let the waiter resume.
    """

    def __call__(self) -> None:
        """Wake the waiter."""

    def gave_up(self) -> bool:
        """Whether the waiter was cancelled before it was woken (its connection is orphaned)."""


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

    def __call__(self) -> None:
        """:meth:`wake`: what :meth:`ConnectionPool.hand_off` hands back."""
        self.wake()

    def gave_up(self) -> bool:
        """Whether the caller stopped waiting (it was cancelled) before being woken."""
        if self.woken:
            return False
        future = self.future
        return future.done() if future is not None else self.cancelled

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
