"""The sans-IO mail transaction engine: transactions in, bytes out; bytes in, outcomes out.

A :class:`TransactionEngine` sits on a :class:`ClientConnection` whose session
is open (greeting, EHLO, STARTTLS and AUTH done). It is handed messages and
decides everything about their transactions, once, for every way of driving
a connection::

    engine = TransactionEngine(conn)
    tx = engine.prepare(envelope, data)      # checks only, nothing sent
    write(engine.start(tx))                  # MAIL, RCPT..., DATA (or BDAT LAST)
    engine.written()                         # the bytes were handed to the socket
    while not done:
        engine.receive_data(read())
        while (event := engine.next_event()) is not NEED_DATA:
            if isinstance(event, ContentReady):       # the go-ahead
                write(engine.send_content(event.tx)); engine.written()
            elif isinstance(event, TransactionDone):  # result or error
                ...
        write(engine.data_to_send())         # RSET after a refusal, lock-step commands

What it does:

- builds MAIL and RCPT from the envelope against the server's capabilities
  (SIZE, 8BITMIME, SMTPUTF8, DSN), or says why the message cannot go;
- writes each PIPELINING group as one flight: MAIL, every RCPT and DATA;
  with CHUNKING, a message of at most :data:`PIPELINED_BDAT_LIMIT` octets goes
  whole in its envelope's flight (``BDAT <n> LAST``), opened by RSET when the
  transaction before may still be open on the server; without PIPELINING,
  one command at a time;
- lets the driver chain the next transaction's envelope onto the end of the
  current content (RFC 2920): :meth:`start` may be called again as soon as
  :meth:`send_content` returned;
- turns the replies into one :class:`TransactionDone` per transaction, with a
  result for every recipient or the typed error; after a refusal in the
  envelope it ends the transaction itself (RSET, or an empty end of data
  when the server already said 354) before reporting it;
- in LMTP (a connection made with ``lmtp=True``), reads one reply per
  recipient accepted at RCPT after the content, in RCPT order, and gives each
  of those recipients its own outcome: a result when any was accepted, the
  typed error when every recipient was refused;
- after a 421 ends every transaction still queued (none of them was read by
  the server), and on an I/O failure (:meth:`fail`) every transaction in
  flight, with :class:`~lettre.errors.OutcomeUnknown` for those whose content
  was written and whose final reply is owed.

It never touches a socket or a clock.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from lettre.envelope import Envelope
from lettre.errors import (
    DataRefused,
    LettreError,
    LocalProtocolError,
    MessageTooLarge,
    OutcomeUnknown,
    ProtocolError,
    RecipientsRefused,
    SenderRefused,
    ServerDisconnected,
    SmtpError,
    SmtpReplyError,
    SmtpTimeoutError,
)
from lettre.protocol.commands import Bdat, Command, Data, EndOfData, MessageData, Rcpt, Rset
from lettre.protocol.connection import NEED_DATA, ClientConnection, NeedData
from lettre.protocol.mail import (
    PIPELINED_BDAT_LIMIT,
    Transaction,
    TransactionStage,
    nul_error,
    prepare_transaction,
)
from lettre.protocol.replies import Reply, queue_id_from_reply
from lettre.protocol.state import ClientState
from lettre.protocol.transcript import (
    command_transcript,
    content_transcript,
    envelope_transcript,
    reply_transcript,
)
from lettre.results import RecipientResult, SendResult

__all__ = [
    "PIPELINED_BDAT_LIMIT",
    "ContentReady",
    "Replied",
    "Transaction",
    "TransactionDone",
    "TransactionEngine",
    "TransactionStage",
    "nul_error",
]

_ACCEPTED = frozenset({250, 251})
_UNREAD = "before it read this message; nothing was delivered"
_CLOSING = 421
_DATA = Data()
_RSET = Rset()
_END_OF_DATA = EndOfData()


class _Step(enum.Enum):
    """What an owed reply answers, as the engine sees it."""

    RSET_FIRST = "RSET"  # the RSET opening a flight (the transaction before may be open)
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    FINAL = "final"  # the end of data, or BDAT LAST
    ABORT_END = "end of data"  # the empty end of data that ends a refused DATA
    ABORT_RSET = "RSET after a refusal"  # the RSET that ends a refused envelope
    COMMAND = "command"  # a command outside a transaction (EHLO, AUTH...), or the greeting
    LMTP_FINAL = "final (LMTP)"  # one of the replies to the end of an LMTP content
    CHUNK = "BDAT"  # a BDAT chunk of a streamed content, not the last


_VERBS = {step: "RSET" if "RSET" in step.value else step.value for step in _Step}
# The members as module constants: compared on every reply.
(
    _RSET_FIRST,
    _MAIL,
    _RCPT,
    _DATA_STEP,
    _FINAL,
    _ABORT_END,
    _ABORT_RSET,
    _COMMAND,
    _LMTP_FINAL,
    _CHUNK,
) = _Step


class ContentReady(NamedTuple):
    """The server accepted the envelope of ``tx``: its content may be sent.

    The driver calls :meth:`TransactionEngine.send_content` when it writes
    next (it may first wait for more envelopes to chain after it).
    """

    tx: Transaction
    """The transaction whose content may go."""


class Replied(NamedTuple):
    """The answer to a command sent with :meth:`TransactionEngine.command` (or the greeting).

    ``reply`` is the server's reply, or None when the connection failed first
    (``error`` says how).
    """

    reply: Reply | None
    """The reply, or None."""
    error: LettreError | None = None
    """Why no reply came (a timeout, a broken connection, a protocol error)."""


class TransactionDone(NamedTuple):
    """``tx`` is over: ``tx.outcome`` is its result, or the error to raise."""

    tx: Transaction
    """The transaction that is over."""


Event = ContentReady | TransactionDone | Replied


def _failure(message: str, timeout: bool, cause: ProtocolError | None) -> LettreError:
    """The error for a wait that an I/O failure ended (nothing of it was delivered)."""
    if cause is not None:
        return cause
    if timeout:
        return SmtpTimeoutError(message)
    return ServerDisconnected(message)


class TransactionEngine:
    """Mail transactions on one open SMTP (or LMTP) session, without I/O.

    Args:
        conn: the connection, its session open (capabilities known); LMTP
            when it was made with ``lmtp=True``.
        require_all_recipients: refuse the message (RSET, nothing sent) when
            any recipient is refused, not only when all are.
        peer: how error messages name the server ("host:port").
        transcript: called with each line of the DEBUG transcript of what the
            engine encodes (``"C: MAIL FROM:<a@example.com>"``; content by its
            size only), or None.
    """

    __slots__ = (
        "_accepting",
        "_conn",
        "_events",
        "_expect",
        "_final_step",
        "_outbox",
        "_peer",
        "_require_all",
        "_unwritten",
        "accepted",
        "broken",
        "content_owed",
        "replies",
        "started",
        "transcript",
    )

    def __init__(
        self,
        conn: ClientConnection,
        *,
        require_all_recipients: bool = False,
        peer: str = "the server",
        transcript: Callable[[str], None] | None = None,
    ) -> None:
        self._conn = conn
        # What the end of a content owes: one reply, or in LMTP one per recipient.
        self._final_step = _LMTP_FINAL if conn.lmtp else _FINAL
        self._require_all = require_all_recipients
        self._peer = peer
        self.transcript = transcript
        self._expect: deque[tuple[Transaction | None, _Step]] = deque()
        self._events: deque[Event] = deque()
        self._outbox: list[bytes] = []
        self._unwritten: list[Transaction] = []
        # Go-ahead given (ContentReady), content not sent yet.
        self._accepting: list[Transaction] = []
        self.broken = False
        """Set once the connection may carry no more transactions (see :attr:`usable`)."""
        self.content_owed = 0
        """Transactions whose content was written and whose final reply is owed."""
        self.started = 0
        """Transactions started on this connection."""
        self.replies = 0
        """Replies read (a driver measures progress by it: a reply, not a byte)."""
        self.accepted = 0
        """Transactions the server accepted on this connection."""

    def __repr__(self) -> str:
        return f"<TransactionEngine in_flight={self.in_flight} usable={self.usable}>"

    # ------------------------------------------------------------------ state

    @property
    def conn(self) -> ClientConnection:
        """The connection under the engine."""
        return self._conn

    @property
    def in_flight(self) -> int:
        """How many transactions were started and are not over yet."""
        return len(
            {id(tx) for tx, _ in self._expect if tx is not None}
            | {id(e.tx) for e in self._events if not isinstance(e, Replied)}
            | {id(tx) for tx in self._accepting}
        )

    @property
    def idle(self) -> bool:
        """Whether no reply is owed, nothing is to be written and no event is pending."""
        return not (self._expect or self._events or self._outbox or self._accepting)

    @property
    def usable(self) -> bool:
        """Whether more transactions may go on this connection.

        False after a 421, a protocol error, an I/O failure (:meth:`fail`), or
        a refusal that could only be ended by closing the connection.
        """
        return not self.broken and self._conn.state not in (
            ClientState.CLOSED,
            ClientState.ERROR,
        )

    def waiting_for(self) -> str:
        """What the oldest owed reply answers, for error messages ("the reply to RCPT")."""
        if not self._expect:
            return "the server"
        tx, step = self._expect[0]
        if tx is None:
            return "the reply"
        if step is _Step.FINAL or step is _LMTP_FINAL:
            return "the reply to BDAT" if tx.use_bdat else "the reply to the end of data"
        if step is _Step.ABORT_END:
            return "the reply to the end of data"
        return f"the reply to {_VERBS[step]}"

    # ------------------------------------------------------------------ preparing

    def prepare(self, envelope: Envelope, data: bytes) -> Transaction:
        """Check a message against the server's capabilities and build its transaction.

        Nothing is sent; :func:`~lettre.protocol.mail.prepare_transaction`
        says what is checked and what it raises.
        """
        return prepare_transaction(
            envelope,
            data,
            self._conn.capabilities,
            require_all_recipients=self._require_all,
            peer=self._peer,
        )

    def prepare_streamed(self, envelope: Envelope, known: bytes, size: int | None) -> Transaction:
        """Like :meth:`prepare`, for a content read while it is sent.

        Its content goes chunk by chunk after the go-ahead
        (:meth:`send_chunk`, then :meth:`end_content`), never in the
        envelope's flight.

        Args:
            envelope: the reverse path and the recipients.
            known: every byte of the content known now, joined (what is read
                later is base64, ASCII without NUL): the NUL, 8-bit and UTF-8
                header checks look at these.
            size: the content's total size in octets, when known (SIZE).

        Raises:
            MessageTooLarge: ``size`` is larger than the server's SIZE.
            LettreError: the errors of :meth:`prepare`.
        """
        tx = self.prepare(envelope, known)
        caps = self._conn.capabilities
        assert caps is not None  # prepare checked it
        limit = caps.size
        if limit and size is not None and size > limit:
            raise MessageTooLarge(
                f"the message is {size} bytes; {self._peer} accepts at most {limit}"
            )
        if limit is not None:
            tx.mail = dataclasses.replace(tx.mail, size=size)
        tx.content_in_flight = False
        tx.data = b""
        return tx

    # ------------------------------------------------------------------ sending

    def start(self, tx: Transaction) -> bytes:
        """The first flight of ``tx``: MAIL, and with PIPELINING every RCPT (and DATA).

        With ``tx.content_in_flight`` the flight also holds the content as
        one ``BDAT <n> LAST``. May follow :meth:`send_content` of another
        transaction in the same write (chaining).

        Raises:
            LocalProtocolError: ``tx`` was started before, or the connection
                cannot take a new transaction now.
            ServerDisconnected: the server closed the session (421) while the
                connection was idle; nothing was sent.
            RemoteProtocolError: the server sent something unasked while idle.
        """
        if tx.stage is not TransactionStage.PREPARED:
            raise LocalProtocolError("this transaction was already started")
        conn = self._conn
        if not self._expect:
            self._check_idle()
        expect = self._expect
        try:
            if not tx.pipelined:
                out = conn.send(tx.mail)
                expect.append((tx, _Step.MAIL))
            elif not tx.use_bdat:
                out = conn.send_envelope(tx.mail, tx.rcpts, tx.data_in_flight)
                expect.append((tx, _Step.MAIL))
                expect.extend([(tx, _Step.RCPT)] * len(tx.rcpts))
                if tx.data_in_flight:
                    expect.append((tx, _Step.DATA))
            else:
                out = b""
                if conn.needs_rset:
                    out = conn.send(_RSET)
                    tx.rset_first = True
                    expect.append((tx, _Step.RSET_FIRST))
                out += conn.send_envelope(tx.mail, tx.rcpts, False)
                expect.append((tx, _Step.MAIL))
                expect.extend([(tx, _Step.RCPT)] * len(tx.rcpts))
                if tx.content_in_flight:
                    out += conn.send(Bdat(tx.data, last=True))
                    expect.append((tx, self._final_step))
                    self._unwritten.append(tx)
        except ProtocolError:
            self.broken = True
            raise
        tx.stage = TransactionStage.ENVELOPE
        self.started += 1
        if self.transcript is not None:
            self._log(envelope_transcript(tx))
        return out

    def send_content(self, tx: Transaction) -> bytes:
        """The content of ``tx`` and the end of data (DATA), or one ``BDAT <n> LAST``.

        Call after :class:`ContentReady` for ``tx``; :meth:`written` once the
        bytes are handed to the socket.

        Raises:
            LocalProtocolError: the envelope of ``tx`` was not accepted.
        """
        return self._last_of_content(tx, streamed=False)

    def send_chunk(self, tx: Transaction, data: bytes) -> bytes:
        """One chunk of a content read while sending (see :meth:`prepare_streamed`).

        Call after :class:`ContentReady` for ``tx``, for each chunk in turn,
        then :meth:`end_content`. With DATA the chunk goes through the same
        incremental dot-stuffing encoder as any content; with CHUNKING it is
        a ``BDAT <n>`` whose reply is owed (a refusal ends the transaction
        with :class:`~lettre.errors.DataRefused` and the connection).

        Raises:
            LocalProtocolError: the envelope of ``tx`` was not accepted, or
                the transaction already ended.
        """
        if tx.stage is not TransactionStage.ACCEPTING:
            raise LocalProtocolError("the content may only follow an accepted envelope")
        try:
            if tx.use_bdat:
                out = self._conn.send(Bdat(data))
                self._expect.append((tx, _CHUNK))
            else:
                out = self._conn.send(MessageData(data))
        except ProtocolError:
            self.broken = True
            raise
        if self.transcript is not None:
            verb = "BDAT " if tx.use_bdat else ""
            self._log([f"C: {verb}<{len(data)} bytes of message content>"])
        return out

    def end_content(self, tx: Transaction) -> bytes:
        """The end of a content sent with :meth:`send_chunk`: the end of data, or ``BDAT 0 LAST``.

        From here it is like :meth:`send_content`: :meth:`written` once the
        bytes are handed to the socket, then the final reply.

        Raises:
            LocalProtocolError: as for :meth:`send_chunk`.
        """
        return self._last_of_content(tx, streamed=True)

    def _last_of_content(self, tx: Transaction, *, streamed: bool) -> bytes:
        """The content's last bytes (all of it, unless ``streamed``); its final reply is owed."""
        if tx.stage is not TransactionStage.ACCEPTING:
            raise LocalProtocolError("the content may only follow an accepted envelope")
        try:
            if tx.use_bdat:
                out = self._conn.send(Bdat(b"" if streamed else tx.data, last=True))
            elif streamed:
                out = self._conn.send(_END_OF_DATA)
            else:
                out = self._conn.send_content(tx.data)
        except ProtocolError:
            self.broken = True
            raise
        self._accepting.remove(tx)
        self._expect.append((tx, self._final_step))
        self._unwritten.append(tx)
        if self.transcript is not None:
            if not streamed:
                self._log(content_transcript(tx))
            else:
                self._log(["C: BDAT <0 bytes of message content> LAST" if tx.use_bdat else "C: ."])
        return out

    def written(self) -> None:
        """Record that everything encoded so far was handed to the socket.

        Every transaction whose content was encoded moves to the CONTENT
        stage: from now until its final reply, a failure leaves its outcome
        unknown.
        """
        unwritten = self._unwritten
        if unwritten:
            for tx in unwritten:
                if tx.outcome is None:
                    tx.stage = TransactionStage.CONTENT
                    tx.content_sent = True
                    self.content_owed += 1
            unwritten.clear()

    def data_to_send(self) -> bytes:
        """The bytes the engine itself needs written now (lock-step commands, RSET), or ``b""``."""
        outbox = self._outbox
        if not outbox:
            return b""
        out = b"".join(outbox)
        outbox.clear()
        return out

    def _send(self, tx: Transaction, command: Rcpt | Data | Rset | EndOfData, step: _Step) -> None:
        """Queue one command the engine sends on its own (after a reply)."""
        self._outbox.append(self._conn.send(command))
        self._expect.append((tx, step))
        if self.transcript is not None:
            self._log(command_transcript(command, self._outbox[-1]))

    def _check_idle(self) -> None:
        """Before a new flight: did the server say goodbye (421) while we were idle?"""
        conn = self._conn
        try:
            event = NEED_DATA if conn.state is ClientState.CLOSED else conn.next_event()
        except ProtocolError:
            self.broken = True
            raise
        if event is not NEED_DATA or conn.state is ClientState.CLOSED:
            self.broken = True
            raise ServerDisconnected(f"{self._peer} closed the connection while it was idle")

    # ------------------------------------------------------------------ commands

    def command(self, command: Command) -> bytes:
        """The bytes of one command outside a mail transaction (EHLO, AUTH, NOOP, QUIT...).

        Its reply comes as a :class:`Replied` event, in order.

        Raises:
            LocalProtocolError: the command may not be sent now.
            ServerDisconnected: the server closed the session (421) while the
                connection was idle; nothing was sent.
            RemoteProtocolError: the server sent something unasked while idle.
        """
        if not self._expect:
            self._check_idle()
        try:
            out = self._conn.send(command)
        except ProtocolError:
            self.broken = True
            raise
        self._expect.append((None, _COMMAND))
        if self.transcript is not None:
            self._log(command_transcript(command, out))
        return out

    def expect_reply(self) -> None:
        """Wait for a reply no command asked for here: the greeting (a :class:`Replied` event)."""
        self._expect.append((None, _COMMAND))

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the server (``b""`` at end of file); see ``ClientConnection``."""
        self._conn.receive_data(data)

    def next_event(self) -> Event | NeedData:
        """The next event, or :data:`NEED_DATA` when more bytes must be read first.

        Raises:
            RemoteProtocolError: the server broke the protocol; call
                :meth:`fail` with it to end the transactions in flight.
        """
        events = self._events
        if events:
            return events.popleft()
        expect = self._expect
        next_reply = self._conn.next_event
        while expect:
            try:
                reply = next_reply()
            except ProtocolError:
                self.broken = True
                raise
            if reply is NEED_DATA:
                return NEED_DATA
            self.replies += 1
            if self.transcript is not None:
                self._log(reply_transcript(reply))
            if reply.code == _CLOSING:
                self._closing(reply)
                return events.popleft()
            # What the reply does, by what it answers (most often a RCPT).
            tx, step = expect.popleft()
            if tx is None:
                events.append(Replied(reply))
            elif step is _RCPT:
                results = tx.results
                accepted = reply.code in _ACCEPTED
                tx._accepted += accepted
                results.append(RecipientResult(tx.recipients[len(results)], accepted, reply))
                if len(results) == len(tx.rcpts):
                    if not tx.data_in_flight and not tx.content_in_flight:
                        self._envelope_done(tx)
                elif not tx.pipelined:
                    self._send(tx, tx.rcpts[len(results)], _RCPT)
            elif step is _MAIL:
                tx._mail_reply = reply
                if not tx.pipelined:
                    if reply.code != 250:
                        self._refuse(tx, self._refusal(reply, SenderRefused, "MAIL"))
                    else:
                        self._send(tx, tx.rcpts[0], _RCPT)
            elif step is _FINAL:
                if tx.content_in_flight:
                    self._flight_done(tx, reply)
                else:
                    self._final(tx, reply)
            elif step is _DATA_STEP:
                tx._data_reply = reply
                if tx.data_in_flight:
                    self._envelope_done(tx)
                elif reply.code == 354:
                    self._go(tx)
                else:
                    self._refuse(tx, self._refusal(reply, DataRefused, "DATA"))
            elif step is _ABORT_END:
                self._send(tx, _RSET, _ABORT_RSET)
            elif step is _ABORT_RSET:
                if reply.code != 250:
                    self.broken = True
                self._done(tx, tx._error)
            elif step is _LMTP_FINAL:
                self._lmtp_final(tx, reply)
            elif step is _CHUNK and reply.code != 250 and tx.outcome is None:
                # The chunks written after this one are refused too: the
                # connection is dropped rather than answered chunk by chunk.
                self.broken = True
                if tx in self._accepting:
                    self._accepting.remove(tx)
                self._done(tx, self._refusal(reply, DataRefused, "BDAT"))
            # _RSET_FIRST: the reply to MAIL tells what matters.
            if events:
                return events.popleft()
        return NEED_DATA

    def _envelope_done(self, tx: Transaction) -> None:
        """Every reply to the envelope is in (without the content): go on, or end it."""
        mail = tx._mail_reply
        assert mail is not None
        data = tx._data_reply
        if mail.code != 250:
            self._refuse(tx, self._refusal(mail, SenderRefused, "MAIL"), data)
            return
        results = tx.results
        refused = len(results) - tx._accepted
        if refused == len(results) or (refused and self._require_all):
            self._refuse(tx, self._recipients_refused(tx, results), data)
            return
        if tx.use_bdat:
            self._go(tx)
        elif data is None:
            self._send(tx, _DATA, _Step.DATA)
        elif data.code == 354:
            self._go(tx)
        else:
            self._refuse(tx, self._refusal(data, DataRefused, "DATA"), data)

    def _go(self, tx: Transaction) -> None:
        tx.stage = TransactionStage.ACCEPTING
        self._accepting.append(tx)
        self._events.append(ContentReady(tx))

    def _refuse(self, tx: Transaction, error: SmtpError, data: Reply | None = None) -> None:
        """End a refused envelope so the connection can carry the next transaction."""
        tx.stage = TransactionStage.FAILED
        tx._error = error
        if data is not None and data.code == 354:
            if any(r.accepted for r in tx.results):
                # The server would deliver whatever ends this DATA: the
                # connection is dropped instead of sending a message nobody
                # asked for.
                self.broken = True
                self._done(tx, error)
                return
            # No valid recipient: an empty message goes nowhere (RFC 2920 3.1).
            self._send(tx, _END_OF_DATA, _Step.ABORT_END)
            return
        self._send(tx, _RSET, _Step.ABORT_RSET)

    def _final(self, tx: Transaction, reply: Reply) -> None:
        """The reply to the end of data (or BDAT LAST) of a go-ahead transaction."""
        self.content_owed -= tx.content_sent
        tx.reply = reply
        if reply.code != 250:
            self._done(tx, self._refusal(reply, DataRefused, "BDAT" if tx.use_bdat else "DATA"))
            return
        self.accepted += 1
        self._done(tx, SendResult(tuple(tx.results), None, queue_id_from_reply(reply), reply))

    def _flight_done(self, tx: Transaction, last: Reply) -> None:
        """Every reply of a transaction whose content went with its envelope."""
        self.content_owed -= tx.content_sent
        tx.reply = last
        mail = tx._mail_reply
        assert mail is not None
        results = tx.results
        accepted = sum(r.accepted for r in results)
        if mail.code != 250:
            if last.code == 250:
                self.broken = True
                self._done(
                    tx,
                    OutcomeUnknown(
                        f"{self._peer} refused MAIL ({mail.code} {mail.text}) but accepted the "
                        f"content ({last.code} {last.text}); the message may or may not have "
                        "been delivered (do not retry blindly)"
                    ),
                )
                return
            tx.content_sent = False
            self._done(tx, self._refusal(mail, SenderRefused, "MAIL"))
            return
        if not accepted:
            if last.code != 250:
                tx.content_sent = False
            self._done(tx, self._recipients_refused(tx, results))
            return
        if last.code != 250:
            self._done(tx, self._refusal(last, DataRefused, "BDAT"))
            return
        self.accepted += 1
        self._done(tx, SendResult(tuple(results), None, queue_id_from_reply(last), last))

    def _lmtp_final(self, tx: Transaction, reply: Reply, *, closing: bool = False) -> None:
        """One of the replies to the end of an LMTP content: one per recipient accepted at RCPT.

        The RCPT replies are all in by now (they come first). A 421
        (``closing``) answers for every recipient whose reply is still owed.
        """
        finals = tx._finals
        if finals is None:
            finals = tx._finals = []
            tx._due = sum(1 for r in tx.results if r.reply is not None and r.reply.code < 300)
        finals.append(reply)
        if closing:
            finals.extend([reply] * (tx._due - len(finals)))
        elif len(finals) < tx._due:
            self._expect.appendleft((tx, _LMTP_FINAL))
            return
        mail = tx._mail_reply
        assert mail is not None
        if not tx._due or mail.code != 250:
            # Nothing was accepted (BDAT LAST went in the envelope's flight): one
            # reply, read as in SMTP.
            self._flight_done(tx, reply)
            return
        self.content_owed -= tx.content_sent
        results = tx.results
        replies = iter(finals)
        for index, result in enumerate(results):
            if result.reply is not None and result.reply.code < 300:
                final = next(replies)
                results[index] = RecipientResult(result.recipient, final.code == 250, final)
        first = next((r.reply for r in results if r.accepted), None)
        if first is None:
            tx.reply = finals[0]
            command = "BDAT" if tx.use_bdat else "DATA"
            self._done(tx, self._recipients_refused(tx, results, command))
            return
        tx.reply = first
        self.accepted += 1
        self._done(tx, SendResult(tuple(results), None, queue_id_from_reply(first), first))

    def _closing(self, reply: Reply) -> None:
        """A 421: the server is closing. It read none of the transactions still queued."""
        self.broken = True
        # Called with a reply owed (from next_event): no finished transaction
        # has an entry left in the queue.
        tx, step = self._expect.popleft()
        if tx is None:
            self._events.append(Replied(reply))
        elif step is _Step.FINAL:
            if tx.content_in_flight:
                self._flight_done(tx, reply)
            else:
                self._final(tx, reply)
        elif step is _LMTP_FINAL:
            self._lmtp_final(tx, reply, closing=True)
        elif step in (_Step.ABORT_END, _Step.ABORT_RSET):
            self._done(tx, tx._error)
        else:
            if tx.content_sent:
                self.content_owed -= 1
            tx.content_sent = False
            error: SmtpError
            if step is _Step.MAIL:
                error = self._refusal(reply, SenderRefused, "MAIL")
            elif step is _Step.DATA:
                error = self._refusal(reply, DataRefused, "DATA")
            else:
                error = self._refusal(reply, SmtpReplyError, _VERBS[step])
            self._done(tx, error)
        self._end_all(f"{self._peer} closed the connection (421)", unprocessed=True)

    # ------------------------------------------------------------------ failing

    def fail(
        self, message: str, *, timeout: bool = False, cause: ProtocolError | None = None
    ) -> None:
        """End every transaction in flight after an I/O failure; the connection is done.

        Each gets :class:`~lettre.errors.OutcomeUnknown` when its content was
        written and its final reply is owed; else ``cause`` (a protocol
        error), :class:`~lettre.errors.SmtpTimeoutError` (``timeout``) or
        :class:`~lettre.errors.ServerDisconnected`, all with ``message``. The
        :class:`TransactionDone` events follow from :meth:`next_event`.
        """
        self.broken = True
        self._end_all(message, timeout=timeout, cause=cause)

    def _end_all(
        self,
        message: str,
        *,
        timeout: bool = False,
        cause: ProtocolError | None = None,
        unprocessed: bool = False,
    ) -> None:
        seen: set[int] = set()
        commands = sum(tx is None for tx, _ in self._expect)
        pending = [tx for tx, _ in self._expect if tx is not None] + [
            event.tx for event in self._events if isinstance(event, ContentReady)
        ]
        pending.extend(self._accepting)
        self._accepting.clear()
        self._expect.clear()
        events = self._events
        kept = [e for e in events if not isinstance(e, ContentReady)]
        events.clear()
        events.extend(kept)
        self._outbox.clear()
        for tx in pending:
            if id(tx) in seen or tx.outcome is not None:
                continue
            seen.add(id(tx))
            error: LettreError
            if tx.content_sent and tx.stage is TransactionStage.CONTENT:
                self.content_owed -= 1
                if unprocessed:
                    tx.content_sent = False
                    error = ServerDisconnected(f"{message} {_UNREAD}")
                else:
                    finals = tx._finals
                    read = "" if finals is None else f" ({len(finals)} of its LMTP replies read)"
                    error = OutcomeUnknown(
                        f"{message}; the message may or may not have been accepted{read} "
                        "(do not retry blindly)"
                    )
                    error.__cause__ = (
                        cause if cause is not None or not timeout else SmtpTimeoutError(message)
                    )
            elif tx._error is not None:
                error = tx._error  # refused already; the clean-up did not finish
            elif unprocessed:
                error = ServerDisconnected(f"{message} {_UNREAD}")
            else:
                error = _failure(message, timeout, cause)
            self._done(tx, error)
        self._unwritten.clear()  # each has its final reply owed: ended above
        for _ in range(commands):
            events.append(Replied(None, _failure(message, timeout, cause)))

    @property
    def unwritten_content(self) -> int:
        """How many transactions' content was encoded since the last :meth:`written`."""
        return len(self._unwritten)

    def unwritten(self, message: str, *, timeout: bool = False) -> None:
        """The last write failed: what was encoded since the one before did not all arrive.

        Ends every transaction in flight like :meth:`fail`; those whose
        content was in the failed write are not counted as sent (the end of
        their data cannot have reached the server).
        """
        self._unwritten.clear()
        self.fail(message, timeout=timeout)

    # ------------------------------------------------------------------ outcomes

    def _done(self, tx: Transaction, outcome: SendResult | LettreError | None) -> None:
        assert outcome is not None
        tx.outcome = outcome
        if isinstance(outcome, SendResult):
            tx.stage = TransactionStage.DONE
        else:
            tx.stage = TransactionStage.FAILED
        self._events.append(TransactionDone(tx))

    @staticmethod
    def _refusal(reply: Reply, cls: type[SmtpReplyError], command: str) -> SmtpReplyError:
        return cls(reply.code, reply.text, enhanced_status=reply.enhanced_status, command=command)

    @staticmethod
    def _recipients_refused(
        tx: Transaction, refused: list[RecipientResult], command: str = "RCPT"
    ) -> RecipientsRefused:
        refused = [r for r in refused if not r.accepted]
        first = refused[0].reply
        code = first.code if first is not None else 550
        text = first.text if first is not None else "recipient refused"
        count = len(refused)
        total = len(tx.results)
        if count == total:
            summary = f"the server refused every recipient ({count})"
        else:
            summary = (
                f"the server refused {count} of {total} recipients and "
                "require_all_recipients is set; nothing was sent"
            )
        details = "; ".join(
            f"{r.recipient}: {r.reply.code if r.reply else '?'} {r.reply.text if r.reply else ''}"
            for r in refused[:5]
        )
        more = f" (and {count - 5} more)" if count > 5 else ""
        return RecipientsRefused(
            code,
            text,
            results=tuple(tx.results),
            enhanced_status=first.enhanced_status if first is not None else None,
            command=command,
            message=f"{summary}: {details}{more}",
        )

    def _log(self, lines: list[str]) -> None:
        log = self.transcript
        assert log is not None
        for line in lines:
            log(line)
