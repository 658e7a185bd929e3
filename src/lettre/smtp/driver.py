"""The one send path: moves bytes between a connection and its transaction engine.

Every mail transaction, whether a single ``SmtpClient.send`` or a pooled send
chained onto another's content, runs through the :class:`TransactionDriver`
of its connection. The driver writes what the sans-IO
:class:`~lettre.protocol.transactions.TransactionEngine` gives, feeds it what
the server answers, and acts on its events: the go-ahead for a message's
content (written together with the envelopes of the sends waiting for the
connection: chaining) and each transaction's outcome, handed to its sender.
It parses no SMTP and decides nothing about replies.

It reads in one of two ways, by the byte stream under the connection:

- on asyncio (the stdlib loop and uvloop) the socket's callbacks feed the
  engine (``data_received``); each sender sleeps on one future and wakes once,
  with its outcome, and the content after a go-ahead is written on the next
  turn of the loop, so that senders woken by the same read can queue their
  next message and have it chained;
- elsewhere (trio, through anyio) one of the senders waiting on the
  connection reads for everyone: the one whose transaction is oldest reads
  until its own outcome is in, then passes the reading on to the next.

There is one deadline rule for both (:meth:`TransactionDriver._due`): the
oldest owed reply must arrive within ``timeout`` of the last progress
(``data_timeout`` while a message's final reply is owed), and no send may
outlive its own deadline. asyncio enforces it with one timer per connection,
anyio with the cancel scope of each read and write.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from lettre.errors import (
    LettreError,
    ProtocolError,
    ServerDisconnected,
    SmtpTimeoutError,
)
from lettre.protocol.connection import NEED_DATA
from lettre.protocol.transactions import (
    PIPELINED_BDAT_LIMIT,
    ContentReady,
    Transaction,
    TransactionEngine,
    TransactionStage,
)
from lettre.results import SendResult
from lettre.smtp.stream import describe_error

if TYPE_CHECKING:
    from lettre.envelope import Envelope
    from lettre.smtp.connection_pool import HandOff
    from lettre.smtp.stream import SmtpStream, _AsyncioByteStream

__all__ = ["Ticket", "TransactionDriver"]

_READ_SIZE = 65536
_PREPARED = TransactionStage.PREPARED
_ACCEPTING = TransactionStage.ACCEPTING
_IO_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
    ssl.SSLError,
)


class Ticket:
    """One send as the pool and the driver see it.

    Attributes:
        envelope: the envelope to send.
        data: the message bytes.
        deadline: the send's deadline (on the event loop's clock), or None.
        tx: the transaction, once prepared (by its sender, or by the sender
            that chained it after its own content).
        owner: whether this send owns its pooled connection (and gives it back).
        future: what an asyncio sender sleeps on.
        event: what an anyio sender sleeps on (set when its outcome is in, or
            when it is to read next).
        wake: resumes a sender still waiting in the pool for its connection.
        left: the sender stopped waiting (it was cancelled).
    """

    __slots__ = ("data", "deadline", "envelope", "event", "future", "left", "owner", "tx", "wake")

    def __init__(self, envelope: Envelope, data: bytes, deadline: float | None = None) -> None:
        self.envelope = envelope
        self.data = data
        self.deadline = deadline
        self.tx: Transaction | None = None
        self.owner = True
        self.future: asyncio.Future[None] | None = None
        self.event: anyio.Event | None = None
        self.wake: HandOff | None = None
        self.left = False

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
        on_progress: called whenever the connection made progress (for the
            client's ``last_used``).

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
        "_asyncio",
        "_changed",
        "_clock",
        "_data_timeout",
        "_debug",
        "_engine",
        "_loop",
        "_next",
        "_on_progress",
        "_out",
        "_parked",
        "_queue",
        "_reading",
        "_settled",
        "_since",
        "_stream",
        "_tickets",
        "_timeout",
        "_timer",
        "closing",
        "hand_off",
    )

    def __init__(
        self,
        stream: SmtpStream,
        engine: TransactionEngine,
        *,
        timeout: float,
        data_timeout: float,
        on_progress: Callable[[float], None] | None = None,
    ) -> None:
        self._stream = stream
        self._engine = engine
        self._timeout = timeout
        self._data_timeout = data_timeout
        self._on_progress = on_progress
        self._clock = stream.now
        self._queue: deque[Ticket] = deque()
        self._tickets: dict[Transaction, Ticket] = {}
        self._since = self._clock()
        self._out: list[bytes] = []
        self._debug = False
        self.hand_off: Callable[[], Ticket | None] | None = None
        self.closing = False
        # asyncio: the byte stream whose callbacks feed the engine, its loop,
        # the timer, and the end of a chain (see _park).
        self._asyncio: _AsyncioByteStream | None = stream.asyncio_byte_stream
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._parked: Ticket | None = None
        self._next: Ticket | None = None
        self._settled: asyncio.Future[None] | None = None
        # anyio: whether a sender is reading for everyone, and what a closer
        # waits on while it does.
        self._reading = False
        self._changed: anyio.Event | None = None

    # ------------------------------------------------------------------ state

    @property
    def engine(self) -> TransactionEngine:
        """The transaction engine."""
        return self._engine

    @property
    def busy(self) -> bool:
        """Whether transactions are in flight (or one is about to start)."""
        return bool(self._queue) or self._parked is not None or self._next is not None

    def prepare(self, envelope: Envelope, data: bytes) -> Transaction:
        """Check a message against the server and build its transaction (nothing sent)."""
        return self._engine.prepare(envelope, data)

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
            tx = ticket.tx = self._engine.prepare(ticket.envelope, ticket.data)
        try:
            if tx.stage is _PREPARED:
                if self._asyncio is not None:
                    self._start_asyncio(ticket)
                else:
                    await self._start_anyio(ticket)
            if tx.outcome is None:
                if self._asyncio is not None:
                    await self._wait_asyncio(ticket)
                else:
                    await self._wait_anyio(ticket)
        except BaseException:
            if tx.outcome is None:
                ticket.left = True
                if ticket.owner and not any(t is not ticket and not t.gone() for t in self._queue):
                    # Cancelled (or failed) mid-transaction with nobody else
                    # waiting on the connection: its state is unknown.
                    self.abort("the send was cancelled before its outcome was known")
                    with anyio.CancelScope(shield=True):
                        await self._stream.aclose()
            raise
        return ticket.outcome()

    def _begin(self, ticket: Ticket) -> bytes:
        """Encode ``ticket``'s first flight (and chain the waiting senders' after it)."""
        tx = ticket.tx
        assert tx is not None
        engine = self._engine
        self._debug = self._stream.refresh_debug()
        engine.transcript = self._stream.logger.debug if self._debug else None
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
        if not engine.usable and not self._stream.broken:
            # A 421, or a refusal that only closing can end.
            self._close()

    def _events(self) -> None:
        engine = self._engine
        next_event = engine.next_event
        while True:
            event = next_event()
            if event is NEED_DATA:
                return
            if type(event) is ContentReady:
                out = engine.data_to_send()
                if out:
                    self._out.append(out)
                self._content_ready(self._tickets[event.tx])
            else:
                self._finished(self._tickets.pop(event.tx))

    def _content_ready(self, ticket: Ticket) -> None:
        if self._asyncio is not None:
            loop = self._loop
            assert loop is not None
            # On the next turn of the loop, after the senders woken by this
            # read: one of them may send again at once, and its envelope can
            # then go in the same write (chaining).
            loop.call_soon(self._write_content, ticket)
        else:
            self._out.append(self._content(ticket))

    def _content(self, ticket: Ticket) -> bytes:
        tx = ticket.tx
        assert tx is not None
        return self._chain(ticket, self._engine.send_content(tx))

    def _finished(self, ticket: Ticket) -> None:
        """``ticket``'s outcome is in: wake its sender (or keep the connection for the next)."""
        queue = self._queue
        if queue and queue[0] is ticket:
            queue.popleft()
        else:
            queue.remove(ticket)
        if (
            not queue
            and self._asyncio is not None
            and ticket.owner
            and self.hand_off is not None
            and self._engine.usable
            and not self.closing
        ):
            # The end of a chain: rather than have the sender give the
            # connection back, let the senders woken by this read queue their
            # next messages (next turn of the loop) and take it over from here.
            self._parked = ticket
            loop = self._loop
            assert loop is not None
            loop.call_soon(self._resume)
            return
        self._settle(ticket)

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
        if self._asyncio is not None and not self.busy:
            self._detach()

    def _close(self) -> None:
        """The connection is done: close it (at once on asyncio; else when the reader leaves)."""
        stream = self._stream
        stream.broken = True
        if self._asyncio is not None:
            self._cancel_timer()
            stream.close_now()

    def _progress(self) -> None:
        now = self._since = self._clock()
        if self._on_progress is not None:
            self._on_progress(now)

    # ------------------------------------------------------------------ time

    def _due(self) -> float:
        """When the connection has waited too long: the one deadline rule."""
        due = self._since + self._limit()
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
        what = (
            "the server to read the message" if engine.unwritten_content else engine.waiting_for()
        )
        peer = self._stream.peer
        if any(t.deadline is not None and t.deadline <= now for t in self._queue):
            message = f"the deadline passed while waiting for {what} from {peer}"
        else:
            message = f"timed out after {self._limit():g} s waiting for {what} from {peer}"
        if engine.unwritten_content:
            engine.unwritten(message, timeout=True)
        else:
            engine.fail(message, timeout=True)
        self._drain()
        self._close()

    def _lost(self, eof: bool, exc: BaseException | None = None) -> None:
        """The server closed the connection (``eof``) or it broke."""
        what = self._engine.waiting_for()
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

    # ------------------------------------------------------------------ asyncio

    def _start_asyncio(self, ticket: Ticket) -> None:
        byte_stream = self._asyncio
        assert byte_stream is not None
        protocol = byte_stream.protocol
        stream = self._stream
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if protocol.chunks:
            # Whatever arrived while idle goes to the engine, which tells a
            # 421 or unsolicited bytes apart when the envelope is encoded.
            for chunk in protocol.chunks:
                self._engine.receive_data(chunk)
            protocol.chunks.clear()
            protocol.buffered = 0
            if protocol.reading_paused:
                protocol.reading_paused = False
                byte_stream.transport.resume_reading()
        if protocol.eof and self._engine.idle:
            stream.broken = True
            raise ServerDisconnected(f"{stream.peer} closed the connection while it was idle")
        if not self._writable():
            stream.broken = True
            raise ServerDisconnected(f"the connection to {stream.peer} is closed")
        try:
            out = self._begin(ticket)
        except LettreError:
            stream.broken = not self._engine.usable
            raise
        ticket.future = self._loop.create_future()
        protocol.pipe = self
        self._write(out)

    def _write(self, out: bytes) -> None:
        """Write on asyncio (never blocks: the transport buffers) and record it.

        While the transport's buffer is over its high-water mark the bytes
        are not yet handed over: the content in them counts as sent once the
        server has read enough (``writing_resumed``).
        """
        byte_stream = self._asyncio
        assert byte_stream is not None
        byte_stream.transport.write(out)
        if not byte_stream.protocol.writing_paused:
            self._engine.written()
        self._progress()
        self._arm()

    async def _wait_asyncio(self, ticket: Ticket) -> None:
        future = ticket.future
        if future is None:
            # Chained while it waited in the pool: woken with its outcome.
            loop = self._loop
            assert loop is not None
            future = ticket.future = loop.create_future()
        await future

    def _writable(self) -> bool:
        byte_stream = self._asyncio
        assert byte_stream is not None
        return not (byte_stream.protocol.lost or byte_stream.transport.is_closing())

    def data_received(self, data: bytes) -> None:
        """Feed what the socket delivered to the engine and act on it (asyncio)."""
        engine = self._engine
        replies = engine.replies
        engine.receive_data(data)
        self._drain()
        if engine.replies != replies:
            self._progress()
        out = self._out
        if out:
            write = b"".join(out)
            out.clear()
            if self._writable():
                self._write(write)

    def connection_lost(self, eof: bool) -> None:
        """The server closed the connection (``eof``) or it broke (asyncio)."""
        self._stream.broken = True
        if self.busy:
            self._lost(eof)

    def writing_resumed(self) -> None:
        """The server read what was buffered: the content in it is handed over (asyncio)."""
        self._engine.written()
        if self._queue:
            self._since = self._clock()

    def _write_content(self, ticket: Ticket) -> None:
        """Write the content of an accepted transaction, chaining the next sender's envelope."""
        tx = ticket.tx
        assert tx is not None
        if tx.stage is not _ACCEPTING or tx.outcome is not None:
            return  # the connection failed meanwhile: the ticket is settled
        if self.closing:
            # The connection is being closed under a sender that gave up:
            # its content must not go out.
            self._abort_all("the connection was closed before the message was sent")
            return
        if not self._writable():
            self._abort_all(f"writing to {self._stream.peer} failed: the connection is closed")
            return
        try:
            out = self._content(ticket)
        except ProtocolError as exc:
            self._engine.fail(str(exc), cause=exc)
            self._drain()
            self._close()
            return
        self._write(out)

    def _abort_all(self, message: str) -> None:
        self._engine.fail(message)
        self._drain()
        self._close()

    def _resume(self) -> None:
        """Hand the idle connection to the first waiting sender, if any, then wake the last one."""
        ticket = self._parked
        if ticket is None:
            return  # the connection failed meanwhile: the ticket is settled
        self._parked = None
        following = None
        if (
            not self.closing
            and not ticket.gone()
            and self._engine.usable
            and self._writable()
            and self.hand_off is not None
        ):
            following = self.hand_off()
        if following is None:
            self._settle(ticket)
            return
        ticket.owner = False
        following.owner = True
        self._next = following
        self._settle(ticket)
        # The flight goes on the next turn, after the sender woken just now
        # queued its next message, which can then be chained behind it.
        loop = self._loop
        assert loop is not None
        loop.call_soon(self._open, following)

    def _open(self, ticket: Ticket) -> None:
        """Write the flight of the sender that took the connection over (and chain more)."""
        if self._next is not ticket:
            return  # the connection failed meanwhile: the ticket is settled
        self._next = None
        tx = ticket.tx
        assert tx is not None
        if self.closing or not self._writable():
            self._engine.fail("the connection was closed before the message was sent")
            tx.outcome = ServerDisconnected("the connection was closed before the message was sent")
            tx.stage = TransactionStage.FAILED
            self._settle(ticket)
            self._close()
            return
        try:
            out = self._begin(ticket)
        except (LettreError, ProtocolError) as exc:  # a 421 while idle, or a protocol error
            tx.outcome = exc
            tx.stage = TransactionStage.FAILED
            self._settle(ticket)
            self._engine.fail(str(exc))
            self._drain()
            self._close()
            return
        self._write(out)

    def _detach(self) -> None:
        byte_stream = self._asyncio
        assert byte_stream is not None
        protocol = byte_stream.protocol
        if protocol.pipe is self:
            protocol.pipe = None
        settled = self._settled
        if settled is not None and not settled.done():
            settled.set_result(None)

    def _arm(self) -> None:
        """Make sure the timer fires by the deadline now in force.

        A later deadline needs nothing: the timer, firing early, sets itself
        again for what is due then.
        """
        due = self._due()
        timer = self._timer
        loop = self._loop
        assert loop is not None
        if timer is None:
            self._timer = loop.call_at(due, self._on_timer)
        elif due < timer.when():
            timer.cancel()
            self._timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._queue:
            return
        due = self._due()
        if self._clock() < due:
            loop = self._loop
            assert loop is not None
            self._timer = loop.call_at(due, self._on_timer)
            return
        self._expire()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ anyio

    async def _start_anyio(self, ticket: Ticket) -> None:
        try:
            out = self._begin(ticket)
        except LettreError:
            self._stream.broken = not self._engine.usable
            raise
        await self._send_anyio(out)

    async def _send_anyio(self, out: bytes) -> None:
        """Write on anyio within the deadline; a failure ends every transaction in flight."""
        stream = self._stream
        engine = self._engine
        content = bool(engine.unwritten_content)
        limit = self._data_timeout if content else self._timeout
        timeout_due = self._clock() + limit
        deadline = self._due_deadline()
        failure: str | None = None
        timed_out = False
        try:
            with anyio.CancelScope(deadline=min(timeout_due, deadline)) as scope:
                try:
                    await stream.byte_stream.send(out)
                except _IO_ERRORS as exc:
                    failure = f"writing to {stream.peer} failed: {describe_error(exc)}"
        except BaseException:
            # Cancelled from outside mid-write: what reached the server is unknown.
            engine.unwritten("the send was cancelled while writing")
            self._drain()
            stream.broken = True
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
        if scope.cancelled_caught:
            what = (
                "the server to read the message" if content else "the server to read the commands"
            )
            if deadline <= timeout_due:
                failure = f"the deadline passed while waiting for {what} from {stream.peer}"
            else:
                failure = f"timed out after {limit:g} s waiting for {what} from {stream.peer}"
            timed_out = True
        if failure is not None:
            engine.unwritten(failure, timeout=timed_out)
            self._drain()
            stream.broken = True
            await stream.aclose()
            return
        engine.written()
        self._progress()

    def _due_deadline(self) -> float:
        due = float("inf")
        for ticket in self._queue:
            deadline = ticket.deadline
            if deadline is not None and deadline < due:
                due = deadline
        return due

    async def _wait_anyio(self, ticket: Ticket) -> None:
        tx = ticket.tx
        assert tx is not None
        while tx.outcome is None:
            if not self._reading:
                await self._read_until(ticket)
                continue
            event = ticket.event = anyio.Event()
            # The reader's own deadlines bound this wait; this only guards
            # against a reader that never hands over.
            with anyio.move_on_after(self._data_timeout + 2 * self._timeout):
                await event.wait()
            ticket.event = None
            if not event.is_set() and tx.outcome is None:
                raise SmtpTimeoutError("the connection's earlier transactions never finished")

    async def _read_until(self, ticket: Ticket) -> None:
        """Read for every transaction on the connection until ``ticket``'s outcome is in."""
        tx = ticket.tx
        assert tx is not None
        self._reading = True
        try:
            while tx.outcome is None:
                await self._read_once()
        finally:
            self._reading = False
            self._pass_reading()
            changed = self._changed
            if changed is not None:
                self._changed = None
                changed.set()

    async def _read_once(self) -> None:
        stream = self._stream
        engine = self._engine
        due = self._due()
        data = b""
        with anyio.CancelScope(deadline=due) as scope:
            try:
                data = await stream.byte_stream.receive(_READ_SIZE)
            except anyio.EndOfStream:
                self._lost(eof=True)
            except _IO_ERRORS as exc:
                self._lost(eof=False, exc=exc)
        if scope.cancelled_caught:
            if self._clock() >= self._due():
                self._expire()
        elif data:
            replies = engine.replies
            engine.receive_data(data)
            self._drain()
            if engine.replies != replies:
                self._progress()
        out = self._out
        if out and engine.usable:
            write = b"".join(out)
            out.clear()
            await self._send_anyio(write)
        else:
            out.clear()
        if stream.broken and not stream.closed:
            await stream.aclose()

    def _pass_reading(self) -> None:
        """Wake the oldest sender still waiting on the connection to read next."""
        for ticket in self._queue:
            if ticket.gone():
                continue
            if ticket.wake is not None:
                wake, ticket.wake = ticket.wake, None
                wake()
                return
            if ticket.event is not None:
                ticket.event.set()
                return

    # ------------------------------------------------------------------ closing

    async def settle(self, limit: float) -> None:
        """Wait (at most ``limit`` s) until no message's final reply is owed, then end the rest.

        Sets :attr:`closing`: no further content is written and nothing more
        is chained; transactions still in their envelope are failed.
        """
        self.closing = True
        engine = self._engine
        with anyio.move_on_after(limit):
            if self._asyncio is not None:
                while engine.content_owed and self.busy:
                    loop = self._loop
                    assert loop is not None
                    settled = self._settled = loop.create_future()
                    try:
                        await settled
                    finally:
                        self._settled = None
            else:
                while engine.content_owed and self._queue and not self._stream.broken:
                    if self._reading:
                        changed = self._changed = anyio.Event()
                        await changed.wait()
                    else:
                        self._reading = True
                        try:
                            await self._read_once()
                        finally:
                            self._reading = False
        if self.busy:
            self.abort("the connection was closed before the message was sent")

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
        if self._asyncio is not None:
            self._cancel_timer()
            self._detach()

    def release(self) -> None:
        """Drop the timer and the callbacks (the connection is being closed)."""
        if self._asyncio is not None:
            self._cancel_timer()
            self._detach()
