"""The signing interface: anything that signs serialised message bytes.

:class:`~lettre.dkim.DkimSigner` implements it; a transport's ``dkim=``
option and :meth:`Message.sign <lettre.message.message.Message.sign>` take
any object that does.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Signer"]


@runtime_checkable
class Signer(Protocol):
    """Anything that signs serialised message bytes (for example DkimSigner).

    Give one signer or several to any transport's ``dkim=`` option; each
    signs the exact bytes that are sent, in the order given.
    """

    def sign(self, data: bytes) -> bytes:
        """Return ``data`` with the signature header(s) prepended.

        Args:
            data: the whole serialised message, CRLF line endings.

        Returns:
            The signed message: new header fields, then ``data`` unchanged.
        """
        ...
