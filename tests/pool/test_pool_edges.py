"""SmtpPool.test_connection on a reused connection that fails NOOP, and the pool's accessors.

A pooled connection that answers NOOP with 421 (or hangs up) is replaced
once by a new connection; any other refusal, or a new connection that fails
too, reaches the caller as the typed error.
"""

from __future__ import annotations

import anyio
import pytest

from lettre.errors import ServerDisconnected, SmtpReplyError
from lettre.smtp.pool import PoolConfig, SmtpPool
from pool_support import message, settings_for, smtp_pool
from servers import MiniSmtp, ScriptedConnection, scripted_server

pytestmark = pytest.mark.anyio

GUARD = 20


class PerConnection:
    """A script that runs ``servers[i]`` for the i-th connection (the last one after that)."""

    def __init__(self, *servers: MiniSmtp) -> None:
        self.servers = servers
        self.count = 0

    async def __call__(self, conn: ScriptedConnection) -> None:
        server = self.servers[min(self.count, len(self.servers) - 1)]
        self.count += 1
        await server(conn)


async def test_a_reused_connection_answering_noop_421_is_replaced() -> None:
    first = MiniSmtp(replies={"NOOP": "421 4.3.2 going down"})
    second = MiniSmtp()
    script = PerConnection(first, second)
    with anyio.fail_after(GUARD):
        async with scripted_server(script) as server, smtp_pool(server.port) as pool:
            await pool.send(*message(1))  # the connection stays in the pool
            await pool.test_connection()
    assert first.verbs() == ["EHLO", "MAIL", "RCPT", "BDAT", "NOOP"]
    assert second.verbs()[:2] == ["EHLO", "NOOP"]
    assert script.count == 2


async def test_a_reused_connection_refusing_noop_otherwise_is_an_error() -> None:
    mini = MiniSmtp(replies={"NOOP": "502 5.5.1 no NOOP here"})
    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server, smtp_pool(server.port) as pool:
            await pool.send(*message(1))
            with pytest.raises(SmtpReplyError, match="no NOOP here") as caught:
                await pool.test_connection()
    assert caught.value.code == 502
    assert mini.verbs().count("EHLO") == 1  # not retried on a new connection


async def test_a_new_connection_failing_noop_too_is_an_error() -> None:
    mini = MiniSmtp(replies={"NOOP": "421 4.3.2 going down"})
    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server, smtp_pool(server.port) as pool:
            await pool.send(*message(1))
            with pytest.raises((SmtpReplyError, ServerDisconnected), match="going down"):
                await pool.test_connection()
    assert mini.verbs().count("NOOP") == 2
    assert mini.verbs().count("EHLO") == 2


async def test_the_pool_shows_its_settings_and_connections() -> None:
    mini = MiniSmtp()
    settings = settings_for(1)  # never connected
    pool = SmtpPool(settings, PoolConfig(max_size=1))
    assert pool.settings is settings
    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server, smtp_pool(server.port) as pool:
            await pool.send(*message(1))
            async with pool.pool.connection() as conn:
                assert repr(conn) == f"<PooledSmtpConnection {conn.client!r}>"
                assert conn.client.is_usable
    assert mini.verbs().count("EHLO") == 1  # the one connection, lent again


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_size": None}, ValueError, "max_size must be an integer, not None"),
        ({"max_size": 2.0}, TypeError, "max_size must be an integer, not float"),
        ({"rate_limit": (None, 1.0)}, ValueError, "rate_limit count must be an integer, not None"),
    ],
)
def test_pool_config_counts_that_are_not_integers_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        PoolConfig(**kwargs)  # type: ignore[arg-type]


def test_the_connection_pool_shows_its_config() -> None:
    config = PoolConfig(max_size=3)
    pool = SmtpPool(settings_for(1), config)
    assert pool.pool.config is config
