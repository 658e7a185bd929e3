"""SMTP replies."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete SMTP reply.

    Attributes:
        code: the three-digit reply code (200-599).
        enhanced_status: the RFC 3463 enhanced status code ("2.1.5") when the
            server uses ENHANCEDSTATUSCODES and the reply carries one, else None.
        lines: the text of each line, without the code, the separator, the
            enhanced status code or the line ending.
    """

    code: int
    enhanced_status: str | None
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The reply's lines joined with newlines."""
        return "\n".join(self.lines)

    @property
    def is_positive(self) -> bool:
        """True for 2xx and 3xx replies."""
        return 200 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """True for 4xx replies (try again later)."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """True for 5xx replies."""
        return 500 <= self.code < 600
