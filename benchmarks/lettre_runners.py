"""Throughput runners for lettre's pooled SMTP transport.

``concurrency`` is the pool's ``max_size`` (the number of connections); twice
as many sends are kept in flight, so that a connection always has a next
message to chain after the current one's content. Like the aiosmtplib
workers, which keep their one connection for the whole run, the pool has no
per-connection message limit (the default, 100, adds a reconnection every 100
messages). The rest of the pool configuration is the default.
"""

from __future__ import annotations

import anyio

from workload import SENDER, Budget, Counts, one_kib_body, one_kib_message, recipients

try:  # imported here, before any measurement starts
    from lettre.envelope import Envelope
    from lettre.errors import SmtpError
    from lettre.message import Message
    from lettre.smtp import TlsMode
    from lettre.smtp.pool import PoolConfig
    from lettre.transports.smtp import SmtpTransport
except ImportError:  # an older lettre: available() says so
    SmtpTransport = None  # type: ignore[assignment,misc]

__all__ = ["available", "idle_connection_memory", "messages", "pooled"]

IN_FLIGHT_PER_CONNECTION = 2


def available() -> bool:
    """Whether this lettre has the pooled SMTP transport."""
    return SmtpTransport is not None and hasattr(SmtpTransport, "send_many")


def _transport(port: int, concurrency: int) -> SmtpTransport:
    return SmtpTransport(
        "127.0.0.1",
        port,
        tls=TlsMode.NONE,
        hello_name="bench.example.com",
        timeout=30.0,
        pool=PoolConfig(max_size=concurrency, max_messages_per_connection=None),
    )


async def pooled(port: int, concurrency: int, budget: Budget) -> Counts:
    """Pre-serialised 1 KiB messages through ``send_raw``."""
    data = one_kib_message()
    envelope = Envelope(SENDER, recipients(1))
    counts = Counts()
    transport = _transport(port, concurrency)

    async def worker() -> None:
        while budget.take():
            try:
                await transport.send_raw(envelope, data)
                counts.sent += 1
            except SmtpError:
                counts.failed += 1

    async with transport, anyio.create_task_group() as group:
        for _ in range(concurrency * IN_FLIGHT_PER_CONNECTION):
            group.start_soon(worker)
    return counts


async def messages(port: int, concurrency: int, budget: Budget) -> Counts:
    """Build a ``Message`` per send with the builder, then send it."""
    body = one_kib_body()
    counts = Counts()
    transport = _transport(port, concurrency)
    index = 0

    async def worker() -> None:
        nonlocal index
        while budget.take():
            index += 1
            message = (
                Message.builder()
                .from_("Sender <sender@example.com>")
                .to("Recipient <rcpt0@example.com>")
                .subject(f"Benchmark message {index}")
                .text(body)
                .build()
            )
            try:
                await transport.send(message)
                counts.sent += 1
            except SmtpError:
                counts.failed += 1

    async with transport, anyio.create_task_group() as group:
        for _ in range(concurrency * IN_FLIGHT_PER_CONNECTION):
            group.start_soon(worker)
    return counts


async def idle_connection_memory(port: int, connections: int) -> dict[str, float]:
    """Memory held per idle pooled connection, measured with tracemalloc.

    Opens ``connections`` connections (one concurrent send each), lets them go
    idle in the pool, and divides the Python memory they hold (client,
    protocol state, stream, asyncio transport and socket objects; not the
    kernel's socket buffers) by their number.
    """
    import gc
    import tracemalloc

    data = one_kib_message()
    envelope = Envelope(SENDER, recipients(1))
    config = PoolConfig(max_size=connections, idle_timeout=None, check_after_idle=None)
    transport = SmtpTransport(
        "127.0.0.1", port, tls=TlsMode.NONE, hello_name="bench.example.com", pool=config
    )
    # One connection first, so that one-off allocations (caches, compiled
    # patterns, the event loop's own structures) are not counted.
    await transport.send_raw(envelope, data)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    async with anyio.create_task_group() as group:
        for _ in range(connections):
            group.start_soon(transport.send_raw, envelope, data)
    stats = transport.statistics()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    await transport.aclose()
    opened = stats.opened_total - 1
    return {
        "connections": float(stats.idle),
        "bytes_per_connection": (after - before) / max(opened, 1),
    }
