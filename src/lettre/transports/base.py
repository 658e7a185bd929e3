"""What every transport shares: the Transport protocol and send results."""

from __future__ import annotations

import abc
import dataclasses
import email.message
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from email.message import EmailMessage
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Final, Protocol, TypeVar, cast, runtime_checkable

import anyio

from lettre.hooks import (
    Hook,
    SendStarted,
    _current_send,
    active,
    end_send,
    hook_tuple,
    start_send,
)
from lettre.results import RecipientResult, SendResult
from lettre.signing import Signer, sign_content

if TYPE_CHECKING:
    from typing import TypeAlias

    from typing_extensions import Self

    from lettre.envelope import Envelope
    from lettre.message.message import Message
    from lettre.message.source import MessageContent

    Content: TypeAlias = bytes | MessageContent

__all__ = [
    "DEFAULT_CONCURRENCY",
    "BaseTransport",
    "RecipientResult",
    "SendResult",
    "Signer",
    "Transport",
    "gather_outcomes",
    "prepare_content",
    "prepare_message",
]


DEFAULT_CONCURRENCY: Final = 10
"""How many sends :meth:`BaseTransport.send_many` runs at once unless told otherwise.

:class:`~lettre.transports.smtp.SmtpTransport` runs twice its pool's ``max_size``.
"""


@runtime_checkable
class Transport(Protocol):
    """The interface every lettre transport implements."""

    async def send(
        self, message: Message | EmailMessage, *, envelope: Envelope | None = None
    ) -> SendResult:
        """Send a message; the envelope defaults to the one the message implies.

        Args:
            message: a lettre :class:`~lettre.Message` or a stdlib
                :class:`email.message.EmailMessage`.
            envelope: the envelope to send with, instead of the one derived
                from the message's Sender/From and To/Cc/Bcc headers.

        Returns:
            A :class:`SendResult` with an outcome for every envelope recipient.

        Raises:
            TransportError: the message did not reach its next hop; the
                subclass says why and ``transient`` whether a later try may
                succeed.
            MessageError: the message cannot be serialised or sent as it is.
            AddressError: an address of a stdlib message is invalid.
            TypeError: ``message`` is neither kind of message.
        """
        ...

    async def send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        """Send already-serialised message bytes with an explicit envelope.

        Args:
            envelope: the reverse path and the recipients.
            data: the message, CRLF line endings, sent as it is (no signing).

        Returns:
            A :class:`SendResult` with an outcome for every envelope recipient.

        Raises:
            TransportError: the message did not reach its next hop.
        """
        ...

    async def send_many(
        self,
        messages: Iterable[Message | EmailMessage],
        *,
        concurrency: int | None = None,
    ) -> list[SendResult | Exception]:
        """Send a list of messages concurrently; one outcome per message, in order.

        Args:
            messages: a list (or any iterable) of messages; for one message,
                use :meth:`send`.
            concurrency: how many sends may be in flight at once (the
                transport's default when None).

        Returns:
            For each message, in the same order, its :class:`SendResult` or
            the exception its send raised.

        Raises:
            TypeError: ``messages`` is one message rather than a list, or holds
                something that is not a message. Nothing is sent.
            ValueError: ``concurrency`` is less than 1. Nothing is sent.
        """
        ...

    async def aclose(self) -> None:
        """Release every resource the transport holds; also run by ``async with``."""
        ...


T = TypeVar("T")
R = TypeVar("R", bound=SendResult)


async def gather_outcomes(
    send: Callable[[T], Awaitable[SendResult]], items: Sequence[T], concurrency: int
) -> list[SendResult | Exception]:
    """``await send(item)`` for every item, at most ``concurrency`` at once.

    A failure only affects its own item: its outcome is the exception.

    Returns:
        One outcome per item, in the order of ``items``.
    """
    outcomes: list[SendResult | Exception | None] = [None] * len(items)
    queue = iter(enumerate(items))

    async def worker() -> None:
        for index, item in queue:
            try:
                outcomes[index] = await send(item)
            except Exception as exc:  # noqa: BLE001 - each failure is that item's outcome
                outcomes[index] = exc

    async with anyio.create_task_group() as group:
        for _ in range(min(concurrency, len(items))):
            group.start_soon(worker)
    return [outcome for outcome in outcomes if outcome is not None]


@functools.cache
def _message_class() -> type[Message]:
    # Imported on first use, not with this module.
    from lettre.message.message import Message

    return Message


def prepare_message(
    message: Message | EmailMessage,
    envelope: Envelope | None = None,
    signers: Sequence[Signer] = (),
) -> tuple[Envelope, bytes, str | None]:
    """Serialise a message once for sending.

    Returns the envelope (the explicit one, else the message's own), the bytes
    (signed by each signer in turn) and the Message-ID, if the message has one.
    Streamed attachments are read into the bytes here (blocking); transports
    that send them a chunk at a time use :func:`prepare_content`.
    """
    env, content, message_id = prepare_content(message, envelope)
    data = content if isinstance(content, bytes) else content.read_all()
    for signer in signers:
        data = signer.sign(data)
    return env, data, message_id


def prepare_content(
    message: Message | EmailMessage,
    envelope: Envelope | None = None,
) -> tuple[Envelope, Content, str | None]:
    """Serialise a message once for sending, its streamed attachments not read yet.

    Returns the envelope (the explicit one, else the message's own), the
    content (bytes, or a :class:`~lettre.message.MessageContent` when the
    message has streamed attachments; see ``Message.content()``) and the
    Message-ID, if the message has one. Nothing is signed.
    """
    if isinstance(message, _message_class()):
        env = envelope if envelope is not None else message.envelope
        data: Content = message.content()
        message_id = message.message_id
    elif isinstance(message, EmailMessage):
        from lettre.message.stdlib import email_message_to_bytes, envelope_from_email_message

        env = envelope if envelope is not None else envelope_from_email_message(message)
        data = email_message_to_bytes(message)
        raw_id = message.get("Message-ID")
        message_id = str(raw_id).strip() if raw_id is not None else None
    else:
        raise TypeError(f"cannot send a {type(message).__name__}; expected Message or EmailMessage")
    return env, data, message_id


def _with_id(result: R, message_id: str | None) -> R:
    """``result``, with ``message_id`` when it has none."""
    if message_id is None or result.message_id is not None:
        return result
    if type(result) is SendResult:
        return SendResult(  # type: ignore[return-value]  # R is SendResult here
            result.recipients, message_id, result.transport_id, result.reply
        )
    return dataclasses.replace(result, message_id=message_id)


def _message_list(
    messages: Iterable[Message | EmailMessage],
) -> list[Message | EmailMessage]:
    """``list(messages)``, refusing one message, or anything that is not a message."""
    message_class = _message_class()
    if isinstance(messages, (message_class, email.message.Message, str, bytes)):
        raise TypeError(
            f"send_many() takes a list of messages, not a single {type(messages).__name__}: "
            "pass [message], or call send(message)"
        )
    if not isinstance(messages, Iterable):
        raise TypeError(f"send_many() takes a list of messages, not {type(messages).__name__}")
    items = list(messages)
    for index, item in enumerate(items):
        if not isinstance(item, (message_class, EmailMessage)):
            raise TypeError(
                f"send_many() takes a list of messages; item {index} is a "
                f"{type(item).__name__}, not a Message or EmailMessage"
            )
    return items


class BaseTransport(abc.ABC):
    """A base class that gives transports ``send``, ``async with`` and signing.

    Subclasses implement :meth:`_send_raw` (and :meth:`aclose` when they hold
    resources); :meth:`send` and :meth:`send_raw` call it, and tell the
    transport's hooks (:mod:`lettre.hooks`) how each send went. ``dkim``
    takes one signer or several; each signs the exact bytes that are sent.

    Args:
        dkim: one :class:`Signer` or several, applied in order by :meth:`send`.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send of
            this transport (besides those given to :func:`lettre.hooks.register`).
    """

    transport_name: ClassVar[str] = "custom"
    """The kind of transport, as hooks and traces name it (``"smtp"``, ``"ses"``...)."""

    _server: tuple[str, int] | None = None
    """The server's host and port, for the hooks, when the transport sends to one."""

    _streams: ClassVar[bool] = False
    """Whether :meth:`_send_raw` takes a :class:`~lettre.message.MessageContent` too
    (and reads it a chunk at a time); otherwise it gets the whole message as bytes."""

    def __init__(
        self,
        *,
        dkim: Signer | Sequence[Signer] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        if dkim is None:
            self._signers: tuple[Signer, ...] = ()
        elif isinstance(dkim, Signer):
            self._signers = (dkim,)
        else:
            self._signers = tuple(dkim)
        self._hooks = hook_tuple(hooks)

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The hooks given to this transport (not those registered for the process)."""
        return self._hooks

    async def send(
        self, message: Message | EmailMessage, *, envelope: Envelope | None = None
    ) -> SendResult:
        """Serialise ``message`` (signing it if configured) and send it.

        Args:
            message: a lettre :class:`~lettre.Message` or a stdlib
                :class:`email.message.EmailMessage`.
            envelope: overrides the envelope derived from the message's headers.

        Returns:
            A :class:`SendResult` accounting for every recipient.

        Raises:
            TransportError: from :meth:`send_raw`.
            MessageError: the message cannot be serialised.
            AddressError: an address of a stdlib message is invalid.
            TypeError: ``message`` is neither kind of message.
        """
        env, data, message_id = await self._prepare(message, envelope)
        return await self._observed(env, data, message_id, self._send_raw)

    async def _prepare(
        self, message: Message | EmailMessage, envelope: Envelope | None
    ) -> tuple[Envelope, bytes, str | None]:
        """Serialise and sign ``message``: what :meth:`send` hands to :meth:`_send_raw`.

        Streamed attachments are read (and signed) in worker threads; only a
        transport that sets ``_streams`` gets a ``MessageContent`` back.
        """
        env, data, message_id = prepare_content(message, envelope)
        if not isinstance(data, bytes):
            # Only a transport that sets _streams gets a MessageContent.
            data = cast("bytes", await self._streamed(data))
        else:
            for signer in self._signers:
                data = signer.sign(data)
        return env, data, message_id

    async def send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        """Send already-serialised message bytes with an explicit envelope.

        Args:
            envelope: the reverse path and the recipients.
            data: the message, CRLF line endings, sent as it is (no signing).

        Returns:
            A :class:`SendResult` with an outcome for every envelope recipient.

        Raises:
            TransportError: the message did not reach its next hop.
        """
        return await self._observed(envelope, data, None, self._send_raw)

    async def _streamed(self, content: MessageContent) -> Content:
        """A streamed message, signed (a first pass, in a worker thread), as the transport takes it.

        A transport that does not read content in chunks gets the whole bytes.
        """
        data: Content = content
        if self._signers:
            data = await anyio.to_thread.run_sync(sign_content, content, self._signers)
        if not isinstance(data, bytes) and not self._streams:
            data = await anyio.to_thread.run_sync(data.read_all)
        return data

    async def _observed(
        self,
        envelope: Envelope,
        data: bytes,
        message_id: str | None,
        deliver: Callable[[Envelope, bytes], Awaitable[R]],
    ) -> R:
        """``await deliver(envelope, data)``, telling the hooks how it went.

        The result carries ``message_id`` when the transport did not set one.
        """
        hooks = active(self._hooks)
        if not hooks:
            return _with_id(await deliver(envelope, data), message_id)
        # A MessageContent (streamed attachments) knows its size in advance, or not (0).
        size = len(data) if type(data) is bytes else getattr(data, "size", None) or 0
        event = SendStarted(self.transport_name, envelope, size, message_id, self._server)
        observers = start_send(hooks, event)
        if not observers:  # no hook follows this send
            return _with_id(await deliver(envelope, data), message_id)
        token = _current_send.set(observers)
        try:
            result = _with_id(await deliver(envelope, data), message_id)
        except BaseException as exc:
            _current_send.reset(token)
            end_send(observers, None, exc)
            raise
        _current_send.reset(token)
        end_send(observers, result, None)
        return result

    @abc.abstractmethod
    async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        """Send message bytes with an explicit envelope (what each transport implements).

        Called by :meth:`send` and :meth:`send_raw`, which tell the hooks.

        Args:
            envelope: the reverse path and the recipients.
            data: the message, CRLF line endings, sent as it is; a
                :class:`~lettre.message.MessageContent` (read a chunk at a
                time) only when the class sets ``_streams``.

        Returns:
            A :class:`SendResult` with an outcome for every envelope recipient.

        Raises:
            TransportError: the message did not reach its next hop.
        """

    def _default_concurrency(self) -> int:
        """How many sends :meth:`send_many` runs at once when not told (a subclass hook)."""
        return DEFAULT_CONCURRENCY

    async def send_many(
        self,
        messages: Iterable[Message | EmailMessage],
        *,
        concurrency: int | None = None,
    ) -> list[SendResult | Exception]:
        """Send a list of messages concurrently; one outcome per message, in order.

        Up to ``concurrency`` calls of :meth:`send` run at once (by default
        :data:`DEFAULT_CONCURRENCY`; on ``SmtpTransport`` twice the pool's
        ``max_size``, so that a connection always has a next message to
        chain). A failure only affects its own message: its outcome is the
        exception, and the others go on. Outcomes are in the order of
        ``messages``; the sends themselves may finish in any order.

        Args:
            messages: a list (or any iterable) of lettre ``Message`` or stdlib
                ``EmailMessage`` objects; for one message, use :meth:`send`.
            concurrency: how many sends may be in flight at once.

        Returns:
            For each message, in the same order, its :class:`SendResult` or
            the exception (an ``Exception``) its send raised.

        Raises:
            TypeError: ``messages`` is one message rather than a list, or holds
                something that is not a message; ``concurrency`` is not an
                int. Nothing is sent.
            ValueError: ``concurrency`` is less than 1. Nothing is sent.
        """
        items = _message_list(messages)
        if concurrency is None:
            concurrency = self._default_concurrency()
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise TypeError(f"concurrency must be an int, not {type(concurrency).__name__}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        return await gather_outcomes(self.send, items, concurrency)

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release every resource the transport holds (nothing by default)."""

    def for_new_process(self) -> Self:
        """A transport configured like this one that shares no connection with it.

        For a process forked after this transport was used (gunicorn, Celery
        prefork, ``multiprocessing``): the parent's sockets and event loop
        state must never be used by the child. Transports that hold neither
        (this default) return themselves; those that do return a new,
        unopened transport with the same settings and signers.

        Raises:
            TransportError: the transport holds something that cannot be
                made again in a new process (for example a client object it
                was given).
        """
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
