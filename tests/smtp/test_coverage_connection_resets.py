"""Servers that reset the connection (TCP RST) instead of closing it in order.

A reset while a reply is awaited, and a reset on an idle connection that is
then used: the send fails with ServerDisconnected naming the server, it is
transient (try again), and the client is left unusable.
"""

from __future__ import annotations

import socket
import struct

import anyio
import pytest
from anyio.abc import SocketAttribute
from smtp_support import envelope, message_bytes, settings_for

from lettre.errors import ServerDisconnected
from lettre.smtp.client import SmtpClient
from servers import ScriptedConnection, scripted_server

GUARD = 20


async def _reset(conn: ScriptedConnection) -> None:
    """Close with SO_LINGER 0: the client gets a reset, not an end of stream."""
    sock = conn.stream.extra(SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await conn.stream.aclose()


async def _greet(conn: ScriptedConnection) -> None:
    await conn.reply("220 mx.lettre.test ESMTP")
    await conn.readline()
    await conn.reply("250-mx.lettre.test", "250 PIPELINING")


@pytest.mark.anyio
async def test_a_reset_while_waiting_for_the_reply_to_mail(
    anyio_backend: tuple[str, dict[str, object]],
) -> None:
    async def script(conn: ScriptedConnection) -> None:
        await _greet(conn)
        assert (await conn.readline()).startswith(b"MAIL FROM:")
        await _reset(conn)

    with anyio.fail_after(GUARD):
        async with scripted_server(script) as server:
            client = SmtpClient(settings_for(server))
            await client.connect()
            with pytest.raises(ServerDisconnected) as caught:
                await client.send(envelope(), message_bytes())
            assert not client.is_usable
            await client.aclose()
    peer = f"127.0.0.1:{server.port}"
    # trio's sockets say why; asyncio's protocol callbacks only that it broke.
    reason = "Connection reset by peer" if anyio_backend[0] == "trio" else "the connection broke"
    assert str(caught.value) == f"reading the reply to MAIL from {peer} failed: {reason}"
    assert caught.value.transient


@pytest.mark.anyio
async def test_an_idle_connection_reset_then_used() -> None:
    async def script(conn: ScriptedConnection) -> None:
        await _greet(conn)
        await _reset(conn)

    with anyio.fail_after(GUARD):
        async with scripted_server(script) as server:
            client = SmtpClient(settings_for(server))
            await client.connect()
            await server.connections[0].done.wait()
            with pytest.raises(ServerDisconnected) as caught:
                await client.send(envelope(), message_bytes())
            assert not client.is_usable
            await client.aclose()
    peer = f"127.0.0.1:{server.port}"
    # Seen on the write (trio) or by the event loop's protocol before it.
    assert str(caught.value) in {
        f"writing to {peer} failed: Connection reset by peer",
        f"{peer} closed the connection while it was idle",
        f"the connection to {peer} is closed",
    }
    assert caught.value.transient
