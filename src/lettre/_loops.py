"""Which event loop runs the caller, and what can be done with a loop from outside it.

Connections belong to the event loop (an asyncio loop, or a trio run) that
opened them: their sockets are registered with it and their waits are its
futures. A transport used from several loops keeps their connections apart
with the loop objects returned by :func:`current_loop`, and drops those of a
loop that is gone (:func:`loop_is_closed`) without running anything on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio

try:  # anyio decides which event loop runs with sniffio when it is installed
    import sniffio as _sniffio
except ImportError:  # pragma: no cover - sniffio is optional for anyio
    _sniffio = None  # type: ignore[assignment]

__all__ = [
    "call_in_loop",
    "current_clock",
    "current_loop",
    "loop_is_closed",
    "running_on_asyncio",
]

_logger = logging.getLogger("lettre.smtp")

# Tasks started by call_in_loop on asyncio loops, kept until they are done
# (the loop itself only keeps weak references to its tasks).
_tasks: set[asyncio.Task[None]] = set()


def running_on_asyncio() -> bool:
    """Whether the current task runs on asyncio, uvloop included (decided as anyio decides it)."""
    if _sniffio is not None:
        try:
            return bool(_sniffio.current_async_library() == "asyncio")
        except _sniffio.AsyncLibraryNotFoundError:
            pass
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def current_clock() -> Callable[[], float]:
    """anyio's clock as a function that does not look the event loop up on every call.

    Call it inside the event loop; the function it returns gives the same
    times as ``anyio.current_time()`` there.
    """
    if running_on_asyncio():
        return asyncio.get_running_loop().time
    if _sniffio is not None:
        try:
            library = _sniffio.current_async_library()
        except _sniffio.AsyncLibraryNotFoundError:  # pragma: no cover - outside a loop
            library = None
        if library == "trio":
            import trio  # only when trio runs, so it is installed

            # What anyio.current_time() returns on trio, without its look-ups.
            return trio.current_time
    return anyio.current_time


def current_loop() -> object:
    """The event loop running the caller: the asyncio loop, or the trio run's token.

    The same object comes back for every call in one loop (one ``asyncio.run``,
    one ``trio.run``), and a different one in another.

    Raises:
        RuntimeError: no event loop runs in this thread.
    """
    if running_on_asyncio():
        return asyncio.get_running_loop()
    import trio  # anyio runs on asyncio or trio: this is trio, so it is installed

    return trio.lowlevel.current_trio_token()


def loop_is_closed(loop: object) -> bool:
    """Whether ``loop`` (from :func:`current_loop`) is finished: it will never run again.

    Safe to call from any thread.
    """
    if isinstance(loop, asyncio.AbstractEventLoop):
        return loop.is_closed()
    import trio

    assert isinstance(loop, trio.lowlevel.TrioToken)
    try:
        loop.run_sync_soon(_nothing)
    except trio.RunFinishedError:
        return True
    return False


def call_in_loop(loop: object, function: Callable[[], Awaitable[object]]) -> bool:
    """Run ``function()`` as a task of ``loop``, from any thread, without waiting for it.

    Used only to close a loop's connections from outside that loop: the task
    is the loop's own (a system task on trio), so the loop cancels it if it
    ends first.

    Returns:
        False when the loop is already finished (nothing was scheduled).
    """
    if isinstance(loop, asyncio.AbstractEventLoop):

        def start() -> None:
            task = loop.create_task(_as_coroutine(function))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)

        try:
            loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed
            return False
        return True
    import trio

    assert isinstance(loop, trio.lowlevel.TrioToken)

    def spawn() -> None:
        trio.lowlevel.spawn_system_task(_as_coroutine, function)

    try:
        loop.run_sync_soon(spawn)
    except trio.RunFinishedError:
        return False
    return True


async def _as_coroutine(function: Callable[[], Awaitable[object]]) -> None:
    # Nobody awaits this task: an error here is logged, never raised (on trio
    # it would end the whole run).
    try:
        await function()
    except Exception:
        _logger.exception("closing connections of another event loop failed")


def _nothing() -> None:
    pass
