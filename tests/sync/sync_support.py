"""Helpers for the blocking API's tests: a handler that sees connections, odd transports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import anyio

from lettre import Envelope, Message, SendResult
from lettre.transports.base import BaseTransport
from servers import RecordingHandler

ROOT = Path(__file__).resolve().parents[2]

#: (backend, backend_options) of every event loop a BlockingTransport can run.
LOOPS: list[tuple[str, dict[str, Any]]] = [
    ("asyncio", {}),
    ("asyncio", {"use_uvloop": True}),
    ("trio", {}),
]
LOOP_IDS = ["asyncio", "uvloop", "trio"]


def message(to: str = "bob@example.com", subject: str = "Hello") -> Message:
    return (
        Message.builder()
        .from_("alice@example.com")
        .to(to)
        .subject(subject)
        .text(f"Hi {to}\n")
        .build()
    )


class SessionHandler(RecordingHandler):
    """Records, besides the messages, the client port each one came on and every QUIT."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ports: list[int] = []
        self.quits: list[int] = []
        self.quit_seen = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        self.ports.append(int(session.peer[1]))
        return reply

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits.append(int(session.peer[1]))
        self.quit_seen.set()
        return "221 Bye"


class HangingTransport(BaseTransport):
    """A transport whose sends wait until released (or cancelled), recording both."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.cancelled = threading.Event()
        self.release = threading.Event()

    async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        self.entered.set()
        try:
            while not self.release.is_set():
                await anyio.sleep(0.01)
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise
        return SendResult(recipients=())


class BlockingLoopTransport(BaseTransport):
    """A transport whose send blocks its event loop's thread until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        self.entered.set()
        self.release.wait(30)  # on purpose: the loop thread is stuck until released
        return SendResult(recipients=())


class FailingEnterTransport(BaseTransport):
    """A transport whose ``async with`` fails the first ``failures`` times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.sent = 0

    async def __aenter__(self) -> FailingEnterTransport:
        if self.failures:
            self.failures -= 1
            raise OSError("no way in")
        return self

    async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        self.sent += 1
        return SendResult(recipients=())


def run_script(
    code: str,
    *,
    args: list[str] | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``args`` in a new interpreter, ``tests/`` and ``src/`` importable."""
    import os

    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "sync")]
    )
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *(args or [])],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
        cwd=ROOT,
    )


class SlowEnterTransport(BaseTransport):
    """A transport whose ``async with`` waits until released, recording when it is entered."""

    def __init__(self) -> None:
        super().__init__()
        self.entering = threading.Event()
        self.release = threading.Event()
        self.exited = threading.Event()

    async def __aenter__(self) -> SlowEnterTransport:
        self.entering.set()
        while not self.release.is_set():
            await anyio.sleep(0.01)
        return self

    async def aclose(self) -> None:
        self.exited.set()

    async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        return SendResult(recipients=())


class PlainTransport:
    """A transport that is no BaseTransport: no ``async with``, no ``for_new_process()``.

    Args:
        close_error: raised by ``aclose()`` (after recording the close).
        close_gate: ``aclose()`` waits (in a worker thread) until it is set.
    """

    def __init__(
        self,
        *,
        close_error: BaseException | None = None,
        close_gate: threading.Event | None = None,
    ) -> None:
        self.sent: list[tuple[str, ...]] = []
        self.closed = threading.Event()
        self.close_error = close_error
        self.close_gate = close_gate

    async def send(self, message: Any, *, envelope: Envelope | None = None) -> SendResult:
        return await self.send_raw(envelope if envelope is not None else message.envelope, b"")

    async def send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        from lettre.results import RecipientResult

        names = tuple(str(a) for a in envelope.forward_paths)
        self.sent.append(names)
        return SendResult(recipients=tuple(RecipientResult(n, True, None, None) for n in names))

    async def send_many(
        self, messages: Any, *, concurrency: int | None = None
    ) -> list[SendResult | Exception]:
        return [await self.send(m) for m in messages]

    async def aclose(self) -> None:
        gate = self.close_gate
        if gate is not None:
            await anyio.to_thread.run_sync(gate.wait, 30)
        self.closed.set()
        if self.close_error is not None:
            raise self.close_error
