"""A transport that keeps what it "sends" in memory, for tests.

Swap it in for the real transport in your application's tests, then look at
:attr:`MemoryTransport.outbox`. It can also be told to fail or to refuse
recipients, so that the error paths of your code can be tested too. With
pytest, the ``mail_outbox`` fixture (see :mod:`lettre.testing`) hands out a
fresh one per test.
"""

from __future__ import annotations

import email.policy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING

import anyio.lowlevel

from lettre.errors import RecipientsRefused
from lettre.hooks import Hook
from lettre.protocol.replies import Reply
from lettre.transports.base import (
    BaseTransport,
    RecipientResult,
    SendResult,
    Signer,
)

if TYPE_CHECKING:
    from lettre.address import Address
    from lettre.envelope import Envelope
    from lettre.message.message import Message

__all__ = ["DEFAULT_REFUSAL", "MemoryTransport", "SentMessage"]

#: The reply recorded for a refused recipient unless another is given.
DEFAULT_REFUSAL = Reply(550, "5.1.1", ("recipient refused by MemoryTransport",))


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message recorded by :class:`MemoryTransport`.

    Attributes:
        envelope: the envelope it was sent with (every recipient, accepted
            or refused).
        data: the exact bytes that were "sent" (signed, when signers are set).
        message: the object passed to ``send`` (a lettre ``Message`` or a
            stdlib ``EmailMessage``); None after ``send_raw``.
        result: what the send returned.
    """

    envelope: Envelope
    data: bytes
    message: Message | EmailMessage | None
    result: SendResult

    @property
    def sender(self) -> str | None:
        """The reverse path as text; None for the null reverse path."""
        path = self.envelope.reverse_path
        return str(path) if path is not None else None

    @property
    def recipients(self) -> tuple[str, ...]:
        """The recipients that were accepted (every one, unless some were refused)."""
        return self.result.accepted

    @property
    def message_id(self) -> str | None:
        """The Message-ID of the message, when it had one."""
        return self.result.message_id

    def parsed(self) -> EmailMessage:
        """Parse :attr:`data` with the standard library, for easy assertions.

        Example::

            assert mail_outbox.outbox[0].parsed()["Subject"] == "Welcome"
        """
        parsed = BytesParser(policy=email.policy.default).parsebytes(self.data)
        if not isinstance(parsed, EmailMessage):  # pragma: no cover - policy.default
            raise TypeError("the standard library parser returned an unexpected type")
        return parsed


class MemoryTransport(BaseTransport):
    """Record every sent message in :attr:`outbox` instead of delivering it.

    Messages go through the same serializer (and signers) as with any other
    transport, so :attr:`SentMessage.data` holds exactly the bytes a real
    transport would send.

    Example::

        transport = MemoryTransport()
        await transport.send(message)
        assert transport.outbox[0].recipients == ("bob@example.com",)

    Args:
        dkim: one signer or several; each signs the recorded bytes.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send
            (see :mod:`lettre.hooks`).

    Attributes:
        outbox: every message recorded so far, oldest first. Sends that
            failed (:meth:`fail_with`) or whose every recipient was refused
            are not in it.
    """

    transport_name = "memory"

    def __init__(
        self,
        *,
        dkim: Signer | Sequence[Signer] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        super().__init__(dkim=dkim, hooks=hooks)
        self.outbox: list[SentMessage] = []
        self._failure: BaseException | None = None
        self._failures_left: int | None = 0
        self._refused: dict[Address, Reply] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryTransport outbox={len(self.outbox)} message(s)>"

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run (sending still works)."""
        return self._closed

    def clear(self) -> None:
        """Empty the outbox (failures and refusals stay configured)."""
        self.outbox.clear()

    def reset(self) -> None:
        """Empty the outbox and forget every configured failure and refusal."""
        self.outbox.clear()
        self.stop_failing()
        self._refused.clear()

    def fail_with(self, error: BaseException, *, times: int | None = 1) -> None:
        """Make the next send(s) raise ``error`` instead of recording anything.

        Args:
            error: the exception instance to raise, for example
                ``SmtpTimeoutError("timed out")`` or ``SendmailError(...)``.
            times: how many sends fail (the default: the next one only);
                None makes every send fail until :meth:`stop_failing`.

        Raises:
            TypeError: ``error`` is not an exception instance.
            ValueError: ``times`` is not positive.
        """
        if not isinstance(error, BaseException):
            raise TypeError(f"fail_with() needs an exception instance, not {type(error).__name__}")
        if times is not None and (isinstance(times, bool) or times < 1):
            raise ValueError("times must be a positive integer or None")
        self._failure = error
        self._failures_left = times

    def stop_failing(self) -> None:
        """Forget the failure set by :meth:`fail_with`."""
        self._failure = None
        self._failures_left = 0

    def refuse(self, *recipients: Address | str, reply: Reply = DEFAULT_REFUSAL) -> None:
        """Refuse these recipients in every later send.

        A send with some recipients refused is recorded and returns a
        :class:`SendResult` naming them (with ``reply``); a send whose every
        recipient is refused raises :class:`~lettre.errors.RecipientsRefused`
        and records nothing.

        Args:
            recipients: the addresses to refuse.
            reply: the reply reported for them (4xx makes the refusal
                transient).

        Raises:
            ValueError: ``reply`` is not a 4xx or 5xx :class:`Reply`.
            AddressError: a recipient is not a valid address.
        """
        from lettre.address import Address

        if not isinstance(reply, Reply) or not 400 <= reply.code < 600:
            raise ValueError("reply must be a 4xx or 5xx Reply")
        for recipient in recipients:
            self._refused[Address.coerce(recipient)] = reply

    def accept(self, *recipients: Address | str) -> None:
        """Stop refusing these recipients (all of them when none are given).

        Args:
            recipients: the addresses to accept again, as given to :meth:`refuse`.

        Raises:
            AddressError: a recipient is not a valid address.
        """
        from lettre.address import Address

        if not recipients:
            self._refused.clear()
            return
        for recipient in recipients:
            self._refused.pop(Address.coerce(recipient), None)

    async def send(
        self, message: Message | EmailMessage, *, envelope: Envelope | None = None
    ) -> SendResult:
        """Serialise ``message`` like any transport and record it with the object.

        Args:
            message: a lettre :class:`~lettre.Message` or a stdlib
                :class:`email.message.EmailMessage`.
            envelope: overrides the envelope derived from the message's headers.

        Returns:
            A result for every recipient; ``message_id`` is the message's
            Message-ID.

        Raises:
            RecipientsRefused: every recipient is refused (see :meth:`refuse`).
            MessageError: the message cannot be serialised.
            TypeError: ``message`` is neither kind of message.
            BaseException: the error given to :meth:`fail_with`.
        """
        env, data, message_id = await self._prepare(message, envelope)

        async def record(env: Envelope, data: bytes) -> SendResult:
            return await self._record(env, data, message, message_id)

        return await self._observed(env, data, message_id, record)

    async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        """Record ``data`` with ``envelope`` (no message object is kept).

        Args:
            envelope: the reverse path and the recipients.
            data: the message bytes, recorded as they are (not signed).

        Returns:
            A result for every recipient, without a Message-ID.

        Raises:
            RecipientsRefused: every recipient is refused (see :meth:`refuse`).
            BaseException: the error given to :meth:`fail_with`.
        """
        return await self._record(envelope, bytes(data), None, None)

    async def aclose(self) -> None:
        """Mark the transport closed; the outbox stays readable."""
        self._closed = True

    async def _record(
        self,
        envelope: Envelope,
        data: bytes,
        message: Message | EmailMessage | None,
        message_id: str | None,
    ) -> SendResult:
        # Behave like a real transport: a send is a checkpoint (cancellable).
        await anyio.lowlevel.checkpoint()
        self._maybe_fail()
        results = tuple(self._outcome(rcpt) for rcpt in envelope.forward_paths)
        if not any(r.accepted for r in results):
            self._raise_all_refused(results)
        result = SendResult(recipients=results, message_id=message_id)
        self.outbox.append(SentMessage(envelope, data, message, result))
        return result

    def _maybe_fail(self) -> None:
        error = self._failure
        if error is None:
            return
        if self._failures_left is not None:
            self._failures_left -= 1
            if self._failures_left <= 0:
                self.stop_failing()
        raise error

    def _outcome(self, recipient: Address) -> RecipientResult:
        reply = self._refused.get(recipient)
        if reply is None:
            return RecipientResult(recipient=str(recipient), accepted=True)
        return RecipientResult(recipient=str(recipient), accepted=False, reply=reply)

    @staticmethod
    def _raise_all_refused(results: Iterable[RecipientResult]) -> None:
        refused = tuple(results)
        first = refused[0].reply or DEFAULT_REFUSAL
        raise RecipientsRefused(
            first.code,
            first.text,
            results=refused,
            enhanced_status=first.enhanced_status,
            message=f"every recipient was refused ({len(refused)})",
        )
