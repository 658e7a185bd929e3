"""SmtpPool against real servers: aiosmtpd, and MiniSmtp (PIPELINING, CHUNKING)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pool_fakes import BOUND, FakeClock, settle

from lettre.envelope import Envelope
from lettre.errors import (
    OutcomeUnknown,
    PoolTimeout,
    RecipientsRefused,
    SmtpConnectError,
    SmtpError,
)
from lettre.smtp import SmtpSettings, TlsMode
from lettre.smtp.pool import PoolConfig, SmtpPool
from lettre.transports.base import SendResult
from servers import (
    MiniSmtp,
    ScriptedConnection,
    ScriptedServer,
    ServerFactory,
    scripted_server,
)

pytestmark = pytest.mark.anyio


def settings_for(port: int, **kwargs: Any) -> SmtpSettings:
    kwargs.setdefault("timeout", 5.0)
    return SmtpSettings(
        host="127.0.0.1", port=port, tls=TlsMode.NONE, hello_name="client.example.com", **kwargs
    )


def message(n: int, to: str | None = None) -> tuple[Envelope, bytes]:
    rcpt = to or f"user{n}@example.com"
    data = (
        f"From: sender@example.com\r\nTo: {rcpt}\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@example.com>\r\n\r\nBody of message {n}.\r\n.leading dot\r\n"
    ).encode()
    return Envelope("sender@example.com", [rcpt]), data


def subject_numbers(transactions: list[Any]) -> list[int]:
    numbers = []
    for tx in transactions:
        if tx.completed and tx.content is not None:
            for line in tx.content.split(b"\r\n"):
                if line.startswith(b"Subject: message "):
                    numbers.append(int(line.rsplit(b" ", 1)[1]))
    return numbers


@asynccontextmanager
async def mini(
    *,
    per_connection: Callable[[int], MiniSmtp] | None = None,
    **kwargs: Any,
) -> AsyncIterator[tuple[ScriptedServer, list[MiniSmtp], dict[str, int]]]:
    """A scripted MiniSmtp server; ``per_connection(i)`` picks the script of connection i."""
    scripts: list[MiniSmtp] = []
    gauge = {"live": 0, "peak": 0}
    shared = MiniSmtp(**kwargs)

    async def script(conn: ScriptedConnection) -> None:
        index = len(scripts)
        server = per_connection(index) if per_connection is not None else shared
        scripts.append(server)
        gauge["live"] += 1
        gauge["peak"] = max(gauge["peak"], gauge["live"])
        try:
            await server(conn)
        finally:
            gauge["live"] -= 1

    async with scripted_server(script, timeout=BOUND) as server:
        yield server, scripts, gauge


async def gather(
    pool: SmtpPool, count: int, make: Callable[[int], tuple[Envelope, bytes]] = message
) -> list[SendResult | BaseException]:
    outcomes: list[SendResult | BaseException] = [RuntimeError("not run")] * count

    async def one(n: int) -> None:
        envelope, data = make(n)
        try:
            outcomes[n] = await pool.send(envelope, data)
        except SmtpError as exc:
            outcomes[n] = exc

    with anyio.fail_after(BOUND * 3):
        async with anyio.create_task_group() as group:
            for n in range(count):
                group.start_soon(one, n)
    return outcomes


# -- plain aiosmtpd (no PIPELINING: no chaining) -----------------------------------------------


async def test_concurrent_sends_share_a_bounded_pool(smtpd: ServerFactory) -> None:
    server = smtpd()
    async with SmtpPool(settings_for(server.port), PoolConfig(max_size=3)) as pool:
        outcomes = await gather(pool, 30)
        stats = pool.statistics()
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert len(server.messages) == 30
    assert stats.opened_total <= 3
    assert stats.messages_sent == 30
    assert sorted(m.rcpt_tos[0] for m in server.messages) == sorted(
        f"user{n}@example.com" for n in range(30)
    )


async def test_connection_retired_after_its_message_limit(smtpd: ServerFactory) -> None:
    server = smtpd()
    config = PoolConfig(max_size=1, max_messages_per_connection=2)
    async with SmtpPool(settings_for(server.port), config) as pool:
        for n in range(5):
            await pool.send(*message(n))
        stats = pool.statistics()
    assert len(server.messages) == 5
    assert (stats.opened_total, stats.closed_total, stats.open) == (3, 2, 1)
    assert pool.statistics().closed_total == 3  # the last one, closed by the pool's exit


# -- chaining on a pipelining server -----------------------------------------------------------


DATA_ONLY = ("PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES")


async def test_chaining_puts_the_next_envelope_after_the_content() -> None:
    async with (
        mini(extensions=DATA_ONLY) as (server, scripts, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=1)) as pool,
    ):
        outcomes = await gather(pool, 6)
        stats = pool.statistics()
    assert all(isinstance(o, SendResult) for o in outcomes)
    results = [o for o in outcomes if isinstance(o, SendResult)]
    # Each caller got the reply to its own message: queue ids are distinct
    # and each matches the transaction the server completed for that subject.
    assert len({r.transport_id for r in results}) == 6
    (mini_server,) = set(scripts)
    order = subject_numbers(mini_server.transactions)
    assert sorted(order) == list(range(6))
    for position, n in enumerate(order):
        assert results[n].transport_id == f"MINI{position + 1}"
        assert results[n].recipients[0].recipient == f"user{n}@example.com"
    assert stats.opened_total == 1
    # On the wire: the end of one message's data and the next MAIL arrived together.
    chained = [c for c in server.connections[0].chunks if b"\r\n.\r\nMAIL FROM:" in c]
    assert len(chained) >= 1
    assert {t.via for t in mini_server.transactions} == {"DATA"}


async def test_chaining_with_bdat() -> None:
    async with (
        mini() as (server, scripts, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=1)) as pool,
    ):
        outcomes = await gather(pool, 4)
    assert all(isinstance(o, SendResult) for o in outcomes)
    (mini_server,) = set(scripts)
    assert {t.via for t in mini_server.transactions} == {"BDAT"}
    chunks = server.connections[0].chunks
    # A BDAT LAST chunk followed by the next MAIL in one write.
    assert any(c.find(b"MAIL FROM:", c.find(b"BDAT")) > c.find(b"BDAT") >= 0 for c in chunks)


async def test_no_chaining_without_pipelining() -> None:
    async with (
        mini(extensions=("8BITMIME", "SIZE 1000000")) as (server, _, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=1)) as pool,
    ):
        outcomes = await gather(pool, 4)
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert not any(b"MAIL FROM:" in c and b"\r\n.\r\n" in c for c in server.connections[0].chunks)


async def test_a_refusal_in_a_chain_only_fails_its_own_send() -> None:
    refused = "user2@example.com"
    async with (
        mini(refuse={refused: "550 5.1.1 No such user"}) as (server, scripts, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=1)) as pool,
    ):
        outcomes = await gather(pool, 5)
        stats = pool.statistics()
    assert isinstance(outcomes[2], RecipientsRefused)
    assert outcomes[2].code == 550
    for n in (0, 1, 3, 4):
        result = outcomes[n]
        assert isinstance(result, SendResult)
        assert result.recipients[0].recipient == f"user{n}@example.com"
    (mini_server,) = set(scripts)
    assert sorted(subject_numbers(mini_server.transactions)) == [0, 1, 3, 4]
    assert stats.opened_total == 1  # the refusal left the connection usable


# -- failures and retries ----------------------------------------------------------------------


async def test_connection_dropped_before_the_content_is_retried_once() -> None:
    def pick(index: int) -> MiniSmtp:
        # The first connection dies when MAIL arrives; the next one works.
        # (Without CHUNKING: a small message's BDAT would go with its MAIL.)
        if index == 0:
            return MiniSmtp(hang_on="MAIL", extensions=DATA_ONLY)
        return MiniSmtp()

    async with mini(per_connection=pick) as (server, scripts, _):
        settings = settings_for(server.port, timeout=0.5)
        async with SmtpPool(settings, PoolConfig(max_size=1)) as pool:
            result = await pool.send(*message(0))
            stats = pool.statistics()
    assert isinstance(result, SendResult)
    assert subject_numbers(scripts[1].transactions) == [0]
    assert stats.opened_total == 2


async def test_421_before_the_content_is_retried_on_a_new_connection() -> None:
    def pick(index: int) -> MiniSmtp:
        if index == 0:
            return MiniSmtp(replies={"MAIL": "421 4.3.2 Shutting down"})
        return MiniSmtp()

    async with (
        mini(per_connection=pick) as (server, scripts, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=2)) as pool,
    ):
        result = await pool.send(*message(0))
    assert isinstance(result, SendResult)
    assert subject_numbers(scripts[1].transactions) == [0]


async def test_connection_dropped_after_the_content_is_outcome_unknown() -> None:
    async with (
        mini(on_end_of_data="close") as (server, scripts, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=1)) as pool,
    ):
        with pytest.raises(OutcomeUnknown):
            await pool.send(*message(0))
        stats = pool.statistics()
    (mini_server,) = set(scripts)
    # Never retried: the server saw the content exactly once.
    assert len(mini_server.transactions) == 1
    assert stats.opened_total == 1


async def test_break_in_a_chain_gives_each_caller_the_right_error() -> None:
    def pick(index: int) -> MiniSmtp:
        # The first connection drops at its first end of data: the message
        # whose content was written is unknown, the one chained behind it had
        # only its envelope written and goes again on a new connection.
        # (Without CHUNKING: small messages' BDAT would go with their envelope.)
        if index == 0:
            return MiniSmtp(on_end_of_data="close", extensions=DATA_ONLY)
        return MiniSmtp()

    async with (
        mini(per_connection=pick) as (server, scripts, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=1)) as pool,
    ):
        outcomes = await gather(pool, 3)
    unknown = [n for n, o in enumerate(outcomes) if isinstance(o, OutcomeUnknown)]
    sent = [n for n, o in enumerate(outcomes) if isinstance(o, SendResult)]
    assert len(unknown) == 1
    assert len(sent) == 2
    delivered = [n for s in scripts[1:] for n in subject_numbers(s.transactions)]
    assert sorted(delivered) == sent
    assert unknown[0] not in delivered


class Restarting:
    """A pipelining server whose connections die, as if it kept restarting.

    Connection ``i`` carries ``i % 4`` transactions, then dies: even ones when
    the next MAIL arrives (before any content), odd ones after taking the
    next message's content and before answering it (the client cannot know
    whether it was accepted; here it was).
    """

    def __init__(self) -> None:
        self.delivered: list[int] = []
        self.connections = 0

    def record(self, content: bytes) -> None:
        for line in content.split(b"\r\n"):
            if line.startswith(b"Subject: message "):
                self.delivered.append(int(line.rsplit(b" ", 1)[1]))

    async def __call__(self, conn: ScriptedConnection) -> None:
        index = self.connections
        self.connections += 1
        limit = index % 4
        die_before_content = index % 2 == 0
        pending: list[str] = []

        async def flush() -> None:
            if pending:
                await conn.send("".join(pending))
                pending.clear()

        async def readline() -> str:
            if not conn.has_line():
                await flush()
            return (await conn.readline())[:-2].decode()

        await conn.send("220 restarting.test ESMTP\r\n")
        done = 0
        while True:
            line = await readline()
            verb = line[:4].upper()
            if verb == "EHLO":
                pending.append("250-restarting.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == "MAIL":
                if die_before_content and done >= limit:
                    await flush()
                    return
                pending.append("250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                pending.append("250 2.1.5 Ok\r\n")
            elif verb == "DATA":
                pending.append("354 Go ahead\r\n")
                await flush()
                content = await conn.read_until(b"\r\n.\r\n")
                self.record(content)
                if not die_before_content and done >= limit:
                    return
                done += 1
                pending.append(f"250 2.0.0 Ok: queued as R{index}.{done}\r\n")
            elif verb in ("RSET", "NOOP"):
                pending.append("250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                pending.append("221 2.0.0 Bye\r\n")
                await flush()
                return
            else:
                pending.append("502 5.5.2 Unknown command\r\n")


async def test_server_restarts_lose_no_message_and_account_for_every_outcome() -> None:
    restarting = Restarting()
    async with scripted_server(restarting, timeout=BOUND * 3) as server:
        settings = settings_for(server.port, timeout=2.0)
        async with SmtpPool(settings, PoolConfig(max_size=4)) as pool:
            outcomes = await gather(pool, 60)
    delivered = restarting.delivered
    sent = {n for n, o in enumerate(outcomes) if isinstance(o, SendResult)}
    unknown = {n for n, o in enumerate(outcomes) if isinstance(o, OutcomeUnknown)}
    failed = {
        n
        for n, o in enumerate(outcomes)
        if isinstance(o, SmtpError) and not isinstance(o, OutcomeUnknown)
    }
    # Every send has exactly one outcome.
    assert sent | unknown | failed == set(range(60))
    assert not (sent & unknown)
    assert not (sent & failed)
    assert not (unknown & failed)
    # Nothing was delivered twice (no blind retry after the content), nothing
    # reported sent is missing, nothing reported failed was delivered.
    assert len(delivered) == len(set(delivered))
    assert sent <= set(delivered)
    assert not (failed & set(delivered))
    assert set(delivered) <= sent | unknown
    # Connections died before the content many times; the retries saved most.
    assert unknown
    assert len(sent) > len(failed)
    assert restarting.connections > 10


# -- limits under load, ageing with real connections ------------------------------------------


async def test_a_thousand_concurrent_sends_respect_the_cap() -> None:
    async with mini() as (server, scripts, gauge):
        config = PoolConfig(max_size=8, max_messages_per_connection=150, pool_timeout=BOUND * 3)
        async with SmtpPool(settings_for(server.port), config) as pool:
            outcomes = await gather(pool, 1000)
            stats = pool.statistics()
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert gauge["peak"] <= 8
    assert sorted(subject_numbers(scripts[0].transactions)) == list(range(1000))
    assert stats.messages_sent == 1000
    assert stats.opened_total >= 7  # 1000 messages, at most 150 per connection


async def test_idle_connection_is_checked_then_expired() -> None:
    clock = FakeClock()
    async with mini() as (server, scripts, _):
        config = PoolConfig(max_size=1, check_after_idle=5.0, idle_timeout=60.0)
        pool = SmtpPool(settings_for(server.port), config, clock=clock, sleep=clock.sleep)
        await pool.send(*message(0))
        clock.advance(10.0)  # past the check threshold: NOOP first
        await pool.send(*message(1))
        clock.advance(61.0)  # past the idle timeout: a new connection
        await pool.send(*message(2))
        stats = pool.statistics()
        await pool.aclose()
    verbs = scripts[0].verbs()
    assert verbs.count("NOOP") == 1
    assert verbs.index("NOOP") > verbs.index("BDAT")
    assert verbs[-1] == "QUIT"  # the expired connection was closed politely
    assert stats.opened_total == 2


async def test_waiting_caller_cancelled_leaves_no_trace() -> None:
    async with (
        mini() as (server, _, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=1)) as pool,
    ):
        held = await pool.pool.acquire()
        async with anyio.create_task_group() as group:
            group.start_soon(pool.send, *message(0))
            await settle()
            assert pool.statistics().waiting == 1
            group.cancel_scope.cancel()
        assert pool.statistics().waiting == 0
        await pool.pool.release(held)
        result = await pool.send(*message(1))
        stats = pool.statistics()
    assert isinstance(result, SendResult)
    assert stats.opened_total == 1


async def test_pool_timeout_from_send() -> None:
    async with mini() as (server, _, _):
        config = PoolConfig(max_size=1, pool_timeout=0.05)
        async with SmtpPool(settings_for(server.port), config) as pool:
            held = await pool.pool.acquire()
            with pytest.raises(PoolTimeout):
                await pool.send(*message(0))
            await pool.pool.release(held)


async def test_closing_quits_every_idle_connection() -> None:
    async with (
        mini() as (server, scripts, _),
        SmtpPool(settings_for(server.port), PoolConfig(max_size=3)) as pool,
    ):
        await gather(pool, 9)
        opened = pool.statistics().opened_total
    quits = scripts[0].verbs().count("QUIT")
    assert quits == opened
    assert all(conn.peer_closed or conn.done.is_set() for conn in server.connections)


async def test_server_refusing_connections_fails_each_send() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    async with SmtpPool(settings_for(port, connect_timeout=2.0), PoolConfig(max_size=2)) as pool:
        outcomes = await gather(pool, 4)
        stats = pool.statistics()
    assert all(isinstance(o, SmtpConnectError) for o in outcomes)
    assert (stats.open, stats.waiting, stats.opened_total) == (0, 0, 0)
