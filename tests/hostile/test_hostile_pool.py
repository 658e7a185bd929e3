"""Hostile servers behind the connection pool: broken connections never go back to it.

:class:`SmtpPool` retries a send once on a new connection when the first one
failed before the content went out; so the hostile behaviour here holds on
every connection until the test switches it off. Each scenario checks, through
the pool's statistics, that every connection involved in a failure was closed
and none is idle, then that the next send opens a fresh connection and works.
A server that merely refuses (a 5xx to RCPT) leaves a healthy connection,
which the pool keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from hostile_support import GUARD, each_step, envelope, message_bytes
from scripted import Action, HostileServer, SmtpScript, flood, hang_up, hostile_server
from scripted import raw as raw_bytes
from scripted import silence as silent

from lettre.errors import (
    OutcomeUnknown,
    RecipientsRefused,
    RemoteProtocolError,
    ServerDisconnected,
    SmtpReplyError,
    SmtpTimeoutError,
)
from lettre.smtp.pool import PoolConfig, SmtpPool
from lettre.smtp.settings import SmtpSettings
from lettre.smtp.tls import TlsMode

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Case:
    step: str
    action: Action
    error: type[BaseException]
    retried: bool  # the pool tries a second (equally hostile) connection


CASES: dict[str, Case] = {
    "silent greeting": Case("GREETING", silent(), SmtpTimeoutError, retried=False),
    "flooded EHLO": Case("EHLO", flood(b"", b"250-x\r\n"), RemoteProtocolError, retried=False),
    "silent MAIL": Case("MAIL", silent(), SmtpTimeoutError, retried=True),
    "hang-up at RCPT": Case("RCPT", hang_up(), ServerDisconnected, retried=True),
    "garbage to DATA": Case("DATA", raw_bytes(b"x?!\r\n"), RemoteProtocolError, retried=False),
    "421 to MAIL": Case(
        "MAIL", raw_bytes(b"421 4.3.2 bye\r\n", then_continue=False), SmtpReplyError, retried=True
    ),
    "hang-up after the data": Case("END", hang_up(), OutcomeUnknown, retried=False),
    "silence after the data": Case("END", silent(), OutcomeUnknown, retried=False),
}


def pool_for(server: HostileServer) -> SmtpPool:
    settings = SmtpSettings(
        server.host,
        server.port,
        tls=TlsMode.NONE,
        hello_name="client.lettre.test",
        timeout=0.5,
        data_timeout=0.5,
    )
    return SmtpPool(settings, PoolConfig(max_size=2, pool_timeout=5.0))


async def test_broken_pooled_connections_are_discarded() -> None:
    async def scenario(name: str) -> None:
        case = CASES[name]
        script = SmtpScript({case.step: case.action})
        async with hostile_server(script) as server, pool_for(server) as pool:
            with pytest.raises(case.error):
                await pool.send(envelope(), message_bytes())
            attempts = len(server.connections)
            assert attempts == (2 if case.retried else 1)
            for index in range(attempts):
                await server.client_closed(index)
            stats = pool.statistics()
            assert (stats.open, stats.idle, stats.in_use, stats.opening) == (0, 0, 0, 0), stats
            if case.error is OutcomeUnknown:
                # Never resent: the server has the message once.
                assert len(script.messages) == 1
            else:
                assert script.messages == []
            # The next send opens a new connection and works.
            script.hostile = False
            result = await pool.send(envelope(), message_bytes("After"))
            assert result.all_accepted
            assert len(server.connections) == attempts + 1
            assert script.messages[-1].connection == attempts
            stats = pool.statistics()
            assert (stats.open, stats.idle) == (1, 1), stats

    await each_step(CASES, scenario)


async def test_refused_recipient_leaves_a_healthy_pooled_connection() -> None:
    script = SmtpScript({"RCPT": raw_bytes(b"550 5.1.1 no such user\r\n")})
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server, pool_for(server) as pool:
            with pytest.raises(RecipientsRefused):
                await pool.send(envelope(), message_bytes())
            stats = pool.statistics()
            assert (stats.open, stats.idle) == (1, 1), stats
            script.hostile = False  # the connection is open: only new ones change
            script.actions.clear()
            await pool.send(envelope(), message_bytes("After"))
            # Same connection: the refusal was cleaned up with RSET.
            assert len(server.connections) == 1
            assert script.verbs(0)[:5] == ["EHLO", "MAIL", "RCPT", "RSET", "MAIL"]
        await server.client_closed(0)


async def test_concurrent_sends_on_a_dying_server_all_fail_cleanly() -> None:
    # Several callers share the pool while every connection dies after the
    # data: each gets its own OutcomeUnknown, none hangs, nothing stays open.
    script = SmtpScript({"END": hang_up()})
    errors: list[BaseException] = []

    async def one(pool: SmtpPool, n: int) -> None:
        try:
            await pool.send(envelope(), message_bytes(f"M{n}"))
        except (OutcomeUnknown, ServerDisconnected, SmtpTimeoutError) as exc:
            errors.append(exc)

    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server, pool_for(server) as pool:
            async with anyio.create_task_group() as tg:
                for n in range(6):
                    tg.start_soon(one, pool, n)
            stats = pool.statistics()
            assert (stats.open, stats.idle, stats.in_use) == (0, 0, 0), stats
            for index in range(len(server.connections)):
                await server.client_closed(index)
    assert len(errors) == 6
    assert all(isinstance(e, ServerDisconnected) for e in errors)
    # Every message reached the server at most once.
    subjects: list[Any] = [m.content.split(b"Subject: ", 1)[1][:3] for m in script.messages]
    assert len(subjects) == len(set(subjects))
