"""The benchmark workload: 1 KiB messages, budgets in messages and seconds."""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = [
    "MESSAGE_SIZE",
    "SENDER",
    "Budget",
    "Counts",
    "one_kib_body",
    "one_kib_message",
    "recipients",
]

MESSAGE_SIZE = 1024
SENDER = "sender@example.com"

_HEADERS = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: Recipient <rcpt0@example.com>\r\n"
    b"Subject: Benchmark message\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
    b"Message-ID: <benchmark.0@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: 7bit\r\n"
    b"\r\n"
)


def one_kib_body(size: int = MESSAGE_SIZE - len(_HEADERS)) -> str:
    """Plain ASCII text in 70-character lines, ``size`` bytes with CRLF endings."""
    line = "The quick brown fox jumps over the lazy dog, again and again and again"
    lines: list[str] = []
    used = 0
    while used + len(line) + 2 <= size:
        lines.append(line)
        used += len(line) + 2
    rest = size - used
    if rest >= 3:
        lines.append("x" * (rest - 2))
    return "\r\n".join(lines) + "\r\n"


def one_kib_message() -> bytes:
    """A pre-serialised message of exactly 1024 bytes, CRLF line endings."""
    data = _HEADERS + one_kib_body().encode("ascii")
    assert len(data) == MESSAGE_SIZE, len(data)
    return data


def recipients(count: int) -> list[str]:
    return [f"rcpt{i}@example.com" for i in range(count)]


@dataclass(slots=True)
class Counts:
    """Accepted and failed messages."""

    sent: int = 0
    failed: int = 0


class Budget:
    """Stop after ``messages`` sends or ``seconds`` seconds, whichever comes first."""

    __slots__ = ("deadline", "messages", "remaining", "seconds")

    def __init__(self, messages: int, seconds: float) -> None:
        self.messages = messages
        self.seconds = seconds
        self.remaining = messages
        self.deadline = time.monotonic() + seconds

    def restart(self) -> None:
        self.remaining = self.messages
        self.deadline = time.monotonic() + self.seconds

    def take(self) -> bool:
        """Claim one more message; False once the budget is spent."""
        if self.remaining <= 0:
            return False
        if time.monotonic() >= self.deadline:
            self.remaining = 0
            return False
        self.remaining -= 1
        return True
