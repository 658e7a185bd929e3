"""lettre.send() and lettre.send_blocking(): one message, from a URL or a transport."""

from __future__ import annotations

import pytest
from sync_support import SessionHandler, message

import lettre
from lettre import (
    BlockingTransport,
    Envelope,
    MemoryTransport,
    RecipientsRefused,
    send_blocking,
)
from servers import RecordingHandler, ServerFactory


@pytest.mark.anyio
async def test_send_with_a_url_connects_sends_and_quits(smtpd: ServerFactory) -> None:
    handler = SessionHandler()
    server = smtpd(handler=handler)

    result = await lettre.send(message(), f"smtp://127.0.0.1:{server.port}?tls=none")

    assert result.accepted == ("bob@example.com",)
    assert handler.quits == handler.ports  # closed before returning


@pytest.mark.anyio
async def test_send_through_a_transport_leaves_it_open() -> None:
    memory = MemoryTransport()

    result = await lettre.send(
        message(), url_or_transport=memory, envelope=Envelope("a@example.com", ["c@example.com"])
    )

    assert result.accepted == ("c@example.com",)
    assert not memory.closed
    assert memory.outbox[0].recipients == ("c@example.com",)


@pytest.mark.anyio
async def test_send_refuses_what_is_neither_a_url_nor_a_transport() -> None:
    with pytest.raises(TypeError, match="URL or a transport, not int"):
        await lettre.send(message(), 25)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"the class MemoryTransport: pass MemoryTransport\("):
        await lettre.send(message(), MemoryTransport)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes no timeout with a transport"):
        await lettre.send(message(), MemoryTransport(), timeout=3)
    with pytest.raises(ValueError, match="scheme"):
        await lettre.send(message(), "http://mail.example.com")


@pytest.mark.anyio
async def test_send_raises_the_transport_errors(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"bob@example.com"}))
    with pytest.raises(RecipientsRefused):
        await lettre.send(message(), f"smtp://127.0.0.1:{server.port}?tls=none")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_send_blocking_with_a_url(smtpd: ServerFactory, backend: str) -> None:
    handler = SessionHandler()
    server = smtpd(handler=handler)

    result = send_blocking(message(), f"smtp://127.0.0.1:{server.port}?tls=none", backend=backend)

    assert result.accepted == ("bob@example.com",)
    assert handler.quits == handler.ports


def test_send_blocking_with_url_options(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"carol@example.com"}))
    with pytest.raises(RecipientsRefused):
        send_blocking(
            message("carol@example.com"),
            f"smtp://127.0.0.1:{server.port}?tls=none",
            require_all_recipients=True,
        )


def test_send_blocking_through_a_blocking_transport() -> None:
    memory = MemoryTransport()
    blocking = BlockingTransport(memory)
    try:
        send_blocking(message(), blocking)
        with pytest.raises(TypeError, match="takes no timeout with a BlockingTransport"):
            send_blocking(message(), blocking, timeout=3)
    finally:
        blocking.close()
    assert len(memory.outbox) == 1


def test_send_blocking_refuses_an_async_transport_and_a_bad_backend() -> None:
    with pytest.raises(TypeError, match="wrap an async transport in BlockingTransport"):
        send_blocking(message(), MemoryTransport())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'curio'"):
        send_blocking(message(), "smtp://127.0.0.1:2525?tls=none", backend="curio")


def test_send_blocking_runs_its_loop_in_the_calling_thread_only(smtpd: ServerFactory) -> None:
    import threading

    server = smtpd()
    before = {t.ident for t in threading.enumerate()}
    send_blocking(message(), f"smtp://127.0.0.1:{server.port}?tls=none")
    after = {t.ident for t in threading.enumerate() if t.is_alive()}
    assert after <= before | {None}
