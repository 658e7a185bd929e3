"""The send path (TransactionDriver and its two backends) against scripted servers.

Each test drives a pool (or a client) against a ``MiniSmtp`` whose script
waits on events the test sets, and checks what the senders got (outcome
types and messages), what went on the wire, which connections were closed,
the pool's statistics, and that no message was delivered twice.

The situations are the uncommon ones of ``lettre.smtp.driver`` and
``lettre.smtp.backends``: a server that stops reading while a chained
content is written, senders cancelled at each point of a chain, the pool
closed with transactions in flight, the deadline rule (a send's own
deadline, ``timeout`` against ``data_timeout``), the server closing the
connection just as the next sender takes it over, a write buffered over the
transport's high-water mark, and a protocol error in the middle of a chain.
Tests that apply to both backends run on asyncio, uvloop and trio; the
others say why they are restricted.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute

from lettre.envelope import Envelope
from lettre.errors import (
    LettreError,
    OutcomeUnknown,
    RemoteProtocolError,
    ServerDisconnected,
    SmtpError,
    SmtpTimeoutError,
)
from lettre.protocol.transactions import TransactionStage
from lettre.results import SendResult
from lettre.smtp.backends import AnyioDriver
from lettre.smtp.driver import Ticket, TransactionDriver
from lettre.smtp.pool import PoolConfig, SmtpPool
from pool_support import (
    ASYNCIO_ONLY,
    BOUND,
    CANCELLED,
    HookedMini,
    HookedSession,
    Senders,
    delivered,
    message,
    number_of,
    record_tickets,
    smtp_pool,
    until,
)
from servers import MiniSmtp, ScriptedConnection, ScriptedServer, scripted_server

pytestmark = pytest.mark.anyio

#: A reply timeout long enough never to fire in a test that bounds itself below it.
SLOW = 6.0

TRIO_ONLY = pytest.mark.parametrize("anyio_backend", [pytest.param(("trio", {}), id="trio")])

DATA_ONLY = ("PIPELINING", "8BITMIME", "SIZE 67108864", "ENHANCEDSTATUSCODES")

#: Larger than what the kernel buffers between the client and a server that
#: stops reading (the server's receive buffer is made small, see ``Mini``).
BIG_BODY = b"".join(b"line %07d " % i + b"x" * 68 + b"\r\n" for i in range(100_000))
#: How much the server's socket may buffer (SO_RCVBUF) in the tests with big messages.
SMALL_RCVBUF = 64 * 1024


# -- messages ----------------------------------------------------------------------------------


def big_message(n: int) -> tuple[Envelope, bytes]:
    """Message ``n`` with a body of several megabytes."""
    return message(n, body=BIG_BODY)


_RCPT_NUMBER = re.compile(r"<user(\d+)@example\.com>")


def number_in_envelope(session: Session) -> int | None:
    """The number of the message whose envelope the session is in."""
    tx = session.transaction
    if tx is None or not tx.rcpts:
        return None
    match = _RCPT_NUMBER.search(tx.rcpts[0])
    return int(match.group(1)) if match else None


# -- the server --------------------------------------------------------------------------------

ContentHook = Callable[["Session", bytes], Awaitable[None]]
SessionHook = Callable[["Session"], Awaitable[None]]


class Mini(HookedMini):
    """HookedMini with more hooks, one instance for every connection to the listener.

    Args:
        stall: awaited after the 354 to DATA went out, before the content is
            read (the server reads nothing meanwhile).
        after_final: awaited once the final reply went out.
        rcvbuf: SO_RCVBUF for each accepted socket (so that a server that
            stops reading soon stops the client's writes).
        **kwargs: HookedMini's arguments (``before_command``,
            ``before_final``, ``final_reply``) and MiniSmtp's; the
            extensions are ``DATA_ONLY`` unless given.
    """

    sessions: list[Session]  # type: ignore[assignment]

    def __init__(
        self,
        *,
        stall: SessionHook | None = None,
        after_final: ContentHook | None = None,
        rcvbuf: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("extensions", DATA_ONLY)
        super().__init__(**kwargs)
        self.stall = stall
        self.after_final = after_final
        self.rcvbuf = rcvbuf

    def new_session(self, conn: ScriptedConnection) -> Session:
        return Session(self, conn, len(self.sessions))

    async def __call__(self, conn: ScriptedConnection) -> None:
        if self.rcvbuf is not None:
            raw = conn.stream.extra(SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        await super().__call__(conn)


class Session(HookedSession):
    server: Mini

    def __init__(self, server: Mini, conn: ScriptedConnection, index: int) -> None:
        super().__init__(server, conn)
        self.index = index

    async def read_data(self) -> None:
        stall = self.server.stall
        if stall is not None:
            await self.flush()
            await stall(self)
        await super().read_data()

    async def finish(self, *, raw_content: bytes, content: bytes, via: str) -> None:
        await super().finish(raw_content=raw_content, content=content, via=via)
        server = self.server
        if server.after_final is not None:
            await self.flush()
            await server.after_final(self, content)

    async def hang_up(self) -> None:
        """Close the connection (after what was flushed) and end the script."""
        await self.conn.stream.aclose()
        raise anyio.EndOfStream


def contents(server: MiniSmtp, n: int) -> list[bytes | None]:
    """The content (None: none arrived) of every transaction whose envelope was for message n."""
    return [
        tx.content for tx in server.transactions if tx.rcpts == [f"RCPT TO:<user{n}@example.com>"]
    ]


def assert_content_1_never_went_out(ticket: Ticket, listener: ScriptedServer, server: Mini) -> None:
    """Message 1's content (``ticket``'s) was neither counted as sent nor received."""
    assert ticket.tx is not None
    assert not ticket.tx.content_sent
    assert b"Subject: message 1" not in listener.connections[0].received
    assert contents(server, 1) == [None]


def chained_on_wire(conn: ScriptedConnection) -> bool:
    """Whether a MAIL went in the same chunk right after a message's end of data."""
    return any(b"\r\n.\r\nMAIL FROM:" in chunk for chunk in conn.chunks)


# -- the client --------------------------------------------------------------------------------


@asynccontextmanager
async def pooled(
    server: Mini, config: PoolConfig | None = None, **settings: Any
) -> AsyncIterator[tuple[ScriptedServer, SmtpPool]]:
    """A listener running ``server`` and a pool (max_size=1 by default) sending to it."""
    async with (
        scripted_server(server, timeout=BOUND * 3) as listener,
        smtp_pool(listener.port, config, **settings) as pool,
    ):
        yield listener, pool


class Tickets:
    """Every ticket the pool made (one per attempt), in order."""

    def __init__(self) -> None:
        self.all: list[Ticket] = []

    def of(self, n: int) -> list[Ticket]:
        """The attempts at sending message ``n``."""
        address = f"user{n}@example.com"
        return [t for t in self.all if str(t.envelope.forward_paths[0]) == address]

    def only(self, n: int) -> tuple[Ticket, SendResult | LettreError | None]:
        """The one attempt at sending message ``n`` (its transaction prepared), and its outcome."""
        (ticket,) = self.of(n)
        assert ticket.tx is not None
        return ticket, ticket.tx.outcome


@pytest.fixture
def tickets(monkeypatch: pytest.MonkeyPatch) -> Tickets:
    record = Tickets()
    record_tickets(monkeypatch, record.all)
    return record


def driver_of(pool: SmtpPool) -> TransactionDriver:
    """The driver of the pool's only connection in use."""
    (conn,) = pool.pool._in_use
    driver = conn.client.current_driver
    assert driver is not None
    return driver


class ChainGate:
    """Holds the reply to the first DATA until the test lets it go.

    With the first message's envelope answered only once the next sender
    waits for the connection, that sender's envelope is chained after the
    first message's content (``before_command`` hook).
    """

    def __init__(self) -> None:
        self.data_seen = anyio.Event()
        self.gate = anyio.Event()

    async def hook(self, session: Session, line: str) -> None:
        if line == "DATA" and not self.data_seen.is_set():
            self.data_seen.set()
            await self.gate.wait()

    async def chain(self, senders: Senders, n: int, **kwargs: Any) -> None:
        """Start sender ``n`` once the first DATA arrived; answer it once ``n`` waits."""
        await self.data_seen.wait()
        senders.start(n, **kwargs)
        await until(lambda: senders.pool.statistics().waiting == 1, "the next sender waits")
        self.gate.set()

    async def start(self, senders: Senders, **kwargs: Any) -> None:
        """Start sender 0, then sender 1 chained behind it (:meth:`chain`, with ``kwargs``)."""
        senders.start(0)
        await self.chain(senders, 1, **kwargs)


class FinalHold:
    """Holds back the final reply to message ``number`` until ``gate`` is set."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.end_seen = anyio.Event()
        self.gate = anyio.Event()

    async def hook(self, session: Session, content: bytes) -> None:
        if number_of(content) == self.number:
            self.end_seen.set()
            await self.gate.wait()


def chain_behind_held_reply() -> tuple[ChainGate, FinalHold, Mini]:
    """A server with both hooks: a ``ChainGate`` and a ``FinalHold`` of message 0.

    Message 1's envelope gets chained behind message 0's content, and the
    final reply to message 0 waits for ``held.gate``.
    """
    chain = ChainGate()
    held = FinalHold(0)
    return chain, held, Mini(before_command=chain.hook, before_final=held.hook)


@asynccontextmanager
async def chained_senders(
    pool: SmtpPool,
    chain: ChainGate,
    held: FinalHold,
    *,
    wire: ScriptedServer | None = None,
    cancel: Iterable[int] = (),
) -> AsyncIterator[Senders]:
    """Senders 0 and 1 on ``pool``, in a task group that the block runs in.

    The block starts once message 1's envelope was chained behind message
    0's content and message 0's end of data arrived (its final reply held
    until ``held.gate`` is set), and the senders in ``cancel`` were
    cancelled, in that order. With ``wire`` (the listener), it is checked
    before any cancellation that on its first connection the envelope went
    in the same chunk as that end of data.
    """
    async with anyio.create_task_group() as group:
        senders = Senders(pool, group)
        await chain.start(senders)
        await held.end_seen.wait()
        if wire is not None:
            assert chained_on_wire(wire.connections[0])
        for n in cancel:
            senders.scopes[n].cancel()
        yield senders


# -- a server that stops reading a chained content ---------------------------------------------


async def test_chained_content_the_server_does_not_read_times_out_unsent(
    tickets: Tickets,
) -> None:
    # Message 1's envelope is chained after message 0's content; when its
    # go-ahead comes the server stops reading. On trio its sender writes the
    # content under its reading turn's scope; on asyncio the transport
    # buffers it over the high-water mark. Either way the end of data never
    # reached the server: a timeout (retryable), not OutcomeUnknown; the pool
    # retries on a new connection, where the same happens.
    chain = ChainGate()
    release = anyio.Event()
    stalled: list[Session] = []

    async def stall(session: Session) -> None:
        if number_in_envelope(session) == 1:
            stalled.append(session)
            await release.wait()

    server = Mini(before_command=chain.hook, stall=stall, rcvbuf=SMALL_RCVBUF)
    async with pooled(server, timeout=BOUND, data_timeout=0.5) as (listener, pool):
        with anyio.fail_after(BOUND * 2):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group)
                await chain.start(senders, make=big_message)
            stats = pool.statistics()
            # The server reads again: whatever the client left on the wire arrives.
            release.set()
            for session in stalled:
                await session.conn.done.wait()
            after = await pool.send(*message(2))
            final = pool.statistics()
    first, second = senders.outcomes[0], senders.outcomes[1]
    assert isinstance(first, SendResult), first
    assert isinstance(second, SmtpTimeoutError), second
    assert not isinstance(second, OutcomeUnknown)
    assert "timed out after 0.5 s waiting for the server to read the message" in str(second)
    assert chained_on_wire(listener.connections[0])
    # Both attempts timed out writing; neither counted the content as sent.
    attempts = tickets.of(1)
    assert len(attempts) == 2
    for ticket in attempts:
        assert ticket.tx is not None
        assert isinstance(ticket.tx.outcome, SmtpTimeoutError)
        assert not isinstance(ticket.tx.outcome, OutcomeUnknown)
        assert not ticket.tx.content_sent
    assert [s.index for s in stalled] == [0, 1]
    # Both connections were closed by the client and none is kept.
    assert all(s.conn.peer_closed for s in stalled)
    assert (stats.open, stats.in_use, stats.opened_total, stats.closed_total) == (0, 0, 2, 2)
    # Message 1 was never delivered: its sender was told the end of its data
    # never went out (and the pool sent it again).
    assert delivered(server) == [0, 2], "a message reported as not sent was delivered"
    assert isinstance(after, SendResult)
    assert len(listener.connections) == 3  # the next send used a new connection
    assert (final.opened_total, final.open) == (3, 1)


@ASYNCIO_ONLY  # the transport's write buffer and its flow-control callbacks are asyncio's
async def test_content_over_the_high_water_mark_counts_once_the_server_reads_it(
    tickets: Tickets,
) -> None:
    stalled = anyio.Event()
    release = anyio.Event()

    async def stall(session: Session) -> None:
        stalled.set()
        await release.wait()

    server = Mini(stall=stall, rcvbuf=SMALL_RCVBUF)
    async with pooled(server) as (_, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group)
                senders.start(0, big_message)
                await stalled.wait()
                driver = driver_of(pool)
                stream = driver._stream.asyncio_byte_stream
                assert stream is not None
                protocol = stream.protocol
                await until(lambda: protocol.writing_paused, "the write buffer is over its mark")
                (ticket,) = tickets.all
                tx = ticket.tx
                assert tx is not None
                # Handed to the transport, not to the server: not counted as sent.
                assert not tx.content_sent
                assert tx.stage is TransactionStage.ACCEPTING
                assert driver.engine.unwritten_content == 1
                release.set()
            stats = pool.statistics()
    result = senders.outcomes[0]
    assert isinstance(result, SendResult), result
    assert tx.content_sent
    assert tx.stage is TransactionStage.DONE
    assert driver.engine.unwritten_content == 0
    assert delivered(server) == [0]
    (received,) = server.transactions
    assert received.content == big_message(0)[1]
    assert (stats.opened_total, stats.open, stats.in_use) == (1, 1, 0)


# -- cancellation ------------------------------------------------------------------------------


async def test_reader_cancelled_alone_closes_the_connection(tickets: Tickets) -> None:
    # The only sender on the connection is cancelled while its final reply is
    # owed: the outcome is unknown and the connection cannot be reused.
    end_seen = anyio.Event()

    async def never_answer(session: Session, content: bytes) -> None:
        end_seen.set()
        await session.conn.wait_closed()
        raise anyio.EndOfStream

    server = Mini(before_final=never_answer)
    async with pooled(server) as (listener, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group)
                senders.start(0)
                await end_seen.wait()
                senders.scopes[0].cancel()
            await listener.connections[0].closed.wait()
            stats = pool.statistics()
            server.before_final = None
            after = await pool.send(*message(1))
            final = pool.statistics()
    assert senders.outcomes[0] == CANCELLED
    _, outcome = tickets.only(0)
    assert isinstance(outcome, OutcomeUnknown), outcome
    assert "the send was cancelled before its outcome was known" in str(outcome)
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    assert isinstance(after, SendResult)
    assert delivered(server) == [1]
    assert (final.opened_total, final.open) == (2, 1)


async def test_reader_cancelled_with_a_chained_sender_behind(tickets: Tickets) -> None:
    # Message 0's sender is cancelled while its final reply is owed; message
    # 1's envelope is on the wire behind it. The next sender reads on: it
    # gets its own outcome, and since no reply is owed afterwards the
    # connection is kept.
    chain, held, server = chain_behind_held_reply()
    async with pooled(server) as (listener, pool):
        with anyio.fail_after(BOUND):
            async with chained_senders(pool, chain, held, wire=listener, cancel=[0]) as senders:
                await until(lambda: 0 in senders.outcomes, "the first sender ended")
                held.gate.set()
            stats = pool.statistics()
            after = await pool.send(*message(2))
            final = pool.statistics()
    assert senders.outcomes[0] == CANCELLED
    result = senders.outcomes[1]
    assert isinstance(result, SendResult), result
    assert [r.recipient for r in result.recipients] == ["user1@example.com"]
    # Message 0's content was out before the cancellation: the server took it.
    assert delivered(server) == [0, 1, 2]
    (first,) = tickets.of(0)
    assert first.tx is not None
    assert isinstance(first.tx.outcome, SendResult)
    assert (stats.opened_total, stats.open, stats.in_use) == (1, 1, 0)
    assert isinstance(after, SendResult)
    assert (final.opened_total, len(listener.connections)) == (1, 1)


async def test_chained_sender_cancelled_while_it_waits_for_its_turn(tickets: Tickets) -> None:
    # Message 1's envelope is chained behind message 0's content; its sender
    # gives up before it is its turn. Message 0 still gets its final reply;
    # message 1's content never goes out, and the connection, in the middle
    # of a transaction nobody finishes, is closed.
    chain, held, server = chain_behind_held_reply()
    async with pooled(server) as (listener, pool):
        with anyio.fail_after(BOUND):
            async with chained_senders(pool, chain, held, wire=listener, cancel=[1]) as senders:
                held.gate.set()
            await listener.connections[0].closed.wait()
            stats = pool.statistics()
            after = await pool.send(*message(2))
    result = senders.outcomes[0]
    assert isinstance(result, SendResult), result
    assert senders.outcomes[1] == CANCELLED
    ticket, outcome = tickets.only(1)
    assert isinstance(outcome, ServerDisconnected), outcome
    assert not isinstance(outcome, OutcomeUnknown)
    assert "closed before the message was sent" in str(outcome)
    assert_content_1_never_went_out(ticket, listener, server)
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    assert isinstance(after, SendResult)
    assert delivered(server) == [0, 2]
    assert len(listener.connections) == 2


@TRIO_ONLY  # only the anyio backend defers a content until its sender reads
async def test_chained_sender_cancelled_while_its_content_is_deferred(
    tickets: Tickets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The go-ahead for message 1 arrives in the reply that ends message 0;
    # its content waits for its own sender, which is cancelled right then
    # (the moment the driver defers the content).
    chain = ChainGate()
    held = FinalHold(0)
    deferred: list[Ticket] = []
    scopes: dict[int, anyio.CancelScope] = {}
    content_ready = AnyioDriver._content_ready

    def cancel_on_go_ahead(self: AnyioDriver, ticket: Ticket) -> None:
        content_ready(self, ticket)
        if ticket in tickets.of(1):
            deferred.append(ticket)
            scopes[1].cancel()

    monkeypatch.setattr(AnyioDriver, "_content_ready", cancel_on_go_ahead)
    server = Mini(before_command=chain.hook, before_final=held.hook)
    async with pooled(server) as (listener, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group)
                scopes.update(senders.scopes)
                await chain.start(senders)
                scopes.update(senders.scopes)
                await held.end_seen.wait()
                held.gate.set()
            await listener.connections[0].closed.wait()
            stats = pool.statistics()
            after = await pool.send(*message(2))
    assert isinstance(senders.outcomes[0], SendResult), senders.outcomes[0]
    assert senders.outcomes[1] == CANCELLED
    (ticket,) = tickets.of(1)
    assert deferred == [ticket]
    assert ticket.tx is not None
    assert isinstance(ticket.tx.outcome, ServerDisconnected)
    assert not isinstance(ticket.tx.outcome, OutcomeUnknown)
    assert_content_1_never_went_out(ticket, listener, server)
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    assert isinstance(after, SendResult)
    assert delivered(server) == [0, 2]


@TRIO_ONLY  # on asyncio a chained sender never writes: the socket callbacks do
async def test_chained_sender_cancelled_while_it_writes_its_content(tickets: Tickets) -> None:
    # Message 1's sender has taken over the reading and writes its (big)
    # content, which the server stopped reading: it is cancelled mid-write.
    # What reached the server is unknown, so the connection is closed; the
    # end of data never went out.
    chain = ChainGate()
    writing = anyio.Event()
    release = anyio.Event()

    async def stall(session: Session) -> None:
        if number_in_envelope(session) == 1:
            # Some of the content arrived: its sender is writing.
            while session.conn.buffered < 256 * 1024:
                await session.conn._fill()
            writing.set()
            await release.wait()

    server = Mini(before_command=chain.hook, stall=stall, rcvbuf=SMALL_RCVBUF)
    async with pooled(server) as (listener, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group)
                await chain.start(senders, make=big_message)
                await writing.wait()
                senders.scopes[1].cancel()
            stats = pool.statistics()
            release.set()
            await listener.connections[0].done.wait()
            after = await pool.send(*message(2))
    assert isinstance(senders.outcomes[0], SendResult), senders.outcomes[0]
    assert senders.outcomes[1] == CANCELLED
    (ticket,) = tickets.of(1)
    assert ticket.tx is not None
    outcome = ticket.tx.outcome
    assert isinstance(outcome, ServerDisconnected), outcome
    assert "the send was cancelled while writing" in str(outcome)
    assert not ticket.tx.content_sent
    assert listener.connections[0].peer_closed
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    # The server read on: part of the content, never its end.
    assert delivered(server) == [0, 2]
    assert isinstance(after, SendResult)


async def test_both_senders_of_a_chain_cancelled_the_closer_reads_the_final_reply(
    tickets: Tickets,
) -> None:
    # Message 1's sender gives up while chained (its connection is being
    # closed), then message 0's sender, the reader, gives up too: closing the
    # connection still reads message 0's final reply (its content is out) and
    # never writes message 1's content.
    chain, held, server = chain_behind_held_reply()
    async with pooled(server) as (listener, pool):
        with anyio.fail_after(BOUND):
            async with chained_senders(pool, chain, held, cancel=[1, 0]) as senders:
                await until(lambda: 0 in senders.outcomes, "the reader ended")
                held.gate.set()
            await listener.connections[0].closed.wait()
            stats = pool.statistics()
            after = await pool.send(*message(2))
    assert senders.outcomes == {0: CANCELLED, 1: CANCELLED}
    (first,) = tickets.of(0)
    (second,) = tickets.of(1)
    assert first.tx is not None
    assert second.tx is not None
    # Message 0's final reply was read while closing: its outcome is known.
    assert isinstance(first.tx.outcome, SendResult), first.tx.outcome
    assert isinstance(second.tx.outcome, ServerDisconnected), second.tx.outcome
    assert "closed before the message was sent" in str(second.tx.outcome)
    assert not second.tx.content_sent
    assert contents(server, 1) == [None]
    assert delivered(server) == [0, 2]
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
    assert isinstance(after, SendResult)


# -- closing the pool --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["aclose", "async with"])
async def test_pool_closed_with_transactions_in_flight(tickets: Tickets, how: str) -> None:
    # 0: content out, final reply held; 1: envelope chained behind it; 2 and
    # 3: waiting for the pool. Closing the pool fails the waiters; what is on
    # the connection goes on, and the connection closes (QUIT) when its last
    # sender gives it back.
    chain, held, server = chain_behind_held_reply()

    async def start_all(senders: Senders) -> None:
        await chain.start(senders)
        for n in (2, 3):
            senders.start(n)
        await until(lambda: senders.pool.statistics().waiting == 2, "two senders wait")
        await held.end_seen.wait()

    async with scripted_server(server, timeout=BOUND * 3) as listener:
        pool = smtp_pool(listener.port)
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group)
                if how == "aclose":
                    await start_all(senders)
                    await pool.aclose()
                else:
                    async with pool:
                        await start_all(senders)
                await until(lambda: len(senders.outcomes) == 2, "the waiters were failed")
                held.gate.set()
            await listener.connections[0].done.wait()
            stats = pool.statistics()
            with pytest.raises(SmtpError, match="the connection pool is closed"):
                await pool.send(*message(4))
    outcomes = senders.outcomes
    assert isinstance(outcomes[0], SendResult), outcomes[0]
    assert isinstance(outcomes[1], SendResult), outcomes[1]
    for n in (2, 3):
        error = outcomes[n]
        assert isinstance(error, SmtpError), error
        assert "the connection pool is closed" in str(error)
        assert tickets.of(n)[0].tx is None  # never started
    assert chained_on_wire(listener.connections[0])
    assert delivered(server) == [0, 1]
    assert server.verbs()[-1] == "QUIT"
    assert (stats.open, stats.in_use, stats.idle, stats.closed_total) == (0, 0, 0, 1)


# -- the deadline rule -------------------------------------------------------------------------


async def test_deadline_of_a_chained_sender_passes_while_it_waits(tickets: Tickets) -> None:
    chain, held, server = chain_behind_held_reply()
    try:
        async with pooled(server, timeout=SLOW, data_timeout=SLOW) as (listener, pool):
            with anyio.fail_after(SLOW / 2):
                async with anyio.create_task_group() as group:
                    senders = Senders(pool, group)
                    await chain.start(senders, deadline=anyio.current_time() + 0.6)
                    await until(lambda: 1 in senders.outcomes, "the chained send ended")
                    await until(lambda: 0 in senders.outcomes, "the first send ended")
            stats = pool.statistics()
    finally:
        held.gate.set()
    first, second = senders.outcomes[0], senders.outcomes[1]
    assert isinstance(second, SmtpTimeoutError), second
    assert not isinstance(second, OutcomeUnknown)
    assert "the deadline passed" in str(second)
    # The deadline ends every transaction on the connection: message 0's
    # content was out (unknown), message 1's was not.
    assert isinstance(first, OutcomeUnknown), first
    assert "the deadline passed while waiting for the reply to the end of data" in str(first)
    assert chained_on_wire(listener.connections[0])
    assert b"Subject: message 1" not in listener.connections[0].received
    assert all(content is None for content in contents(server, 1))
    assert len(tickets.of(1)) == 1  # the deadline has passed: never retried
    assert (stats.open, stats.in_use) == (0, 0)


async def test_data_timeout_bounds_the_final_reply(tickets: Tickets) -> None:
    server = Mini(on_end_of_data="hang")
    async with pooled(server, timeout=SLOW, data_timeout=0.3) as (listener, pool):
        with anyio.fail_after(SLOW / 2), pytest.raises(OutcomeUnknown) as caught:
            await pool.send(*message(0))
        stats = pool.statistics()
    assert "timed out after 0.3 s waiting for the reply to the end of data" in str(caught.value)
    assert isinstance(caught.value.__cause__, SmtpTimeoutError)
    assert len(listener.connections) == 1  # never retried
    assert (stats.open, stats.closed_total) == (0, 1)


async def test_timeout_bounds_an_envelope_reply_not_the_final_one(tickets: Tickets) -> None:
    # The final reply comes later than `timeout` but within `data_timeout`.
    async def slow(session: Session, content: bytes) -> None:
        await anyio.sleep(0.9)  # the server's slowness is what is tested

    server = Mini(before_final=slow)
    async with pooled(server, timeout=0.3, data_timeout=BOUND) as (_, pool):
        with anyio.fail_after(BOUND):
            result = await pool.send(*message(0))
        stats = pool.statistics()
    assert isinstance(result, SendResult)
    assert delivered(server) == [0]
    assert (stats.opened_total, stats.open) == (1, 1)


async def test_timeout_bounds_the_reply_to_mail(tickets: Tickets) -> None:
    server = Mini(hang_on="MAIL")
    async with pooled(server, timeout=0.3, data_timeout=SLOW) as (listener, pool):
        with anyio.fail_after(SLOW / 2), pytest.raises(SmtpTimeoutError) as caught:
            await pool.send(*message(0))
        stats = pool.statistics()
    assert not isinstance(caught.value, OutcomeUnknown)
    assert "timed out after 0.3 s waiting for the reply to MAIL" in str(caught.value)
    # Retried once on a new connection, silent too; nothing was delivered.
    assert len(listener.connections) == 2
    assert all(tx.content is None for tx in server.transactions)
    assert (stats.open, stats.closed_total) == (0, 2)


# -- the server closing the connection ---------------------------------------------------------


async def test_server_closes_right_after_a_final_reply_while_the_next_sender_waits(
    tickets: Tickets,
) -> None:
    # Message 1's sender waits for the connection (too late to be chained);
    # the server answers message 0 and closes at once. On asyncio the
    # connection is being handed over to message 1 (parked, then its flight
    # about to go) when the end of file arrives. Message 1 goes on a new
    # connection, once.
    held = FinalHold(0)

    async def close_after_first(session: Session, content: bytes) -> None:
        if session.index == 0:
            await session.hang_up()

    server = Mini(before_final=held.hook, after_final=close_after_first)
    async with pooled(server) as (listener, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group)
                senders.start(0)
                await held.end_seen.wait()
                senders.start(1)
                await until(lambda: pool.statistics().waiting == 1, "the next sender waits")
                held.gate.set()
            stats = pool.statistics()
    first, second = senders.outcomes[0], senders.outcomes[1]
    assert isinstance(first, SendResult), first
    assert isinstance(second, SendResult), second
    # Any attempt on the closed connection failed before the message went.
    *failed, last = tickets.of(1)
    for ticket in failed:
        assert ticket.tx is not None
        assert isinstance(ticket.tx.outcome, ServerDisconnected), ticket.tx.outcome
        assert not isinstance(ticket.tx.outcome, OutcomeUnknown)
        assert not ticket.tx.content_sent
    assert last.tx is not None
    assert last.tx.outcome is second
    assert b"Subject: message 1" not in listener.connections[0].received
    assert delivered(server) == [0, 1]
    assert len(listener.connections) == 2
    assert (stats.opened_total, stats.open, stats.closed_total) == (2, 1, 1)


# -- a protocol error in the middle of a chain -------------------------------------------------


async def test_protocol_error_in_the_middle_of_a_chain(tickets: Tickets) -> None:
    # The final reply to message 0 is garbage while message 1's envelope is
    # chained behind it: every transaction in flight fails, message 0's with
    # an unknown outcome (its content was out), both caused by the protocol
    # error; the connection is dropped.
    chain = ChainGate()

    def garbage(content: bytes) -> str | None:
        return "this is not a reply" if number_of(content) == 0 else None

    server = Mini(before_command=chain.hook, final_reply=garbage)
    async with pooled(server) as (listener, pool):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                senders = Senders(pool, group)
                await chain.start(senders)
            await listener.connections[0].closed.wait()
            stats = pool.statistics()
    first, second = senders.outcomes[0], senders.outcomes[1]
    assert isinstance(first, OutcomeUnknown), first
    error = first.__cause__
    assert isinstance(error, RemoteProtocolError), error
    assert isinstance(second, RemoteProtocolError), second
    assert second is error
    assert chained_on_wire(listener.connections[0])
    # Message 1's content never went out; nothing was retried.
    assert contents(server, 1) == [None]
    assert len(tickets.of(1)) == 1
    assert delivered(server) == []
    assert len(listener.connections) == 1
    assert (stats.open, stats.in_use, stats.closed_total) == (0, 0, 1)
