"""The client's states and the one table of transitions between them.

:class:`~lettre.protocol.connection.ClientConnection` moves between the
:class:`ClientState` values only through :data:`TRANSITIONS`. Three kinds of
event appear in it:

- a command being sent, named by its verb (``"MAIL"``, ``"RCPT"``; the last
  BDAT chunk is ``"BDAT-LAST"``);
- a reply to a command that changes the state, named ``"<VERB> <kind>"``
  where kind is ``ok`` (2xx), ``more`` (3xx) or ``fail`` (4xx and 5xx);
  the greeting is the reply to ``"GREETING"``;
- ``"TLS-ESTABLISHED"`` (the driver finished the TLS handshake after the 220
  to STARTTLS), and the two events the connection raises when the last
  owed reply is in and the transaction turned out to have failed:
  ``"MAIL-REFUSED"`` (the server refused MAIL: it has no transaction) and
  ``"CHUNK-REFUSED"`` (the server refused a BDAT chunk: RSET is needed).

A command sent in a state whose row lacks its verb is a
:class:`~lettre.errors.LocalProtocolError`; a reply whose event is missing is
a :class:`~lettre.errors.RemoteProtocolError`, except the replies to the
commands in :data:`PIPELINABLE`, which never move the state by themselves
(they may arrive when later commands have already moved it). A 421 reply,
whatever it answers, moves any state to CLOSED; an error moves it to ERROR.

LMTP (RFC 2033) runs on the same table: ``LHLO`` takes the place of EHLO,
and the end of a message's content owes one reply per accepted recipient,
each recorded under its :data:`LMTP_FINALS` name.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "EXACT_CODES",
    "GROUP_ENDERS",
    "LMTP_FINALS",
    "PIPELINABLE",
    "TRANSITIONS",
    "ClientState",
]


class ClientState(enum.Enum):
    """Where the client is in the SMTP conversation.

    Attributes:
        GREETING: connected; waiting for the server's greeting.
        HELLO: greeted (or the TLS upgrade is done): EHLO is needed, or HELO
            once EHLO was refused (LHLO in LMTP mode).
        REFUSED: the greeting refused service (554, or another error): only
            QUIT may follow.
        READY: the session is open and no mail transaction is in progress.
        STARTTLS: the server answered 220 to STARTTLS: the driver performs the
            TLS handshake, then calls ``tls_established()``.
        AUTH: in a SASL exchange: the server sent a 334 challenge.
        MAIL: MAIL was sent: RCPT follows.
        RCPT: RCPT was sent: more RCPT, then DATA or BDAT.
        DATA: the server answered 354 to DATA: message content, then the end
            of data.
        BDAT: a BDAT chunk other than the last was sent: more BDAT.
        ABORTED: the server refused a BDAT chunk: RSET (or QUIT) must follow.
        CLOSING: QUIT was sent.
        CLOSED: the session is over (221 to QUIT, 421, or the server closed
            the connection with no reply owed).
        ERROR: a protocol error happened; the connection cannot be used.
    """

    GREETING = "GREETING"
    HELLO = "HELLO"
    REFUSED = "REFUSED"
    READY = "READY"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    BDAT = "BDAT"
    ABORTED = "ABORTED"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    ERROR = "ERROR"

    # Members are singletons compared by identity: hash them the same way
    # (C speed) rather than by name, as Enum does in Python code.
    __hash__ = object.__hash__


_S = ClientState

#: state -> event -> next state. The one table of the client state machine.
TRANSITIONS: Mapping[ClientState, Mapping[str, ClientState]] = MappingProxyType(
    {
        _S.GREETING: {
            "GREETING ok": _S.HELLO,
            "GREETING fail": _S.REFUSED,
        },
        _S.HELLO: {
            "EHLO": _S.HELLO,
            "EHLO ok": _S.READY,
            "EHLO fail": _S.HELLO,
            "LHLO": _S.HELLO,
            "LHLO ok": _S.READY,
            "LHLO fail": _S.HELLO,
            "HELO": _S.HELLO,
            "HELO ok": _S.READY,
            "HELO fail": _S.HELLO,
            "NOOP": _S.HELLO,
            "NOOP ok": _S.HELLO,
            "NOOP fail": _S.HELLO,
            "QUIT": _S.CLOSING,
        },
        _S.REFUSED: {
            "QUIT": _S.CLOSING,
        },
        _S.READY: {
            "EHLO": _S.READY,
            "EHLO ok": _S.READY,
            "EHLO fail": _S.READY,
            "LHLO": _S.READY,
            "LHLO ok": _S.READY,
            "LHLO fail": _S.READY,
            "STARTTLS": _S.READY,
            "STARTTLS ok": _S.STARTTLS,
            "STARTTLS fail": _S.READY,
            "AUTH": _S.READY,
            "AUTH ok": _S.READY,
            "AUTH more": _S.AUTH,
            "AUTH fail": _S.READY,
            "MAIL": _S.MAIL,
            "RSET": _S.READY,
            "NOOP": _S.READY,
            "NOOP ok": _S.READY,
            "NOOP fail": _S.READY,
            "QUIT": _S.CLOSING,
        },
        _S.STARTTLS: {
            "TLS-ESTABLISHED": _S.HELLO,
        },
        _S.AUTH: {
            "AUTH-RESPONSE": _S.AUTH,
            "AUTH-RESPONSE ok": _S.READY,
            "AUTH-RESPONSE more": _S.AUTH,
            "AUTH-RESPONSE fail": _S.READY,
            "AUTH-CANCEL": _S.AUTH,
            "AUTH-CANCEL fail": _S.READY,
        },
        _S.MAIL: {
            "RCPT": _S.RCPT,
            "RSET": _S.READY,
            "NOOP": _S.MAIL,
            "NOOP ok": _S.MAIL,
            "NOOP fail": _S.MAIL,
            "QUIT": _S.CLOSING,
            "MAIL-REFUSED": _S.READY,
        },
        _S.RCPT: {
            "RCPT": _S.RCPT,
            "DATA": _S.RCPT,
            "DATA more": _S.DATA,
            # The transaction stays open on the server: RSET, more RCPT or
            # another DATA may follow (MAIL-REFUSED then applies if MAIL failed).
            "DATA fail": _S.RCPT,
            "BDAT": _S.BDAT,
            "BDAT-LAST": _S.READY,
            "RSET": _S.READY,
            "NOOP": _S.RCPT,
            "NOOP ok": _S.RCPT,
            "NOOP fail": _S.RCPT,
            "QUIT": _S.CLOSING,
            "MAIL-REFUSED": _S.READY,
        },
        _S.DATA: {
            "DATA-CONTENT": _S.DATA,
            "END-OF-DATA": _S.READY,
        },
        _S.BDAT: {
            "BDAT": _S.BDAT,
            "BDAT-LAST": _S.READY,
            "RSET": _S.READY,
            "NOOP": _S.BDAT,
            "NOOP ok": _S.BDAT,
            "NOOP fail": _S.BDAT,
            "QUIT": _S.CLOSING,
            "CHUNK-REFUSED": _S.ABORTED,
        },
        _S.ABORTED: {
            "RSET": _S.READY,
            "NOOP": _S.ABORTED,
            "NOOP ok": _S.ABORTED,
            "NOOP fail": _S.ABORTED,
            "QUIT": _S.CLOSING,
        },
        _S.CLOSING: {
            "QUIT ok": _S.CLOSED,
            "QUIT fail": _S.CLOSED,
        },
        _S.CLOSED: {},
        _S.ERROR: {},
    }
)

#: Commands whose reply only updates the transaction record; with PIPELINING
#: they may be followed by more commands before their reply arrives.
PIPELINABLE = frozenset(
    {
        "MAIL",
        "RCPT",
        "RSET",
        "END-OF-DATA",
        "BDAT",
        "BDAT-LAST",
        "LMTP-END-OF-DATA",
        "LMTP-BDAT-LAST",
    }
)

#: In LMTP mode, what each reply owed to the end of a message's content is
#: recorded as: one is owed per recipient accepted at RCPT, in RCPT order
#: (RFC 2033 4.2 for DATA, 4.3 for BDAT LAST).
LMTP_FINALS: Mapping[str, str] = MappingProxyType(
    {"END-OF-DATA": "LMTP-END-OF-DATA", "BDAT-LAST": "LMTP-BDAT-LAST"}
)

#: Commands after which nothing may be sent until their reply arrives, with
#: or without PIPELINING (RFC 2920 3.1, RFC 3207, RFC 4954). NOOP moves no
#: state, but it still ends a group: it is a synchronisation point.
GROUP_ENDERS = frozenset(
    {
        "GREETING",
        "EHLO",
        "HELO",
        "LHLO",
        "STARTTLS",
        "AUTH",
        "AUTH-RESPONSE",
        "AUTH-CANCEL",
        "DATA",
        "NOOP",
        "QUIT",
    }
)

#: Reply events that admit one code only; any other code of the same class
#: is a RemoteProtocolError.
EXACT_CODES: Mapping[str, int] = MappingProxyType(
    {
        "GREETING ok": 220,
        "STARTTLS ok": 220,
        "DATA more": 354,
        "AUTH more": 334,
        "AUTH-RESPONSE more": 334,
    }
)
