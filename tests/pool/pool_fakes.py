"""Small in-test connections, a factory and a controllable clock for pool tests."""

from __future__ import annotations

import anyio
import anyio.lowlevel

#: Every wait in these helpers is bounded by this many seconds.
BOUND = 10.0


class FakeClock:
    """A clock that only moves when the test says so, with a matching sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, anyio.Event]] = []
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        if delay <= 0:
            await anyio.lowlevel.checkpoint()
            return
        entry = (self.now + delay, anyio.Event())
        self._sleepers.append(entry)
        try:
            with anyio.fail_after(BOUND):
                await entry[1].wait()
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    @property
    def sleepers(self) -> int:
        return len(self._sleepers)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, event in list(self._sleepers):
            if deadline <= self.now:
                self._sleepers.remove((deadline, event))
                event.set()


class FakeConnection:
    """A connection that records what the pool does to it."""

    def __init__(self, clock: FakeClock, ident: int) -> None:
        self.clock = clock
        self.ident = ident
        self.created_at = clock()
        self.last_used = clock()
        self.messages_sent = 0
        self.messages_accepted = 0
        self.is_usable = True
        self.abandoned = False
        self.closed = False
        self.checks = 0
        self.check_result = True
        self.check_error: Exception | None = None
        self.close_gate: anyio.Event | None = None
        self.close_finished = anyio.Event()

    def __repr__(self) -> str:
        return f"<FakeConnection {self.ident}>"

    def use(self) -> None:
        """Pretend one message went through."""
        self.messages_sent += 1
        self.messages_accepted += 1
        self.last_used = self.clock()

    def abandon(self) -> None:
        self.abandoned = True
        self.is_usable = False

    async def check(self) -> bool:
        self.checks += 1
        await anyio.lowlevel.checkpoint()
        if self.check_error is not None:
            raise self.check_error
        return self.check_result

    async def aclose(self) -> None:
        if self.close_gate is not None:
            with anyio.fail_after(BOUND):
                await self.close_gate.wait()
        self.closed = True
        self.is_usable = False
        self.close_finished.set()


class FakeFactory:
    """Opens FakeConnections; can hold openings at a gate or make them fail."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.made: list[FakeConnection] = []
        self.calls = 0
        self.gate: anyio.Event | None = None
        self.failures: list[Exception] = []
        self.live = 0
        self.peak_live = 0

    async def __call__(self) -> FakeConnection:
        self.calls += 1
        self.live += 1
        self.peak_live = max(self.peak_live, self.live)
        try:
            if self.gate is not None:
                with anyio.fail_after(BOUND):
                    await self.gate.wait()
            else:
                await anyio.lowlevel.checkpoint()
            if self.failures:
                raise self.failures.pop(0)
        except BaseException:
            self.live -= 1
            raise
        conn = _Tracked(self, len(self.made))
        self.made.append(conn)
        return conn


class _Tracked(FakeConnection):
    def __init__(self, factory: FakeFactory, ident: int) -> None:
        super().__init__(factory.clock, ident)
        self._factory = factory

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            self._factory.live -= 1


async def settle() -> None:
    """Wait until every other task is blocked (bounded)."""
    with anyio.fail_after(BOUND):
        await anyio.wait_all_tasks_blocked()
