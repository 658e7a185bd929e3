"""One message, one call: :func:`send` connects, sends and closes (or uses a transport given)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lettre.transports.base import Transport

if TYPE_CHECKING:
    from email.message import EmailMessage

    from lettre.envelope import Envelope
    from lettre.message.message import Message
    from lettre.results import SendResult

__all__ = ["send"]


async def send(
    message: Message | EmailMessage,
    url_or_transport: str | Transport,
    *,
    envelope: Envelope | None = None,
    **options: Any,
) -> SendResult:
    """Send one message with an ``smtp://`` or ``smtps://`` URL, or through a transport.

    With a URL, opens an :class:`~lettre.SmtpTransport` for this one message
    and closes it (QUIT) before returning, whatever happens. With a
    transport, sends through it and leaves it open. For many messages keep
    one transport open instead: it reuses its connections.

    Example::

        await lettre.send(message, "smtps://user:secret@smtp.example.com")

    Args:
        message: a lettre :class:`~lettre.Message` or a stdlib
            :class:`email.message.EmailMessage`.
        url_or_transport: an ``smtp://`` or ``smtps://`` URL (see
            :meth:`~lettre.SmtpTransport.from_url` for its parameters), or
            any transport.
        envelope: the envelope to send with, instead of the one derived from
            the message's headers.
        options: with a URL, keyword arguments of
            :meth:`~lettre.SmtpTransport.from_url` (``tls_parameters=``,
            ``pool=``, ``dkim=``...).

    Returns:
        A :class:`~lettre.SendResult` with an outcome for every recipient.

    Raises:
        TransportError: the send failed (the subclass says why).
        ValueError: the URL is invalid (the message never shows the password).
        TypeError: ``url_or_transport`` is neither a URL nor a transport, or
            ``options`` were given with a transport.
    """
    if isinstance(url_or_transport, str):
        from lettre.transports.smtp import SmtpTransport

        async with SmtpTransport.from_url(url_or_transport, **options) as transport:
            return await transport.send(message, envelope=envelope)
    if isinstance(url_or_transport, type):
        name = url_or_transport.__name__
        raise TypeError(f"send() takes a transport, not the class {name}: pass {name}(...)")
    if not isinstance(url_or_transport, Transport):
        raise TypeError(
            "send() takes an smtp:// or smtps:// URL or a transport, not "
            f"{type(url_or_transport).__name__}"
        )
    if options:
        raise TypeError(
            f"send() takes no {', '.join(sorted(options))} with a transport: "
            "those are settings of the transport"
        )
    return await url_or_transport.send(message, envelope=envelope)
