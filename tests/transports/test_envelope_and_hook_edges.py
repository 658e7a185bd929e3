"""Envelope DSN arguments of the wrong type, and a hook that keeps Hook's default send_started."""

from __future__ import annotations

import pytest

from lettre import Envelope, MemoryTransport, Message
from lettre.hooks import ConnectionOpened, Hook

pytestmark = pytest.mark.anyio


def test_notify_keywords_must_be_strings() -> None:
    with pytest.raises(TypeError, match="NOTIFY keywords are strings, not int"):
        Envelope("a@example.com", ["b@example.com"], notify=["SUCCESS", 1])  # type: ignore[list-item]


def test_envid_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="ENVID must be a str, not bytes"):
        Envelope("a@example.com", ["b@example.com"], envid=b"QQ314159")  # type: ignore[arg-type]


class _ConnectionsOnly(Hook):
    """Hears connections only: send_started is Hook's (no observer)."""

    def __init__(self) -> None:
        self.asked = 0
        self.opened: list[ConnectionOpened] = []

    def listening(self) -> bool:
        self.asked += 1
        return True

    def connection_opened(self, event: ConnectionOpened) -> None:
        self.opened.append(event)


async def test_a_hook_without_send_started_lets_sends_through() -> None:
    hook = _ConnectionsOnly()
    transport = MemoryTransport(hooks=[hook])
    message = (
        Message.builder()
        .from_("a@example.com")
        .to("b@example.com")
        .subject("s")
        .text("t\n")
        .build()
    )
    result = await transport.send(message)
    assert result.accepted == ("b@example.com",)
    assert hook.asked >= 1  # the send asked the hook, which observed nothing of it
    assert len(transport.outbox) == 1
