"""The transaction driver when a connection is closed under a streamed content.

A streamed content is read in a worker thread a chunk at a time. Here the
file blocks in its read until the test lets it go; meanwhile the connection
is closed the way the pool closes one (``driver.settle``): the envelope's
sender is told at once, and when the read returns (data, or a read error)
the driver writes nothing more and keeps the first outcome.
"""

from __future__ import annotations

import io
import threading

import anyio
import pytest
from smtp_support import envelope, settings_for

from lettre.errors import ServerDisconnected
from lettre.message import Attachment, MessageContent
from lettre.smtp.client import SmtpClient
from servers import ScriptedConnection, scripted_server
from streamed_support import message_with

GUARD = 20


class GatedFile(io.BytesIO):
    """Seekable; its first read waits for :attr:`release`, then returns data or fails."""

    def __init__(self, data: bytes, *, fail: bool) -> None:
        super().__init__(data)
        self.fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()

    def read(self, size: int | None = -1) -> bytes:
        if not self.entered.is_set():
            self.entered.set()
            if not self.release.wait(GUARD):
                raise AssertionError("the test never released the read")
            if self.fail:
                raise OSError(5, "Input/output error")
        return super().read(size)


def _streamed(fail: bool) -> tuple[GatedFile, MessageContent]:
    gated = GatedFile(b"z" * 300_000, fail=fail)
    content = message_with(Attachment.from_file(gated, "z.bin")).content()
    assert isinstance(content, MessageContent)
    return gated, content


async def _until_data(conn: ScriptedConnection) -> None:
    await conn.reply("220 mx.lettre.test ESMTP")
    await conn.readline()
    await conn.reply("250-mx.lettre.test", "250 8BITMIME")
    assert (await conn.readline()).startswith(b"MAIL FROM:<sender@example.com>")
    await conn.reply("250 2.1.0 ok")
    await conn.readline()
    await conn.reply("250 2.1.5 ok")
    assert await conn.readline() == b"DATA\r\n"
    await conn.reply("354 go ahead")


@pytest.mark.anyio
@pytest.mark.parametrize("fail", [False, True], ids=["read-returns", "read-fails"])
async def test_connection_closed_while_a_streamed_chunk_is_read(fail: bool) -> None:
    # No final reply is owed while the content is being read: settle() fails
    # the transaction at once; the chunk read afterwards is dropped.
    gated, content = _streamed(fail)
    outcome: list[BaseException] = []

    async def script(conn: ScriptedConnection) -> None:
        await _until_data(conn)
        await conn.wait_closed()

    with anyio.fail_after(GUARD):
        async with scripted_server(script) as server:
            client = SmtpClient(settings_for(server))
            await client.connect()

            async def send() -> None:
                try:
                    await client.send(envelope(), content)
                except ServerDisconnected as exc:
                    outcome.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                try:
                    await anyio.to_thread.run_sync(gated.entered.wait, GUARD)
                    tg.start_soon(client.driver.settle, 10.0)
                    await anyio.wait_all_tasks_blocked()
                    assert client.driver.closing
                finally:
                    gated.release.set()
            assert not client.is_usable
            await client.abort()
            await server.connections[0].done.wait()
    assert len(outcome) == 1
    assert str(outcome[0]) == "the connection was closed before the message was sent"
    # Nothing of the attachment reached the server: the read was still blocked.
    assert b"enp6enp6" not in server.connections[0].received  # base64 of "z" * 6
