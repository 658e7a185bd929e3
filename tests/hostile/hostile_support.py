"""Helpers shared by the hostile suite."""

from __future__ import annotations

import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from scripted import HostileServer, SmtpScript

from lettre.envelope import Envelope
from lettre.smtp.tls import TlsMode
from lettre.transports.smtp import SmtpTransport
from servers import AiosmtpdServer

HELLO = "client.lettre.test"
TIMEOUT = 0.5
"""The client's per-reply timeout against hostile servers (seconds)."""
GUARD = 15.0
"""The bound on a whole test: a hang fails the test instead of blocking the suite."""
MEMORY_LIMIT = 4 * 1024 * 1024
"""The most Python memory (traced) a client may use while a server floods it."""

ServerFactory = Callable[..., AiosmtpdServer]


def message_bytes(subject: str = "Hello", body: str = "Hello there.\r\n") -> bytes:
    """A small valid message."""
    return (
        "From: Sender <sender@example.com>\r\n"
        "To: Rcpt <rcpt@example.com>\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <hostile@lettre.test>\r\n"
        "\r\n"
        f"{body}"
    ).encode()


def envelope(*recipients: str, sender: str | None = "sender@example.com") -> Envelope:
    """An envelope to ``recipients`` (default: one)."""
    return Envelope(sender, recipients or ("rcpt@example.com",))


def transport_for(
    server: HostileServer | AiosmtpdServer, *, tls: TlsMode = TlsMode.NONE, **kwargs: Any
) -> SmtpTransport:
    """An SmtpTransport for a test server, with short timeouts and a fixed EHLO name."""
    kwargs.setdefault("hello_name", HELLO)
    kwargs.setdefault("timeout", TIMEOUT)
    kwargs.setdefault("data_timeout", TIMEOUT)
    return SmtpTransport(server.host, server.port, tls=tls, **kwargs)


def assert_no_pooled_connection(transport: SmtpTransport) -> None:
    """Once a send failed on a broken connection, the transport keeps no connection.

    Checked through the pool's statistics when the transport has them.
    """
    statistics = getattr(transport, "statistics", None)
    if statistics is None:
        return
    stats = statistics()
    assert (stats.open, stats.idle, stats.in_use, stats.opening) == (0, 0, 0, 0), stats


async def assert_next_send_uses_new_connection(
    transport: SmtpTransport, server: HostileServer, script: SmtpScript
) -> None:
    """After a failure, the next send works, on a connection opened for it.

    The script is made well-mannered first (``script.hostile = False``); the
    broken connections must have been discarded, so the send opens a new one.
    """
    script.hostile = False
    before = len(server.connections)
    result = await transport.send_raw(envelope(), message_bytes("After"))
    assert result.all_accepted
    assert len(server.connections) == before + 1
    assert script.messages[-1].connection == before
    statistics = getattr(transport, "statistics", None)
    if statistics is not None:
        stats = statistics()
        assert (stats.open, stats.idle) == (1, 1), stats


@contextmanager
def bounded_memory(limit: int = MEMORY_LIMIT, *, enabled: bool = True) -> Iterator[None]:
    """Fail when the Python memory allocated inside the block peaks above ``limit``.

    With ``enabled=False`` it does nothing (tracing slows everything down).
    """
    if not enabled:
        yield
        return
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    assert peak - base < limit, f"the client held {peak - base} bytes while flooded"


async def each_step(steps: Iterable[str], scenario: Callable[[str], Awaitable[None]]) -> None:
    """Run ``scenario(step)`` for every step at once (timeouts then overlap).

    A failure names its step.
    """

    async def run(step: str) -> None:
        try:
            await scenario(step)
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            raise AssertionError(f"at step {step}: {exc!r}") from exc

    with anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            for step in steps:
                tg.start_soon(run, step)
