"""PIPELINING, CHUNKING and DSN against a scripted server that offers them.

aiosmtpd offers neither PIPELINING nor CHUNKING, so these tests use MiniSmtp,
which records in which received chunk each command arrived and how many
replies it had sent before reading it.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from smtp_support import connected, envelope, message_bytes, settings_for

from lettre.envelope import Envelope
from lettre.errors import RecipientsRefused, SenderRefused
from lettre.results import SendResult
from lettre.smtp.pool import PoolConfig, SmtpPool
from servers import MiniSmtp, ScriptedConnection, _MiniSession, scripted_server

pytestmark = pytest.mark.anyio

NO_CHUNKING = ["PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES", "DSN"]


async def test_mail_rcpt_data_in_one_flight() -> None:
    mini = MiniSmtp(extensions=NO_CHUNKING)
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            result = await client.send(
                envelope("a@example.com", "b@example.com", "c@example.com"), message_bytes()
            )
        finally:
            await client.aclose()
    assert result.all_accepted
    flight = [c for c in mini.commands if c.verb in ("MAIL", "RCPT", "DATA")]
    assert [c.verb for c in flight] == ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"]
    # All five commands arrived before the server answered any of them, in one read.
    assert len({c.replies_before for c in flight}) == 1
    assert len({c.chunk for c in flight}) == 1
    transaction = mini.transactions[0]
    assert transaction.via == "DATA"
    assert transaction.content == message_bytes()


async def test_content_and_end_of_data_in_one_write() -> None:
    mini = MiniSmtp(extensions=NO_CHUNKING)
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            await client.send(envelope(), message_bytes(body=".dot\r\n"))
        finally:
            await client.aclose()
    conn = mini.connections[0]
    content_chunks = [chunk for chunk in conn.chunks if b"\r\n.\r\n" in chunk]
    assert len(content_chunks) == 1
    assert content_chunks[0].startswith(b"From: ")
    assert b"\r\n..dot\r\n" in content_chunks[0]


async def test_bdat_with_chunking() -> None:
    mini = MiniSmtp()
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            data = b"Subject: bdat\r\n\r\n.no stuffing\r\nbare lf\n"
            result = await client.send(envelope("a@example.com", "b@example.com"), data)
        finally:
            await client.aclose()
    transaction = mini.transactions[0]
    assert transaction.via == "BDAT"
    # BDAT content is not dot-stuffed; line endings are still normalised.
    assert transaction.content == b"Subject: bdat\r\n\r\n.no stuffing\r\nbare lf\r\n"
    assert result.transport_id == "MINI1"
    verbs = mini.verbs()
    assert "DATA" not in verbs
    bdat = next(c for c in mini.commands if c.verb == "BDAT")
    assert bdat.line == f"BDAT {len(transaction.content)} LAST"
    flight = [c for c in mini.commands if c.verb in ("MAIL", "RCPT")]
    assert len({c.replies_before for c in flight}) == 1


async def test_partial_refusal_with_pipelining() -> None:
    mini = MiniSmtp(
        extensions=NO_CHUNKING,
        refuse={"nobody@example.com": "550 5.1.1 <nobody@example.com>: unknown user"},
    )
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            result = await client.send(
                envelope("a@example.com", "nobody@example.com"), message_bytes()
            )
        finally:
            await client.aclose()
    assert result.accepted == ("a@example.com",)
    assert [r.recipient for r in result.refused] == ["nobody@example.com"]
    assert mini.transactions[0].accepted == ["a@example.com"]
    assert mini.transactions[0].completed


async def test_total_refusal_with_pipelining_resets() -> None:
    mini = MiniSmtp(
        extensions=NO_CHUNKING,
        refuse={"x@example.com": "550 5.1.1 unknown", "y@example.com": "550 5.1.1 unknown"},
    )
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            with pytest.raises(RecipientsRefused):
                await client.send(envelope("x@example.com", "y@example.com"), message_bytes())
            assert client.is_usable
            result = await client.send(envelope("ok@example.com"), message_bytes())
            assert result.all_accepted
        finally:
            await client.aclose()
    verbs = mini.verbs()
    # DATA went with the envelope (and was refused by the server), then RSET.
    assert verbs[:6] == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "RSET"]
    assert mini.transactions[-1].completed


async def test_require_all_recipients_does_not_pipeline_data() -> None:
    mini = MiniSmtp(
        extensions=NO_CHUNKING,
        refuse={"nobody@example.com": "550 5.1.1 unknown"},
    )
    async with scripted_server(mini) as server:
        client = await connected(server, require_all_recipients=True)
        try:
            with pytest.raises(RecipientsRefused):
                await client.send(envelope("a@example.com", "nobody@example.com"), message_bytes())
            await client.send(envelope("a@example.com"), message_bytes())
        finally:
            await client.aclose()
    verbs = mini.verbs()
    assert verbs[:5] == ["EHLO", "MAIL", "RCPT", "RCPT", "RSET"]
    assert verbs[5:8] == ["MAIL", "RCPT", "DATA"]
    assert len(mini.transactions) == 2
    assert mini.transactions[0].content is None
    assert mini.transactions[1].completed


async def test_sender_refused_with_pipelining() -> None:
    mini = MiniSmtp(extensions=NO_CHUNKING, replies={"MAIL": "550 5.7.1 Sender rejected"})
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            with pytest.raises(SenderRefused):
                await client.send(envelope(), message_bytes())
            assert client.is_usable
        finally:
            await client.aclose()
    assert mini.verbs()[:5] == ["EHLO", "MAIL", "RCPT", "DATA", "RSET"]


async def test_dsn_parameters() -> None:
    mini = MiniSmtp()
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            env = Envelope(
                "sender@example.com",
                ["a@example.com"],
                notify=["SUCCESS", "FAILURE"],
                ret="HDRS",
                envid="QQ314159",
                orcpt=True,
            )
            await client.send(env, message_bytes())
        finally:
            await client.aclose()
    transaction = mini.transactions[0]
    assert "RET=HDRS" in transaction.mail
    assert "ENVID=QQ314159" in transaction.mail
    (rcpt,) = transaction.rcpts
    assert "NOTIFY=SUCCESS,FAILURE" in rcpt
    assert "ORCPT=rfc822;a@example.com" in rcpt


async def test_dsn_parameters_dropped_without_dsn() -> None:
    mini = MiniSmtp(extensions=["PIPELINING", "8BITMIME"])
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            env = Envelope("sender@example.com", ["a@example.com"], notify=["NEVER"], ret="FULL")
            await client.send(env, message_bytes())
        finally:
            await client.aclose()
    transaction = mini.transactions[0]
    assert transaction.mail == "MAIL FROM:<sender@example.com>"
    assert transaction.rcpts == ["RCPT TO:<a@example.com>"]


async def test_lock_step_without_pipelining() -> None:
    mini = MiniSmtp(extensions=["8BITMIME"])
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            await client.send(envelope("a@example.com", "b@example.com"), message_bytes())
        finally:
            await client.aclose()
    flight = [c for c in mini.commands if c.verb in ("MAIL", "RCPT", "DATA")]
    # Each command was read only after the previous one was answered.
    assert [c.replies_before for c in flight] == [1, 2, 3, 4]


class EhloGatedMini(MiniSmtp):
    """MiniSmtp whose reply to EHLO waits until ``gate`` is set."""

    def __init__(self, gate: anyio.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    async def __call__(self, conn: ScriptedConnection) -> None:
        self.connections.append(conn)
        await _EhloGatedSession(self, conn).run()


class _EhloGatedSession(_MiniSession):
    server: EhloGatedMini

    async def do_ehlo(self, line: str) -> None:
        await self.server.gate.wait()
        await super().do_ehlo(line)


async def test_phases_chain_two_messages_in_one_write() -> None:
    """What a connection pool does: the end of one message and the next envelope together."""
    ehlo = anyio.Event()
    mini = EhloGatedMini(ehlo, extensions=NO_CHUNKING)
    results: dict[str, SendResult] = {}
    async with (
        scripted_server(mini) as server,
        SmtpPool(settings_for(server), PoolConfig(max_size=1)) as pool,
    ):

        async def send(subject: str, recipient: str) -> None:
            results[subject] = await pool.send(envelope(recipient), message_bytes(subject))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                # The first send opens the only connection (the server
                # holds its EHLO reply); the second waits for it.
                group.start_soon(send, "First", "a@example.com")
                await anyio.wait_all_tasks_blocked()
                group.start_soon(send, "Second", "b@example.com")
                await anyio.wait_all_tasks_blocked()
                assert pool.statistics().waiting == 1
                ehlo.set()
        (conn,) = pool.pool._idle
        assert conn.client.is_usable
        messages_sent = conn.messages_sent
    assert results["First"].transport_id == "MINI1"
    assert results["Second"].transport_id == "MINI2"
    assert [t.content for t in mini.transactions] == [
        message_bytes("First"),
        message_bytes("Second"),
    ]
    # The second MAIL arrived in the same chunk as the first message's end of
    # data (and the second message's content did not: it waited for its 354).
    conn_record = mini.connections[0]
    chained = [
        c
        for c in conn_record.chunks
        if b"Subject: First" in c and b"\r\n.\r\nMAIL FROM:" in c and b"RCPT TO:<b@" in c
    ]
    assert len(chained) == 1
    assert b"Subject: Second" not in chained[0]
    assert messages_sent == 2
