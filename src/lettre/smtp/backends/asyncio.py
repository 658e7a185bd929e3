"""The asyncio backend of the send path: the socket's callbacks drive the transactions.

On asyncio (the stdlib loop and uvloop) a connection's bytes arrive in its
protocol's ``data_received`` callback; while transactions are in flight the
protocol hands them to the :class:`AsyncioDriver`, which feeds the engine and
acts on its events right there. A sender writes its own first flight and
sleeps on one future until its outcome is in: no task runs for the
connection and no task switch happens between the replies of a transaction.
The content after a go-ahead is written on the next turn of the loop, after
the senders woken by the same read have queued their next message, so that
its envelope can go in the same write; at the end of a chain the connection
is passed straight to the next waiting sender (:meth:`AsyncioDriver._resume`).
One timer per connection enforces the driver's deadline rule.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lettre.errors import LettreError, ProtocolError, ServerDisconnected
from lettre.protocol.transactions import TransactionStage
from lettre.smtp.driver import Ticket, TransactionDriver

if TYPE_CHECKING:
    from lettre.smtp.asyncio_stream import _Protocol

__all__ = ["AsyncioDriver"]

_PREPARED = TransactionStage.PREPARED
_ACCEPTING = TransactionStage.ACCEPTING


class AsyncioDriver(TransactionDriver):
    """A :class:`~lettre.smtp.driver.TransactionDriver` run by asyncio's socket callbacks.

    Args: as for :class:`~lettre.smtp.driver.TransactionDriver`; ``stream``
        must run on lettre's asyncio byte stream.
    """

    __slots__ = ("_byte_stream", "_data_first", "_drained_writes", "_loop", "_settled", "_timer")

    def _setup(self) -> None:
        byte_stream = self._stream.asyncio_byte_stream
        if byte_stream is None:
            raise TypeError("AsyncioDriver needs a connection on the asyncio byte stream")
        self._byte_stream = byte_stream
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._settled: asyncio.Future[None] | None = None
        # What a streamed content's sender waits on while the socket's buffer is full.
        self._drained_writes: asyncio.Future[None] | None = None
        # Whether writing content can bring the timer's due time forward.
        self._data_first = self._data_timeout < self._timeout

    async def _run(self, ticket: Ticket) -> None:
        tx = ticket.tx
        assert tx is not None
        if tx.stage is _PREPARED:
            self._start(ticket)
        while tx.outcome is None:
            future = ticket.future
            if future is None or future.done():
                # Chained while it waited in the pool, and woken before its
                # outcome (the connection was handed on), or back from
                # writing a streamed content: wait here.
                future = ticket.future = self._loop.create_future()
            await future
            if ticket.pump:
                ticket.pump = False
                await self._pump(ticket)

    def _start(self, ticket: Ticket) -> None:
        """Write the sender's own first flight; the callbacks do the rest."""
        protocol = self._attach()
        stream = self._stream
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

    def _attach(self) -> _Protocol:
        """The connection's protocol, with whatever arrived while idle handed to the engine.

        The engine tells a 421 or unsolicited bytes apart when the next
        command or envelope is encoded. After STARTTLS the byte stream is a
        new one over the same protocol: it is looked up again.
        """
        byte_stream = self._stream.asyncio_byte_stream
        assert byte_stream is not None
        self._byte_stream = byte_stream
        protocol = byte_stream.protocol
        if protocol.chunks:
            for chunk in protocol.chunks:
                self._engine.receive_data(chunk)
            protocol.chunks.clear()
            protocol.buffered = 0
            if protocol.reading_paused:
                protocol.reading_paused = False
                byte_stream.transport.resume_reading()
        return protocol

    async def _exchange(self, ticket: Ticket, out: bytes) -> None:
        protocol = self._attach()
        ticket.future = self._loop.create_future()
        protocol.pipe = self
        if not out:
            self._progress()
            self._arm()
        elif self._writable():
            self._write(out)
        else:
            self._abort_all(f"writing to {self._stream.peer} failed: the connection is closed")
        if not ticket.finished():
            self._drain()  # a reply that arrived before the wait began (the greeting)
        if not ticket.finished() and protocol.eof:
            self._lost(eof=not protocol.lost)
        if not ticket.finished():
            await ticket.future

    def _write(self, out: bytes) -> None:
        """Write on asyncio (never blocks: the transport buffers) and record it.

        While the transport's buffer is over its high-water mark the bytes
        are not yet handed over: the content in them counts as sent once the
        server has read enough (``writing_resumed``).
        """
        byte_stream = self._byte_stream
        byte_stream.transport.write(out)
        if not byte_stream.protocol.writing_paused:
            self._engine.written()
        self.since = self._clock()
        queue = self._queue
        if self._timer is None or self._data_first or not queue or queue[-1].deadline is not None:
            # Otherwise the timer is due no later than this write needs: it
            # fires early at worst, and sets itself again then.
            self._arm()

    def _writable(self) -> bool:
        byte_stream = self._byte_stream
        return not (byte_stream.protocol.lost or byte_stream.transport.is_closing())

    def data_received(self, data: bytes) -> None:
        """Feed what the socket delivered to the engine and act on it (asyncio)."""
        engine = self._engine
        replies = engine.replies
        engine.conn.receive_data(data)
        self._drain()
        if engine.replies != replies:
            self.since = self._clock()
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
        self._wake_writer()

    def writing_resumed(self) -> None:
        """The server read what was buffered: the content in it is handed over (asyncio)."""
        self._engine.written()
        if self._queue:
            self.since = self._clock()
        self._wake_writer()

    def _wake_writer(self) -> None:
        waiter = self._drained_writes
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _send_chunk(self, out: bytes) -> None:
        if not self._writable():
            self._abort_all(f"writing to {self._stream.peer} failed: the connection is closed")
            return
        self._write(out)
        if self._byte_stream.protocol.writing_paused:
            # Wait until the server has read enough (or the connection ended:
            # the timer bounds the wait).
            waiter = self._drained_writes = self._loop.create_future()
            try:
                await waiter
            finally:
                self._drained_writes = None

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
            out = self._chain(ticket, self._engine.send_content(tx))
        except ProtocolError as exc:
            self._engine.fail(str(exc), cause=exc)
            self._drain()
            self._close()
            return
        self._write(out)

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

    def _idle(self) -> None:
        self._detach()

    def _detach(self) -> None:
        byte_stream = self._byte_stream
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
            self._timer = loop.call_at(due, self._on_timer)
            return
        self._expire()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _content_ready(self, ticket: Ticket) -> None:
        if type(ticket.data) is not bytes:
            # A streamed content: its sender's task reads and writes it.
            ticket.pump = True
            future = ticket.future
            assert future is not None
            if not future.done():
                future.set_result(None)
            return
        # On the next turn of the loop, after the senders woken by this read.
        self._loop.call_soon(self._write_content, ticket)

    def _finished(self, ticket: Ticket) -> None:
        self._dequeue(ticket)
        if (
            not self._queue
            and ticket.owner
            and self.hand_off is not None
            and self._engine.usable
            and not self.closing
        ):
            # The end of a chain: rather than have the sender give the
            # connection back, let the senders woken by this read queue their
            # next messages (next turn of the loop) and take it over from here.
            self._parked = ticket
            self._loop.call_soon(self._resume)
            return
        self._settle(ticket)

    def _close(self) -> None:
        self._stream.broken = True
        self._cancel_timer()
        self._stream.close_now()
        self._wake_writer()

    async def _drained(self) -> None:
        while self._engine.content_owed and self.busy:
            settled = self._settled = self._loop.create_future()
            try:
                await settled
            finally:
                self._settled = None

    def release(self) -> None:
        self._cancel_timer()
        self._detach()
