"""How the benchmark's helper servers (sink.py, proxy.py) know when to stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys


async def wait_until_stopped(max_seconds: float) -> None:
    """Return on SIGTERM or SIGINT, when the parent closes our stdin, or after max_seconds.

    A helper server started by a benchmark therefore never outlives it, even
    when the benchmark is killed.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reader = asyncio.StreamReader()
    with contextlib.suppress(OSError, ValueError):
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_parent() -> None:
        while await reader.read(4096):
            pass
        stop.set()

    watcher = loop.create_task(watch_parent())
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max_seconds)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
