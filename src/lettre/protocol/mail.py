"""A mail transaction as the engine carries it, built from an envelope against the server.

:func:`prepare_transaction` checks a message against what the server
announced (SIZE, 8BITMIME, SMTPUTF8, DSN) and builds its MAIL and RCPT
commands; the :class:`Transaction` then records how far it got. No I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from lettre.envelope import Envelope
from lettre.errors import (
    ExtensionNotSupported,
    LettreError,
    LocalProtocolError,
    MessageError,
    MessageTooLarge,
    SmtpError,
)
from lettre.protocol.commands import Mail, Rcpt
from lettre.protocol.extensions import Capabilities
from lettre.protocol.replies import Reply
from lettre.results import RecipientResult, SendResult

__all__ = [
    "PIPELINED_BDAT_LIMIT",
    "Transaction",
    "TransactionStage",
    "nul_error",
    "prepare_transaction",
]

#: The largest message (in octets, as given) whose ``BDAT LAST`` goes in the
#: same flight as its MAIL and RCPT commands when the server offers PIPELINING
#: and CHUNKING. A larger message waits for the RCPT replies first, so that a
#: big body never goes out before any recipient is known to be accepted.
PIPELINED_BDAT_LIMIT: Final = 64 * 1024


def nul_error(data: bytes) -> MessageError:
    """The error for message content with a NUL byte: it must never reach DATA or BDAT.

    A server that drops NUL would read ``<CRLF>.<NUL><CRLF>`` as the end of
    data (SMTP smuggling), so such content is refused before anything is sent.
    """
    offset = data.find(b"\x00")
    around = data[max(0, offset - 20) : offset + 20]
    return MessageError(
        f"the message content has a NUL byte at offset {offset} (near {around!r}); "
        "SMTP cannot carry NUL in DATA or BDAT. Transfer-encode the part that holds it "
        "(quoted-printable or base64, as Message.builder() does) or remove it; nothing was sent"
    )


class TransactionStage(enum.Enum):
    """How far a :class:`Transaction` got.

    Attributes:
        PREPARED: checked, nothing sent.
        ENVELOPE: MAIL (and RCPT/DATA) encoded or written.
        ACCEPTING: the envelope was accepted; the content may be sent.
        CONTENT: the content and the end of data were written: from here a
            broken connection leaves the outcome unknown.
        DONE: the final reply was positive.
        FAILED: the transaction ended without delivery (refusal or error).
    """

    PREPARED = "prepared"
    ENVELOPE = "envelope"
    ACCEPTING = "accepting"
    CONTENT = "content"
    DONE = "done"
    FAILED = "failed"


@dataclass(eq=False, slots=True)
class Transaction:
    """One mail transaction, made by :meth:`TransactionEngine.prepare`.

    Attributes:
        envelope: the envelope being sent.
        data: the message bytes.
        mail: the MAIL command.
        rcpts: the RCPT commands, one per forward path.
        recipients: the forward paths as the results name them.
        use_bdat: whether the content goes with BDAT (CHUNKING) instead of DATA.
        pipelined: whether MAIL and RCPT go in one flight (PIPELINING).
        data_in_flight: whether DATA goes in the same flight as MAIL and RCPT.
        content_in_flight: whether the content (one ``BDAT <n> LAST``) goes in
            the same flight as MAIL and RCPT.
        rset_first: whether the envelope's flight starts with RSET (the
            previous transaction may still be open on the server; see
            ``ClientConnection.needs_rset``).
        stage: how far the transaction got.
        results: each recipient's outcome, once the RCPT replies are read (in
            LMTP, a recipient accepted at RCPT then takes the reply the server
            gave it after the content).
        reply: the final reply, once read (in LMTP, the reply for the first
            recipient accepted after the content, or else the first refusal).
        content_sent: whether the content was handed to the connection: if
            not, sending the message again elsewhere cannot deliver it twice.
        outcome: the result or the error, once the transaction is over.
    """

    envelope: Envelope
    data: bytes
    mail: Mail
    rcpts: tuple[Rcpt, ...]
    recipients: tuple[str, ...]
    use_bdat: bool
    pipelined: bool
    data_in_flight: bool
    content_in_flight: bool = False
    rset_first: bool = False
    stage: TransactionStage = TransactionStage.PREPARED
    results: list[RecipientResult] = field(default_factory=list)
    reply: Reply | None = None
    content_sent: bool = False
    outcome: SendResult | LettreError | None = None
    # Replies read so far: MAIL's, and DATA's when it was in the envelope.
    _mail_reply: Reply | None = None
    _data_reply: Reply | None = None
    _accepted: int = 0  # recipients accepted so far
    # LMTP: the replies read after the content (one per recipient whose RCPT
    # got a 2xx reply), and how many are due.
    _finals: list[Reply] | None = None
    _due: int = 0
    _error: SmtpError | None = None  # the refusal reported once the clean-up is answered


def prepare_transaction(
    envelope: Envelope,
    data: bytes,
    caps: Capabilities | None,
    *,
    require_all_recipients: bool = False,
    peer: str = "the server",
) -> Transaction:
    """Check a message against the server's capabilities and build its commands.

    Nothing is sent.

    Args:
        envelope: the reverse path, the recipients and their DSN options.
        data: the message, CRLF line endings.
        caps: what the server announced (None: the session is not open).
        require_all_recipients: the message must not go when any recipient
            is refused (its content then waits for the RCPT replies).
        peer: how error messages name the server.

    Returns:
        The transaction, in the PREPARED stage.

    Raises:
        TypeError: ``envelope`` is not an Envelope or ``data`` not bytes.
        MessageError: ``data`` contains a NUL byte.
        MessageTooLarge: larger than the server's SIZE.
        ExtensionNotSupported: SMTPUTF8 or 8BITMIME needed and not offered.
        LocalProtocolError: the session is not open.
    """
    if not isinstance(envelope, Envelope):
        raise TypeError(f"envelope must be an Envelope, not {type(envelope).__name__}")
    if type(data) is not bytes:
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
    if b"\x00" in data:
        raise nul_error(data)
    if caps is None:
        raise LocalProtocolError("the SMTP session is not open (no EHLO or HELO reply yet)")
    size = caps.size
    if size and len(data) > size:
        raise MessageTooLarge(f"the message is {len(data)} bytes; {peer} accepts at most {size}")
    reverse_path = envelope.reverse_path
    forward_paths = envelope.forward_paths
    # Each address is rendered once; ASCII-only envelopes (nearly all)
    # take their paths as they are.
    recipients = tuple(map(str, forward_paths))
    reverse = str(reverse_path) if reverse_path is not None else ""
    ascii_only = reverse.isascii() and all(map(str.isascii, recipients))
    body: str | None = None
    smtputf8 = False
    if not ascii_only or not data.isascii():
        smtputf8, body = _international(envelope, data, caps, ascii_only, peer)
    paths = recipients
    if not ascii_only and not smtputf8:
        # Internationalised domains only: their A-label forms.
        paths = tuple(
            text if text.isascii() else address.to_ascii()
            for text, address in zip(recipients, forward_paths, strict=True)
        )
        if reverse_path is not None and not reverse.isascii():
            reverse = reverse_path.to_ascii()
    dsn = caps.dsn
    mail = Mail(
        reverse,
        size=len(data) if size is not None else None,
        body=body,
        smtputf8=smtputf8,
        ret=envelope.ret if dsn else None,
        envid=envelope.envid if dsn else None,
    )
    notify = envelope.notify if dsn else None
    orcpt = envelope.orcpt and dsn
    if notify is None and not orcpt:
        rcpts = tuple(map(Rcpt, paths))
    else:
        rcpts = tuple(
            Rcpt(forward, notify=notify, orcpt=forward if orcpt else None) for forward in paths
        )
    pipelined = caps.pipelining
    # Content that goes before the RCPT replies cannot be taken back:
    # not when every recipient must be accepted, nor for a big body.
    early = pipelined and not require_all_recipients
    if not caps.chunking:
        return Transaction(envelope, data, mail, rcpts, recipients, False, pipelined, early)
    return Transaction(
        envelope,
        data,
        mail,
        rcpts,
        recipients,
        True,
        pipelined,
        False,
        early and len(data) <= PIPELINED_BDAT_LIMIT,
    )


def _international(
    envelope: Envelope, data: bytes, caps: Capabilities, ascii_only: bool, peer: str
) -> tuple[bool, str | None]:
    """SMTPUTF8 and BODY for a message with non-ASCII addresses or content."""
    smtputf8 = False
    if not ascii_only:
        if caps.smtputf8:
            smtputf8 = True
        elif envelope.needs_smtputf8:
            raise ExtensionNotSupported(
                f"an address has a non-ASCII local part, which needs SMTPUTF8; "
                f"{peer} does not offer it"
            )
    body: str | None = None
    if not data.isascii():
        if not caps.eightbitmime:
            raise ExtensionNotSupported(
                f"the message has 8-bit content and {peer} does not offer 8BITMIME"
            )
        body = "8BITMIME"
        if caps.smtputf8 and not smtputf8:
            # UTF-8 header fields (RFC 6532, e.g. an address with a
            # non-ASCII local part in From) make it an internationalised
            # message even when the envelope is plain ASCII.
            end = data.find(b"\r\n\r\n")
            smtputf8 = not data[: end if end >= 0 else len(data)].isascii()
    return smtputf8, body
