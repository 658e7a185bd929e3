"""lettre._loops in the situations the transports meet rarely: code run outside any task (a
loop callback, no loop at all), loops that finished before a close was scheduled into them, and
a close that fails inside the other loop."""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest
import trio

from lettre._loops import (
    call_in_loop,
    current_clock,
    current_loop,
    loop_is_closed,
    running_on_asyncio,
)


def test_outside_any_loop() -> None:
    assert running_on_asyncio() is False
    assert current_clock() is anyio.current_time


def test_in_a_loop_callback_outside_any_task() -> None:
    # sniffio knows no task here; the running loop still tells asyncio apart.
    seen: list[bool] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_soon(lambda: (seen.append(running_on_asyncio()), done.set_result(None)))
        await done

    asyncio.run(main())
    assert seen == [True]


def test_a_closed_asyncio_loop_takes_no_task() -> None:
    async def grab() -> object:
        return current_loop()

    loop = asyncio.new_event_loop()
    grabbed = loop.run_until_complete(grab())
    loop.close()
    assert loop_is_closed(grabbed)
    called: list[int] = []

    async def close() -> None:
        called.append(1)

    assert call_in_loop(grabbed, close) is False
    assert called == []


def test_a_finished_trio_run_takes_no_task() -> None:
    async def grab() -> object:
        return current_loop()

    token = trio.run(grab)
    assert loop_is_closed(token)
    called: list[int] = []

    async def close() -> None:
        called.append(1)

    assert call_in_loop(token, close) is False
    assert called == []


async def _failing_close() -> None:
    raise OSError("the connection was already gone")


def test_a_failing_close_in_another_asyncio_loop_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="lettre.smtp")

    async def main() -> None:
        loop = current_loop()
        done = asyncio.Event()

        async def close() -> None:
            try:
                await _failing_close()
            finally:
                # The error reaches the logging code in this same step of the task.
                done.set()

        assert await asyncio.to_thread(call_in_loop, loop, close)
        await asyncio.wait_for(done.wait(), 10)

    asyncio.run(main())
    assert "closing connections of another event loop failed" in caplog.text
    assert "the connection was already gone" in caplog.text


def test_a_failing_close_in_a_trio_run_is_logged_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="lettre.smtp")

    async def main() -> str:
        token = current_loop()
        done = trio.Event()

        async def close() -> None:
            try:
                await _failing_close()
            finally:
                done.set()

        assert await trio.to_thread.run_sync(call_in_loop, token, close)
        with trio.fail_after(10):
            await done.wait()
        return "still running"

    assert trio.run(main) == "still running"
    assert "closing connections of another event loop failed" in caplog.text
