"""The sans-IO SMTP client core: commands in, bytes out; bytes in, replies out.

:class:`ClientConnection` is the command level; :class:`TransactionEngine`
runs whole mail transactions on it (messages in, outcomes out).

Standard library only: no sockets, no anyio, no clock. The I/O layer
(:mod:`lettre.smtp`) drives a :class:`ClientConnection`; anyone can drive one
over any transport, or in tests with plain bytes.
"""

from __future__ import annotations

from lettre.protocol.commands import (
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    Command,
    Data,
    Ehlo,
    EndOfData,
    Helo,
    Mail,
    MessageData,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
)
from lettre.protocol.connection import NEED_DATA, ClientConnection, NeedData
from lettre.protocol.dotstuff import BdatEncoder, CrlfNormalizer, DataEncoder, encode_data
from lettre.protocol.extensions import Capabilities
from lettre.protocol.replies import Reply, ReplyParser
from lettre.protocol.sasl import (
    MECHANISMS,
    CramMd5,
    Login,
    Mechanism,
    OAuthBearer,
    Plain,
    ScramSha256,
    TokenMechanism,
    XOAuth2,
    decode_challenge,
)
from lettre.protocol.state import ClientState
from lettre.protocol.transactions import (
    PIPELINED_BDAT_LIMIT,
    ContentReady,
    Transaction,
    TransactionDone,
    TransactionEngine,
    TransactionStage,
)

__all__ = [
    "MECHANISMS",
    "NEED_DATA",
    "PIPELINED_BDAT_LIMIT",
    "Auth",
    "AuthCancel",
    "AuthResponse",
    "Bdat",
    "BdatEncoder",
    "Capabilities",
    "ClientConnection",
    "ClientState",
    "Command",
    "ContentReady",
    "CramMd5",
    "CrlfNormalizer",
    "Data",
    "DataEncoder",
    "Ehlo",
    "EndOfData",
    "Helo",
    "Login",
    "Mail",
    "Mechanism",
    "MessageData",
    "NeedData",
    "Noop",
    "OAuthBearer",
    "Plain",
    "Quit",
    "Rcpt",
    "Reply",
    "ReplyParser",
    "Rset",
    "ScramSha256",
    "StartTls",
    "TokenMechanism",
    "Transaction",
    "TransactionDone",
    "TransactionEngine",
    "TransactionStage",
    "XOAuth2",
    "decode_challenge",
    "encode_data",
]
