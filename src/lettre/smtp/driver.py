"""The one send path: moves bytes between a connection and its transaction engine.

Every mail transaction, whether a single ``SmtpClient.send`` or a pooled send
chained onto another's content, runs through the :class:`TransactionDriver`
of its connection. The driver writes what the sans-IO
:class:`~lettre.protocol.transactions.TransactionEngine` gives, feeds it what
the server answers, and acts on its events: the go-ahead for a message's
content (written together with the envelopes of the sends waiting for the
connection: chaining) and each transaction's outcome, handed to its sender.
It parses no SMTP and decides nothing about replies.

How the bytes move is a backend's business (:mod:`lettre.smtp.backends`):
on asyncio (the stdlib loop and uvloop) the socket's callbacks feed the
engine; elsewhere (trio, through anyio) the senders waiting on the
connection take turns reading for everyone. A backend implements four
things: run a sender's transaction (:meth:`TransactionDriver._run`), write a
content whose go-ahead came (:meth:`TransactionDriver._content_ready`), close,
and wait until no final reply is owed.

There is one deadline rule (:meth:`TransactionDriver._due`): the oldest owed
reply must arrive within ``timeout`` of the last reply (``data_timeout`` while
a message's content is being written or its final reply is owed), and no
send may outlive its own deadline; what happens then is
:meth:`TransactionDriver._expire`. asyncio enforces the rule with one timer
per connection, anyio with one cancel scope per turn of reading.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from lettre.errors import (
    LettreError,
    ProtocolError,
    ServerDisconnected,
)
from lettre.message.source import MessageContent, SourceError
from lettre.protocol.connection import NEED_DATA
from lettre.protocol.transactions import (
    PIPELINED_BDAT_LIMIT,
    ContentReady,
    Replied,
    Transaction,
    TransactionDone,
    TransactionEngine,
    TransactionStage,
)
from lettre.results import SendResult
from lettre.smtp.stream import describe_error

if TYPE_CHECKING:
    from lettre.envelope import Envelope
    from lettre.protocol.commands import Command
    from lettre.protocol.replies import Reply
    from lettre.smtp.connection_pool import HandOff
    from lettre.smtp.stream import SmtpStream

__all__ = ["Ticket", "TransactionDriver"]


class Ticket:
    """One send (or one command) as the pool and the driver see it.

    Attributes:
        envelope: the envelope to send (None for a command).
        data: the message bytes, or a content read while it is sent.
        deadline: the send's deadline (on the event loop's clock), or None.
        tx: the transaction, once prepared (by its sender, or by the sender
            that chained it after its own content).
        owner: whether this send owns its pooled connection (and gives it back).
        future: what an asyncio sender sleeps on.
        event: what an anyio sender sleeps on (set when its outcome is in, or
            when it is to read next).
        wake: resumes a sender still waiting in the pool for its connection.
        left: the sender stopped waiting (it was cancelled).
        what: what a command waits for, for messages ("the reply to EHLO").
        reply: a command's reply, or ``error`` why none came.
        pump: a streamed content's go-ahead came: its sender is to write it.
    """

    __slots__ = (
        "data",
        "deadline",
        "envelope",
        "error",
        "event",
        "future",
        "left",
        "owner",
        "pump",
        "reply",
        "tx",
        "wake",
        "what",
    )

    def __init__(
        self,
        envelope: Envelope | None,
        data: bytes | MessageContent,
        deadline: float | None = None,
    ) -> None:
        self.envelope = envelope
        self.data = data
        self.deadline = deadline
        self.tx: Transaction | None = None
        self.owner = True
        self.future: asyncio.Future[None] | None = None
        self.event: anyio.Event | None = None
        self.wake: HandOff | None = None
        self.left = False
        self.what = ""
        self.reply: Reply | None = None
        self.error: LettreError | None = None
        self.pump = False

    def finished(self) -> bool:
        """Whether the outcome (or a command's reply) is in."""
        tx = self.tx
        if tx is not None:
            return tx.outcome is not None
        return self.reply is not None or self.error is not None

    def gone(self) -> bool:
        """Whether the sender stopped waiting before it was woken."""
        if self.left:
            return True
        future = self.future
        if future is not None:
            return future.cancelled()
        wake = self.wake  # still waiting in the pool
        return wake is not None and wake.gave_up()

    def outcome(self) -> SendResult:
        """The result of the finished transaction, or raise its error."""
        tx = self.tx
        assert tx is not None
        outcome = tx.outcome
        if isinstance(outcome, SendResult):
            return outcome
        assert isinstance(outcome, BaseException)
        raise outcome


class TransactionDriver:
    """Runs the mail transactions of one connected client.

    Made by ``SmtpClient`` once its session is open; the pool sets
    :attr:`hand_off`.

    Args:
        stream: the client's stream (the session open on it).
        engine: the transaction engine on the stream's protocol state.
        timeout: seconds allowed for each reply.
        data_timeout: seconds allowed for the reply to a message's content.

    Attributes:
        hand_off: called when a message's content (or a flight holding its
            content) is about to be written; it may return the ticket of the
            next waiting sender, its transaction prepared, whose envelope
            then goes in the same write and which owns the connection from
            then on.
        closing: set by :meth:`settle`: nothing more is chained and no
            further content is written.
    """

    __slots__ = (
        "_clock",
        "_commands",
        "_data_timeout",
        "_debug",
        "_engine",
        "_next",
        "_out",
        "_parked",
        "_queue",
        "_stream",
        "_tickets",
        "_timeout",
        "closing",
        "hand_off",
        "since",
    )

    def __init__(
        self,
        stream: SmtpStream,
        engine: TransactionEngine,
        *,
        timeout: float,
        data_timeout: float,
    ) -> None:
        self._stream = stream
        self._engine = engine
        self._timeout = timeout
        self._data_timeout = data_timeout
        self._clock = stream.clock
        self._queue: deque[Ticket] = deque()
        self._tickets: dict[Transaction, Ticket] = {}
        self._commands: deque[Ticket] = deque()  # awaiting a reply, in order
        self.since = self._clock()
        """When the connection last made progress (a write, or a reply read)."""
        self._out: list[bytes] = []
        self._debug = False
        self.hand_off: Callable[[], Ticket | None] | None = None
        self.closing = False
        # The end of a chain, parked until the next sender takes the
        # connection over (asyncio), and that sender.
        self._parked: Ticket | None = None
        self._next: Ticket | None = None
        self._setup()

    def _setup(self) -> None:
        """Set up what the backend keeps per connection (called by ``__init__``)."""

    # ------------------------------------------------------------------ state

    @property
    def engine(self) -> TransactionEngine:
        """The transaction engine."""
        return self._engine

    @property
    def busy(self) -> bool:
        """Whether transactions are in flight (or one is about to start)."""
        return bool(self._queue) or self._parked is not None or self._next is not None

    # ------------------------------------------------------------------ sending

    async def send(self, ticket: Ticket) -> SendResult:
        """Run ``ticket``'s transaction (started already when it was chained) to its outcome.

        Raises:
            SmtpError: the transaction's error (refusal, timeout, broken
                connection, outcome unknown).
            ProtocolError: the server broke the protocol before the content
                was written.
        """
        tx = ticket.tx
        if tx is None:
            assert ticket.envelope is not None
            data = ticket.data
            tx = ticket.tx = (
                self._engine.prepare(ticket.envelope, data)
                if type(data) is bytes
                else self.prepare(ticket.envelope, data)
            )
        try:
            await self._run(ticket)
        except BaseException:
            if tx.outcome is None:
                ticket.left = True
                if ticket.owner and not any(t is not ticket and not t.gone() for t in self._queue):
                    # Cancelled (or failed) mid-transaction with nobody else
                    # waiting on the connection: its state is unknown.
                    await self._give_up("the send was cancelled before its outcome was known")
            raise
        return ticket.outcome()

    def prepare(self, envelope: Envelope, data: bytes | MessageContent) -> Transaction:
        """The engine's transaction for ``data``: bytes, or a content read while it is sent.

        Raises:
            As ``TransactionEngine.prepare`` (and ``prepare_streamed``).
        """
        if not isinstance(data, MessageContent):
            return self._engine.prepare(envelope, data)
        known = b"".join(s for s in data.segments if isinstance(s, bytes))
        return self._engine.prepare_streamed(envelope, known, data.size)

    async def command(
        self, command: Command | None, *, what: str, deadline: float | None = None
    ) -> Reply:
        """Send one command outside a mail transaction and return its reply.

        With ``command`` None, wait for a reply nothing here asked for: the
        greeting. The wait follows the deadline rule (``timeout`` for the
        reply, and ``deadline``).

        Args:
            command: the command (EHLO, STARTTLS, AUTH..., NOOP, RSET, QUIT).
            what: what is awaited, for error messages ("the reply to EHLO").
            deadline: an absolute time on the event loop's clock, or None.

        Raises:
            SmtpTimeoutError: no reply in time (the connection is closed).
            ServerDisconnected: the connection broke or the server closed it.
            RemoteProtocolError: the server broke the protocol.
            LocalProtocolError: the command may not be sent now.
        """
        engine = self._engine
        self._observe()
        ticket = Ticket(None, b"", deadline)
        ticket.owner = False
        ticket.what = what
        try:
            if command is None:
                engine.expect_reply()
                out = b""
            else:
                out = engine.command(command)
        except LettreError:
            self._stream.broken = not engine.usable
            raise
        self._queue.append(ticket)
        self._commands.append(ticket)
        try:
            await self._exchange(ticket, out)
        except BaseException:
            if not ticket.finished():
                # Cancelled with the reply owed: the connection's state is unknown.
                ticket.left = True
                await self._give_up("a command was cancelled before its reply")
            raise
        if ticket.error is not None:
            if self._stream.broken and not self._stream.closed:
                await self._stream.aclose()
            raise ticket.error
        assert ticket.reply is not None
        return ticket.reply

    def _observe(self) -> None:
        """Turn the engine's transcript on or off as the logger says (looked up per exchange)."""
        stream = self._stream
        self._debug = stream.refresh_debug()
        self._engine.transcript = stream.logger.debug if self._debug else None

    async def _give_up(self, message: str) -> None:
        """Fail what is in flight and close the connection (shielded)."""
        self.abort(message)
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()

    async def _exchange(self, ticket: Ticket, out: bytes) -> None:
        """Write a command's bytes (if any) and wait for its reply."""
        raise NotImplementedError

    async def _run(self, ticket: Ticket) -> None:
        """Start ``ticket``'s transaction unless it was chained, and wait for its outcome."""
        raise NotImplementedError

    def _begin(self, ticket: Ticket) -> bytes:
        """Encode ``ticket``'s first flight (and chain the waiting senders' after it)."""
        tx = ticket.tx
        assert tx is not None
        engine = self._engine
        self._observe()
        out = engine.start(tx)
        self._track(ticket)
        if tx.content_in_flight:
            out = self._chain(ticket, out)
        return out

    def _track(self, ticket: Ticket) -> None:
        tx = ticket.tx
        assert tx is not None
        self._queue.append(ticket)
        self._tickets[tx] = ticket

    def _chain(self, last: Ticket, out: bytes) -> bytes:
        """Append the flights of the senders waiting for the connection to ``out``.

        ``out`` ends with ``last``'s content (or its flight with the
        content): the first waiter's envelope may follow at once. While the
        one chained last had its content in its flight too and the write is
        shorter than ``PIPELINED_BDAT_LIMIT``, the next waiter's follows.
        """
        hand_off = self.hand_off
        if hand_off is None or self.closing:
            return out
        while len(out) < PIPELINED_BDAT_LIMIT:
            following = hand_off()
            if following is None:
                break
            tx = following.tx
            assert tx is not None
            last.owner = False
            following.owner = True
            try:
                out += self._engine.start(tx)
            except LettreError as exc:  # the connection broke under it: nothing of it was sent
                tx.outcome = exc
                tx.stage = TransactionStage.FAILED
                self._settle(following)
                break
            self._track(following)
            if not tx.content_in_flight:
                break
            last = following
        return out

    # ------------------------------------------------------------------ events

    def _drain(self) -> None:
        """Act on every event the engine has; queue what it needs written."""
        engine = self._engine
        try:
            self._events()
        except ProtocolError as exc:
            engine.fail(str(exc), cause=exc)
            self._events()
            self._close()
        out = engine.data_to_send()
        if out:
            self._out.append(out)
        if engine.broken and not self._stream.broken:
            # A 421, or a refusal that only closing can end.
            self._close()

    def _events(self) -> None:
        engine = self._engine
        next_event = engine.next_event
        while True:
            event = next_event()
            if event is NEED_DATA:
                return
            # Nothing waits in the engine's outbox at a go-ahead: what it sends
            # on its own ends a transaction before any later one could start.
            if type(event) is TransactionDone:
                self._finished(self._tickets.pop(event.tx))
            elif type(event) is ContentReady:
                self._content_ready(self._tickets[event.tx])
            else:
                assert isinstance(event, Replied)
                ticket = self._commands.popleft()
                ticket.reply = event.reply
                ticket.error = event.error
                self._finished(ticket)

    def _content_ready(self, ticket: Ticket) -> None:
        """``ticket``'s envelope was accepted: have its content written (and chained).

        The content goes out once the senders woken by the same read have had
        a chance to send again, so that their envelopes can go in the same
        write; each backend says when that is.
        """
        raise NotImplementedError

    async def _pump(self, ticket: Ticket) -> None:
        """Write a streamed content: read a chunk (in a worker thread), write it, repeat; the end.

        Each chunk goes out only once the one before was taken by the
        socket (:meth:`_send_chunk` waits), so at most a chunk or two are
        held. A source that cannot be read ends the transaction with its
        :class:`~lettre.message.SourceError` and drops the connection: the
        end of data is never written, so the server discards what it got.
        Nothing is chained after a streamed content.
        """
        tx = ticket.tx
        content = ticket.data
        assert tx is not None
        assert isinstance(content, MessageContent)
        engine = self._engine
        chunks = content.chunks()
        try:
            while self._writing_on(tx):
                chunk = await anyio.to_thread.run_sync(next, chunks, None)
                if not self._writing_on(tx):
                    return
                out = engine.send_chunk(tx, chunk) if chunk is not None else engine.end_content(tx)
                await self._send_chunk(out)
                if chunk is None:
                    return
        except SourceError as exc:
            if tx.outcome is None:
                engine.fail(f"the message could not be read: {exc}")
                tx.outcome = exc
                self._drain()
                self._close()
        except ProtocolError as exc:
            engine.fail(str(exc), cause=exc)
            self._drain()
            self._close()
        finally:
            chunks.close()

    def _writing_on(self, tx: Transaction) -> bool:
        """Whether a streamed content goes on: ``tx`` is not over and the connection is fine."""
        if tx.outcome is not None or self._stream.broken:
            return False  # the connection failed meanwhile: the ticket is settled
        if self.closing:
            self._abort_all("the connection was closed before the message was sent")
            return False
        return True

    async def _send_chunk(self, out: bytes) -> None:
        """Write one piece of a streamed content; return once the socket took it."""
        raise NotImplementedError

    def _content(self, ticket: Ticket) -> bytes:
        tx = ticket.tx
        assert tx is not None
        return self._chain(ticket, self._engine.send_content(tx))

    def _finished(self, ticket: Ticket) -> None:
        """``ticket``'s outcome is in: wake its sender."""
        self._dequeue(ticket)
        self._settle(ticket)

    def _dequeue(self, ticket: Ticket) -> None:
        queue = self._queue
        if queue and queue[0] is ticket:
            queue.popleft()
        else:
            queue.remove(ticket)

    def _settle(self, ticket: Ticket) -> None:
        wake = ticket.wake
        if wake is not None:
            ticket.wake = None
            wake()
        future = ticket.future
        if future is not None:
            if not future.done():
                future.set_result(None)
        elif ticket.event is not None:
            ticket.event.set()
        if not self._queue and self._parked is None and self._next is None:
            self._idle()

    def _idle(self) -> None:
        """Nothing is in flight any more."""

    def _close(self) -> None:
        """The connection is done: mark it broken (the backend closes it)."""
        self._stream.broken = True

    def _progress(self) -> None:
        self.since = self._clock()

    # ------------------------------------------------------------------ time

    def _due(self) -> float:
        """When the connection has waited too long: the one deadline rule."""
        engine = self._engine
        limit = (
            self._data_timeout if engine.content_owed or engine.unwritten_content else self._timeout
        )
        due = self.since + limit
        for ticket in self._queue:
            deadline = ticket.deadline
            if deadline is not None and deadline < due:
                due = deadline
        return due

    def _limit(self) -> float:
        engine = self._engine
        if engine.content_owed or engine.unwritten_content:
            return self._data_timeout
        return self._timeout

    def _expire(self) -> None:
        """Fail every transaction in flight: the wait outlived :meth:`_due`."""
        now = self._clock()
        engine = self._engine
        what = "the server to read the message" if engine.unwritten_content else self._what()
        stream = self._stream
        peer = stream.peer
        if any(t.deadline is not None and t.deadline <= now for t in self._queue):
            message = f"the deadline passed while waiting for {what} from {peer}"
        else:
            message = f"timed out after {self._limit():g} s waiting for {what} from {peer}"
        if what == "the greeting" and not stream.encrypted:
            # A port that expects TLS from the first byte waits for our
            # handshake and never greets in plaintext.
            message += (
                "; if this port expects TLS from the first byte (usually 465), "
                "use tls=TlsMode.IMPLICIT"
            )
        if engine.unwritten_content:
            engine.unwritten(message, timeout=True)
        else:
            engine.fail(message, timeout=True)
        self._drain()
        self._close()

    def _what(self) -> str:
        """What the oldest wait is for, for messages."""
        queue = self._queue
        if queue and queue[0].tx is None:
            return queue[0].what
        return self._engine.waiting_for()

    def _lost(self, eof: bool, exc: BaseException | None = None) -> None:
        """The server closed the connection (``eof``) or it broke."""
        what = self._what()
        peer = self._stream.peer
        if eof:
            message = f"{peer} closed the connection while we waited for {what}"
        elif exc is not None:
            message = f"reading {what} from {peer} failed: {describe_error(exc)}"
        else:
            message = f"reading {what} from {peer} failed: the connection broke"
        self._engine.fail(message)
        self._drain()
        self._close()

    # ------------------------------------------------------------------ closing

    async def settle(self, limit: float) -> None:
        """Wait (at most ``limit`` s) until no message's final reply is owed, then end the rest.

        Sets :attr:`closing`: no further content is written and nothing more
        is chained; transactions still in their envelope are failed.
        """
        self.closing = True
        with anyio.move_on_after(limit):
            await self._drained()
        if self.busy:
            self.abort("the connection was closed before the message was sent")

    async def _drained(self) -> None:
        """Return once no message's final reply is owed (the caller bounds the wait)."""
        raise NotImplementedError

    def abort(self, message: str) -> None:
        """Fail whatever is still in flight and mark the connection broken."""
        if not self.busy:
            return
        parked, self._parked = self._parked, None
        following, self._next = self._next, None
        self._engine.fail(message)
        self._drain()
        if parked is not None:
            self._settle(parked)  # done before the failure: its outcome stands
        if following is not None:
            tx = following.tx
            assert tx is not None
            if tx.outcome is None:
                tx.outcome = ServerDisconnected(message)
                tx.stage = TransactionStage.FAILED
            self._settle(following)
        self._stream.broken = True
        self.release()

    def release(self) -> None:
        """Drop what the connection holds on the event loop (it is being closed)."""

    def _abort_all(self, message: str) -> None:
        self._engine.fail(message)
        self._drain()
        self._close()
