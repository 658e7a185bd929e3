"""The two ways the send path reads and writes: asyncio's callbacks, or anyio's tasks.

Both are :class:`~lettre.smtp.driver.TransactionDriver` subclasses over the
same transaction engine; ``SmtpClient`` picks one by the byte stream its
connection runs on.
"""

from __future__ import annotations

from lettre.smtp.backends.anyio import AnyioDriver
from lettre.smtp.backends.asyncio import AsyncioDriver

__all__ = ["AnyioDriver", "AsyncioDriver"]
