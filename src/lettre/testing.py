"""A pytest plugin for applications that send mail with lettre.

Installing lettre registers this plugin with pytest (entry point
``pytest11``), so every test can ask for the ``mail_outbox`` fixture: a fresh
:class:`~lettre.transports.memory.MemoryTransport` per test. Give it to your
code in place of the real transport and look at what was sent::

    async def test_welcome_mail(mail_outbox):
        await send_welcome(mail_outbox, "bob@example.com")
        (sent,) = mail_outbox.outbox
        assert sent.recipients == ("bob@example.com",)
        assert sent.parsed()["Subject"] == "Welcome"

This module imports pytest; ``import lettre`` never imports it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lettre.transports.memory import MemoryTransport

__all__ = ["mail_outbox"]


@pytest.fixture
def mail_outbox() -> Iterator[MemoryTransport]:
    """A fresh :class:`~lettre.transports.memory.MemoryTransport` for one test.

    Its ``outbox`` starts empty; ``fail_with()`` and ``refuse()`` let the
    test drive the application's error paths.
    """
    transport = MemoryTransport()
    yield transport
    transport.reset()
