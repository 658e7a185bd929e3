"""Timeouts, deadlines, disconnections, protocol errors and cancellation (scripted servers)."""

from __future__ import annotations

import anyio
import pytest
from smtp_support import connected, envelope, message_bytes, settings_for

from lettre.errors import (
    OutcomeUnknown,
    RemoteProtocolError,
    ServerDisconnected,
    SmtpConnectError,
    SmtpTimeoutError,
)
from lettre.smtp.client import SmtpClient, TransactionStage
from servers import MiniSmtp, ScriptedConnection, scripted_server

pytestmark = pytest.mark.anyio

SHORT = 0.5


async def test_greeting_never_comes() -> None:
    async def script(conn: ScriptedConnection) -> None:
        await conn.wait_closed()

    async with scripted_server(script) as server:
        client = SmtpClient(settings_for(server, timeout=SHORT))
        with pytest.raises(SmtpTimeoutError, match="greeting") as info:
            await client.connect()
        assert info.value.transient
        assert not client.is_usable


async def test_ehlo_never_answered() -> None:
    mini = MiniSmtp(hang_on="EHLO")
    async with scripted_server(mini) as server:
        client = SmtpClient(settings_for(server, timeout=SHORT))
        with pytest.raises(SmtpTimeoutError, match="EHLO"):
            await client.connect()
        with anyio.fail_after(10):
            await mini.connections[0].closed.wait()


async def test_rcpt_never_answered_is_a_plain_timeout() -> None:
    mini = MiniSmtp(extensions=["8BITMIME"], hang_on="RCPT")
    async with scripted_server(mini) as server:
        client = await connected(server, timeout=SHORT)
        with pytest.raises(SmtpTimeoutError, match="RCPT") as info:
            await client.send(envelope(), message_bytes())
        assert not isinstance(info.value, OutcomeUnknown)
        assert client.last_transaction is not None
        assert not client.last_transaction.content_sent
        assert client.last_transaction.stage is TransactionStage.FAILED
        assert not client.is_usable
        # The client closed its socket: the server sees the end of the stream.
        with anyio.fail_after(10):
            await mini.connections[0].closed.wait()


async def test_final_reply_never_comes_is_outcome_unknown() -> None:
    mini = MiniSmtp(extensions=["PIPELINING"], on_end_of_data="hang")
    async with scripted_server(mini) as server:
        client = await connected(server, data_timeout=SHORT)
        with pytest.raises(OutcomeUnknown) as info:
            await client.send(envelope(), message_bytes())
        assert isinstance(info.value.__cause__, SmtpTimeoutError)
        assert isinstance(info.value, ServerDisconnected)
        assert client.last_transaction is not None
        assert client.last_transaction.content_sent
        assert not client.is_usable
    assert mini.transactions[0].content == message_bytes()


async def test_disconnect_after_end_of_data_is_outcome_unknown() -> None:
    mini = MiniSmtp(extensions=["PIPELINING"], on_end_of_data="close")
    async with scripted_server(mini) as server:
        client = await connected(server)
        with pytest.raises(OutcomeUnknown, match="may or may not"):
            await client.send(envelope(), message_bytes())
        assert not client.is_usable


async def test_disconnect_before_content_is_safe_to_retry() -> None:
    async def script(conn: ScriptedConnection) -> None:
        await conn.reply("220 mx ESMTP")
        await conn.readline()
        await conn.reply("250-mx", "250 PIPELINING")
        await conn.readline()  # MAIL, then hang up

    async with scripted_server(script) as server:
        client = await connected(server)
        with pytest.raises(ServerDisconnected) as info:
            await client.send(envelope(), message_bytes())
        assert not isinstance(info.value, OutcomeUnknown)
        assert info.value.transient
        assert client.last_transaction is not None
        assert not client.last_transaction.content_sent
        assert not client.is_usable


async def test_overall_deadline() -> None:
    mini = MiniSmtp(extensions=["8BITMIME"], hang_on="RCPT")
    async with scripted_server(mini) as server:
        client = await connected(server, timeout=30.0, deadline=SHORT)
        with pytest.raises(SmtpTimeoutError, match="deadline"):
            await client.send(envelope(), message_bytes())
        assert not client.is_usable


async def test_explicit_deadline_argument() -> None:
    mini = MiniSmtp(extensions=["8BITMIME"], hang_on="MAIL")
    async with scripted_server(mini) as server:
        client = await connected(server, timeout=30.0)
        with pytest.raises(SmtpTimeoutError, match="deadline"):
            await client.send(envelope(), message_bytes(), deadline=anyio.current_time() + SHORT)


async def test_connection_refused() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    client = SmtpClient(settings_for(type("S", (), {"host": "127.0.0.1", "port": port})()))
    with pytest.raises(SmtpConnectError) as info:
        await client.connect()
    assert info.value.transient
    assert isinstance(info.value.__cause__, OSError)
    assert not client.is_usable


async def test_malformed_reply() -> None:
    async def script(conn: ScriptedConnection) -> None:
        await conn.reply("220 mx ESMTP")
        await conn.readline()
        await conn.send(b"2x0 what is this\r\n")
        await conn.wait_closed()

    async with scripted_server(script) as server:
        client = SmtpClient(settings_for(server))
        with pytest.raises(RemoteProtocolError):
            await client.connect()
        assert not client.is_usable


async def test_cancellation_closes_the_socket() -> None:
    reached_rcpt = anyio.Event()
    closed = anyio.Event()

    async def script(conn: ScriptedConnection) -> None:
        await conn.reply("220 mx ESMTP")
        await conn.readline()
        await conn.reply("250 mx")
        await conn.readline()
        await conn.reply("250 2.1.0 Ok")
        await conn.readline()  # RCPT: never answered
        reached_rcpt.set()
        await conn.wait_closed()
        closed.set()

    async with scripted_server(script) as server:
        client = await connected(server, timeout=30.0)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send, envelope(), message_bytes())
                await reached_rcpt.wait()
                tg.cancel_scope.cancel()
            await closed.wait()
        assert not client.is_usable
        assert not client.is_connected


async def test_aclose_is_shielded_and_idempotent() -> None:
    mini = MiniSmtp()
    async with scripted_server(mini) as server:
        client = await connected(server)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await client.aclose()  # completes although its scope is cancelled
        await client.aclose()
        assert not client.is_connected
    assert mini.verbs()[-1] == "QUIT"
