"""Mail transactions driven by the connection's own callbacks (asyncio).

A pooled connection on asyncio whose server offers PIPELINING runs its mail
transactions through a :class:`Pipeline`: the sender writes its envelope
(MAIL, RCPT and DATA in one flight) and sleeps on one future; from then on
the socket's ``data_received`` callback feeds the sans-IO core, reads the
replies in order and, when the server is ready for the content, writes it
(on the next turn of the event loop, so that the senders just woken can queue
their next message) together with the envelope of the next waiting sender
when there is one. The sender wakes up once, with its result. No task runs for the
connection, and no task switch happens between the replies of a transaction.

With CHUNKING, a small message goes in one flight (MAIL, RCPT and ``BDAT
LAST`` with its content): it needs no go-ahead, so the envelope and content
of every sender waiting at that moment are written in the same write, one
flight after the other, and all their replies are read in one pass; each
outcome is made by ``SmtpClient.flight_outcome``.

Only the plain path lives here. A transaction whose envelope meets any
refusal (or a 421) before its content was written is handed back to its
sender with the replies read so far, and
:class:`~lettre.smtp.client.SmtpClient` finishes it exactly as it would any
other (RSET, the typed error). The pipeline is then detached until the
connection is idle again.

Every transaction in flight is bounded: one timer per connection enforces the
per-reply timeouts (``timeout``, ``data_timeout`` once a message's content
is out) and each sender's deadline. A timeout, a broken connection or an
invalid reply fails every transaction in flight: with
:class:`~lettre.errors.OutcomeUnknown` when its content had been written,
otherwise with an error that says nothing was delivered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from lettre.errors import (
    OutcomeUnknown,
    ProtocolError,
    ServerDisconnected,
    SmtpError,
    SmtpReplyError,
    SmtpTimeoutError,
)
from lettre.protocol.connection import NEED_DATA
from lettre.results import SendResult, new_recipient_result
from lettre.smtp.client import PIPELINED_BDAT_LIMIT, TransactionStage

if TYPE_CHECKING:
    from lettre.envelope import Envelope
    from lettre.protocol.replies import Reply
    from lettre.smtp.client import SmtpClient, Transaction
    from lettre.smtp.connection_pool import HandOff
    from lettre.smtp.stream import SmtpStream, _AsyncioByteStream

__all__ = ["Pipeline", "Ticket"]

_ENVELOPE = TransactionStage.ENVELOPE
_CONTENT = TransactionStage.CONTENT
_ACCEPTED = frozenset({250, 251})


class Ticket:
    """One send as the pool and the pipeline see it.

    Attributes:
        envelope: the envelope to send.
        data: the message bytes.
        deadline: the send's deadline (loop time), or None.
        tx: the transaction, once prepared (by its sender, or by the sender
            that chained it after its own content).
        piped: whether the transaction runs in a :class:`Pipeline`.
        owner: whether this send owns its pooled connection (and gives it back).
        result: the outcome, once known.
        error: the failure, once known.
        slow: the envelope met a refusal: ``replies`` holds what was read and
            the sender finishes the transaction itself.
        replies: the replies to the envelope read so far.
        expected: how many replies the envelope needs.
        future: what the sender sleeps on (a sender that is not yet awake has
            ``wake`` instead).
        wake: resumes a sender still waiting in the pool for its connection.
        turn: the reply turn of the task-driven path (see ``SmtpPool``).
    """

    __slots__ = (
        "data",
        "deadline",
        "envelope",
        "error",
        "expected",
        "future",
        "owner",
        "piped",
        "replies",
        "result",
        "slow",
        "turn",
        "tx",
        "wake",
    )

    def __init__(self, envelope: Envelope, data: bytes, deadline: float | None = None) -> None:
        self.envelope = envelope
        self.data = data
        self.deadline = deadline
        self.tx: Transaction | None = None
        self.piped = False
        self.owner = True
        self.result: SendResult | None = None
        self.error: BaseException | None = None
        self.slow = False
        self.replies: list[Reply] = []
        self.expected = 0
        self.future: asyncio.Future[None] | None = None
        self.wake: HandOff | None = None
        self.turn: object = None

    def gone(self) -> bool:
        """Whether the sender stopped waiting (it was cancelled) before being woken."""
        future = self.future
        if future is not None:
            return future.done()
        wake = self.wake  # still waiting in the pool
        return wake is not None and wake.gave_up()


def eligible(tx: Transaction) -> bool:
    """Whether ``tx`` can run in a pipeline (its envelope goes in one flight)."""
    return tx.pipelined and (tx.data_in_flight or tx.use_bdat)


def _replies_to_envelope(tx: Transaction) -> int:
    """RSET when it opens the flight, MAIL, each RCPT, and DATA or BDAT when in the flight."""
    return tx.rset_first + 1 + len(tx.rcpts) + (tx.data_in_flight or tx.content_in_flight)


class Pipeline:
    """Runs the mail transactions of one asyncio connection from its callbacks.

    Created by :meth:`for_client` for a connected client; the pool keeps one
    per connection.

    Args:
        client: the connected client.
        stream: its stream.
        byte_stream: the asyncio byte stream under it.
        hand_off: called when a message's content is about to be written; it
            may return the ticket of the next sender (its transaction
            prepared), whose envelope then goes in the same write and which
            from then on owns the connection.
    """

    __slots__ = (
        "_byte_stream",
        "_client",
        "_content",
        "_core",
        "_data_first",
        "_data_timeout",
        "_debug",
        "_loop",
        "_next",
        "_parked",
        "_queue",
        "_require_all",
        "_settled",
        "_since",
        "_stream",
        "_timeout",
        "_timer",
        "closing",
        "hand_off",
    )

    def __init__(
        self,
        client: SmtpClient,
        stream: SmtpStream,
        byte_stream: _AsyncioByteStream,
        hand_off: Callable[[], Ticket | None] | None = None,
    ) -> None:
        self._client = client
        self._stream = stream
        self._core = stream.conn
        self._byte_stream = byte_stream
        self._loop = asyncio.get_running_loop()
        self._queue: deque[Ticket] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._content = 0  # transactions whose content is written, final reply owed
        self._settled: asyncio.Future[None] | None = None
        # At the end of a chain of flights: the last transaction, done, whose
        # sender is woken once the next waiting sender (if any) took over the
        # connection, and that next sender, whose flight goes out next.
        self._parked: Ticket | None = None
        self._next: Ticket | None = None
        settings = client.settings
        self._timeout = settings.timeout
        self._data_timeout = settings.data_timeout
        self._require_all = settings.require_all_recipients
        # Whether writing content can bring the timer's due time forward.
        self._data_first = self._data_timeout < self._timeout
        self.closing = False
        self.hand_off = hand_off
        # Whether the transcript is on (DEBUG): looked up as each send starts.
        # It only adds log lines; the path is the same.
        self._debug = stream.refresh_debug()

    @classmethod
    def for_client(
        cls, client: SmtpClient, hand_off: Callable[[], Ticket | None] | None = None
    ) -> Pipeline | None:
        """A pipeline for ``client``, or None when its connection cannot have one.

        Only a connection on asyncio's own transports can (plain TCP, or TLS
        through the event loop); trio keeps the task-driven path.
        """
        stream = client.stream
        if stream is None:
            return None
        byte_stream = stream.asyncio_byte_stream
        if byte_stream is None:
            return None
        return cls(client, stream, byte_stream, hand_off)

    # ------------------------------------------------------------------ state

    @property
    def busy(self) -> bool:
        """Whether transactions are in flight."""
        return bool(self._queue) or self._parked is not None or self._next is not None

    def ready(self) -> bool:
        """Whether a new transaction can start now (idle and usable)."""
        return (
            not self._queue
            and self._next is None
            and self._parked is None
            and not self.closing
            and self._client.is_usable
        )

    # ------------------------------------------------------------------ starting

    def start(self, ticket: Ticket) -> None:
        """Write the envelope of ``ticket`` (its ``tx`` prepared and :func:`eligible`).

        The sender then awaits ``ticket.future``.

        Raises:
            ServerDisconnected: the server closed the connection while it was
                idle (nothing was sent).
            RemoteProtocolError: it sent something unasked while idle.
        """
        stream = self._stream
        protocol = self._byte_stream.protocol
        core = self._core
        if protocol.chunks:
            # Whatever arrived while idle goes to the core, which tells a 421
            # or unsolicited bytes apart when the envelope is encoded.
            for chunk in protocol.chunks:
                core.receive_data(chunk)
            protocol.chunks.clear()
            protocol.buffered = 0
            if protocol.reading_paused:
                protocol.reading_paused = False
                self._byte_stream.transport.resume_reading()
        tx = ticket.tx
        assert tx is not None
        self._debug = stream.refresh_debug()
        out = self._client.encode_envelope(tx)
        if protocol.eof:
            stream.broken = True
            raise ServerDisconnected(f"{stream.peer} closed the connection while it was idle")
        if not self._writable():
            stream.broken = True
            raise ServerDisconnected(f"the connection to {stream.peer} is closed")
        ticket.piped = True
        ticket.expected = _replies_to_envelope(tx)
        ticket.future = self._loop.create_future()
        protocol.pipe = self
        self._queue.append(ticket)
        if not tx.content_in_flight:
            self._byte_stream.transport.write(out)
            self._progress()
            return
        try:
            out, flights = self._chain(ticket, out)
        except ProtocolError as exc:
            self._fail(str(exc), protocol_error=exc)
            return
        self._content += 1 + flights
        self._byte_stream.transport.write(out)
        self._client.content_written(self._loop.time())
        self._progress()

    def _writable(self) -> bool:
        byte_stream = self._byte_stream
        return not (byte_stream.protocol.lost or byte_stream.transport.is_closing())

    def _progress(self) -> None:
        self._since = self._loop.time()
        self._arm()

    def _arm(self) -> None:
        """Make sure the timer fires by the earliest limit now in force.

        A later limit needs nothing: the timer, firing early, sets itself
        again for what is due then.
        """
        due = self._due()
        timer = self._timer
        if timer is None:
            self._timer = self._loop.call_at(due, self._on_timer)
        elif due < timer.when():
            timer.cancel()
            self._timer = self._loop.call_at(due, self._on_timer)

    # ------------------------------------------------------------------ callbacks

    def data_received(self, data: bytes) -> None:
        """Feed what the socket delivered to the core and act on each reply."""
        core = self._core
        queue = self._queue
        self._since = self._loop.time()
        protocol = self._byte_stream.protocol
        try:
            core.receive_data(data)
            next_event = core.next_event
            while queue:
                reply = next_event()
                if reply is NEED_DATA:
                    break
                if self._debug:
                    self._stream.log_reply(reply)
                ticket = queue[0]
                tx = ticket.tx
                assert tx is not None
                if tx.stage is _CONTENT:
                    if tx.content_in_flight:
                        replies = ticket.replies
                        replies.append(reply)
                        if len(replies) == ticket.expected or reply.code == 421:
                            self._flight_done(ticket, tx, replies)
                    else:
                        self._final(ticket, tx, reply)
                    continue
                replies = ticket.replies
                replies.append(reply)
                if reply.code == 421:
                    # The server is closing: no further reply will come.
                    self._hand_back(ticket, replies)
                elif len(replies) == ticket.expected:
                    self._envelope_done(ticket, tx, replies)
                if protocol.pipe is not self:
                    break  # detached: the rest is read by its sender
        except ProtocolError as exc:
            self._fail(str(exc), protocol_error=exc)

    def connection_lost(self, eof: bool) -> None:
        """The server closed the connection (``eof``) or it broke."""
        self._stream.broken = True
        if self._queue:
            head = self._queue[0]
            what = self._waiting_for(head)
            if eof:
                self._fail(f"{self._stream.peer} closed the connection while we waited for {what}")
            else:
                self._fail(f"reading {what} from {self._stream.peer} failed: the connection broke")
        elif self._parked is not None or self._next is not None:
            self._fail(f"{self._stream.peer} closed the connection")

    def writing_resumed(self) -> None:
        """The server is reading again: that counts as progress."""
        if self._queue:
            self._since = self._loop.time()

    # ------------------------------------------------------------------ replies

    def _final(self, ticket: Ticket, tx: Transaction, reply: Reply) -> None:
        """The final reply of the head transaction."""
        self._queue.popleft()
        self._content -= 1
        outcome = self._client.final_outcome(tx, reply, self._since)
        if isinstance(outcome, SmtpReplyError):
            ticket.error = outcome
            if reply.code == 421:
                self._settle(ticket)
                self._fail(f"{self._stream.peer} closed the connection (421)", unprocessed=True)
                return
        else:
            ticket.result = outcome
        self._settle(ticket)

    def _flight_done(self, ticket: Ticket, tx: Transaction, replies: list[Reply]) -> None:
        """Every reply of the head transaction, whose content went with its envelope."""
        self._queue.popleft()
        self._content -= 1
        outcome = self._client.flight_outcome(tx, replies, self._since)
        if isinstance(outcome, SendResult):
            ticket.result = outcome
        else:
            ticket.error = outcome
        if replies[-1].code == 421:
            self._settle(ticket)
            self._fail(f"{self._stream.peer} closed the connection (421)", unprocessed=True)
        elif self._stream.broken:
            self._settle(ticket)
            self._fail(f"{self._stream.peer} answered a transaction inconsistently")
        elif not self._queue and ticket.owner and self.hand_off is not None:
            # The end of a chain: rather than have the sender give the
            # connection back, let the senders woken by this read queue their
            # next messages (next turn of the loop) and take it over from here.
            self._parked = ticket
            self._loop.call_soon(self._resume)
        else:
            self._settle(ticket)

    def _resume(self) -> None:
        """Hand the idle connection to the first waiting sender, if any, then wake the last one."""
        ticket = self._parked
        if ticket is None:
            return  # the connection failed meanwhile: the ticket is settled
        self._parked = None
        following = None
        if not self.closing and not ticket.gone() and self._client.is_usable and self._writable():
            hand_off = self.hand_off
            if hand_off is not None:
                following = hand_off()
        if following is None:
            self._settle(ticket)
            return
        _pass_connection(ticket, following)
        self._next = following
        self._settle(ticket)
        # The flight goes on the next turn, after the sender woken just now
        # queued its next message, which can then be chained behind it.
        self._loop.call_soon(self._open, following)

    def _open(self, ticket: Ticket) -> None:
        """Write the flight of the sender that took the connection over (and chain more)."""
        if self._next is not ticket:
            return  # the connection failed meanwhile: the ticket is settled
        self._next = None
        queue = self._queue
        queue.append(ticket)
        if self.closing:
            self._fail("the connection was closed before the message was sent")
            return
        if not self._writable():
            self._fail(f"writing to {self._stream.peer} failed: the connection is closed")
            return
        tx = ticket.tx
        assert tx is not None
        client = self._client
        flights = 0
        try:
            out = client.encode_envelope(tx)
            ticket.expected = _replies_to_envelope(tx)
            if tx.content_in_flight:
                out, flights = self._chain(ticket, out)
                flights += 1
        except ProtocolError as exc:
            self._fail(str(exc), protocol_error=exc)
            return
        except SmtpError as exc:  # the server said something (a 421) while idle
            self._fail(str(exc))
            return
        self._content += flights
        self._byte_stream.transport.write(out)
        now = self._since = self._loop.time()
        if flights:
            client.content_written(now)
        self._arm()

    def _hand_back(self, ticket: Ticket, replies: list[Reply]) -> None:
        """Give a refused envelope back to its sender (RSET, the typed error)."""
        self._queue.popleft()
        self._detach()
        self._stream.pushback.extend(replies)
        ticket.slow = True
        self._settle(ticket)

    def _envelope_done(self, ticket: Ticket, tx: Transaction, replies: list[Reply]) -> None:
        first = tx.rset_first  # the reply to RSET, when the flight opened with it, comes first
        go = replies[first].code == 250
        recipients = tx.recipients
        results = []
        accepted = 0
        for index, recipient in enumerate(recipients, first + 1):
            reply = replies[index]
            ok = reply.code in _ACCEPTED
            accepted += ok
            results.append(new_recipient_result(recipient, ok, reply))
        if not accepted or (self._require_all and accepted != len(recipients)):
            go = False
        if tx.data_in_flight and replies[-1].code != 354:
            go = False
        if not go:
            # A refusal: the sender finishes it on the task-driven path,
            # reading what follows itself.
            self._hand_back(ticket, replies)
            return
        tx.results = results
        tx.stage = TransactionStage.ACCEPTING
        # The content goes out on the next turn of the event loop, after the
        # senders woken by this read: one of them may send again at once,
        # and its envelope can then go in the same write (chaining).
        self._loop.call_soon(self._write_content, ticket)

    def _write_content(self, ticket: Ticket) -> None:
        """Write the content of the head transaction, and chain the next sender's envelope."""
        queue = self._queue
        tx = ticket.tx
        assert tx is not None
        if not queue or queue[0] is not ticket or tx.stage is not TransactionStage.ACCEPTING:
            return  # the connection failed meanwhile: the ticket is settled
        if self.closing:
            # The connection is being closed under a sender that gave up:
            # its content must not go out.
            self._fail("the connection was closed before the message was sent")
            return
        if not self._writable():
            self._fail(f"writing to {self._stream.peer} failed: the connection is closed")
            return
        client = self._client
        flights = 0
        try:
            out = client.encode_content(tx)
            following, out, in_flight = self._follow(ticket, out)
            if following is not None and in_flight:
                out, flights = self._chain(following, out)
                flights += 1
        except ProtocolError as exc:
            self._fail(str(exc), protocol_error=exc)
            return
        self._content += 1 + flights
        self._byte_stream.transport.write(out)
        now = self._since = self._loop.time()
        client.content_written(now)
        if self._timer is None or self._data_first or queue[-1].deadline is not None:
            self._arm()

    def _chain(self, ticket: Ticket, out: bytes) -> tuple[bytes, int]:
        """Append the flights of the senders waiting for the connection to ``out``.

        ``out`` ends with the flight of ``ticket``, whose content went with
        its envelope (``content_in_flight``): nothing need be answered before
        the next sender's flight follows. The first waiter's envelope goes
        next; while the last one chained had its content in its flight too
        and the write is shorter than ``PIPELINED_BDAT_LIMIT``, the next
        waiter's follows. Returns the bytes and how many chained transactions
        have their content in them.
        """
        flights = 0
        last = ticket
        while len(out) < PIPELINED_BDAT_LIMIT:
            following, out, in_flight = self._follow(last, out)
            if following is None or not in_flight:
                return out, flights
            flights += 1
            last = following
        return out, flights

    def _follow(self, last: Ticket, out: bytes) -> tuple[Ticket | None, bytes, bool]:
        """Pass the connection from ``last`` to the first waiting sender, if any.

        The sender's envelope is appended to ``out`` (written after
        ``last``'s content or flight). Returns that sender (None when nobody
        waits), the bytes, and whether its content went in its flight too.
        """
        hand_off = self.hand_off
        following = hand_off() if hand_off is not None else None
        if following is None:
            return None, out, False
        # Queued first, so that it is settled whatever happens next.
        self._queue.append(following)
        _pass_connection(last, following)
        ftx = following.tx
        assert ftx is not None
        out += self._client.encode_envelope(ftx)
        following.expected = _replies_to_envelope(ftx)
        return following, out, ftx.content_in_flight

    # ------------------------------------------------------------------ endings

    def _settle(self, ticket: Ticket) -> None:
        wake = ticket.wake
        if wake is not None:
            ticket.wake = None
            wake()
        else:
            future = ticket.future
            if future is not None and not future.done():
                future.set_result(None)
        if not self._queue and self._next is None:
            self._detach()

    def _detach(self) -> None:
        protocol = self._byte_stream.protocol
        if protocol.pipe is self:
            protocol.pipe = None
        if self._content == 0:
            settled = self._settled
            if settled is not None and not settled.done():
                settled.set_result(None)

    def _waiting_for(self, ticket: Ticket) -> str:
        tx = ticket.tx
        assert tx is not None
        if tx.stage is _CONTENT and not tx.content_in_flight:
            return "the reply to BDAT" if tx.use_bdat else "the reply to the end of data"
        count = len(ticket.replies) - tx.rset_first
        if count < 0:
            return "the reply to RSET"
        if count == 0:
            return "the reply to MAIL"
        if count <= len(tx.rcpts):
            return "the reply to RCPT"
        return "the reply to BDAT" if tx.use_bdat else "the reply to DATA"

    def _fail(
        self,
        message: str,
        *,
        timeout: bool = False,
        protocol_error: ProtocolError | None = None,
        unprocessed: bool = False,
    ) -> None:
        """End every transaction in flight and close the connection.

        With ``unprocessed`` the server said it is closing (421): it read
        none of the transactions still queued, so none was delivered.
        """
        stream = self._stream
        stream.broken = True
        queue = self._queue
        while queue:
            ticket = queue.popleft()
            tx = ticket.tx
            assert tx is not None
            error: BaseException
            if tx.content_sent and tx.stage is _CONTENT:
                stream.unacknowledged_content -= 1
                if unprocessed:
                    tx.content_sent = False
                    error = ServerDisconnected(
                        f"{message} before it read this message; nothing was delivered"
                    )
                else:
                    error = OutcomeUnknown(
                        f"{message}; the message may or may not have been accepted "
                        "(do not retry blindly)"
                    )
                    error.__cause__ = protocol_error
            elif protocol_error is not None:
                error = protocol_error
            elif timeout:
                error = SmtpTimeoutError(message)
            else:
                error = ServerDisconnected(message)
            tx.stage = TransactionStage.FAILED
            ticket.error = error
            self._settle(ticket)
        parked, self._parked = self._parked, None
        if parked is not None:
            self._settle(parked)  # done before the failure: its outcome stands
        following, self._next = self._next, None
        if following is not None:
            # It took the connection over; nothing of it was written.
            ftx = following.tx
            assert ftx is not None
            ftx.stage = TransactionStage.FAILED
            if protocol_error is not None:
                following.error = protocol_error
            elif timeout:
                following.error = SmtpTimeoutError(message)
            else:
                following.error = ServerDisconnected(message)
            self._settle(following)
        self._content = 0
        self._detach()
        stream.close_now()

    # ------------------------------------------------------------------ time

    def _due(self) -> float:
        limit = self._data_timeout if self._content else self._timeout
        due = self._since + limit
        for ticket in self._queue:
            deadline = ticket.deadline
            if deadline is not None and deadline < due:
                due = deadline
        return due

    def _on_timer(self) -> None:
        self._timer = None
        if not self._queue:
            return
        now = self._loop.time()
        due = self._due()
        if now < due:
            self._timer = self._loop.call_at(due, self._on_timer)
            return
        head = self._queue[0]
        what = self._waiting_for(head)
        peer = self._stream.peer
        if any(t.deadline is not None and t.deadline <= now for t in self._queue):
            message = f"the deadline passed while waiting for {what} from {peer}"
        else:
            limit = self._data_timeout if self._content else self._timeout
            message = f"timed out after {limit:g} s waiting for {what} from {peer}"
        self._fail(message, timeout=True)

    # ------------------------------------------------------------------ closing

    async def settle(self, limit: float) -> None:
        """Wait (at most ``limit`` s) until no message's final reply is owed.

        Sets :attr:`closing`: no further content is written and nothing more
        is chained; transactions still in their envelope are ended when the
        caller closes the connection.
        """
        self.closing = True
        if self._content == 0:
            return
        settled = self._settled = self._loop.create_future()
        timer = self._loop.call_later(limit, _resolve, settled)
        try:
            await settled
        finally:
            timer.cancel()
            self._settled = None

    def abort(self, message: str) -> None:
        """Fail whatever is still in flight and close the connection."""
        if self.busy:
            self._fail(message)

    def cancel_timer(self) -> None:
        """Drop the timer (the connection is closed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _pass_connection(last: Ticket, following: Ticket) -> None:
    """``following``'s sender owns the connection from now on; ``last``'s returns without it."""
    last.owner = False
    following.owner = True
    following.piped = True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def outcome_of(ticket: Ticket) -> SendResult:
    """The result of a finished piped ticket, or raise its error."""
    if ticket.error is not None:
        raise ticket.error
    assert ticket.result is not None
    return ticket.result
