"""The lines of the DEBUG transcript: what the client sends and what the server answers.

``C:`` lines are what the client sends, ``S:`` lines what the server
answers. AUTH payloads are never shown (``<redacted>``) and message content
only by its size. No I/O: the engine hands these lines to a callback.
"""

from __future__ import annotations

from lettre.protocol.commands import (
    Auth,
    AuthCancel,
    AuthResponse,
    Bdat,
    Command,
    EndOfData,
    MessageData,
)
from lettre.protocol.mail import Transaction
from lettre.protocol.replies import Reply

__all__ = ["command_transcript", "content_transcript", "envelope_transcript", "reply_transcript"]


def _lines(data: bytes) -> list[str]:
    return [f"C: {line}" for line in data.decode("utf-8", "replace").split("\r\n") if line]


def command_transcript(command: Command, data: bytes) -> list[str]:
    """The transcript of one command whose bytes are ``data`` (secrets and content hidden)."""
    if isinstance(command, Auth):
        suffix = " <redacted>" if command.initial_response is not None else ""
        return [f"C: AUTH {command.mechanism}{suffix}"]
    if isinstance(command, AuthResponse):
        return ["C: <redacted>"]
    if isinstance(command, AuthCancel):
        return ["C: *"]
    if isinstance(command, MessageData):
        return [f"C: <{len(command.data)} bytes of message content>"]
    if isinstance(command, EndOfData):
        return ["C: ."]
    if isinstance(command, Bdat):
        last = " LAST" if command.last else ""
        return [f"C: BDAT <{len(command.data)} bytes of message content>{last}"]
    return _lines(data)


def envelope_transcript(tx: Transaction) -> list[str]:
    """The transcript of the first flight of ``tx`` (see ``TransactionEngine.start``)."""
    out = ["C: RSET"] if tx.rset_first else []
    out.extend(_lines(tx.mail.to_bytes()))
    if tx.pipelined:
        for rcpt in tx.rcpts:
            out.extend(_lines(rcpt.to_bytes()))
        if tx.data_in_flight:
            out.append("C: DATA")
        if tx.content_in_flight:
            out.append(f"C: BDAT <{len(tx.data)} bytes of message content> LAST")
    return out


def content_transcript(tx: Transaction) -> list[str]:
    """The transcript of the content of ``tx`` and its end (DATA), or its ``BDAT LAST``."""
    if tx.use_bdat:
        return [f"C: BDAT <{len(tx.data)} bytes of message content> LAST"]
    return [f"C: <{len(tx.data)} bytes of message content>", "C: ."]


def reply_transcript(reply: Reply) -> list[str]:
    """The transcript of one reply, a line per line as the server sent it."""
    lines = reply.lines or ("",)
    status = f"{reply.enhanced_status} " if reply.enhanced_status else ""
    last = len(lines) - 1
    return [
        f"S: {reply.code}{' ' if index == last else '-'}{status}{line}"
        for index, line in enumerate(lines)
    ]
