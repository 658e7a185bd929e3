"""One BlockingTransport shared by many threads, and refused inside event loops."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import pytest
from sync_support import SessionHandler, message

from lettre import (
    BlockingCallError,
    BlockingTransport,
    Envelope,
    LettreError,
    MemoryTransport,
    PoolConfig,
    SendResult,
    SmtpTransport,
    send_blocking,
)
from lettre.transports.base import BaseTransport
from servers import ServerFactory


def test_threads_share_one_pool_and_its_cap_holds(
    smtpd: ServerFactory, loop: dict[str, Any], closing: list[BlockingTransport]
) -> None:
    handler = SessionHandler()
    server = smtpd(handler=handler)
    transport = SmtpTransport.local(server.port, host="127.0.0.1", pool=PoolConfig(max_size=3))
    blocking = BlockingTransport(transport, **loop)
    closing.append(blocking)
    threads, per_thread = 12, 5
    start = threading.Barrier(threads, timeout=10)
    outcomes: list[object] = []
    lock = threading.Lock()

    def work(number: int) -> None:
        start.wait()
        for index in range(per_thread):
            try:
                result: object = blocking.send(message(f"t{number}-{index}@example.com"))
            except Exception as exc:
                result = exc
            with lock:
                outcomes.append(result)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert len(outcomes) == threads * per_thread
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert sorted(m.rcpt_tos[0] for m in server.messages) == sorted(
        f"t{n}-{i}@example.com" for n in range(threads) for i in range(per_thread)
    )
    stats = blocking.statistics()
    assert stats.opened_total <= 3
    assert len(set(handler.ports)) <= 3
    assert stats.messages_sent == threads * per_thread


# -- called from a thread that runs an event loop ------------------------------------------


def test_asyncio_code_gets_a_clear_error(closing: list[BlockingTransport]) -> None:
    blocking = BlockingTransport(MemoryTransport())
    closing.append(blocking)

    async def handler() -> None:
        blocking.send(message())

    with pytest.raises(BlockingCallError) as error:
        asyncio.run(handler())
    assert isinstance(error.value, RuntimeError)
    assert isinstance(error.value, LettreError)
    assert "asyncio event loop" in str(error.value)
    assert "await transport.send(message)" in str(error.value)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_every_blocking_call_is_refused_in_an_event_loop(
    backend: str, closing: list[BlockingTransport]
) -> None:
    blocking = BlockingTransport(MemoryTransport())
    closing.append(blocking)
    envelope = Envelope("a@example.com", ["b@example.com"])
    calls = {
        "send()": lambda: blocking.send(message()),
        "send_raw()": lambda: blocking.send_raw(envelope, b"x\r\n"),
        "send_many()": lambda: blocking.send_many([message()]),
        "test_connection()": blocking.test_connection,
        "statistics()": blocking.statistics,
        "close()": blocking.close,
        "send_blocking()": lambda: send_blocking(message(), "smtp://127.0.0.1:1?tls=none"),
    }
    refused: dict[str, str] = {}

    async def main() -> None:
        for name, call in calls.items():
            try:
                call()
            except BlockingCallError as error:
                refused[name] = str(error)

    anyio.run(main, backend=backend)
    assert list(refused) == list(calls)
    assert all(f"{backend} event loop" in text for text in refused.values())
    assert not blocking.closed


def test_a_call_from_the_transports_own_loop_raises_instead_of_deadlocking(
    closing: list[BlockingTransport],
) -> None:
    inner = MemoryTransport()

    class Relay(BaseTransport):
        """Sends through the BlockingTransport that runs it (a deadlock, if allowed)."""

        async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
            return outer.send_raw(envelope, data)

    outer = BlockingTransport(Relay())
    closing.append(outer)
    with pytest.raises(BlockingCallError):
        outer.send(message())
    assert inner.outbox == []


def test_worker_threads_of_an_event_loop_may_block(closing: list[BlockingTransport]) -> None:
    """anyio.to_thread (asyncio's run_in_executor) runs no loop: blocking there is fine."""
    memory = MemoryTransport()
    blocking = BlockingTransport(memory)
    closing.append(blocking)

    async def main() -> SendResult:
        return await anyio.to_thread.run_sync(blocking.send, message())

    assert anyio.run(main).accepted == ("bob@example.com",)
    assert anyio.run(main, backend="trio").accepted == ("bob@example.com",)
    assert len(memory.outbox) == 2
