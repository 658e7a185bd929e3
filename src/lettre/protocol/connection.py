"""The sans-IO SMTP client connection: commands in, bytes out; bytes in, replies out.

:class:`ClientConnection` does no I/O and keeps no clock. The driver writes
what :meth:`~ClientConnection.send` returns, feeds what it reads to
:meth:`~ClientConnection.receive_data` (``b""`` at end of file), and takes
replies out of :meth:`~ClientConnection.next_event`, which returns
:data:`NEED_DATA` when it must read more first.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lettre.errors import LocalProtocolError, RemoteProtocolError
from lettre.protocol.commands import (
    Auth,
    Bdat,
    Command,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    Lhlo,
    Mail,
    MessageData,
    Rcpt,
    StartTls,
)
from lettre.protocol.dotstuff import BdatEncoder, DataEncoder, encode_data
from lettre.protocol.extensions import Capabilities
from lettre.protocol.replies import Reply, ReplyParser
from lettre.protocol.state import (
    EXACT_CODES,
    GROUP_ENDERS,
    LMTP_FINALS,
    PIPELINABLE,
    TRANSITIONS,
    ClientState,
)

__all__ = ["NEED_DATA", "ClientConnection", "NeedData"]


class NeedData(enum.Enum):
    """The type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"
    """The only member; use the module constant :data:`NEED_DATA`."""


#: Returned by :meth:`ClientConnection.next_event` when no complete reply is
#: buffered: read more bytes and pass them to ``receive_data()``.
NEED_DATA: Final = NeedData.NEED_DATA

_CLOSING_CODE = 421
_ERROR = ClientState.ERROR
_CLOSED = ClientState.CLOSED
_NO_CAPABILITIES = Capabilities()
# Plain-dict views of the state module's read-only tables, for speed.
_TABLE = {state: dict(row) for state, row in TRANSITIONS.items()}
_EXACT = dict(EXACT_CODES)
_DATA = Data()
_DATA_LINE = _DATA.to_bytes()
_END_OF_DATA = EndOfData()
# What a reply does, by (state, verb, first digit of the code): the event
# ("<VERB> ok", "<VERB> more" or "<VERB> fail"), the one code it must have (0
# when any will do), the next state (None when the state table has no
# transition) and its side effect (_NO_EFFECT, _RCPT_REPLY, _MAIL_REPLY or
# _OTHER_EFFECT: a call to _apply). Filled in as replies are met; a few
# hundred entries at most.
_STEPS: dict[tuple[ClientState, str, int], tuple[str, int, ClientState | None, int]] = {}
_OUTCOMES = ("ok", "more", "fail", "fail")
# How awaiting names the owed replies whose verb is not a command's.
_SHOWN = {"BDAT-LAST": "BDAT", "LMTP-BDAT-LAST": "BDAT", "LMTP-END-OF-DATA": "END-OF-DATA"}
_NO_EFFECT, _RCPT_REPLY, _MAIL_REPLY, _OTHER_EFFECT = range(4)
# The events _apply() acts on.
_EFFECTS = frozenset(
    {
        "BDAT fail",
        "DATA more",
        "EHLO ok",
        "EHLO fail",
        "LHLO ok",
        "HELO ok",
        "LMTP-END-OF-DATA ok",
        "LMTP-END-OF-DATA fail",
        "LMTP-BDAT-LAST ok",
        "LMTP-BDAT-LAST fail",
        "STARTTLS ok",
        "AUTH ok",
        "AUTH-RESPONSE ok",
    }
)


def _step(state: ClientState, verb: str, code: int) -> tuple[str, int, ClientState | None, int]:
    event = f"{verb} {_OUTCOMES[code // 100 - 2]}"
    if verb == "RCPT":
        effect = _RCPT_REPLY
    elif verb == "MAIL":
        effect = _MAIL_REPLY
    else:
        effect = _OTHER_EFFECT if event in _EFFECTS else _NO_EFFECT
    return event, _EXACT.get(event, 0), _TABLE[state].get(event), effect


@dataclass(slots=True)
class _Transaction:
    """What the connection knows about one mail transaction."""

    smtputf8: bool
    binary: bool
    mail_ok: bool | None = None
    rcpt_sent: int = 0
    rcpt_replied: int = 0
    rcpt_accepted: int = 0
    chunk_refused: bool = False
    bdat: BdatEncoder | None = None
    finals_owed: int = 0  # LMTP: replies owed to the end of the content, as known so far


class ClientConnection:
    """The client side of one SMTP connection, without I/O.

    The connection starts in :attr:`ClientState.GREETING` owing one reply,
    the greeting: the first :meth:`next_event` returns it. Every command sent
    owes one reply (message content owes none) and replies come back in the
    order the commands were sent.

    In LMTP mode (RFC 2033) the session opens with :class:`Lhlo` instead of
    EHLO (HELO and EHLO are refused), and the end of a message's content (the
    end of data, or BDAT LAST) owes one reply per recipient whose RCPT was
    accepted, in RCPT order (one reply when none was). When BDAT LAST goes
    before the RCPT replies, one reply is owed until they are in, then the
    rest.

    Args:
        max_line_length: the longest reply line accepted, in octets.
        max_reply_lines: the most lines in one reply.
        max_reply_size: the most octets in one reply.
        lmtp: speak LMTP instead of SMTP.

    Raises:
        ValueError: when a bound is not a positive int.
    """

    __slots__ = (
        "_authenticated",
        "_capabilities",
        "_data_encoder",
        "_ehlo_refused",
        "_eof",
        "_extended",
        "_lmtp",
        "_open_bdat",
        "_owed",
        "_parser",
        "_parser_bounds",
        "_state",
        "_tls_done",
        "_tx",
    )

    def __init__(
        self,
        max_line_length: int = 2048,
        max_reply_lines: int = 256,
        max_reply_size: int = 65536,
        *,
        lmtp: bool = False,
    ) -> None:
        self._lmtp = bool(lmtp)
        self._parser_bounds = (max_line_length, max_reply_lines, max_reply_size)
        self._parser = ReplyParser(max_line_length, max_reply_lines, max_reply_size)
        self._state = ClientState.GREETING
        self._owed: deque[tuple[str, _Transaction | None]] = deque([("GREETING", None)])
        self._capabilities: Capabilities | None = None
        self._extended = False
        self._authenticated = False
        self._ehlo_refused = False
        self._tls_done = False
        self._eof = False
        self._tx: _Transaction | None = None
        self._data_encoder: DataEncoder | None = None
        # The last transaction whose BDAT LAST went out before any of its
        # RCPT was known to be accepted (see needs_rset).
        self._open_bdat: _Transaction | None = None

    def __repr__(self) -> str:
        return f"<ClientConnection state={self._state.name} owed={len(self._owed)}>"

    # -- what the connection knows -------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The current state (after every command sent so far)."""
        return self._state

    @property
    def lmtp(self) -> bool:
        """Whether the connection speaks LMTP (RFC 2033) rather than SMTP."""
        return self._lmtp

    @property
    def owed(self) -> int:
        """How many replies the server still owes."""
        return len(self._owed)

    @property
    def awaiting(self) -> tuple[str, ...]:
        """The verbs of the commands whose replies are owed, oldest first.

        The greeting is ``"GREETING"``; every BDAT chunk is ``"BDAT"``; in
        LMTP each reply owed to the end of data is ``"END-OF-DATA"``.
        """
        return tuple(_SHOWN.get(verb, verb) for verb, _ in self._owed)

    @property
    def capabilities(self) -> Capabilities | None:
        """What the server announced in its last EHLO (or LHLO) reply.

        None until a positive EHLO or LHLO reply (and again after STARTTLS, until the
        new EHLO reply); an empty :class:`Capabilities` after HELO.
        """
        return self._capabilities

    @property
    def extended(self) -> bool:
        """True when the session was opened with EHLO or LHLO, False with HELO (or not yet)."""
        return self._extended

    @property
    def authenticated(self) -> bool:
        """True once the server accepted AUTH (reset by STARTTLS)."""
        return self._authenticated

    @property
    def accepted_recipients(self) -> int:
        """How many RCPT of the current transaction the server accepted so far."""
        return 0 if self._tx is None else self._tx.rcpt_accepted

    @property
    def needs_rset(self) -> bool:
        """Whether RSET must come before the next MAIL.

        True after a BDAT LAST sent in the same flight as its RCPTs (RFC 3030
        allows it with PIPELINING) while no RCPT of that transaction is known
        to be accepted and its MAIL is not known to be refused: if every RCPT
        is refused, the server refuses the BDAT ("no valid recipients") and
        still holds the reverse path, so a MAIL sent next would be refused as
        nested and its RCPTs would join the old transaction. Sending RSET, or
        an accepted RCPT or refused MAIL of that transaction, clears it.
        """
        tx = self._open_bdat
        return tx is not None and tx.mail_ok is not False and tx.rcpt_accepted == 0

    # -- sending -------------------------------------------------------------------

    def send(self, command: Command) -> bytes:
        """Return the bytes that send ``command``.

        Args:
            command: the next command (or chunk of message content).

        Returns:
            The bytes to write, in full, before anything sent later.

        Raises:
            LocalProtocolError: when the command may not be sent now: the
                state does not allow it, a reply is owed and the server did
                not offer PIPELINING, the command would follow one that ends
                a pipelined group, or it needs an extension the server did
                not announce. The connection is then in ERROR.
            RemoteProtocolError: the server sent bytes while no reply was
                owed (other than a lone 421); they are never taken as the
                reply to this command. The connection is then in ERROR.
        """
        if self._state is ClientState.ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if not self._owed and self._parser.buffered:
            self._reject_unsolicited()
        try:
            return self._send(command)
        except LocalProtocolError:
            self._state = ClientState.ERROR
            raise

    def send_envelope(self, mail: Mail, rcpts: Sequence[Rcpt], data: bool = False) -> bytes:
        """Return the bytes that send ``mail``, every RCPT in ``rcpts`` and DATA.

        The same as :meth:`send` for each command in turn, joined: the same
        checks, the same errors, the same state afterwards. A pipelined
        envelope (the server offered PIPELINING, at least one recipient) is
        checked and encoded in one pass.

        Args:
            mail: the MAIL command.
            rcpts: the RCPT commands, in order.
            data: also send DATA after the last RCPT.

        Returns:
            The bytes to write, in full, before anything sent later.

        Raises:
            LocalProtocolError: as for :meth:`send`, for the first command
                that may not be sent; the connection is then in ERROR.
            RemoteProtocolError: as for :meth:`send`.
        """
        owed = self._owed
        if (
            self._state is not ClientState.READY
            or not rcpts
            or (owed and owed[-1][0] in GROUP_ENDERS)
            or (not owed and self._parser.buffered)
            or not (self._capabilities or _NO_CAPABILITIES).pipelining
        ):
            out = [self.send(mail)]
            out.extend([self.send(rcpt) for rcpt in rcpts])
            if data:
                out.append(self.send(_DATA))
            return b"".join(out)
        try:
            self._check_mail(mail)
            out = [mail.to_bytes()]
            tx = self._tx = _Transaction(smtputf8=mail.smtputf8, binary=mail.body == "BINARYMIME")
            self._state = ClientState.MAIL
            owed.append(("MAIL", tx))
            check_rcpt = self._check_rcpt
            for rcpt in rcpts:
                check_rcpt(rcpt)
                out.append(rcpt.to_bytes())
                self._state = ClientState.RCPT
                owed.append(("RCPT", tx))
            if data:
                if tx.binary:  # (no RCPT of this new transaction has a reply yet)
                    self._check_content_allowed("DATA")
                out.append(_DATA_LINE)
                owed.append(("DATA", tx))
        except LocalProtocolError:
            self._state = ClientState.ERROR
            raise
        return b"".join(out)

    def send_content(self, data: bytes) -> bytes:
        """Return the bytes that send ``data`` as message content, then the end of data.

        The same as :meth:`send` with :class:`MessageData` then
        :class:`EndOfData`, joined: the same checks, the same errors, the
        same state afterwards.

        Args:
            data: the whole message content.

        Returns:
            The bytes to write, in full, before anything sent later.

        Raises:
            LocalProtocolError: as for :meth:`send`; the connection is then
                in ERROR.
            RemoteProtocolError: as for :meth:`send`.
        """
        if (
            self._state is not ClientState.DATA
            or self._owed
            or self._parser.buffered
            or type(data) is not bytes
        ):
            return self.send(MessageData(data)) + self.send(_END_OF_DATA)
        encoder = self._data_encoder
        if encoder is None:
            out = encode_data(data)  # nothing sent yet: the whole message at once
        else:
            out = encoder.feed(data) + encoder.end()
            self._data_encoder = None
        self._state = ClientState.READY
        if self._lmtp:
            self._owe_finals("END-OF-DATA", self._tx)
        else:
            self._owed.append(("END-OF-DATA", self._tx))
        self._tx = None
        return out

    def _reject_unsolicited(self) -> None:
        # Bytes that arrived while no reply was owed must never be taken as
        # the reply to the next command. A complete 421 closes the session
        # (RFC 5321 3.8); anything else is an unsolicited reply.
        try:
            reply = self._parser.next_reply()
        except RemoteProtocolError:
            self._state = ClientState.ERROR
            raise
        if reply is not None:
            if reply.code != _CLOSING_CODE:
                raise self._fail(f"unsolicited reply: {reply.code} {reply.text!r}")
            self._close()
        if reply is None or self._parser.buffered:
            self._state = ClientState.ERROR
            where = "between commands" if reply is None else "after its 421 reply"
            raise RemoteProtocolError(f"unsolicited data from the server {where}")

    def _send(self, command: Command) -> bytes:
        verb = command.verb
        event = "BDAT-LAST" if isinstance(command, Bdat) and command.last else verb
        next_state = _TABLE[self._state].get(event)
        if next_state is None:
            raise LocalProtocolError(f"{verb} cannot be sent in state {self._state.name}")
        if self._owed:
            last = self._owed[-1][0]
            if last in GROUP_ENDERS:
                raise LocalProtocolError(f"{verb} cannot be sent before the reply to {last}")
            if not (self._capabilities or _NO_CAPABILITIES).pipelining:
                raise LocalProtocolError(
                    f"{verb} cannot be sent before the reply to {last}: "
                    "the server did not offer PIPELINING"
                )
        out = self._encode(command)
        self._state = next_state
        if event != "DATA-CONTENT":
            self._owed.append((event, self._tx))
        if next_state is ClientState.READY:
            # END-OF-DATA, BDAT-LAST and RSET end the transaction.
            if self._lmtp and event in LMTP_FINALS:
                self._owed.pop()
                self._owe_finals(event, self._tx)
            if event == "BDAT-LAST":
                tx = self._tx
                if tx is not None and tx.rcpt_accepted == 0:
                    self._open_bdat = tx
            elif event == "RSET":
                self._open_bdat = None
            self._tx = None
        return out

    def _owe_finals(self, event: str, tx: _Transaction | None) -> None:
        """LMTP: the end of the content owes one reply per accepted recipient (at least one).

        When some RCPT replies are still owed (BDAT LAST in their flight), one
        is owed for now and the rest once the first arrives (see _lmtp_final).
        """
        assert tx is not None  # the content is only sent inside a transaction
        count = max(1, tx.rcpt_accepted) if tx.rcpt_replied == tx.rcpt_sent else 1
        tx.finals_owed = count
        self._owed.extend([(LMTP_FINALS[event], tx)] * count)

    @property
    def _caps(self) -> Capabilities:
        return self._capabilities or _NO_CAPABILITIES

    def _encode(self, command: Command) -> bytes:
        """Check the command against what the server offers and serialise it."""
        if isinstance(command, MessageData):
            return self._content_encoder().feed(command.data)
        if isinstance(command, EndOfData):
            out = self._content_encoder().end()
            self._data_encoder = None
            return out
        if isinstance(command, Bdat):
            return self._encode_bdat(command)
        if isinstance(command, Mail):
            self._check_mail(command)
            out = command.to_bytes()
            self._tx = _Transaction(smtputf8=command.smtputf8, binary=command.body == "BINARYMIME")
            return out
        if isinstance(command, Rcpt):
            self._check_rcpt(command)
        elif isinstance(command, Data):
            self._check_content_allowed("DATA")
        elif isinstance(command, (Ehlo, Helo, Lhlo)):
            self._check_hello(command)
        elif isinstance(command, StartTls):
            if self._tls_done:
                raise LocalProtocolError("TLS is already established")
            if not self._caps.starttls:
                raise LocalProtocolError("the server did not offer STARTTLS")
        elif isinstance(command, Auth):
            if self._authenticated:
                raise LocalProtocolError("already authenticated")
            if not self._caps.supports("AUTH"):
                raise LocalProtocolError("the server did not offer AUTH")
        return command.to_bytes()

    def _check_hello(self, command: Ehlo | Helo | Lhlo) -> None:
        verb = command.verb
        if (verb == "LHLO") is not self._lmtp:
            if self._lmtp:
                raise LocalProtocolError(f"{verb} is not sent in LMTP: the session opens with LHLO")
            raise LocalProtocolError("LHLO is only sent in LMTP mode (ClientConnection(lmtp=True))")
        if verb == "HELO" and not self._ehlo_refused:
            raise LocalProtocolError("HELO is only sent after the server refused EHLO")

    def _content_encoder(self) -> DataEncoder:
        # Made when the first content is sent: send_content() needs none.
        encoder = self._data_encoder
        if encoder is None:
            encoder = self._data_encoder = DataEncoder()
        return encoder

    def _check_mail(self, mail: Mail) -> None:
        open_bdat = self._open_bdat
        if open_bdat is not None:
            if open_bdat.mail_ok is not False and open_bdat.rcpt_accepted == 0:
                raise LocalProtocolError(
                    "MAIL after a BDAT LAST whose transaction may still be open on the server "
                    "(none of its recipients is known to be accepted): send RSET first"
                )
            self._open_bdat = None
        caps = self._capabilities or _NO_CAPABILITIES
        if (
            mail.body is None
            and not mail.smtputf8
            and mail.ret is None
            and mail.envid is None
            and not mail.requiretls
            and (mail.size is None or caps.size is not None)
        ):
            return  # the usual MAIL needs no extension, or only SIZE
        needs = []
        if mail.size is not None and caps.size is None:
            needs.append("SIZE")
        if mail.body == "BINARYMIME" and not (caps.binarymime and caps.chunking):
            needs.append("BINARYMIME and CHUNKING")
        elif mail.body == "8BITMIME" and not caps.eightbitmime:
            needs.append("8BITMIME")
        elif mail.body == "7BIT" and not (caps.eightbitmime or caps.binarymime):
            needs.append("8BITMIME (for BODY=7BIT)")
        if mail.smtputf8 and not caps.smtputf8:
            needs.append("SMTPUTF8")
        if (mail.ret is not None or mail.envid is not None) and not caps.dsn:
            needs.append("DSN")
        if mail.requiretls and not caps.requiretls:
            needs.append("REQUIRETLS")
        if needs:
            raise LocalProtocolError(f"MAIL needs extensions the server did not offer: {needs}")

    def _check_rcpt(self, rcpt: Rcpt) -> None:
        tx = self._tx
        assert tx is not None
        if (rcpt.notify is not None or rcpt.orcpt is not None) and not self._caps.dsn:
            raise LocalProtocolError("RCPT NOTIFY and ORCPT need DSN, which the server lacks")
        if not tx.smtputf8 and not rcpt.forward_path.isascii():
            raise LocalProtocolError("a non-ASCII forward path needs MAIL with smtputf8=True")
        tx.rcpt_sent += 1

    def _check_content_allowed(self, verb: str) -> None:
        tx = self._tx
        assert tx is not None
        if tx.rcpt_replied == tx.rcpt_sent and tx.rcpt_accepted == 0:
            raise LocalProtocolError(f"{verb} after every recipient was refused: send RSET")
        if verb == "DATA" and tx.binary:
            raise LocalProtocolError("a BODY=BINARYMIME transaction must use BDAT, not DATA")

    def _encode_bdat(self, bdat: Bdat) -> bytes:
        if not self._caps.chunking:
            raise LocalProtocolError("the server did not offer CHUNKING (BDAT)")
        tx = self._tx
        assert tx is not None
        if tx.bdat is None:
            self._check_content_allowed("BDAT")
            tx.bdat = BdatEncoder(binary=tx.binary)
        payload = tx.bdat.chunk(bdat.data, last=bdat.last)
        header = b"BDAT %d LAST\r\n" if bdat.last else b"BDAT %d\r\n"
        return header % len(payload) + payload

    # -- receiving -----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the server; ``b""`` means the server closed.

        Nothing is parsed here: call :meth:`next_event` next. Call this only
        after :meth:`next_event` returned :data:`NEED_DATA`, so that the
        buffer never holds more than one read beyond an incomplete reply.

        Args:
            data: the bytes read, or ``b""`` at end of file.

        Raises:
            RemoteProtocolError: bytes arrived after the 220 reply to
                STARTTLS and before :meth:`tls_established` (response
                injection); the connection is then in ERROR.
            LocalProtocolError: the connection is in ERROR, or bytes are
                added after end of file.
        """
        if self._state is ClientState.ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if self._eof:
            if data:
                raise LocalProtocolError("data received after the end of file")
            return
        if not data:
            self._eof = True
            self._check_closed()
            return
        if self._state is ClientState.STARTTLS:
            self._state = ClientState.ERROR
            raise RemoteProtocolError(
                "the server sent data after its 220 reply to STARTTLS (response injection)"
            )
        if self._state is ClientState.CLOSED:
            return  # the session is over; nothing the server says matters
        self._parser.feed(data)

    def next_event(self) -> Reply | NeedData:
        """Return the next reply, or :data:`NEED_DATA` when more bytes are needed.

        Returns:
            The next complete reply, answering the oldest command still owed
            one (or an unsolicited 421), or :data:`NEED_DATA`.

        Raises:
            RemoteProtocolError: the server sent a malformed or over-long
                reply, a reply nobody asked for, a reply code that makes no
                sense for the command, bytes after the 220 to STARTTLS, or
                closed the connection while a reply was owed. The connection
                is then in ERROR.
            LocalProtocolError: the connection is in ERROR or CLOSED (no
                reply will ever come).
        """
        state = self._state
        if state is _ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if state is _CLOSED:
            raise LocalProtocolError("the connection is closed: no reply will come")
        try:
            reply = self._parser.next_reply()
        except RemoteProtocolError:
            self._state = ClientState.ERROR
            raise
        if reply is None:
            if self._eof:
                self._check_eof()
            return NEED_DATA
        code = reply.code
        owed = self._owed
        if code == _CLOSING_CODE:
            self._close()  # RFC 5321 3.8: the server is closing, whatever was owed
            return reply
        if not owed:
            raise self._fail(f"unsolicited reply: {code} {reply.text!r}")
        verb, tx = owed.popleft()
        key = (state, verb, code // 100)
        step = _STEPS.get(key)
        if step is None:
            step = _STEPS[key] = _step(state, verb, code)
        event, exact, next_state, effect = step
        if exact and code != exact:
            raise self._fail(f"reply {code} to {verb}: only {exact} makes sense")
        if next_state is None:
            if verb not in PIPELINABLE or 300 <= code < 400:
                raise self._fail(f"unexpected reply {code} to {verb}")
            next_state = state
        # The replies inside a mail transaction come first: they are most of them.
        if effect == _RCPT_REPLY:
            assert tx is not None  # RCPT is only sent inside a transaction
            tx.rcpt_replied += 1
            if code < 300:
                tx.rcpt_accepted += 1
        elif effect == _MAIL_REPLY:
            assert tx is not None  # sending MAIL opens a transaction
            tx.mail_ok = code < 300
        elif effect == _OTHER_EFFECT:
            self._apply(event, reply, tx)
        self._state = next_state
        if not owed and self._tx is not None:
            self._settle()
        if self._eof:
            self._check_closed()
        return reply

    def _fail(self, message: str) -> RemoteProtocolError:
        """Put the connection in ERROR and return the error to raise."""
        self._state = ClientState.ERROR
        return RemoteProtocolError(message)

    def _check_eof(self) -> None:
        if self._parser.buffered:
            raise self._fail("the server closed the connection in the middle of a reply")
        raise self._fail(
            f"the server closed the connection while {len(self._owed)} reply(s) were owed"
        )

    def _check_closed(self) -> None:
        # Called once the server closed its side.
        if not self._owed and not self._parser.buffered:
            self._state = ClientState.CLOSED
            self._data_encoder = None

    def _apply(self, event: str, reply: Reply, tx: _Transaction | None) -> None:
        """The side effects of a reply, beyond the state change (MAIL and RCPT aside)."""
        if event == "BDAT fail":
            assert tx is not None  # BDAT is only sent inside a transaction
            tx.chunk_refused = True
        elif event == "DATA more":
            self._data_encoder = None  # made with the first content sent
        elif event in ("EHLO ok", "LHLO ok"):
            self._capabilities = Capabilities.from_reply(reply)
            self._extended = True
        elif event == "EHLO fail":
            self._ehlo_refused = True
        elif event == "HELO ok":
            self._capabilities = _NO_CAPABILITIES
            self._extended = False
        elif event == "STARTTLS ok":
            if self._parser.buffered:
                raise self._fail(
                    "the server sent data after its 220 reply to STARTTLS (response injection)"
                )
        elif event.startswith("LMTP-"):
            assert tx is not None  # the content is only sent inside a transaction
            self._lmtp_final(event.partition(" ")[0], tx)
        else:  # "AUTH ok" or "AUTH-RESPONSE ok"
            self._authenticated = True

    def _lmtp_final(self, verb: str, tx: _Transaction) -> None:
        """LMTP: a reply to the end of the content; every RCPT reply is in by now.

        If BDAT LAST went before the RCPT replies, only one reply was owed for
        it: the others (one per accepted recipient) are owed next.
        """
        missing = max(1, tx.rcpt_accepted) - tx.finals_owed
        if missing > 0:
            tx.finals_owed += missing
            self._owed.extendleft([(verb, tx)] * missing)

    def _settle(self) -> None:
        """Every reply is in: apply what the transaction's replies decided."""
        tx = self._tx
        assert tx is not None
        if tx.chunk_refused:
            event = "CHUNK-REFUSED"
        elif tx.mail_ok is False:
            event = "MAIL-REFUSED"
        else:
            return
        next_state = _TABLE[self._state].get(event)
        if next_state is not None:
            self._state = next_state
            if next_state is ClientState.READY:
                self._tx = None

    def _close(self) -> None:
        self._state = ClientState.CLOSED
        self._owed.clear()
        self._tx = None
        self._data_encoder = None
        self._open_bdat = None

    # -- TLS -----------------------------------------------------------------------

    def tls_established(self) -> None:
        """Record that the TLS handshake after STARTTLS succeeded.

        Everything learnt before is forgotten (RFC 3207): the capabilities
        become None, the session is no longer extended nor authenticated, and
        EHLO is needed again.

        Raises:
            LocalProtocolError: when the server has not answered 220 to
                STARTTLS; the connection is then in ERROR.
        """
        next_state = _TABLE[self._state].get("TLS-ESTABLISHED")
        if next_state is None:
            state = self._state
            self._state = ClientState.ERROR
            raise LocalProtocolError(f"no TLS handshake is expected in state {state.name}")
        self._state = next_state
        self._tls_done = True
        self._open_bdat = None
        self._capabilities = None
        self._extended = False
        self._authenticated = False
        self._ehlo_refused = False
        self._parser = ReplyParser(*self._parser_bounds)
