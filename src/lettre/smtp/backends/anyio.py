"""The anyio backend of the send path (trio, and anything else anyio runs on).

Nothing reads a connection in the background: the senders waiting on it
take turns. The sender whose transaction is the oldest still waited for
reads for everyone, feeding the engine and acting on its events, until its
own outcome is in; then it wakes the next sender, which reads on. The
content after a go-ahead is written by its own sender when it takes over
the reading, after the sender before it has had its outcome and could queue
its next message, so that its envelope can go in the same write.

One cancel scope per turn of reading enforces the driver's deadline rule;
its deadline moves only when the rule's due time comes earlier, or later by
more than a sixteenth of the timeout (at most a second), and a scope that
fires before the due time is simply entered again.
"""

from __future__ import annotations

import math
import ssl
from typing import TYPE_CHECKING

import anyio

from lettre.errors import LettreError, ProtocolError, SmtpTimeoutError
from lettre.protocol.transactions import TransactionStage
from lettre.smtp.driver import Ticket, TransactionDriver
from lettre.smtp.stream import describe_error

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["AnyioDriver"]

_PREPARED = TransactionStage.PREPARED
_READ_SIZE = 65536
_IO_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
    ssl.SSLError,
)


class AnyioDriver(TransactionDriver):
    """A :class:`~lettre.smtp.driver.TransactionDriver` whose waiting senders read in turn.

    Args: as for :class:`~lettre.smtp.driver.TransactionDriver`.
    """

    __slots__ = ("_changed", "_deferred", "_reading", "_scope", "_slack", "_writing")

    def _setup(self) -> None:
        self._reading = False  # a sender is reading for everyone
        self._changed: anyio.Event | None = None  # what a closer waits on meanwhile
        self._deferred: Ticket | None = None  # its go-ahead is in, its content not written
        self._scope: anyio.CancelScope | None = None  # the reading turn's scope
        self._writing: tuple[str, float, bool] | None = None  # a write under that scope
        self._slack = min(self._timeout / 16, 1.0)

    # ------------------------------------------------------------------ sending

    async def _run(self, ticket: Ticket) -> None:
        tx = ticket.tx
        assert tx is not None
        if tx.stage is _PREPARED:
            await self._start(ticket)
        await self._wait(ticket)

    async def _exchange(self, ticket: Ticket, out: bytes) -> None:
        if out:
            await self._write(out)
        else:
            self._progress()
        await self._wait(ticket)

    async def _wait(self, ticket: Ticket) -> None:
        """Wait for ``ticket``'s outcome, reading for everyone when it is this sender's turn."""
        while not ticket.finished():
            if not self._reading:
                await self._read_until(ticket, ticket.finished)
                continue
            event = ticket.event = anyio.Event()
            # The reader's own deadlines bound this wait; this only guards
            # against a reader that never hands over.
            with anyio.move_on_after(self._data_timeout + 2 * self._timeout):
                await event.wait()
            ticket.event = None
            if not event.is_set() and not ticket.finished():
                raise SmtpTimeoutError("the connection's earlier transactions never finished")

    async def _start(self, ticket: Ticket) -> None:
        """Write the sender's own first flight."""
        try:
            out = self._begin(ticket)
        except LettreError:
            self._stream.broken = not self._engine.usable
            raise
        await self._write(out)

    def _content_ready(self, ticket: Ticket) -> None:
        # Written by the ticket's own sender when it reads next (_read_once).
        self._deferred = ticket

    async def _write(self, out: bytes) -> None:
        """Write within the deadline rule; a failure ends every transaction in flight."""
        stream = self._stream
        engine = self._engine
        content = bool(engine.unwritten_content)
        limit = self._data_timeout if content else self._timeout
        timeout_due = self._clock() + limit
        deadline = self._deadline()
        due = min(timeout_due, deadline)
        what = "the server to read the " + ("message" if content else "commands")
        scope = self._scope
        failure: str | None = None
        try:
            if scope is None:
                with anyio.CancelScope(deadline=due) as own:
                    failure = await self._send(out)
                if own.cancelled_caught:
                    failure = self._write_timeout(what, limit, deadline <= timeout_due)
            else:
                # Under the reading turn's scope: _read_until tells a timeout.
                self._move(scope, due)
                self._writing = (what, limit, deadline <= timeout_due)
                failure = await self._send(out)
                self._writing = None
        except BaseException:
            if scope is not None and scope.cancel_called and self._clock() >= scope.deadline:
                raise  # the reading turn's deadline: handled there
            # Cancelled from outside mid-write: what reached the server is unknown.
            self._writing = None
            engine.unwritten("the send was cancelled while writing")
            self._drain()
            stream.broken = True
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
        if failure is not None:
            self._unwritten(failure, timeout=failure.startswith(("timed out", "the deadline")))
            await stream.aclose()
            return
        engine.written()
        self._progress()

    async def _send(self, out: bytes) -> str | None:
        stream = self._stream
        try:
            await stream.byte_stream.send(out)
        except _IO_ERRORS as exc:
            return f"writing to {stream.peer} failed: {describe_error(exc)}"
        return None

    def _write_timeout(self, what: str, limit: float, deadline: bool) -> str:
        peer = self._stream.peer
        if deadline:
            return f"the deadline passed while waiting for {what} from {peer}"
        return f"timed out after {limit:g} s waiting for {what} from {peer}"

    def _unwritten(self, failure: str, *, timeout: bool) -> None:
        self._engine.unwritten(failure, timeout=timeout)
        self._drain()
        self._stream.broken = True

    def _deadline(self) -> float:
        due = math.inf
        for ticket in self._queue:
            deadline = ticket.deadline
            if deadline is not None and deadline < due:
                due = deadline
        return due

    def _move(self, scope: anyio.CancelScope, due: float) -> None:
        """Bring the scope's deadline to ``due`` unless it is a little earlier already."""
        current = scope.deadline
        if due < current or due > current + self._slack:
            scope.deadline = due

    # ------------------------------------------------------------------ reading

    async def _read_until(self, reader: Ticket | None, done: Callable[[], bool]) -> None:
        """Read for every transaction on the connection until ``done()``.

        ``reader`` is the ticket of the sender reading (None: the connection
        is being closed). One cancel scope per turn enforces the deadline rule.
        """
        stream = self._stream
        self._reading = True
        try:
            while not done():
                with anyio.CancelScope(deadline=self._due()) as scope:
                    self._scope = scope
                    while not done():
                        await self._read_once(reader)
                self._scope = None
                if scope.cancelled_caught:
                    self._timed_out()
                if stream.broken and not stream.closed:
                    await stream.aclose()
        finally:
            self._scope = None
            self._reading = False
            self._pass_reading()
            changed = self._changed
            if changed is not None:
                self._changed = None
                changed.set()

    def _timed_out(self) -> None:
        """The reading turn's scope fired: a write or a wait outlived the deadline rule."""
        writing = self._writing
        if writing is not None:
            self._writing = None
            what, limit, deadline = writing
            self._unwritten(self._write_timeout(what, limit, deadline), timeout=True)
        elif self._clock() >= self._due():
            self._expire()

    async def _read_once(self, reader: Ticket | None) -> None:
        """Write what is due, then read once and act on what arrived.

        ``reader`` is the ticket of the sender reading. A deferred content is
        written when it is the reader's own, or its sender is gone: a sender
        that still waits writes its own when it takes over the reading, after
        the sender reading now has had its outcome and could send again.
        """
        stream = self._stream
        engine = self._engine
        deferred = self._deferred
        if deferred is not None and (deferred is reader or reader is None or deferred.gone()):
            await self._deferred_content()
            await self._flush()
            if stream.broken:
                return
        scope = self._scope
        if scope is not None:
            self._move(scope, self._due())
        try:
            data = await stream.byte_stream.receive(_READ_SIZE)
        except anyio.EndOfStream:
            self._lost(eof=True)
            return
        except _IO_ERRORS as exc:
            self._lost(eof=False, exc=exc)
            return
        replies = engine.replies
        engine.receive_data(data)
        self._drain()
        if engine.replies != replies:
            self._progress()
        if self._deferred is not None and self._deferred is reader:
            await self._deferred_content()
        await self._flush()

    async def _deferred_content(self) -> None:
        """Write the deferred content: queued with what goes next, or streamed by its sender."""
        ticket = self._deferred
        assert ticket is not None
        if type(ticket.data) is bytes:
            self._write_deferred()
            return
        self._deferred = None
        tx = ticket.tx
        if tx is None or tx.outcome is not None:
            return
        if self.closing or ticket.gone():
            # Nobody is left to read the rest of a streamed content.
            self._abort_all("the connection was closed before the message was sent")
            return
        await self._flush()
        await self._pump(ticket)

    async def _send_chunk(self, out: bytes) -> None:
        await self._write(out)

    def _write_deferred(self) -> None:
        ticket = self._deferred
        assert ticket is not None
        self._deferred = None
        tx = ticket.tx
        if tx is None or tx.outcome is not None:
            return
        if self.closing:
            self._abort_all("the connection was closed before the message was sent")
            return
        try:
            self._out.append(self._content(ticket))
        except ProtocolError as exc:
            self._engine.fail(str(exc), cause=exc)
            self._drain()
            self._close()

    async def _flush(self) -> None:
        out = self._out
        if out and self._engine.usable and not self._stream.broken:
            write = b"".join(out)
            out.clear()
            await self._write(write)
        else:
            out.clear()

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

    async def _drained(self) -> None:
        stream = self._stream
        while not self._settled():
            if self._reading:
                changed = self._changed = anyio.Event()
                await changed.wait()
            else:
                await self._read_until(None, self._settled)
        if stream.broken and not stream.closed:
            await stream.aclose()

    def _settled(self) -> bool:
        """No final reply is owed any more (or none will come)."""
        return not (self._engine.content_owed and self._queue) or self._stream.broken
