"""The signing interface: anything that signs serialised message bytes.

:class:`~lettre.dkim.DkimSigner` implements it; a transport's ``dkim=``
option and :meth:`Message.sign <lettre.message.message.Message.sign>` take
any object that does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lettre.message.source import MessageContent

__all__ = ["Signer", "StreamSigner", "sign_content"]


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


@runtime_checkable
class StreamSigner(Protocol):
    """A signer that also signs a message whose attachments are read while sending.

    :class:`~lettre.dkim.DkimSigner` is one: it reads the content once to
    hash it and leaves the second read to the send.
    """

    def sign(self, data: bytes) -> bytes:
        """Return ``data`` with the signature header(s) prepended (see :class:`Signer`)."""
        ...

    def sign_content(self, content: MessageContent) -> MessageContent:
        """Return ``content`` with the signature header(s) before it (blocking).

        Args:
            content: the message, its streamed attachments not read yet.

        Returns:
            The content with new header fields prepended.
        """
        ...


def sign_content(content: MessageContent, signers: Sequence[Signer]) -> bytes | MessageContent:
    """Sign a streamed message with each signer in turn (blocking: run it in a worker thread).

    A :class:`StreamSigner` signs the content without holding it; any
    other signer needs the whole message in memory, so the content is read
    into bytes for it (and stays bytes for the signers after it).

    Args:
        content: the message, as ``Message.content()`` gives it.
        signers: the signers, applied in order.

    Returns:
        The signed content, or bytes once a signer needed them.

    Raises:
        SourceError: a source cannot be read as the message was built.
        MessageError: a signer refused the message.
    """
    data: bytes | MessageContent = content
    for signer in signers:
        if isinstance(data, bytes):
            data = signer.sign(data)
        elif isinstance(signer, StreamSigner):
            data = signer.sign_content(data)
        else:
            data = signer.sign(data.read_all())
    return data
