"""Helpers shared by the tests that drive an ``SmtpPool`` against scripted servers.

Used by ``tests/pool/test_pipeline.py`` and ``tests/smtp/test_send_path.py``:
numbered messages and what a server delivered of them, a ``MiniSmtp`` with
hooks (``HookedMini``), settings and a pool for a scripted server on
127.0.0.1, concurrent senders each in its own cancel scope (``Senders``), a
bounded wait for state another party changes (``until``), and a record of
every ``Ticket`` the pool makes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import anyio.abc
import pytest

import lettre.smtp.pool as pool_module
from lettre.envelope import Envelope
from lettre.errors import LettreError
from lettre.results import SendResult
from lettre.smtp import SmtpSettings, TlsMode
from lettre.smtp.driver import Ticket
from lettre.smtp.pool import PoolConfig, SmtpPool
from servers import MiniSmtp, ScriptedConnection, _MiniSession

#: Every wait in the tests that use these helpers is bounded by this many seconds.
BOUND = 10.0

ASYNCIO_ONLY = pytest.mark.parametrize(
    "anyio_backend",
    [
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ],
)

#: The outcome :class:`Senders` records for a send whose scope was cancelled.
CANCELLED = "cancelled"

Outcome = SendResult | BaseException | str


# -- messages ----------------------------------------------------------------------------------


def message(
    n: int, *, to: Iterable[str] | None = None, body: bytes = b""
) -> tuple[Envelope, bytes]:
    """Message ``n``, to ``to`` (default: ``user<n>@example.com``)."""
    rcpts = list(to) if to is not None else [f"user{n}@example.com"]
    head = (
        f"From: sender@example.com\r\nTo: {', '.join(rcpts)}\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@example.com>\r\n\r\n"
    ).encode()
    data = head + (body or f"Body of message {n}.\r\n.a line with a leading dot\r\n".encode())
    return Envelope("sender@example.com", rcpts), data


def number_of(content: bytes | None) -> int | None:
    """The message number in a content's Subject, if any."""
    if content is None:
        return None
    match = re.search(rb"\r\nSubject: message (\d+)\r\n", b"\r\n" + content)
    return int(match.group(1)) if match else None


def delivered(servers: MiniSmtp | Iterable[MiniSmtp]) -> list[int]:
    """The numbers of the messages the server (or servers) accepted, in order (duplicates kept)."""
    if isinstance(servers, MiniSmtp):
        servers = [servers]
    numbers = []
    for server in servers:
        for tx in server.transactions:
            n = number_of(tx.content)
            if tx.completed and n is not None:
                numbers.append(n)
    return numbers


# -- the server --------------------------------------------------------------------------------

Hook = Callable[["HookedSession", str], Awaitable[None]]
FinalHook = Callable[["HookedSession", bytes], Awaitable[None]]


class HookedMini(MiniSmtp):
    """MiniSmtp with hooks: before each command, before each final reply, a per-message reply.

    Args:
        before_command: awaited with each command line before it is handled.
        before_final: awaited with each message's content before its final reply.
        final_reply: the final reply for a content (None: the normal one).
        **kwargs: MiniSmtp's arguments.
    """

    def __init__(
        self,
        *,
        before_command: Hook | None = None,
        before_final: FinalHook | None = None,
        final_reply: Callable[[bytes], str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.before_command = before_command
        self.before_final = before_final
        self.final_reply = final_reply
        self.sessions: list[HookedSession] = []

    def new_session(self, conn: ScriptedConnection) -> HookedSession:
        """The session that serves ``conn``."""
        return HookedSession(self, conn)

    async def __call__(self, conn: ScriptedConnection) -> None:
        self.connections.append(conn)
        session = self.new_session(conn)
        self.sessions.append(session)
        await session.run()


class HookedSession(_MiniSession):
    server: HookedMini

    async def readline(self) -> bytes:
        raw = await super().readline()
        hook = self.server.before_command
        if hook is not None:
            await hook(self, raw[:-2].decode("utf-8", "surrogateescape"))
        return raw

    async def finish(self, *, raw_content: bytes, content: bytes, via: str) -> None:
        server = self.server
        if server.before_final is not None:
            await server.before_final(self, content)
        custom = server.final_reply(content) if server.final_reply is not None else None
        if custom is None:
            await super().finish(raw_content=raw_content, content=content, via=via)
            return
        key = "END" if via == "DATA" else "BDAT"
        server.replies[key] = custom
        try:
            await super().finish(raw_content=raw_content, content=content, via=via)
        finally:
            del server.replies[key]


# -- the client --------------------------------------------------------------------------------


def settings_for(port: int, **kwargs: Any) -> SmtpSettings:
    kwargs.setdefault("timeout", BOUND / 2)
    kwargs.setdefault("data_timeout", BOUND / 2)
    return SmtpSettings(
        host="127.0.0.1", port=port, tls=TlsMode.NONE, hello_name="client.example.com", **kwargs
    )


def smtp_pool(port: int, config: PoolConfig | None = None, **settings: Any) -> SmtpPool:
    """A pool (max_size=1 by default) sending to ``port`` with :func:`settings_for`, not entered."""
    return SmtpPool(
        settings_for(port, **settings),
        config if config is not None else PoolConfig(max_size=1),
    )


class Senders:
    """Concurrent sends on one pool, each in its own cancel scope, outcomes recorded.

    A send that raises one of ``errors`` records the exception; one whose
    scope was cancelled records :data:`CANCELLED`.
    """

    def __init__(
        self,
        pool: SmtpPool,
        group: anyio.abc.TaskGroup,
        *,
        errors: type[Exception] = LettreError,
    ) -> None:
        self.pool = pool
        self.group = group
        self.errors = errors
        self.outcomes: dict[int, Outcome] = {}
        self.scopes: dict[int, anyio.CancelScope] = {}

    def start(
        self,
        n: int,
        make: Callable[[int], tuple[Envelope, bytes]] = message,
        *,
        deadline: float | None = None,
    ) -> None:
        scope = self.scopes[n] = anyio.CancelScope()
        self.group.start_soon(self._one, n, make, deadline, scope)

    async def _one(
        self,
        n: int,
        make: Callable[[int], tuple[Envelope, bytes]],
        deadline: float | None,
        scope: anyio.CancelScope,
    ) -> None:
        with scope:
            try:
                self.outcomes[n] = await self.pool.send(*make(n), deadline=deadline)
            except self.errors as exc:
                self.outcomes[n] = exc
        if scope.cancelled_caught:
            self.outcomes[n] = CANCELLED


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``predicate()`` holds; it watches state another party changes."""
    with anyio.fail_after(BOUND):
        while not predicate():
            await anyio.sleep(0.002)
    assert predicate(), what


def record_tickets(monkeypatch: pytest.MonkeyPatch, into: list[Ticket]) -> None:
    """Have every ``Ticket`` the pool makes (one per attempt) appended to ``into``, in order."""

    class RecordedTicket(Ticket):
        __slots__ = ()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            into.append(self)

    monkeypatch.setattr(pool_module, "Ticket", RecordedTicket)
