"""SmtpPool's transactions through the connection's TransactionDriver, against scripted servers.

Every pooled send runs through the ``TransactionDriver`` of its connection
(lettre.smtp.driver): on asyncio the replies are read by the socket's
callbacks, on trio by the waiting senders in turn; the content goes out on
the go-ahead, together with the envelope of the next waiting sender
(chaining). These tests check that each sender gets exactly its own outcome,
whatever the server does, and that the pool stays consistent. Tests that
only check outcomes run on trio as well; the others (callback timing, the
asyncio protocol's buffers) run on asyncio only.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute

from lettre.envelope import Envelope
from lettre.errors import (
    DataRefused,
    OutcomeUnknown,
    RecipientsRefused,
    RemoteProtocolError,
    SenderRefused,
    SmtpError,
    SmtpTimeoutError,
)
from lettre.protocol.transactions import TransactionStage
from lettre.smtp import SmtpSettings, TlsMode
from lettre.smtp.backends import AnyioDriver, AsyncioDriver
from lettre.smtp.driver import Ticket
from lettre.smtp.pool import PoolConfig, SmtpPool
from lettre.smtp.tls import TlsParameters
from lettre.transports.base import SendResult
from pool_support import (
    ASYNCIO_ONLY,
    BOUND,
    CANCELLED,
    HookedMini,
    HookedSession,
    Outcome,
    Senders,
    delivered,
    message,
    number_of,
    record_tickets,
    settings_for,
    smtp_pool,
    until,
)
from servers import (
    MiniSmtp,
    MiniTransaction,
    ScriptedConnection,
    TlsMaterial,
    scripted_server,
)

pytestmark = pytest.mark.anyio

DATA_ONLY = ("PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES")
WITH_BDAT = ("PIPELINING", "CHUNKING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES")


# -- helpers -----------------------------------------------------------------------------------


def seen(servers: Iterable[MiniSmtp], n: int) -> list[MiniTransaction]:
    """The transactions (any outcome) whose content was message ``n``."""
    return [tx for s in servers for tx in s.transactions if number_of(tx.content) == n]


@asynccontextmanager
async def serve(
    make: Callable[[int], MiniSmtp] | MiniSmtp,
) -> AsyncIterator[tuple[Any, list[MiniSmtp]]]:
    """A scripted server; ``make(i)`` is the MiniSmtp of connection ``i`` (or one for all)."""
    scripts: list[MiniSmtp] = []

    async def script(conn: ScriptedConnection) -> None:
        server = make if isinstance(make, MiniSmtp) else make(len(scripts))
        scripts.append(server)
        await server(conn)

    async with scripted_server(script, timeout=BOUND * 2) as server:
        yield server, scripts


@asynccontextmanager
async def pooled(
    make: Callable[[int], MiniSmtp] | MiniSmtp,
    config: PoolConfig | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[list[MiniSmtp], SmtpPool]]:
    """A scripted server (see :func:`serve`) and a pool (max_size=1 by default) sending to it."""
    async with (
        serve(make) as (listener, scripts),
        smtp_pool(listener.port, config, **settings) as pool,
    ):
        yield scripts, pool


async def send_all(
    pool: SmtpPool, count: int, make: Callable[[int], tuple[Envelope, bytes]] = message
) -> list[Outcome]:
    """``count`` concurrent sends, started in order; their outcomes by number."""
    with anyio.fail_after(BOUND * 3):
        async with anyio.create_task_group() as group:
            senders = Senders(pool, group, errors=SmtpError)
            for n in range(count):
                senders.start(n, make)
    return [senders.outcomes[n] for n in range(count)]


@dataclass
class Spy:
    """Every ticket the pool made, and those whose sender started its own flight.

    ``on_callbacks`` are the started ones whose connection is driven by the
    asyncio socket callbacks (``AsyncioDriver._start``); the others were
    started by ``AnyioDriver._start`` (trio).
    """

    tickets: list[Ticket] = field(default_factory=list)
    started: list[Ticket] = field(default_factory=list)
    on_callbacks: list[Ticket] = field(default_factory=list)

    @property
    def driven(self) -> list[Ticket]:
        """Tickets whose transaction ran through a connection's driver."""
        return [t for t in self.tickets if ran(t)]

    @property
    def chained(self) -> list[Ticket]:
        """Tickets run by a driver whose flight went out after another's content."""
        started = {id(t) for t in self.started}
        return [t for t in self.tickets if ran(t) and id(t) not in started]


def ran(ticket: Ticket) -> bool:
    """Whether ``ticket``'s transaction ran through a connection's driver."""
    return ticket.tx is not None


def stage(ticket: Ticket) -> TransactionStage | None:
    return ticket.tx.stage if ticket.tx is not None else None


def outcome(ticket: Ticket) -> object:
    """The outcome the engine gave ``ticket``'s transaction (None: it never ran)."""
    return ticket.tx.outcome if ticket.tx is not None else None


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    record = Spy()
    record_tickets(monkeypatch, record.tickets)

    start_asyncio = AsyncioDriver._start
    start_anyio = AnyioDriver._start

    def _start_asyncio(self: AsyncioDriver, ticket: Ticket) -> None:
        record.started.append(ticket)
        record.on_callbacks.append(ticket)
        start_asyncio(self, ticket)

    async def _start_anyio(self: AnyioDriver, ticket: Ticket) -> None:
        record.started.append(ticket)
        await start_anyio(self, ticket)

    monkeypatch.setattr(AsyncioDriver, "_start", _start_asyncio)
    monkeypatch.setattr(AnyioDriver, "_start", _start_anyio)
    return record


def assert_driven(spy: Spy, count: int | None = None) -> None:
    """Every send (or the first ``count``) ran through its connection's driver, on any backend."""
    tickets = spy.tickets if count is None else spy.tickets[:count]
    assert tickets
    assert all(ran(t) for t in tickets), [stage(t) for t in tickets]


def _after_bdat(chunk: bytes) -> bool:
    bdat = chunk.find(b"BDAT ")
    return bdat >= 0 and chunk.find(b"MAIL FROM:", bdat) > bdat


def wire_chained(server: MiniSmtp) -> bool:
    """Whether some MAIL went in the same chunk right after another message's data."""
    return any(
        b"\r\n.\r\nMAIL FROM:" in chunk or _after_bdat(chunk)
        for conn in server.connections
        for chunk in conn.chunks
    )


def reset_after(server: MiniSmtp, prefix: str) -> bool:
    """Whether RSET was read after the command starting with ``prefix``, before the next MAIL."""
    lines = [c.line for c in server.commands]
    start = next(i for i, line in enumerate(lines) if line.startswith(prefix))
    for line in lines[start + 1 :]:
        if line.startswith("MAIL"):
            return False
        if line == "RSET":
            return True
    return False


def client_protocol(pool: SmtpPool) -> Any:
    """The asyncio protocol of the pool's only idle connection."""
    (conn,) = pool.pool._idle
    stream = conn.client.stream
    assert stream is not None
    byte_stream = stream.asyncio_byte_stream
    assert byte_stream is not None
    return byte_stream.protocol


# -- chaining ----------------------------------------------------------------------------------


async def test_chained_sends_each_get_their_own_result(spy: Spy) -> None:
    server = HookedMini(extensions=DATA_ONLY)
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, 5)
        stats = pool.statistics()
    results = [o for o in outcomes if isinstance(o, SendResult)]
    assert len(results) == 5, outcomes
    # Each sender got the reply to its own message: the server numbered its
    # replies in the order it completed the messages.
    order = delivered([server])
    assert sorted(order) == list(range(5))
    for position, n in enumerate(order):
        result = outcomes[n]
        assert isinstance(result, SendResult)
        assert result.transport_id == f"MINI{position + 1}"
        assert [r.recipient for r in result.recipients] == [f"user{n}@example.com"]
        assert all(r.accepted for r in result.recipients)
    assert stats.opened_total == 1
    assert (stats.in_use, stats.idle, stats.messages_sent) == (0, 1, 5)
    # On the wire: every MAIL after the first arrived with the previous end of data.
    mail_chunks = [c.chunk for c in server.commands if c.verb == "MAIL"]
    chunks = server.connections[0].chunks
    assert len(mail_chunks) == 5
    for index in mail_chunks[1:]:
        assert b"\r\n.\r\nMAIL FROM:" in chunks[index]
    assert {t.via for t in server.transactions} == {"DATA"}
    assert_driven(spy)
    # One flight started by its sender, the four others chained after the
    # previous content (on trio too: the wire shows every later MAIL chained).
    assert len(spy.started) == 1
    assert len(spy.chained) == 4
    # No refusal: no RSET, and the engine gave every transaction its result.
    assert "RSET" not in server.verbs()
    assert all(isinstance(outcome(t), SendResult) for t in spy.tickets)


async def test_chained_sends_with_bdat(spy: Spy) -> None:
    server = HookedMini()
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, 4)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert {t.via for t in server.transactions} == {"BDAT"}
    for tx in server.transactions:
        n = number_of(tx.content)
        assert n is not None
        assert tx.content == message(n)[1]
    ids = [o.transport_id for o in outcomes if isinstance(o, SendResult)]
    assert len(set(ids)) == 4
    chunks = server.connections[0].chunks
    mail_chunks = [c.chunk for c in server.commands if c.verb == "MAIL"]
    for index in mail_chunks[1:]:
        assert _after_bdat(chunks[index]), chunks[index][:200]
    assert_driven(spy)
    # On trio too: the wire shows every later MAIL chained after a BDAT.
    assert len(spy.started) == 1
    assert len(spy.chained) == 3


async def test_refused_recipient_mid_chain_fails_only_that_send(spy: Spy) -> None:
    server = HookedMini(
        extensions=DATA_ONLY, refuse={"user2@example.com": "550 5.1.1 No such user"}
    )
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, 5)
        stats = pool.statistics()
    refused = outcomes[2]
    assert isinstance(refused, RecipientsRefused)
    assert refused.code == 550
    assert refused.enhanced_status == "5.1.1"
    assert [(r.recipient, r.accepted) for r in refused.results] == [("user2@example.com", False)]
    for n in (0, 1, 3, 4):
        result = outcomes[n]
        assert isinstance(result, SendResult), result
        assert result.recipients[0].recipient == f"user{n}@example.com"
    assert sorted(delivered([server])) == [0, 1, 3, 4]
    assert seen([server], 2) == []
    # The refusal was cleaned up with RSET and the same connection carried on.
    assert "RSET" in server.verbs()
    assert stats.opened_total == 1
    assert (stats.open, stats.in_use) == (1, 0)
    assert_driven(spy)
    # The engine ended the refused transaction itself (RSET right after its
    # envelope) and gave its sender the typed error; no other send failed.
    failed = [t for t in spy.tickets if not isinstance(outcome(t), SendResult)]
    assert len(failed) == 1
    assert str(failed[0].envelope.forward_paths[0]) == "user2@example.com"
    assert outcome(failed[0]) is refused
    assert reset_after(server, "RCPT TO:<user2@example.com>")


@ASYNCIO_ONLY
async def test_partly_refused_recipients_are_reported_and_the_rest_delivered(spy: Spy) -> None:
    server = HookedMini(refuse={"gone@example.com": "550 5.1.1 Gone"})
    async with pooled(server) as (_, pool):
        result = await pool.send(*message(0, to=["a@example.com", "gone@example.com"]))
    assert [(r.recipient, r.accepted) for r in result.recipients] == [
        ("a@example.com", True),
        ("gone@example.com", False),
    ]
    refused = result.recipients[1].reply
    assert refused is not None
    assert refused.code == 550
    (tx,) = server.transactions
    assert tx.completed
    assert tx.accepted == ["a@example.com"]
    # Not a refusal of the transaction: no RSET, the engine's outcome is the result.
    assert "RSET" not in server.verbs()
    assert outcome(spy.tickets[0]) is result


@ASYNCIO_ONLY
async def test_require_all_recipients_refuses_the_whole_send_on_one_refusal(spy: Spy) -> None:
    # With require_all_recipients the content cannot go in the envelope's
    # flight: it waits for the RCPT replies, and the engine ends the refusal.
    server = HookedMini(extensions=WITH_BDAT, refuse={"gone@example.com": "550 5.1.1 Gone"})
    async with serve(server) as (listener, _):
        settings = settings_for(listener.port, require_all_recipients=True)
        async with SmtpPool(settings, PoolConfig(max_size=1)) as pool:
            with pytest.raises(RecipientsRefused) as caught:
                await pool.send(*message(0, to=["a@example.com", "gone@example.com"]))
            after = await pool.send(*message(1))
            stats = pool.statistics()
    assert [(r.recipient, r.accepted) for r in caught.value.results] == [
        ("a@example.com", True),
        ("gone@example.com", False),
    ]
    assert delivered([server]) == [1]
    assert server.transactions[0].content is None
    assert isinstance(after, SendResult)
    assert stats.opened_total == 1
    assert [ran(t) for t in spy.tickets] == [True, True]
    # The engine ended the refused transaction with RSET and reported the typed error.
    assert outcome(spy.tickets[0]) is caught.value
    assert reset_after(server, "RCPT TO:<gone@example.com>")
    assert outcome(spy.tickets[1]) is after


async def test_mail_refused_leaves_the_connection_usable(spy: Spy) -> None:
    server = HookedMini(extensions=DATA_ONLY, replies={"MAIL": "550 5.7.1 Sender blocked"})
    async with pooled(server) as (_, pool):
        with pytest.raises(SenderRefused) as caught:
            await pool.send(*message(0))
        del server.replies["MAIL"]
        result = await pool.send(*message(1))
        stats = pool.statistics()
    assert caught.value.code == 550
    assert caught.value.enhanced_status == "5.7.1"
    assert isinstance(result, SendResult)
    assert delivered([server]) == [1]
    assert "RSET" in server.verbs()
    assert stats.opened_total == 1
    assert_driven(spy)
    # The engine ended the refused transaction with RSET and reported the typed error.
    assert [outcome(t) for t in spy.tickets] == [caught.value, result]
    assert reset_after(server, "MAIL")


@ASYNCIO_ONLY
async def test_data_refused_in_the_envelope_leaves_the_connection_usable(spy: Spy) -> None:
    server = HookedMini(extensions=DATA_ONLY, replies={"DATA": "451 4.3.0 Try again later"})
    async with pooled(server) as (_, pool):
        with pytest.raises(DataRefused) as caught:
            await pool.send(*message(0))
        del server.replies["DATA"]
        result = await pool.send(*message(1))
        stats = pool.statistics()
    assert (caught.value.code, caught.value.command) == (451, "DATA")
    assert isinstance(result, SendResult)
    assert delivered([server]) == [1]
    assert "RSET" in server.verbs()
    assert stats.opened_total == 1  # a 451 is not retried, and the connection stays
    assert_driven(spy)
    # The engine ended the refused transaction with RSET and reported the typed error.
    assert [outcome(t) for t in spy.tickets] == [caught.value, result]
    assert reset_after(server, "DATA")


@ASYNCIO_ONLY
async def test_idle_longer_than_the_reply_timeout_is_fine(spy: Spy) -> None:
    # The connection's timer outlives the transaction it was armed for; when
    # it fires on an idle connection nothing happens.
    server = HookedMini()
    async with pooled(server, timeout=0.3, data_timeout=0.3) as (_, pool):
        await pool.send(*message(0))
        await anyio.sleep(0.6)  # idle for longer than `timeout`: that is what is tested
        result = await pool.send(*message(1))
        stats = pool.statistics()
    assert isinstance(result, SendResult)
    assert delivered([server]) == [0, 1]
    assert stats.opened_total == 1
    assert [ran(t) for t in spy.tickets] == [True, True]


@ASYNCIO_ONLY
async def test_starttls_connections_run_in_the_pipeline_too(
    spy: Spy, tls_material: TlsMaterial, tls_params: TlsParameters
) -> None:
    server = HookedMini(extensions=DATA_ONLY, tls_context=tls_material.server_context())
    settings = {"tls": TlsMode.STARTTLS, "tls_parameters": tls_params}
    async with serve(server) as (listener, _):
        config = PoolConfig(max_size=1)
        port = listener.port
        base = settings_for(port)
        tls_settings = SmtpSettings(
            host=base.host,
            port=port,
            hello_name=base.hello_name,
            timeout=base.timeout,
            data_timeout=base.data_timeout,
            **settings,
        )
        async with SmtpPool(tls_settings, config) as pool:
            outcomes = await send_all(pool, 3)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert sorted(delivered([server])) == [0, 1, 2]
    assert "STARTTLS" in server.verbs()
    # asyncio's start_tls keeps the connection on the asyncio byte stream:
    # the socket callbacks drive it over TLS as well, and it chains.
    assert len(spy.tickets) == 3
    assert all(ran(t) for t in spy.tickets)
    assert len(spy.started) == 1
    assert spy.on_callbacks == spy.started
    assert wire_chained(server)


async def test_421_to_mail_is_retried_on_a_new_connection(spy: Spy) -> None:
    make = first_connection_differs({"replies": {"MAIL": "421 4.3.2 Shutting down"}})

    async with pooled(make) as (scripts, pool):
        result = await pool.send(*message(0))
        stats = pool.statistics()
    assert isinstance(result, SendResult)
    assert len(scripts) == 2
    assert scripts[0].transactions == []
    assert delivered(scripts) == [0]
    assert (stats.opened_total, stats.closed_total, stats.open) == (2, 1, 1)
    assert_driven(spy)


async def test_421_final_reply_with_a_chained_sender(spy: Spy) -> None:
    make = first_connection_differs(
        {"extensions": DATA_ONLY, "replies": {"END": "421 4.3.2 Going down"}},
        {"extensions": DATA_ONLY},
    )

    async with pooled(make) as (scripts, pool):
        outcomes = await send_all(pool, 2)
        stats = pool.statistics()
    # The first message on the connection (which one is up to the scheduler
    # on trio) got the 421; the one chained behind it went again.
    (first,) = [n for n, o in enumerate(outcomes) if isinstance(o, DataRefused)]
    (second,) = [n for n, o in enumerate(outcomes) if isinstance(o, SendResult)]
    refused = outcomes[first]
    assert isinstance(refused, DataRefused)
    assert (refused.code, refused.enhanced_status) == (421, "4.3.2")
    # The second message's envelope was chained behind the first one's data...
    assert wire_chained(scripts[0])
    assert len(scripts[0].transactions) == 2
    assert number_of(scripts[0].transactions[0].content) == first
    # ...but its content never went out there: it was delivered once, on a new connection.
    assert scripts[0].transactions[1].content is None
    assert delivered(scripts) == [second]
    assert len(seen(scripts, second)) == 1
    assert not any(tx.completed for tx in scripts[0].transactions)
    assert stats.opened_total == 2
    assert_driven(spy, count=2)


async def test_final_refusal_mid_chain_and_the_chain_goes_on(spy: Spy) -> None:
    def final(content: bytes) -> str | None:
        return "554 5.7.1 Rejected as spam" if number_of(content) == 2 else None

    server = HookedMini(extensions=DATA_ONLY, final_reply=final)
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, 5)
        stats = pool.statistics()
    refused = outcomes[2]
    assert isinstance(refused, DataRefused)
    assert (refused.code, refused.enhanced_status, refused.command) == (554, "5.7.1", "DATA")
    for n in (0, 1, 3, 4):
        assert isinstance(outcomes[n], SendResult), outcomes[n]
    assert sorted(delivered([server])) == [0, 1, 3, 4]
    assert stats.opened_total == 1
    assert "RSET" not in server.verbs()
    assert_driven(spy)
    # The refusal did not break the chain: one flight started by a sender.
    assert len(spy.started) == 1


# -- the connection failing --------------------------------------------------------------------


async def test_close_after_the_end_of_data_is_unknown_and_the_chained_send_retried(
    spy: Spy,
) -> None:
    make = first_connection_differs(
        {"extensions": DATA_ONLY, "on_end_of_data": "close"}, {"extensions": DATA_ONLY}
    )

    async with pooled(make) as (scripts, pool):
        outcomes = await send_all(pool, 2)
        stats = pool.statistics()
    (first,) = [n for n, o in enumerate(outcomes) if isinstance(o, OutcomeUnknown)]
    (second,) = [n for n, o in enumerate(outcomes) if isinstance(o, SendResult)]
    assert "end of data" in str(outcomes[first])
    assert wire_chained(scripts[0])
    # The first message reached the first connection once and was never sent again.
    assert len(seen(scripts, first)) == 1
    assert seen(scripts[1:], first) == []
    assert delivered(scripts) == [second]
    assert len(seen(scripts, second)) == 1
    assert stats.opened_total == 2
    assert_driven(spy, count=2)


@ASYNCIO_ONLY
async def test_reset_after_the_end_of_data_is_unknown(spy: Spy) -> None:
    async def reset(session: HookedSession, content: bytes) -> None:
        raw = session.conn.stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await session.conn.stream.aclose()
        raise anyio.EndOfStream

    server = HookedMini(before_final=reset)
    async with pooled(server) as (_, pool):
        with anyio.fail_after(BOUND), pytest.raises(OutcomeUnknown) as caught:
            await pool.send(*message(0))
        stats = pool.statistics()
    # MAIL, RCPT and BDAT LAST went in one flight: the first reply owed was MAIL's.
    assert "reading the reply to MAIL" in str(caught.value)
    assert len(server.transactions) == 1
    assert (stats.open, stats.opened_total) == (0, 1)
    assert ran(spy.tickets[0])


@ASYNCIO_ONLY
async def test_silence_after_the_end_of_data_is_unknown(spy: Spy) -> None:
    server = HookedMini(extensions=DATA_ONLY, on_end_of_data="hang")
    async with pooled(server, timeout=0.2, data_timeout=0.2) as (_, pool):
        with anyio.fail_after(BOUND), pytest.raises(OutcomeUnknown) as caught:
            await pool.send(*message(0))
        stats = pool.statistics()
    assert "timed out after 0.2 s waiting for the reply to the end of data" in str(caught.value)
    assert len(server.transactions) == 1  # never retried
    assert (stats.open, stats.opened_total) == (0, 1)
    assert ran(spy.tickets[0])


# The connection has one timer. A limit that becomes due earlier than it is
# set for (data_timeout shorter than timeout once the content is out, or the
# deadline of a send that starts while the timer is armed) must move it
# earlier, not wait for it to fire. Each test bounds the send well below
# ``timeout``.

SLOW_TIMEOUT = 6.0


@ASYNCIO_ONLY
async def test_data_timeout_shorter_than_timeout_bounds_the_final_reply(spy: Spy) -> None:
    server = HookedMini(extensions=DATA_ONLY, on_end_of_data="hang")
    async with pooled(server, timeout=SLOW_TIMEOUT, data_timeout=0.2) as (_, pool):
        with anyio.fail_after(SLOW_TIMEOUT / 2), pytest.raises(OutcomeUnknown) as caught:
            await pool.send(*message(0))
    assert "timed out after 0.2 s waiting for the reply to the end of data" in str(caught.value)


@ASYNCIO_ONLY
async def test_deadline_of_the_next_send_on_a_connection(spy: Spy) -> None:
    mails = 0

    async def second_mail_hangs(session: HookedSession, line: str) -> None:
        nonlocal mails
        if line.startswith("MAIL"):
            mails += 1
            if mails == 2:
                await session.conn.wait_closed()
                raise anyio.EndOfStream

    server = HookedMini(extensions=DATA_ONLY, before_command=second_mail_hangs)
    async with pooled(server, timeout=SLOW_TIMEOUT) as (_, pool):
        await pool.send(*message(0))
        deadline = anyio.current_time() + 0.6
        with anyio.fail_after(SLOW_TIMEOUT / 2), pytest.raises(SmtpTimeoutError) as caught:
            await pool.send(*message(1), deadline=deadline)
    assert "deadline passed while waiting for the reply to MAIL" in str(caught.value)
    assert [ran(t) for t in spy.tickets] == [True, True]


@ASYNCIO_ONLY
async def test_deadline_of_a_chained_sender(spy: Spy) -> None:
    # The first message's final reply is held back; the second sender's own
    # deadline passes while its envelope is chained behind it.
    gate = anyio.Event()

    async def hold(session: HookedSession, content: bytes) -> None:
        if number_of(content) == 0:
            await gate.wait()

    server = HookedMini(extensions=DATA_ONLY, before_final=hold)
    settings = {"timeout": SLOW_TIMEOUT, "data_timeout": SLOW_TIMEOUT}
    try:
        async with pooled(server, **settings) as (_, pool):
            with anyio.fail_after(SLOW_TIMEOUT / 2):
                async with anyio.create_task_group() as group:
                    senders = Senders(pool, group, errors=SmtpError)
                    senders.start(0)
                    senders.start(1, deadline=anyio.current_time() + 0.6)
                    await until(lambda: 1 in senders.outcomes, "the second send ended")
    finally:
        gate.set()
    first, second = senders.outcomes[0], senders.outcomes[1]
    # The deadline fails every transaction in flight on the connection: the
    # first one's content was out (unknown), the second one's was not.
    assert isinstance(first, OutcomeUnknown), first
    assert isinstance(second, SmtpTimeoutError), second
    assert not isinstance(second, OutcomeUnknown)
    assert "deadline passed" in str(second)
    assert wire_chained(server)
    assert seen([server], 1) == []
    assert len(spy.chained) == 1


@ASYNCIO_ONLY
async def test_silence_after_the_end_of_data_with_a_chained_sender(spy: Spy) -> None:
    make = first_connection_differs(
        {"extensions": DATA_ONLY, "on_end_of_data": "hang"}, {"extensions": DATA_ONLY}
    )

    async with serve(make) as (listener, scripts):
        settings = settings_for(listener.port, timeout=0.3, data_timeout=0.3)
        async with SmtpPool(settings, PoolConfig(max_size=1)) as pool:
            outcomes = await send_all(pool, 2)
    first, second = outcomes
    assert isinstance(first, OutcomeUnknown)
    assert isinstance(second, SendResult), second
    assert wire_chained(scripts[0])
    assert delivered(scripts) == [1]
    assert len(seen(scripts, 0)) == 1


@ASYNCIO_ONLY
async def test_slow_final_reply_within_data_timeout_is_fine(spy: Spy) -> None:
    # The final reply is bounded by data_timeout, not by the shorter timeout
    # that bounded the envelope: the connection's timer must move on.
    async def slow(session: HookedSession, content: bytes) -> None:
        await anyio.sleep(0.8)  # longer than `timeout`: that is what is tested

    server = HookedMini(before_final=slow)
    async with serve(server) as (listener, _):
        settings = settings_for(listener.port, timeout=0.3, data_timeout=BOUND)
        async with SmtpPool(settings, PoolConfig(max_size=1)) as pool:
            with anyio.fail_after(BOUND):
                result = await pool.send(*message(0))
    assert isinstance(result, SendResult)
    assert delivered([server]) == [0]
    assert ran(spy.tickets[0])


@ASYNCIO_ONLY
@pytest.mark.parametrize(
    ("verb", "extensions", "waiting_for"),
    [
        ("MAIL", DATA_ONLY, "the reply to MAIL"),
        ("RCPT", DATA_ONLY, "the reply to RCPT"),
        ("DATA", DATA_ONLY, "the reply to DATA"),
        ("BDAT", WITH_BDAT, "the reply to BDAT"),
    ],
)
async def test_silence_in_the_transaction_times_out(
    spy: Spy, verb: str, extensions: tuple[str, ...], waiting_for: str
) -> None:
    server = HookedMini(extensions=extensions, hang_on=verb)
    async with serve(server) as (listener, _):
        settings = settings_for(listener.port, timeout=0.2, data_timeout=0.2)
        async with SmtpPool(settings, PoolConfig(max_size=1)) as pool:
            with anyio.fail_after(BOUND), pytest.raises(SmtpError) as caught:
                await pool.send(*message(0))
            stats = pool.statistics()
    error = caught.value
    assert waiting_for in str(error)
    assert "timed out after 0.2 s" in str(error)
    if verb == "BDAT":
        # The content was out: unknown, never retried.
        assert isinstance(error, OutcomeUnknown)
        assert len(server.connections) == 1
    else:
        assert isinstance(error, SmtpTimeoutError)
        # Retried once on a new connection, which was silent too.
        assert len(server.connections) == 2
        assert all(tx.content is None for tx in server.transactions)
    assert stats.open == 0
    assert all(ran(t) for t in spy.tickets)


@ASYNCIO_ONLY
async def test_deadline_during_the_envelope(spy: Spy) -> None:
    server = HookedMini(extensions=DATA_ONLY, hang_on="MAIL")
    async with serve(server) as (listener, _):
        settings = settings_for(listener.port, timeout=BOUND, data_timeout=BOUND)
        async with SmtpPool(settings, PoolConfig(max_size=1)) as pool:
            deadline = anyio.current_time() + 0.6
            with anyio.fail_after(BOUND), pytest.raises(SmtpTimeoutError) as caught:
                await pool.send(*message(0), deadline=deadline)
            stats = pool.statistics()
    assert not isinstance(caught.value, OutcomeUnknown)
    assert "deadline passed while waiting for the reply to MAIL" in str(caught.value)
    assert len(server.connections) == 1  # the deadline has passed: no retry
    assert stats.open == 0
    assert ran(spy.tickets[0])


@ASYNCIO_ONLY
async def test_deadline_after_the_content_is_unknown(spy: Spy) -> None:
    server = HookedMini(on_end_of_data="hang")
    async with serve(server) as (listener, _):
        settings = settings_for(listener.port, timeout=BOUND, data_timeout=BOUND)
        async with SmtpPool(settings, PoolConfig(max_size=1)) as pool:
            deadline = anyio.current_time() + 0.8
            with anyio.fail_after(BOUND), pytest.raises(OutcomeUnknown) as caught:
                await pool.send(*message(0), deadline=deadline)
    assert "deadline passed while waiting for the reply to BDAT" in str(caught.value)
    assert len(server.transactions) == 1
    assert ran(spy.tickets[0])


@ASYNCIO_ONLY
async def test_malformed_reply_to_the_envelope(spy: Spy) -> None:
    server = HookedMini(extensions=DATA_ONLY, replies={"MAIL": "this is not a reply"})
    async with pooled(server) as (_, pool):
        with anyio.fail_after(BOUND), pytest.raises(RemoteProtocolError):
            await pool.send(*message(0))
        stats = pool.statistics()
    # Not retried (the server misbehaves), and the connection is gone.
    assert len(server.connections) == 1
    assert server.transactions == []
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    assert ran(spy.tickets[0])


@ASYNCIO_ONLY
async def test_malformed_final_reply_is_unknown(spy: Spy) -> None:
    server = HookedMini(extensions=DATA_ONLY, final_reply=lambda content: "this is not a reply")
    async with pooled(server) as (_, pool):
        with anyio.fail_after(BOUND), pytest.raises(OutcomeUnknown) as caught:
            await pool.send(*message(0))
        stats = pool.statistics()
    assert isinstance(caught.value.__cause__, RemoteProtocolError)
    assert len(server.transactions) == 1
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    assert ran(spy.tickets[0])


# -- bytes while idle --------------------------------------------------------------------------


@ASYNCIO_ONLY
@pytest.mark.parametrize("close", [False, True])
async def test_421_while_idle_sends_on_a_new_connection(spy: Spy, close: bool) -> None:
    server = HookedMini()
    async with pooled(server) as (_, pool):
        await pool.send(*message(0))
        protocol = client_protocol(pool)
        await server.connections[0].send("421 4.3.2 Service shutting down\r\n")
        if close:
            await server.connections[0].stream.aclose()
            await until(lambda: protocol.eof, "the client saw the close")
        else:
            await until(lambda: bool(protocol.chunks), "the client got the 421")
        result = await pool.send(*message(1))
        stats = pool.statistics()
    assert isinstance(result, SendResult)
    assert delivered([server]) == [0, 1]
    assert len(server.connections) == 2
    assert (stats.opened_total, stats.open) == (2, 1)
    # Every attempt went through the driver; the one on the closing
    # connection never had its flight written (nothing of it was sent).
    done, prepared = TransactionStage.DONE, TransactionStage.PREPARED
    assert [stage(t) for t in spy.tickets] == [done, prepared, done]


@ASYNCIO_ONLY
async def test_close_while_idle_sends_on_a_new_connection(spy: Spy) -> None:
    server = HookedMini()
    async with pooled(server) as (_, pool):
        await pool.send(*message(0))
        protocol = client_protocol(pool)
        await server.connections[0].stream.aclose()
        await until(lambda: protocol.eof, "the client saw the close")
        result = await pool.send(*message(1))
        stats = pool.statistics()
    assert isinstance(result, SendResult)
    assert delivered([server]) == [0, 1]
    assert (stats.opened_total, stats.open) == (2, 1)


@ASYNCIO_ONLY
@pytest.mark.parametrize("size", [len(b"garbage\r\n"), 300 * 1024])
async def test_garbage_while_idle_is_a_protocol_error(spy: Spy, size: int) -> None:
    server = HookedMini()
    async with pooled(server) as (_, pool):
        await pool.send(*message(0))
        protocol = client_protocol(pool)
        garbage = (b"garbage " * (size // 8 + 1))[: size - 2] + b"\r\n"
        await server.connections[0].send(garbage)
        # All of it, or as much as the client buffers before it stops reading.
        await until(
            lambda: protocol.buffered >= size or protocol.reading_paused,
            "the client buffered the garbage",
        )
        with anyio.fail_after(BOUND), pytest.raises(RemoteProtocolError):
            await pool.send(*message(1))
        stats = pool.statistics()
        # The connection was dropped; the next send gets a new one.
        after = await pool.send(*message(2))
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    assert isinstance(after, SendResult)
    assert delivered([server]) == [0, 2]
    # The send that met the garbage never had its flight written.
    tx = spy.tickets[1].tx
    assert tx is not None
    assert tx.stage is TransactionStage.PREPARED
    assert not tx.content_sent


# -- cancellation and closing ------------------------------------------------------------------


@ASYNCIO_ONLY
async def test_cancelled_sender_with_its_envelope_in_flight(spy: Spy) -> None:
    mail_seen = anyio.Event()

    async def on_command(session: HookedSession, line: str) -> None:
        if line.startswith("MAIL") and not mail_seen.is_set():
            mail_seen.set()
            await session.conn.wait_closed()  # never answers
            raise anyio.EndOfStream

    server = HookedMini(extensions=DATA_ONLY, before_command=on_command)
    async with pooled(server) as (_, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group, errors=SmtpError)
                senders.start(0)
                await mail_seen.wait()
                senders.scopes[0].cancel()
        stats = pool.statistics()
        await server.connections[0].closed.wait()
        after = await pool.send(*message(1))
        final = pool.statistics()
    assert senders.outcomes[0] == CANCELLED
    assert (stats.open, stats.in_use, stats.idle, stats.waiting) == (0, 0, 0, 0)
    # Message 0's envelope arrived (and was never answered); its content never did.
    assert b"RCPT TO:<user0@example.com>" in server.connections[0].received
    assert b"Subject: message 0" not in server.connections[0].received
    assert seen([server], 0) == []
    assert [number_of(tx.content) for tx in server.transactions] == [1]
    assert isinstance(after, SendResult)
    assert delivered([server]) == [1]
    assert (final.opened_total, final.open) == (2, 1)
    assert ran(spy.tickets[0])


def first_connection_differs(
    first: dict[str, Any], others: dict[str, Any] | None = None
) -> Callable[[int], MiniSmtp]:
    """A server factory: the first connection gets ``first``, later ones ``others``."""

    def make(index: int) -> MiniSmtp:
        return HookedMini(**(first if index == 0 else (others or {})))

    return make


class FinalReplyHold:
    """A ``before_final`` hook: holds back the final reply (of message ``number``, or any).

    ``end_seen`` is set when the end of data arrived; the reply goes once
    ``gate`` is set.
    """

    def __init__(self, number: int | None = None) -> None:
        self.number = number
        self.end_seen = anyio.Event()
        self.gate = anyio.Event()

    async def hold(self, session: HookedSession, content: bytes) -> None:
        if self.number is None or number_of(content) == self.number:
            self.end_seen.set()
            await self.gate.wait()


@ASYNCIO_ONLY
async def test_cancelled_chained_sender_never_has_its_content_written(spy: Spy) -> None:
    held = FinalReplyHold(number=0)
    end_seen, gate = held.end_seen, held.gate
    server = HookedMini(extensions=DATA_ONLY, before_final=held.hold)
    async with pooled(server) as (_, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group, errors=SmtpError)
                senders.start(0)
                senders.start(1)
                await end_seen.wait()
                # Message 1's envelope went out after message 0's data.
                assert wire_chained(server)
                senders.scopes[1].cancel()
                # The server answers message 0 and then message 1's envelope
                # (354): the content of the cancelled send must not follow.
                gate.set()
        stats = pool.statistics()
        await server.connections[0].closed.wait()
        after = await pool.send(*message(2))
    assert isinstance(senders.outcomes[0], SendResult), senders.outcomes[0]
    assert senders.outcomes[1] == CANCELLED
    assert [number_of(tx.content) for tx in server.transactions] == [0, None, 2]
    assert server.transactions[1].rcpts == ["RCPT TO:<user1@example.com>"]
    assert delivered([server]) == [0, 2]
    assert (stats.open, stats.in_use, stats.waiting) == (0, 0, 0)
    assert isinstance(after, SendResult)
    assert len(spy.chained) == 1


@ASYNCIO_ONLY
async def test_cancelled_sender_with_its_content_out(spy: Spy) -> None:
    held = FinalReplyHold()
    end_seen, gate = held.end_seen, held.gate
    server = HookedMini(before_final=held.hold)
    async with pooled(server) as (_, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group, errors=SmtpError)
                senders.start(0)
                await end_seen.wait()
                senders.scopes[0].cancel()
                gate.set()
        stats = pool.statistics()
        after = await pool.send(*message(1))
    assert senders.outcomes[0] == CANCELLED
    # The message was out: the connection waited for its final reply before closing.
    assert server.transactions[0].completed
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    assert isinstance(after, SendResult)
    assert delivered([server]) == [0, 1]
    assert ran(spy.tickets[0])


@ASYNCIO_ONLY
async def test_pool_closed_while_transactions_are_in_flight(spy: Spy) -> None:
    held = FinalReplyHold(number=0)
    end_seen, gate = held.end_seen, held.gate
    server = HookedMini(extensions=DATA_ONLY, before_final=held.hold)
    async with serve(server) as (listener, _):
        pool = smtp_pool(listener.port)
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group, errors=SmtpError)
                for n in range(4):
                    senders.start(n)
                await end_seen.wait()
                # 0: content out; 1: envelope chained; 2 and 3: waiting for the pool.
                await pool.aclose()
                await until(lambda: len(senders.outcomes) == 2, "the waiters were failed")
                gate.set()
        stats = pool.statistics()
        await server.connections[0].done.wait()
    outcomes = senders.outcomes
    assert isinstance(outcomes[0], SendResult), outcomes[0]
    assert isinstance(outcomes[1], SendResult), outcomes[1]
    for n in (2, 3):
        error = outcomes[n]
        assert isinstance(error, SmtpError)
        assert "closed" in str(error)
    assert sorted(delivered([server])) == [0, 1]
    assert (stats.open, stats.in_use, stats.idle) == (0, 0, 0)
    assert stats.closed_total == 1
    assert server.verbs()[-1] == "QUIT"
    assert len(spy.chained) == 1


# -- transcript, limits, size ------------------------------------------------------------------


@pytest.mark.parametrize("extensions", [DATA_ONLY, WITH_BDAT], ids=["DATA", "BDAT"])
async def test_debug_transcript_logs_the_path_that_runs(
    spy: Spy,
    caplog: pytest.LogCaptureFixture,
    extensions: tuple[str, ...],
) -> None:
    # Logging only observes: the same path runs with the transcript on (the
    # driver, from the callbacks on asyncio), and every command and reply is
    # in it once.
    caplog.set_level(logging.DEBUG, logger="lettre.smtp")
    server = HookedMini(extensions=extensions)
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, 3)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert sorted(delivered([server])) == [0, 1, 2]
    assert_driven(spy)
    lines = [r.getMessage() for r in caplog.records if r.name == "lettre.smtp"]
    assert sum(line.startswith("C: MAIL FROM:<sender@example.com>") for line in lines) == 3
    for n in (1, 2, 3):
        assert sum(line.startswith(f"S: 250 2.0.0 Ok: queued as MINI{n}") for line in lines) == 1
    # Each reply to MAIL and RCPT once, whichever path read it.
    assert sum(line == "S: 250 2.1.0 Ok" for line in lines) == 3
    assert sum(line == "S: 250 2.1.5 Ok" for line in lines) == 3
    content = [line for line in lines if "bytes of message content" in line]
    assert len(content) == 3
    assert not any("Hello" in line for line in lines)  # content is never logged
    assert wire_chained(server)


async def test_debug_transcript_logs_a_refusal_read_by_the_pipeline_once(
    spy: Spy, caplog: pytest.LogCaptureFixture
) -> None:
    # A refused RCPT is read by the driver (in the socket callbacks on
    # asyncio) and the engine ends the transaction itself with RSET: the
    # reply is logged once.
    caplog.set_level(logging.DEBUG, logger="lettre.smtp")
    server = HookedMini(
        extensions=DATA_ONLY, refuse={"user2@example.com": "550 5.1.1 No such user"}
    )
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, 4)
    assert isinstance(outcomes[2], RecipientsRefused)
    lines = [r.getMessage() for r in caplog.records if r.name == "lettre.smtp"]
    assert lines.count("S: 550 5.1.1 No such user") == 1
    assert sum(line == "C: RSET" for line in lines) >= 1


async def test_message_limit_per_connection_with_chaining(spy: Spy) -> None:
    async with serve(lambda index: HookedMini(extensions=DATA_ONLY)) as (listener, scripts):
        config = PoolConfig(max_size=1, max_messages_per_connection=2)
        async with SmtpPool(settings_for(listener.port), config) as pool:
            outcomes = await send_all(pool, 5)
            stats = pool.statistics()
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert sorted(delivered(scripts)) == list(range(5))
    assert [len(s.transactions) for s in scripts] == [2, 2, 1]
    assert len(listener.connections) == 3
    assert stats.opened_total == 3
    assert stats.messages_sent == 5
    assert wire_chained(scripts[0])
    assert_driven(spy)


@pytest.mark.parametrize("extensions", [DATA_ONLY, WITH_BDAT], ids=["DATA", "BDAT"])
async def test_large_messages_arrive_intact(spy: Spy, extensions: tuple[str, ...]) -> None:
    lines = []
    size = 0
    index = 0
    while size < 2 * 1024 * 1024:
        kind = index % 7
        if kind == 0:
            line = b"."
        elif kind == 1:
            line = b".. two dots " + str(index).encode()
        elif kind == 2:
            line = b".leading dot " + str(index).encode()
        else:
            line = b"line %d " % index + b"x" * 60
        lines.append(line + b"\r\n")
        size += len(line) + 2
        index += 1
    body = b"".join(lines)

    def make(n: int) -> tuple[Envelope, bytes]:
        return message(n, body=body)

    server = HookedMini(extensions=extensions)
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, 2, make)
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert len(server.transactions) == 2
    for tx in server.transactions:
        n = number_of(tx.content)
        assert n is not None
        assert tx.content == make(n)[1]
        assert tx.completed
        raw = tx.raw_content
        assert raw is not None
        if tx.via == "DATA":
            # Dot-stuffed on the wire: every line starting with "." got one more.
            assert b"\r\n..\r\n" in raw
            assert b"\r\n... two dots" in raw
            assert b"\r\n..leading dot" in raw
            assert len(raw) == len(tx.content) + sum(ln.startswith(b".") for ln in lines)
        else:
            assert raw == tx.content
    assert {tx.via for tx in server.transactions} == {"DATA" if extensions == DATA_ONLY else "BDAT"}
    assert_driven(spy)
