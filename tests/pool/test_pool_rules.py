"""The pool's bookkeeping rules, with in-test connections and a controlled clock."""

from __future__ import annotations

import dataclasses

import anyio
import pytest
from pool_fakes import BOUND, FakeClock, FakeConnection, FakeFactory, settle

from lettre.errors import PoolTimeout, TransportError
from lettre.smtp.pool import ConnectionPool, PoolConfig, PoolStatistics

pytestmark = pytest.mark.anyio

Pool = ConnectionPool[FakeConnection]


def make_pool(**config: object) -> tuple[Pool, FakeFactory, FakeClock]:
    clock = FakeClock()
    factory = FakeFactory(clock)
    pool: Pool = ConnectionPool(
        factory,
        PoolConfig(**config),  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
    )
    return pool, factory, clock


# -- configuration ------------------------------------------------------------------------


def test_config_defaults() -> None:
    config = PoolConfig()
    assert config.max_size == 10
    assert config.pool_timeout == 30.0
    assert config.idle_timeout == 60.0
    assert config.max_lifetime == 600.0
    assert config.max_messages_per_connection == 100
    assert config.check_after_idle == 5.0
    assert config.rate_limit is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_size": 0}, ValueError),
        ({"max_size": 2.5}, TypeError),
        ({"max_size": True}, TypeError),
        ({"pool_timeout": 0}, ValueError),
        ({"pool_timeout": None}, ValueError),
        ({"pool_timeout": float("nan")}, ValueError),
        ({"idle_timeout": -1}, ValueError),
        ({"max_lifetime": 0}, ValueError),
        ({"max_messages_per_connection": 0}, ValueError),
        ({"check_after_idle": -0.5}, ValueError),
        ({"check_after_idle": "5"}, TypeError),
        ({"rate_limit": (0, 1.0)}, ValueError),
        ({"rate_limit": (5, 0)}, ValueError),
        ({"rate_limit": [5, 1.0]}, TypeError),
        ({"rate_limit": (5,)}, TypeError),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        PoolConfig(**kwargs)  # type: ignore[arg-type]


def test_config_accepts_no_limits() -> None:
    config = PoolConfig(
        idle_timeout=None, max_lifetime=None, max_messages_per_connection=None, check_after_idle=0
    )
    assert config.idle_timeout is None
    assert config.check_after_idle == 0


# -- reuse and statistics -----------------------------------------------------------------


async def test_reuses_the_most_recently_released_connection() -> None:
    pool, factory, _ = make_pool()
    first = await pool.acquire()
    second = await pool.acquire()
    assert first is not second
    first.use()
    second.use()
    await pool.release(first)
    await pool.release(second)
    again = await pool.acquire()
    assert again is second
    assert factory.calls == 2
    stats = pool.statistics()
    assert stats == PoolStatistics(
        open=2,
        idle=1,
        in_use=1,
        opening=0,
        waiting=0,
        messages_sent=2,
        opened_total=2,
        closed_total=0,
    )
    await pool.release(again)
    await pool.aclose()


async def test_statistics_count_openings_and_waiters() -> None:
    pool, factory, _ = make_pool(max_size=2)
    factory.gate = anyio.Event()
    got: list[FakeConnection] = []

    async def take() -> None:
        got.append(await pool.acquire())

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(take)
        await settle()
        stats = pool.statistics()
        assert (stats.open, stats.opening, stats.waiting, stats.in_use) == (2, 2, 1, 0)
        assert factory.calls == 2
        factory.gate.set()
        await settle()
        stats = pool.statistics()
        assert (stats.open, stats.opening, stats.waiting, stats.in_use) == (2, 0, 1, 2)
        await pool.release(got[0])
    assert len(got) == 3
    assert got[2] is got[0]
    assert factory.calls == 2
    for conn in got[1:]:
        await pool.release(conn)
    await pool.aclose()


async def test_release_of_a_foreign_connection_is_refused() -> None:
    pool, _, clock = make_pool()
    stranger = FakeConnection(clock, 99)
    with pytest.raises(ValueError, match="not checked out"):
        await pool.release(stranger)
    with pytest.raises(ValueError, match="not checked out"):
        pool.hand_off(stranger)
    with pytest.raises(ValueError, match="not checked out"):
        await pool.discard(stranger)
    conn = await pool.acquire()
    await pool.release(conn)
    with pytest.raises(ValueError, match="not checked out"):
        await pool.release(conn)
    await pool.aclose()


# -- the cap and the queue ----------------------------------------------------------------


async def test_waiters_are_served_in_fifo_order() -> None:
    pool, factory, _ = make_pool(max_size=1)
    held = await pool.acquire()
    order: list[int] = []

    async def wait_turn(number: int) -> None:
        conn = await pool.acquire()
        order.append(number)
        await pool.release(conn)

    async with anyio.create_task_group() as group:
        for number in range(5):
            group.start_soon(wait_turn, number)
            await settle()
        assert pool.statistics().waiting == 5
        await pool.release(held)
    assert order == [0, 1, 2, 3, 4]
    assert factory.calls == 1
    await pool.aclose()


async def test_a_new_caller_does_not_overtake_waiters() -> None:
    pool, _, _ = make_pool(max_size=1)
    held = await pool.acquire()
    order: list[str] = []

    async def wait_turn(name: str) -> None:
        conn = await pool.acquire()
        order.append(name)
        await pool.release(conn)

    async with anyio.create_task_group() as group:
        group.start_soon(wait_turn, "first")
        await settle()
        # Releasing hands the connection straight to the waiter: a caller
        # arriving now must queue behind it, not grab it from the idle set.
        await pool.release(held)
        group.start_soon(wait_turn, "second")
    assert order == ["first", "second"]
    await pool.aclose()


async def test_pool_timeout_raises_and_leaves_no_trace() -> None:
    pool, _, _ = make_pool(max_size=1, pool_timeout=0.05)
    held = await pool.acquire()
    with anyio.fail_after(BOUND), pytest.raises(PoolTimeout) as info:
        await pool.acquire()
    assert info.value.transient
    assert pool.statistics().waiting == 0
    await pool.release(held)
    again = await pool.acquire()
    assert again is held
    await pool.release(again)
    await pool.aclose()


async def test_waiters_queued_one_after_another_each_time_out() -> None:
    # On asyncio one timer serves every waiter: it must fire again for the
    # waiters queued after the first one.
    pool, _, _ = make_pool(max_size=1, pool_timeout=0.05)
    held = await pool.acquire()
    outcomes: list[str] = []

    async def wait_for_one(name: str) -> None:
        with pytest.raises(PoolTimeout):
            await pool.acquire()
        outcomes.append(name)

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as group:
            # The pauses only spread the waiters' expiry times (the outcome
            # is the same without them); settle() does the synchronisation.
            group.start_soon(wait_for_one, "first")
            await settle()
            await anyio.sleep(0.02)
            group.start_soon(wait_for_one, "second")
            await settle()
            await anyio.sleep(0.02)
            group.start_soon(wait_for_one, "third")
    assert outcomes == ["first", "second", "third"]
    assert pool.statistics().waiting == 0
    await pool.release(held)
    again = await pool.acquire()
    assert again is held
    await pool.release(again)
    await pool.aclose()


async def test_cancelled_waiter_leaves_the_queue() -> None:
    pool, factory, _ = make_pool(max_size=1)
    held = await pool.acquire()
    results: list[FakeConnection] = []

    async def wait_for_one() -> None:
        results.append(await pool.acquire())

    async with anyio.create_task_group() as group:
        group.start_soon(wait_for_one)
        await settle()
        assert pool.statistics().waiting == 1
        group.cancel_scope.cancel()
    assert not results
    assert pool.statistics().waiting == 0
    await pool.release(held)
    stats = pool.statistics()
    assert (stats.open, stats.idle, stats.waiting) == (1, 1, 0)
    again = await pool.acquire()
    assert again is held
    assert factory.calls == 1
    await pool.release(again)
    await pool.aclose()


async def test_many_cancelled_waiters_do_not_pile_up() -> None:
    pool, _, _ = make_pool(max_size=1)
    held = await pool.acquire()

    async def wait_for_one() -> None:
        await pool.acquire()

    for _ in range(200):
        async with anyio.create_task_group() as group:
            group.start_soon(wait_for_one)
            await settle()
            group.cancel_scope.cancel()
    assert pool.statistics().waiting == 0
    assert len(pool._waiters) <= 40
    await pool.release(held)
    await pool.aclose()


async def test_waiter_cancelled_after_being_served_passes_the_connection_on() -> None:
    pool, factory, _ = make_pool(max_size=1)
    held = await pool.acquire()
    served: list[str] = []
    first_scope = anyio.CancelScope()

    async def first() -> None:
        with first_scope:
            conn = await pool.acquire()
            served.append("first")
            await pool.release(conn)

    async def second() -> None:
        conn = await pool.acquire()
        served.append("second")
        await pool.release(conn)

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        await settle()
        group.start_soon(second)
        await settle()
        # The release serves "first" synchronously; cancelling it before it
        # runs must pass the connection on to "second".
        await pool.release(held)
        first_scope.cancel()
    assert served == ["second"]
    stats = pool.statistics()
    assert (stats.open, stats.idle, stats.in_use, stats.waiting) == (1, 1, 0, 0)
    assert factory.calls == 1
    await pool.aclose()


async def test_waiter_cancelled_after_being_served_returns_it_to_idle() -> None:
    pool, _, _ = make_pool(max_size=1)
    held = await pool.acquire()
    scope = anyio.CancelScope()
    served: list[FakeConnection] = []

    async def first() -> None:
        with scope:
            served.append(await pool.acquire())

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        await settle()
        await pool.release(held)
        scope.cancel()
    assert not served
    stats = pool.statistics()
    assert (stats.open, stats.idle, stats.in_use) == (1, 1, 0)
    assert not held.closed
    await pool.aclose()


async def test_cancelled_opening_frees_its_slot() -> None:
    pool, factory, _ = make_pool(max_size=1)
    factory.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(pool.acquire)
        await settle()
        assert pool.statistics().opening == 1
        group.cancel_scope.cancel()
    stats = pool.statistics()
    assert (stats.open, stats.opening) == (0, 0)
    factory.gate = None
    conn = await pool.acquire()
    assert pool.statistics().open == 1
    await pool.release(conn)
    await pool.aclose()


async def test_failed_opening_hands_its_slot_to_the_next_waiter() -> None:
    pool, factory, _ = make_pool(max_size=1)
    factory.gate = anyio.Event()
    factory.failures.append(OSError("connection refused"))
    outcomes: list[object] = []

    async def take() -> None:
        try:
            outcomes.append(await pool.acquire())
        except OSError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await settle()
        group.start_soon(take)
        await settle()
        assert pool.statistics().waiting == 1
        factory.gate.set()
    assert isinstance(outcomes[0], OSError)
    assert isinstance(outcomes[1], FakeConnection)
    assert factory.calls == 2
    stats = pool.statistics()
    assert (stats.open, stats.in_use, stats.opened_total) == (1, 1, 1)
    await pool.release(outcomes[1])
    await pool.aclose()


async def test_cap_holds_under_a_thousand_concurrent_callers() -> None:
    pool, factory, _ = make_pool(max_size=10, pool_timeout=BOUND, max_messages_per_connection=7)
    in_use = 0
    peak = 0
    done = 0

    async def send() -> None:
        nonlocal in_use, peak, done
        async with pool.connection() as conn:
            in_use += 1
            peak = max(peak, in_use, pool.statistics().open)
            await anyio.lowlevel.checkpoint()
            conn.use()
            in_use -= 1
        done += 1

    async with anyio.create_task_group() as group:
        for _ in range(1000):
            group.start_soon(send)
    assert done == 1000
    assert peak <= 10
    assert factory.peak_live <= 10
    assert pool.statistics().messages_sent == 1000
    # 1000 messages at most 7 per connection.
    assert factory.calls >= 143
    await pool.aclose()
    assert factory.live == 0


# -- retirement rules ---------------------------------------------------------------------


async def test_unusable_connection_is_closed_not_reused() -> None:
    pool, factory, _ = make_pool()
    conn = await pool.acquire()
    conn.is_usable = False
    await pool.release(conn)
    assert conn.closed
    stats = pool.statistics()
    assert (stats.open, stats.idle, stats.closed_total) == (0, 0, 1)
    fresh = await pool.acquire()
    assert fresh is not conn
    assert factory.calls == 2
    await pool.release(fresh)
    await pool.aclose()


async def test_connection_retired_after_max_messages() -> None:
    pool, factory, _ = make_pool(max_messages_per_connection=3)
    seen: list[FakeConnection] = []
    for _ in range(7):
        conn = await pool.acquire()
        conn.use()
        seen.append(conn)
        await pool.release(conn)
    assert [c.ident for c in seen] == [0, 0, 0, 1, 1, 1, 2]
    assert seen[0].closed
    assert seen[3].closed
    assert not seen[6].closed
    assert factory.calls == 3
    assert pool.statistics().messages_sent == 7
    await pool.aclose()


async def test_connection_retired_after_max_lifetime_on_release() -> None:
    pool, _, clock = make_pool(max_lifetime=100.0, idle_timeout=None)
    conn = await pool.acquire()
    clock.advance(99.0)
    conn.use()
    await pool.release(conn)
    assert not conn.closed
    conn = await pool.acquire()
    clock.advance(1.0)
    conn.use()
    await pool.release(conn)
    assert conn.closed
    assert pool.statistics().open == 0
    await pool.aclose()


async def test_idle_connection_past_its_lifetime_is_replaced_in_place() -> None:
    pool, factory, clock = make_pool(max_size=1, max_lifetime=100.0, idle_timeout=None)
    old = await pool.acquire()
    await pool.release(old)
    clock.advance(100.0)
    new = await pool.acquire()
    assert new is not old
    assert old.closed
    stats = pool.statistics()
    assert (stats.open, stats.in_use, stats.opened_total, stats.closed_total) == (1, 1, 2, 1)
    assert factory.peak_live == 1
    await pool.release(new)
    await pool.aclose()


async def test_idle_timeout_applies_on_acquire() -> None:
    pool, factory, clock = make_pool(idle_timeout=60.0, check_after_idle=None)
    old = await pool.acquire()
    await pool.release(old)
    clock.advance(59.0)
    same = await pool.acquire()
    assert same is old
    await pool.release(same)
    clock.advance(60.0)
    new = await pool.acquire()
    assert new is not old
    assert old.closed
    assert factory.calls == 2
    await pool.release(new)
    await pool.aclose()


async def test_retired_idle_connections_met_on_the_way_are_closed() -> None:
    pool, factory, clock = make_pool(max_size=3, max_lifetime=100.0, idle_timeout=None)
    older, younger = await pool.acquire(), await pool.acquire()
    older.created_at -= 50.0
    await pool.release(younger)
    await pool.release(older)  # on top of the idle stack
    clock.advance(60.0)  # older is 110 s old, younger 60 s
    got = await pool.acquire()
    assert got is younger
    assert older.closed
    stats = pool.statistics()
    assert (stats.open, stats.idle, stats.in_use, stats.closed_total) == (1, 0, 1, 1)
    assert factory.calls == 2
    await pool.release(got)
    await pool.aclose()


async def test_connection_idle_past_threshold_is_checked_before_reuse() -> None:
    pool, factory, clock = make_pool(check_after_idle=5.0)
    conn = await pool.acquire()
    await pool.release(conn)
    clock.advance(5.0)
    again = await pool.acquire()
    assert again is conn
    assert conn.checks == 0  # idle exactly the threshold: not longer
    await pool.release(again)
    clock.advance(5.5)
    again = await pool.acquire()
    assert again is conn
    assert conn.checks == 1
    await pool.release(again)
    assert factory.calls == 1
    await pool.aclose()


@pytest.mark.parametrize("failure", ["false", "raises", "unusable"])
async def test_connection_failing_its_check_is_replaced(failure: str) -> None:
    pool, factory, clock = make_pool(max_size=1, check_after_idle=0)
    conn = await pool.acquire()
    await pool.release(conn)
    clock.advance(1.0)
    if failure == "false":
        conn.check_result = False
    elif failure == "raises":
        conn.check_error = OSError("reset by peer")
    else:

        async def check_and_break() -> bool:
            conn.is_usable = False
            return True

        conn.check = check_and_break  # type: ignore[method-assign]
    new = await pool.acquire()
    assert new is not conn
    assert conn.closed
    assert factory.calls == 2
    assert pool.statistics().open == 1
    await pool.release(new)
    await pool.aclose()


async def test_no_check_when_disabled() -> None:
    pool, _, clock = make_pool(check_after_idle=None, idle_timeout=None, max_lifetime=None)
    conn = await pool.acquire()
    await pool.release(conn)
    clock.advance(10_000.0)
    again = await pool.acquire()
    assert again is conn
    assert conn.checks == 0
    await pool.release(again)
    await pool.aclose()


async def test_cancelled_during_check_closes_the_connection() -> None:
    pool, _, clock = make_pool(check_after_idle=0)
    conn = await pool.acquire()
    await pool.release(conn)
    clock.advance(1.0)
    gate = anyio.Event()

    async def slow_check() -> bool:
        await gate.wait()
        return True

    conn.check = slow_check  # type: ignore[method-assign]
    async with anyio.create_task_group() as group:
        group.start_soon(pool.acquire)
        await settle()
        group.cancel_scope.cancel()
    assert conn.closed
    assert pool.statistics().open == 0
    await pool.aclose()


# -- closing ------------------------------------------------------------------------------


async def test_close_is_shielded_from_cancellation() -> None:
    pool, _, _ = make_pool()
    conn = await pool.acquire()
    conn.close_gate = anyio.Event()
    scope = anyio.CancelScope()

    async def discard() -> None:
        with scope:
            await pool.discard(conn)

    async with anyio.create_task_group() as group:
        group.start_soon(discard)
        await settle()
        scope.cancel()
        await settle()
        assert not conn.closed
        conn.close_gate.set()
    assert conn.closed
    assert pool.statistics().open == 0
    await pool.aclose()


async def test_connection_context_releases_or_discards() -> None:
    pool, _, _ = make_pool()
    async with pool.connection() as conn:
        conn.use()
    assert pool.statistics().idle == 1

    async def fail_inside() -> None:
        async with pool.connection() as again:
            assert again is conn
            raise RuntimeError("caller's own error")

    with pytest.raises(RuntimeError):
        await fail_inside()
    assert pool.statistics().idle == 1
    assert not conn.closed
    with anyio.CancelScope() as scope:
        async with pool.connection() as again:
            assert again is conn
            scope.cancel()
            await anyio.lowlevel.checkpoint()
    assert conn.closed
    assert pool.statistics().open == 0
    await pool.aclose()


async def test_aclose_closes_idle_fails_waiters_and_refuses_new_callers() -> None:
    pool, _, _ = make_pool(max_size=2)
    first = await pool.acquire()
    second = await pool.acquire()
    await pool.release(first)
    errors: list[BaseException] = []

    async def take() -> None:
        try:
            await pool.acquire()
        except TransportError as exc:
            errors.append(exc)

    # Both slots are taken (one idle, one in use), so this caller would queue
    # only if the idle one were gone; take it first.
    third = await pool.acquire()
    assert third is first
    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await settle()
        await pool.release(third)  # served to the waiter ...
        await settle()
    assert not errors
    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await settle()
        assert pool.statistics().waiting == 1
        await pool.aclose()
    assert len(errors) == 1
    assert not isinstance(errors[0], PoolTimeout)
    assert "closed" in str(errors[0])
    with pytest.raises(TransportError, match="closed"):
        await pool.acquire()
    # Connections still in use are closed when they come back.
    assert not second.closed
    await pool.release(second)
    assert second.closed
    assert pool.statistics().open == 1  # the one the first waiter still holds
    await pool.aclose()


async def test_aclose_closes_every_idle_connection() -> None:
    pool, factory, _ = make_pool(max_size=5)
    conns = [await pool.acquire() for _ in range(5)]
    for conn in conns:
        await pool.release(conn)
    await pool.aclose()
    assert all(conn.closed for conn in conns)
    assert pool.statistics().open == 0
    assert pool.closed
    assert factory.live == 0
    await pool.aclose()


async def test_connection_opened_after_close_is_closed() -> None:
    pool, factory, _ = make_pool()
    factory.gate = anyio.Event()
    errors: list[Exception] = []

    async def take() -> None:
        try:
            await pool.acquire()
        except TransportError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await settle()
        await pool.aclose()
        factory.gate.set()
    assert len(errors) == 1
    assert factory.made[0].closed
    assert pool.statistics().open == 0


# -- background expiry --------------------------------------------------------------------


async def test_reaper_closes_connections_as_they_expire() -> None:
    pool, _, clock = make_pool(idle_timeout=60.0, max_lifetime=None)
    async with pool:
        a = await pool.acquire()
        b = await pool.acquire()
        await pool.release(a)
        clock.advance(20.0)
        b.use()
        await pool.release(b)
        await settle()
        assert clock.sleepers == 1
        clock.advance(40.0)  # a expires now, b in 20 s
        await settle()
        assert a.closed
        assert not b.closed
        assert pool.statistics().idle == 1
        clock.advance(20.0)
        await settle()
        assert b.closed
        assert pool.statistics().open == 0
    assert pool.closed


async def test_reaper_wakes_for_a_connection_expiring_sooner() -> None:
    pool, _, clock = make_pool(idle_timeout=60.0, max_lifetime=100.0)
    async with pool:
        young = await pool.acquire()
        await pool.release(young)
        await settle()
        clock.advance(10.0)
        await settle()
        # Opened 99 s ago: its lifetime ends long before young's idle timeout.
        old = FakeConnection(clock, 7)
        old.created_at -= 99.0
        pool._in_use.add(old)
        await pool.release(old)
        await settle()
        clock.advance(0.5)
        await settle()
        assert not old.closed
        clock.advance(0.5)
        await settle()
        assert old.closed
        assert not young.closed
        clock.advance(49.0)
        await settle()
        assert young.closed


async def test_exiting_the_pool_context_closes_everything() -> None:
    pool, _, _ = make_pool()
    async with pool:
        conn = await pool.acquire()
        await pool.release(conn)
    assert conn.closed
    with pytest.raises(TransportError):
        async with pool:
            pass


async def test_errors_inside_the_pool_context_propagate_unwrapped() -> None:
    pool, _, _ = make_pool()
    with pytest.raises(KeyError):
        async with pool:
            raise KeyError("mine")
    assert pool.closed


# -- rate limit ---------------------------------------------------------------------------


async def test_rate_limit_spaces_checkouts() -> None:
    pool, _, clock = make_pool(rate_limit=(2, 1.0), pool_timeout=10.0)
    times: list[float] = []

    async def send() -> None:
        async with pool.connection() as conn:
            times.append(clock())
            conn.use()

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(send)
        await settle()
        assert times == [1000.0, 1000.0]
        clock.advance(1.0)
        await settle()
        assert times == [1000.0, 1000.0, 1001.0, 1001.0]
        clock.advance(1.0)
    assert times == [1000.0, 1000.0, 1001.0, 1001.0, 1002.0]
    await pool.aclose()


async def test_rate_limit_wait_beyond_pool_timeout_fails_at_once() -> None:
    pool, _, clock = make_pool(rate_limit=(1, 100.0), pool_timeout=5.0)
    conn = await pool.acquire()
    await pool.release(conn)
    with pytest.raises(PoolTimeout, match="rate limit"):
        await pool.acquire()
    assert clock.sleeps == []
    clock.advance(100.0)
    conn = await pool.acquire()
    await pool.release(conn)
    await pool.aclose()


async def test_rate_limit_is_never_exceeded_in_any_window() -> None:
    pool, _, clock = make_pool(rate_limit=(3, 2.0), pool_timeout=100.0, max_size=2)
    times: list[float] = []

    async def send() -> None:
        async with pool.connection() as conn:
            times.append(clock())
            conn.use()

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(send)
        while len(times) < 20:
            await settle()
            clock.advance(0.25)
    for start in times:
        inside = [t for t in times if start <= t < start + 2.0]
        assert len(inside) <= 3
    assert len(times) == 20
    await pool.aclose()


# -- chaining hand-off --------------------------------------------------------------------


async def test_hand_off_needs_a_waiter() -> None:
    pool, _, _ = make_pool(max_size=1)
    conn = await pool.acquire()
    assert pool.hand_off(conn) is None
    got: list[FakeConnection] = []

    async def take() -> None:
        got.append(await pool.acquire())

    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await settle()
        assert pool.has_waiters
        wake = pool.hand_off(conn)
        assert wake is not None
        assert not pool.has_waiters
        # The waiter owns the connection but sleeps until woken.
        await settle()
        assert got == []
        assert not wake.gave_up()
        wake()
        assert not wake.gave_up()
    assert got == [conn]
    stats = pool.statistics()
    assert (stats.in_use, stats.waiting) == (1, 0)
    await pool.release(conn)
    await pool.aclose()


@pytest.mark.parametrize("reason", ["unusable", "messages"])
async def test_hand_off_refuses_a_connection_due_for_retirement(reason: str) -> None:
    pool, _, _ = make_pool(max_size=1, max_messages_per_connection=1)
    conn = await pool.acquire()
    if reason == "unusable":
        conn.is_usable = False
    else:
        conn.use()

    async def take() -> None:
        new = await pool.acquire()
        await pool.release(new)

    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await settle()
        assert pool.hand_off(conn) is None
        await pool.release(conn)
    assert conn.closed
    await pool.aclose()


async def test_chained_connection_abandoned_by_its_taker_is_closed_not_passed_on() -> None:
    pool, factory, _ = make_pool(max_size=1)
    conn = await pool.acquire()
    scope = anyio.CancelScope()
    got: list[FakeConnection] = []

    async def first() -> None:
        with scope:
            got.append(await pool.acquire())

    async def second() -> None:
        got.append(await pool.acquire())

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        await settle()
        group.start_soon(second)
        await settle()
        wake = pool.hand_off(conn)
        assert wake is not None
        scope.cancel()
        await settle()
        wake()  # too late: harmless
    # Commands for "first" may already be on that connection: "second" gets
    # a new one instead.
    assert conn.closed
    assert len(got) == 1
    assert got[0] is not conn
    assert factory.calls == 2
    await pool.release(got[0])
    await pool.aclose()


async def test_chained_connection_abandoned_with_nobody_next_is_closed() -> None:
    pool, factory, _ = make_pool(max_size=1)
    conn = await pool.acquire()
    scope = anyio.CancelScope()
    got: list[FakeConnection] = []

    async def first() -> None:
        with scope:
            got.append(await pool.acquire())

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        await settle()
        wake = pool.hand_off(conn)
        assert wake is not None
        assert not wake.gave_up()
        scope.cancel()
        await settle()
        assert wake.gave_up()
        wake()  # too late: harmless
    assert not got
    assert conn.closed
    assert pool.statistics().open == 0
    fresh = await pool.acquire()
    assert fresh is not conn
    assert factory.calls == 2
    await pool.release(fresh)
    await pool.aclose()


async def test_waiter_served_by_hand_off_is_no_longer_bound_by_pool_timeout() -> None:
    pool, _, _ = make_pool(max_size=1, pool_timeout=0.2)
    conn = await pool.acquire()
    got: list[FakeConnection] = []

    async def take() -> None:
        got.append(await pool.acquire())

    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await settle()
        wake = pool.hand_off(conn)
        assert wake is not None
        # Longer than pool_timeout: the previous user is still reading its reply.
        await anyio.sleep(0.5)
        assert got == []
        wake()
    assert got == [conn]
    await pool.release(conn)
    await pool.aclose()


async def test_hand_off_shows_the_waiters_ticket_to_claim() -> None:
    pool, _, _ = make_pool(max_size=1)
    conn = await pool.acquire()
    seen: list[object] = []
    got: list[FakeConnection] = []

    async def take(ticket: str) -> None:
        got.append(await pool.acquire(ticket))

    async with anyio.create_task_group() as group:
        group.start_soon(take, "first")
        await settle()
        group.start_soon(take, "second")
        await settle()

        def refuse(ticket: object) -> bool:
            seen.append(ticket)
            return False

        def accept(ticket: object) -> bool:
            seen.append(ticket)
            return True

        assert pool.hand_off(conn, refuse) is None
        assert seen == ["first"]
        assert pool.statistics().waiting == 2
        wake = pool.hand_off(conn, accept)
        assert wake is not None
        assert seen == ["first", "first"]
        wake()
        await settle()
        assert got == [conn]
        await pool.release(conn)
    assert got == [conn, conn]
    await pool.release(conn)
    await pool.aclose()


# -- fresh connections --------------------------------------------------------------------


async def test_fresh_acquire_opens_a_new_connection_when_there_is_room() -> None:
    pool, factory, _ = make_pool(max_size=2)
    conn = await pool.acquire()
    await pool.release(conn)
    fresh = await pool.acquire(fresh=True)
    assert fresh is not conn
    assert not conn.closed
    assert factory.calls == 2
    await pool.release(fresh)
    await pool.aclose()


async def test_fresh_acquire_at_the_cap_replaces_the_least_recently_used() -> None:
    pool, factory, _ = make_pool(max_size=2)
    older, newer = await pool.acquire(), await pool.acquire()
    await pool.release(older)
    await pool.release(newer)
    fresh = await pool.acquire(fresh=True)
    assert fresh not in (older, newer)
    assert older.closed
    assert not newer.closed
    stats = pool.statistics()
    assert (stats.open, stats.idle, stats.in_use) == (2, 1, 1)
    assert factory.peak_live == 2
    await pool.release(fresh)
    await pool.aclose()


async def test_fresh_waiter_is_never_chained_and_replaces_what_it_is_given() -> None:
    pool, factory, _ = make_pool(max_size=1)
    conn = await pool.acquire()
    got: list[FakeConnection] = []

    async def take() -> None:
        got.append(await pool.acquire(fresh=True))

    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await settle()
        assert pool.hand_off(conn) is None
        await pool.release(conn)
    assert len(got) == 1
    assert got[0] is not conn
    assert conn.closed
    assert factory.calls == 2
    assert factory.peak_live == 1
    await pool.release(got[0])
    await pool.aclose()
