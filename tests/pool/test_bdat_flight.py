"""CHUNKING with PIPELINING: a small message's BDAT goes in its envelope's flight.

With PIPELINING and CHUNKING, MAIL, every RCPT and ``BDAT <n> LAST`` with
the content go in one write (RFC 3030 4.2), so a message costs one round
trip, and the flights of the senders waiting for the connection go in the
same write. These tests run against MiniSmtp (tests/servers.py) and the
benchmarks' sink, which offer both. ``HoldingMini`` answers nothing from the
first MAIL on until it has read a given number of BDAT commands: a client
that waited for a reply before sending its BDAT (or before chaining the next
sender's flight) would time out, so a passing test proves the commands went
without waiting, whatever the timing.

Each refusal case is checked for every recipient's result and for the
connection staying usable: MAIL refused, every RCPT refused (the server
refuses the BDAT and keeps the reverse path: the next flight starts with
RSET), some RCPT refused (the message goes to the others),
``require_all_recipients`` and messages above ``PIPELINED_BDAT_LIMIT`` (the
content waits for the RCPT replies), and a 421 in the middle of a chain.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from lettre.envelope import Envelope
from lettre.errors import (
    DataRefused,
    OutcomeUnknown,
    RecipientsRefused,
    SenderRefused,
    SmtpError,
)
from lettre.protocol.transactions import TransactionEngine
from lettre.smtp import SmtpSettings, TlsMode
from lettre.smtp.backends import AsyncioDriver
from lettre.smtp.client import PIPELINED_BDAT_LIMIT, SmtpClient, TransactionStage
from lettre.smtp.driver import Ticket
from lettre.smtp.pool import PoolConfig, SmtpPool
from lettre.transports.base import SendResult
from servers import MiniSmtp, ScriptedConnection, _MiniSession, scripted_server

pytestmark = pytest.mark.anyio

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

#: Every wait in this module is bounded by this many seconds.
BOUND = 10.0
#: The client's per-reply timeout against a holding server: a client that waits
#: for a reply the server holds back fails after this long.
HOLD_TIMEOUT = 2.0

BDAT = ("PIPELINING", "CHUNKING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES")
DATA_ONLY = ("PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES")

Outcome = SendResult | BaseException


class HoldingMini(MiniSmtp):
    """MiniSmtp that withholds its replies from the first MAIL until it read ``hold`` BDATs.

    Args:
        hold: how many BDAT commands to read before answering anything.
        refuse_mail: senders (addresses) whose MAIL is refused with 550.
        close_after_final: the final reply that, once sent, closes the
            connection (for a 421); None: never.
        ehlo_gate: the reply to EHLO waits until this event is set.
        **kwargs: MiniSmtp's arguments.
    """

    def __init__(
        self,
        *,
        hold: int = 0,
        refuse_mail: Iterable[str] = (),
        close_after_final: str | None = None,
        ehlo_gate: anyio.Event | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("extensions", BDAT)
        super().__init__(**kwargs)
        self.hold = hold
        self.refuse_mail = {address.lower() for address in refuse_mail}
        self.close_after_final = close_after_final
        self.ehlo_gate = ehlo_gate
        self.bdats = 0
        self.holding = False
        self.nested_mail = 0

    async def __call__(self, conn: ScriptedConnection) -> None:
        self.connections.append(conn)
        await HoldingSession(self, conn).run()


class HoldingSession(_MiniSession):
    server: HoldingMini

    async def flush(self) -> None:
        server = self.server
        if server.holding and server.bdats < server.hold:
            return
        await super().flush()

    async def do_ehlo(self, line: str) -> None:
        gate = self.server.ehlo_gate
        if gate is not None:
            await gate.wait()
        await super().do_ehlo(line)

    async def do_mail(self, line: str) -> None:
        server = self.server
        server.holding = True
        if self.transaction is not None:
            server.nested_mail += 1
        sender = line[line.find("<") + 1 : line.find(">")].lower()
        if sender in server.refuse_mail:
            self.queue("550 5.7.1 Sender refused")
            return
        await super().do_mail(line)

    async def do_bdat(self, line: str) -> None:
        self.server.bdats += 1
        await super().do_bdat(line)

    async def finish(self, *, raw_content: bytes, content: bytes, via: str) -> None:
        await super().finish(raw_content=raw_content, content=content, via=via)
        closing = self.server.close_after_final
        if closing is not None and self.pending and self.pending[-1].startswith(closing):
            self.server.close_after_final = None
            await super().flush()
            await self.conn.stream.aclose()
            raise anyio.EndOfStream


def settings_for(port: int, **kwargs: Any) -> SmtpSettings:
    kwargs.setdefault("timeout", HOLD_TIMEOUT)
    kwargs.setdefault("data_timeout", HOLD_TIMEOUT)
    return SmtpSettings(
        host="127.0.0.1", port=port, tls=TlsMode.NONE, hello_name="client.example.com", **kwargs
    )


def message(
    n: int, *, to: Iterable[str] | None = None, sender: str = "sender@example.com", size: int = 0
) -> tuple[Envelope, bytes]:
    rcpts = list(to) if to is not None else [f"user{n}@example.com"]
    head = (
        f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@example.com>\r\n\r\n"
    ).encode()
    body = f"Body of message {n}.\r\n.a line with a leading dot\r\n".encode()
    if size:
        line = b"x" * 76 + b"\r\n"
        body += line * ((size - len(head) - len(body)) // len(line) + 1)
    return Envelope(sender, rcpts), head + body


def number_of(content: bytes | None) -> int | None:
    if content is None:
        return None
    for line in content.split(b"\r\n"):
        if line.startswith(b"Subject: message "):
            return int(line.rsplit(b" ", 1)[1])
    return None


def delivered(servers: Iterable[MiniSmtp]) -> list[int]:
    return [
        n
        for server in servers
        for tx in server.transactions
        if tx.completed and (n := number_of(tx.content)) is not None
    ]


def verbs_from_mail(server: MiniSmtp) -> list[str]:
    verbs = server.verbs()
    return verbs[verbs.index("MAIL") :]


@asynccontextmanager
async def client_for(server: MiniSmtp, **settings: Any) -> AsyncIterator[SmtpClient]:
    async with scripted_server(server, timeout=BOUND * 2) as listener:
        client = SmtpClient(settings_for(listener.port, **settings))
        await client.connect()
        try:
            yield client
        finally:
            await client.aclose()


@asynccontextmanager
async def pooled(
    make: Callable[[int], MiniSmtp] | MiniSmtp, **settings: Any
) -> AsyncIterator[tuple[list[MiniSmtp], SmtpPool]]:
    """A scripted server (``make(i)`` for connection ``i``, or one for all) and a pool of one."""
    scripts: list[MiniSmtp] = []

    async def script(conn: ScriptedConnection) -> None:
        server = make if isinstance(make, MiniSmtp) else make(len(scripts))
        scripts.append(server)
        await server(conn)

    async with (
        scripted_server(script, timeout=BOUND * 2) as listener,
        SmtpPool(settings_for(listener.port, **settings), PoolConfig(max_size=1)) as pool,
    ):
        yield scripts, pool


async def send_all(pool: SmtpPool, messages: list[tuple[Envelope, bytes]]) -> dict[int, Outcome]:
    """Send every message concurrently (started in order); their outcomes by index."""
    outcomes: dict[int, Outcome] = {}

    async def one(n: int) -> None:
        try:
            outcomes[n] = await pool.send(*messages[n])
        except SmtpError as exc:
            outcomes[n] = exc

    with anyio.fail_after(BOUND * 3):
        async with anyio.create_task_group() as group:
            for n in range(len(messages)):
                group.start_soon(one, n)
    return outcomes


# -- one client ----------------------------------------------------------------------------------


async def test_small_message_goes_in_one_flight() -> None:
    server = HoldingMini(hold=1)
    envelope, data = message(0, to=["a@example.com", "b@example.com"])
    async with client_for(server) as client:
        with anyio.fail_after(BOUND):
            result = await client.send(envelope, data)
        assert client.is_usable
    assert result.all_accepted
    assert result.transport_id == "MINI1"
    assert verbs_from_mail(server)[:4] == ["MAIL", "RCPT", "RCPT", "BDAT"]
    (tx,) = server.transactions
    assert (tx.via, tx.content, tx.completed) == ("BDAT", data, True)
    # Every command of the transaction was read before the server answered any.
    flight = [c for c in server.commands if c.verb in ("MAIL", "RCPT", "BDAT")]
    assert {c.replies_before for c in flight} == {flight[0].replies_before}


async def test_the_phases_of_a_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stage of each transaction whose content the engine encoded, once
    # it is told that what it encoded was handed to the socket.
    written: list[tuple[TransactionStage, bool]] = []
    original = TransactionEngine.written

    def record_written(self: TransactionEngine) -> None:
        pending = list(self._unwritten)
        original(self)
        written.extend((tx.stage, tx.content_sent) for tx in pending)

    monkeypatch.setattr(TransactionEngine, "written", record_written)
    server = HoldingMini(hold=1)
    envelope, data = message(0)
    async with client_for(server) as client:
        assert client.prepare(envelope, data).content_in_flight
        with anyio.fail_after(BOUND):
            result = await client.send(envelope, data)
        tx = client.last_transaction
        assert tx is not None
        assert tx.content_in_flight
    flight = (
        b"MAIL FROM:<sender@example.com> SIZE=%d\r\nRCPT TO:<user0@example.com>\r\n"
        b"BDAT %d LAST\r\n" % (len(data), len(data))
    ) + data
    # The envelope and the content went in one write, before any reply.
    conn = server.connections[0]
    mail = next(c for c in server.commands if c.verb == "MAIL")
    assert conn.chunks[mail.chunk] == flight
    # Once that write was handed over, the content counted as sent.
    assert written[0] == (TransactionStage.CONTENT, True)
    assert result.recipients[0].accepted
    assert tx.stage is TransactionStage.DONE


async def test_some_recipients_refused_the_message_goes_to_the_others() -> None:
    server = HoldingMini(hold=1, refuse={"gone@example.com": "550 5.1.1 <gone@example.com>: gone"})
    async with client_for(server) as client:
        with anyio.fail_after(BOUND):
            result = await client.send(*message(0, to=["a@example.com", "gone@example.com"]))
    assert [(r.recipient, r.accepted) for r in result.recipients] == [
        ("a@example.com", True),
        ("gone@example.com", False),
    ]
    refused = result.recipients[1].reply
    assert refused is not None
    assert (refused.code, refused.enhanced_status) == (550, "5.1.1")
    (tx,) = server.transactions
    assert tx.completed
    assert tx.accepted == ["a@example.com"]


async def test_every_recipient_refused_then_rset_before_the_next_mail() -> None:
    server = HoldingMini(
        hold=1,
        refuse={"x@example.com": "550 5.1.1 unknown x", "y@example.com": "551 5.1.6 moved"},
    )
    async with client_for(server) as client:
        with anyio.fail_after(BOUND), pytest.raises(RecipientsRefused) as caught:
            await client.send(*message(0, to=["x@example.com", "y@example.com"]))
        # The server refused the BDAT too ("no valid recipients") and still
        # holds the reverse path; the connection stays usable.
        assert client.is_usable
        result = await client.send(*message(1))
    error = caught.value
    assert [
        (r.recipient, r.accepted, r.reply.code if r.reply else None) for r in error.results
    ] == [
        ("x@example.com", False, 550),
        ("y@example.com", False, 551),
    ]
    assert error.code == 550
    assert "every recipient (2)" in str(error)
    assert result.all_accepted
    # The BDAT of the refused message went with its envelope; RSET went with the next one.
    assert verbs_from_mail(server) == [
        *("MAIL", "RCPT", "RCPT", "BDAT"),
        *("RSET", "MAIL", "RCPT", "BDAT"),
        "QUIT",
    ]
    assert server.nested_mail == 0
    assert [(number_of(t.content), t.completed) for t in server.transactions] == [
        (None, False),
        (1, True),
    ]


async def test_mail_refused() -> None:
    server = HoldingMini(hold=1, refuse_mail=["blocked@example.com"])
    async with client_for(server) as client:
        with anyio.fail_after(BOUND), pytest.raises(SenderRefused) as caught:
            await client.send(*message(0, sender="blocked@example.com"))
        assert client.is_usable
        result = await client.send(*message(1))
    assert (caught.value.code, caught.value.command) == (550, "MAIL")
    assert result.all_accepted
    # The server had no transaction: nothing to reset.
    assert "RSET" not in server.verbs()
    assert delivered([server]) == [1]


async def test_content_refused_with_a_valid_recipient() -> None:
    server = HoldingMini(hold=1, replies={"BDAT": "554 5.7.1 Rejected as spam"})
    async with client_for(server) as client:
        with anyio.fail_after(BOUND), pytest.raises(DataRefused) as caught:
            await client.send(*message(0))
        del server.replies["BDAT"]
        result = await client.send(*message(1))
    assert (caught.value.code, caught.value.command) == (554, "BDAT")
    assert result.all_accepted
    # The final reply to the content ends the transaction: no RSET.
    assert "RSET" not in server.verbs()


async def test_require_all_recipients_waits_for_the_rcpt_replies() -> None:
    server = MiniSmtp(extensions=BDAT, refuse={"gone@example.com": "550 5.1.1 gone"})
    async with client_for(server, require_all_recipients=True) as client:
        with anyio.fail_after(BOUND), pytest.raises(RecipientsRefused) as caught:
            await client.send(*message(0, to=["a@example.com", "gone@example.com"]))
        result = await client.send(*message(1))
    assert [(r.recipient, r.accepted) for r in caught.value.results] == [
        ("a@example.com", True),
        ("gone@example.com", False),
    ]
    assert result.all_accepted
    # The refused message's content never went out; the next one's BDAT came
    # only after the server had answered its MAIL and RCPT.
    assert verbs_from_mail(server)[:8] == [
        *("MAIL", "RCPT", "RCPT", "RSET"),
        *("MAIL", "RCPT", "BDAT", "QUIT"),
    ]
    assert b"Subject: message 0" not in server.connections[0].received
    mail, rcpt, bdat = [c for c in server.commands if c.verb in ("MAIL", "RCPT", "BDAT")][-3:]
    assert mail.replies_before == rcpt.replies_before
    assert bdat.replies_before == mail.replies_before + 2
    assert delivered([server]) == [1]


@pytest.mark.parametrize(
    ("size", "in_flight"),
    [(PIPELINED_BDAT_LIMIT, True), (PIPELINED_BDAT_LIMIT + 1, False)],
    ids=["at-the-limit", "above-the-limit"],
)
async def test_a_big_message_waits_for_the_rcpt_replies(size: int, in_flight: bool) -> None:
    server = MiniSmtp(extensions=BDAT)
    envelope, data = message(0)
    data += b"y" * (size - len(data) - 2) + b"\r\n"
    assert len(data) == size
    async with client_for(server) as client:
        assert client.prepare(envelope, data).content_in_flight is in_flight
        with anyio.fail_after(BOUND):
            result = await client.send(envelope, data)
    assert result.all_accepted
    assert server.transactions[0].content == data
    mail, _, bdat = [c for c in server.commands if c.verb in ("MAIL", "RCPT", "BDAT")]
    assert (bdat.replies_before == mail.replies_before) is in_flight


async def test_421_to_mail_in_a_flight_closes_and_nothing_was_delivered() -> None:
    server = HoldingMini(hold=1, replies={"MAIL": "421 4.3.2 Shutting down"})
    async with client_for(server) as client:
        assert client.prepare(*message(0)).content_in_flight
        with anyio.fail_after(BOUND), pytest.raises(SenderRefused) as caught:
            await client.send(*message(0))
        tx = client.last_transaction
        assert tx is not None
        assert not client.is_usable
    assert caught.value.code == 421
    # The server stopped before reading the content: sending it again is safe.
    assert not tx.content_sent
    assert server.transactions == []


# -- the pool: chained flights -------------------------------------------------------------------


async def test_chained_flights_go_in_one_write() -> None:
    # Nothing is answered until the fourth BDAT has arrived: the four
    # messages (the first sender's and the three queued behind it) went in
    # one write, before any reply.
    server = HoldingMini(hold=4)
    messages = [message(n) for n in range(4)]
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, messages)
        stats = pool.statistics()
    assert all(isinstance(o, SendResult) for o in outcomes.values()), outcomes
    order = delivered([server])
    assert sorted(order) == [0, 1, 2, 3]
    for position, n in enumerate(order):
        result = outcomes[n]
        assert isinstance(result, SendResult)
        assert result.transport_id == f"MINI{position + 1}"
        assert [r.recipient for r in result.recipients] == [f"user{n}@example.com"]
    # Each flight after the first starts with RSET: the transaction before it
    # may still be open on the server when every recipient is refused.
    assert verbs_from_mail(server)[:12] == [
        *("MAIL", "RCPT", "BDAT"),
        *("RSET", "MAIL", "RCPT", "BDAT") * 2,
        "RSET",
    ]
    flight = [c for c in server.commands if c.verb in ("MAIL", "RCPT", "BDAT", "RSET")]
    assert {c.replies_before for c in flight} == {flight[0].replies_before}
    assert server.nested_mail == 0
    assert (stats.opened_total, stats.messages_sent) == (1, 4)


@pytest.mark.parametrize(
    "anyio_backend",
    [
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ],
)
async def test_senders_that_send_again_keep_the_chain_going(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two senders on one connection, each sending again as soon as it has its
    # result: the connection goes from one chain to the next from its
    # callbacks, each write carrying both senders' flights. Only the very
    # first flight is started by a sender.
    started: list[Ticket] = []
    original = AsyncioDriver._start

    def start(self: AsyncioDriver, ticket: Ticket) -> None:
        started.append(ticket)
        original(self, ticket)

    monkeypatch.setattr(AsyncioDriver, "_start", start)
    server = HoldingMini(hold=2)
    outcomes: list[Outcome] = []
    async with pooled(server) as (_, pool):

        async def sender(first: int) -> None:
            for n in range(first, first + 8, 2):
                outcomes.append(await pool.send(*message(n)))

        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as group:
                group.start_soon(sender, 0)
                group.start_soon(sender, 1)
        stats = pool.statistics()
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert sorted(delivered([server])) == list(range(8))
    assert len(started) == 1
    assert (stats.opened_total, stats.in_use, stats.idle) == (1, 0, 1)
    # Each group of commands the server read before answering held two BDATs.
    bdats = [c.replies_before for c in server.commands if c.verb == "BDAT"]
    assert [bdats.count(value) for value in sorted(set(bdats))] == [2, 2, 2, 2]


async def test_a_chain_goes_on_after_every_kind_of_refusal() -> None:
    server = HoldingMini(
        hold=5,
        refuse={"gone@example.com": "550 5.1.1 gone", "moved@example.com": "551 5.1.6 moved"},
        refuse_mail=["blocked@example.com"],
    )
    messages = [
        message(0),
        message(1, to=["gone@example.com", "moved@example.com"]),  # every RCPT refused
        message(2, sender="blocked@example.com"),  # MAIL refused
        message(3, to=["a@example.com", "gone@example.com"]),  # one RCPT refused
        message(4),
    ]
    async with pooled(server) as (_, pool):
        outcomes = await send_all(pool, messages)
        after = await pool.send(*message(5))
        stats = pool.statistics()
    every = outcomes[1]
    assert isinstance(every, RecipientsRefused)
    assert [(r.recipient, r.accepted) for r in every.results] == [
        ("gone@example.com", False),
        ("moved@example.com", False),
    ]
    mail = outcomes[2]
    assert isinstance(mail, SenderRefused)
    assert mail.code == 550
    partly = outcomes[3]
    assert isinstance(partly, SendResult)
    assert [(r.recipient, r.accepted) for r in partly.recipients] == [
        ("a@example.com", True),
        ("gone@example.com", False),
    ]
    for n in (0, 4):
        assert isinstance(outcomes[n], SendResult), outcomes[n]
    assert isinstance(after, SendResult)
    assert sorted(delivered([server])) == [0, 3, 4, 5]
    # The server kept the refused transaction's reverse path until the RSET
    # that opened the next flight: no MAIL was ever nested.
    assert server.nested_mail == 0
    assert stats.opened_total == 1


async def test_require_all_recipients_in_the_pool() -> None:
    server = MiniSmtp(extensions=BDAT, refuse={"gone@example.com": "550 5.1.1 gone"})
    messages = [message(0, to=["a@example.com", "gone@example.com"]), message(1), message(2)]
    async with pooled(server, require_all_recipients=True) as (_, pool):
        outcomes = await send_all(pool, messages)
    refused = outcomes[0]
    assert isinstance(refused, RecipientsRefused)
    assert [(r.recipient, r.accepted) for r in refused.results] == [
        ("a@example.com", True),
        ("gone@example.com", False),
    ]
    assert sorted(delivered([server])) == [1, 2]
    assert b"Subject: message 0" not in server.connections[0].received
    # No BDAT ever went before the server had answered its MAIL and RCPT.
    replies_at_mail = 0
    for command in server.commands:
        if command.verb == "MAIL":
            replies_at_mail = command.replies_before
        elif command.verb == "BDAT":
            assert command.replies_before >= replies_at_mail + 2


async def test_big_messages_wait_and_small_ones_chain_behind_them() -> None:
    # The big message's sender opens the connection; the two others queue
    # while the server holds back its EHLO reply.
    ehlo = anyio.Event()
    server = HoldingMini(ehlo_gate=ehlo)
    messages = [message(0, size=PIPELINED_BDAT_LIMIT + 10), message(1), message(2)]
    outcomes: dict[int, Outcome] = {}
    async with pooled(server) as (_, pool):

        async def one(n: int) -> None:
            outcomes[n] = await pool.send(*messages[n])

        with anyio.fail_after(BOUND * 3):
            async with anyio.create_task_group() as group:
                group.start_soon(one, 0)
                await anyio.wait_all_tasks_blocked()
                group.start_soon(one, 1)
                group.start_soon(one, 2)
                await anyio.wait_all_tasks_blocked()
                assert pool.statistics().waiting == 2
                ehlo.set()
    assert all(isinstance(o, SendResult) for o in outcomes.values()), outcomes
    assert sorted(delivered([server])) == [0, 1, 2]
    for tx in server.transactions:
        n = number_of(tx.content)
        assert n is not None
        assert tx.content == messages[n][1]
    # The big message's BDAT came after the replies to its envelope, and the
    # next sender's flight was chained behind its content.
    big = [c for c in server.commands if c.verb in ("MAIL", "RCPT", "BDAT")][:3]
    assert big[2].replies_before == big[0].replies_before + 2
    received = server.connections[0].received
    end = received.index(messages[0][1]) + len(messages[0][1])
    assert received[end:].startswith(b"MAIL FROM:<sender@example.com> SIZE=")


async def test_421_mid_chain_the_unread_flights_go_again() -> None:
    def make(index: int) -> MiniSmtp:
        if index == 0:
            # The first message gets a 421 as its final reply and the server
            # closes: it never read the flights chained behind it.
            return HoldingMini(
                hold=1,
                replies={"BDAT": "421 4.3.2 Going down"},
                close_after_final="421",
            )
        return HoldingMini()

    messages = [message(n) for n in range(3)]
    async with pooled(make) as (scripts, pool):
        outcomes = await send_all(pool, messages)
        stats = pool.statistics()
    (first,) = [n for n, o in outcomes.items() if isinstance(o, DataRefused)]
    refused = outcomes[first]
    assert isinstance(refused, DataRefused)
    assert (refused.code, refused.command) == (421, "BDAT")
    others = sorted(n for n, o in outcomes.items() if isinstance(o, SendResult))
    assert len(others) == 2
    assert first not in others
    # Both chained flights were written on the first connection...
    received = scripts[0].connections[0].received
    assert all(f"Subject: message {n}".encode() in received for n in others)
    # ...but only read and delivered on the second, once each.
    assert [number_of(t.content) for t in scripts[0].transactions] == [first]
    assert sorted(delivered(scripts[1:])) == others
    assert stats.opened_total >= 2


async def test_connection_lost_with_flights_out_every_outcome_is_unknown() -> None:
    def make(index: int) -> MiniSmtp:
        return HoldingMini(hold=2, on_end_of_data="close") if index == 0 else HoldingMini()

    messages = [message(n) for n in range(2)]
    async with pooled(make) as (scripts, pool):
        outcomes = await send_all(pool, messages)
    # Both contents were written before the connection broke: neither is
    # sent again (it might have been accepted).
    assert all(isinstance(o, OutcomeUnknown) for o in outcomes.values()), outcomes
    assert len(scripts) == 1


async def test_deadline_with_the_flight_out_is_unknown() -> None:
    server = HoldingMini(hold=2)  # never reached: the server never answers
    async with pooled(server, timeout=BOUND, data_timeout=BOUND) as (_, pool):
        deadline = anyio.current_time() + 0.5
        with anyio.fail_after(BOUND), pytest.raises(OutcomeUnknown) as caught:
            await pool.send(*message(0), deadline=deadline)
    assert "deadline passed while waiting for the reply to MAIL" in str(caught.value)
    assert len(server.connections) == 1  # not sent again


# -- against the benchmarks' sink ----------------------------------------------------------------


@contextmanager
def benchmark_sink() -> Iterator[tuple[int, list[int], Any]]:
    """The benchmarks' asyncio sink in a thread of its own: (port, reads, stats).

    ``reads`` gets, for each read that held a MAIL, how many BDAT LAST
    commands it held.
    """
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from sink import SinkProtocol, SinkStats
    finally:
        sys.path.remove(str(BENCHMARKS))

    stats = SinkStats()
    reads: list[int] = []

    class CountingSink(SinkProtocol):
        def data_received(self, data: bytes) -> None:
            if b"MAIL FROM:" in data:
                reads.append(data.count(b" LAST\r\n"))
            super().data_received(data)

    loop = asyncio.new_event_loop()
    listening = threading.Event()
    ports: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            loop.create_server(lambda: CountingSink(stats), "127.0.0.1", 0)
        )
        ports.append(server.sockets[0].getsockname()[1])
        listening.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert listening.wait(BOUND)
    try:
        yield ports[0], reads, stats
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(BOUND)


async def test_the_benchmark_sink_gets_many_messages_per_read() -> None:
    with benchmark_sink() as (port, reads, stats):
        settings = settings_for(port, timeout=BOUND, data_timeout=BOUND)
        async with SmtpPool(settings, PoolConfig(max_size=1)) as pool:
            outcomes = await send_all(pool, [message(n) for n in range(8)])
    assert all(isinstance(o, SendResult) for o in outcomes.values()), outcomes
    assert stats.messages == 8
    # Every read that held a MAIL held the BDAT LAST of each of its messages
    # too, and the eight messages took far fewer reads than messages.
    assert sum(reads) == 8
    assert len(reads) < 8
