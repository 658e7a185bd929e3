"""FailoverTransport and RoundRobinTransport: one transport made of several.

:class:`FailoverTransport` sends through its first transport and, when that
send fails in a way that another transport may not, through the next one:
an SMTP relay, then SES. :class:`RoundRobinTransport` spreads sends over its
transports in turn, and fails over the same way. Both hand the message
object itself to the transport they pick, so each serialises and signs it in
its own way, and both return a :class:`FailoverSendResult` that says which
transport took the message and what failed before.

What fails over is decided in one place, :func:`fails_over`: a transient
:class:`~lettre.errors.TransportError` raised before the message can have
been accepted. An :class:`~lettre.errors.OutcomeUnknown` (the content was
sent, the reply never came) is raised as it is: sending elsewhere could
deliver the message twice. Permanent errors are raised as they are too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from lettre.errors import (
    DataRefused,
    DeliveryError,
    RecipientsRefused,
    SenderRefused,
    TransportError,
)
from lettre.hooks import Hook, active
from lettre.results import RecipientResult, SendResult
from lettre.transports.base import (
    DEFAULT_CONCURRENCY,
    BaseTransport,
    Transport,
    prepare_content,
)

if TYPE_CHECKING:
    from email.message import EmailMessage
    from types import TracebackType

    from typing_extensions import Self

    from lettre.envelope import Envelope
    from lettre.message.message import Message

__all__ = [
    "AllTransportsFailed",
    "FailedAttempt",
    "FailoverSendResult",
    "FailoverTransport",
    "RoundRobinTransport",
    "fails_over",
]

_logger = logging.getLogger("lettre.failover")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """A transport that failed a send before another one was tried.

    Attributes:
        index: the transport's position in the list given to the constructor.
        transport: the transport itself.
        error: what it raised (a transient error, see :func:`fails_over`).
    """

    index: int
    transport: Transport
    error: TransportError

    def __str__(self) -> str:
        return f"#{self.index} {self.transport!r}: {type(self.error).__name__}: {self.error}"


@dataclass(frozen=True, slots=True)
class FailoverSendResult(SendResult):
    """A :class:`~lettre.SendResult` that also says which transport took the message.

    ``recipients``, ``message_id``, ``transport_id`` and ``reply`` are those
    of the transport that took the message.

    Attributes:
        transport: the transport that took the message.
        index: its position in the list given to the constructor.
        attempts: the transports that failed before it, in the order they
            were tried (empty when the first one tried took the message).
        inner: the result that transport returned, unchanged (for example an
            ``MxSendResult`` with its deliveries).
    """

    transport: Transport = field(kw_only=True)
    index: int = field(kw_only=True)
    attempts: tuple[FailedAttempt, ...] = field(default=(), kw_only=True)
    inner: SendResult | None = field(default=None, kw_only=True, repr=False)

    @property
    def failed_over(self) -> bool:
        """True when another transport failed the send first."""
        return bool(self.attempts)


class AllTransportsFailed(TransportError):
    """Every transport of a failover or round-robin transport failed the send, transiently.

    Raised by :class:`FailoverTransport` and :class:`RoundRobinTransport`
    once each of their transports was tried and each failed in a way that
    fails over (see :func:`fails_over`). Nothing was delivered. Always
    transient: each failure was. Chained (``__cause__``) from the last
    transport's error; the message names each transport and its error.

    Args:
        message: the error message.
        attempts: every transport's failure, in the order they were tried.

    Attributes:
        attempts: every transport's failure (:class:`FailedAttempt`), in the
            order they were tried.
    """

    transient = True

    def __init__(self, message: str, *, attempts: Sequence[FailedAttempt]) -> None:
        self.attempts: tuple[FailedAttempt, ...] = tuple(attempts)
        super().__init__(message, transient=True)

    @property
    def errors(self) -> tuple[TransportError, ...]:
        """Each transport's error, in the order the transports were tried."""
        return tuple(attempt.error for attempt in self.attempts)


# --------------------------------------------------------------------------- the decision


def fails_over(error: BaseException) -> bool:
    """Whether a send that raised ``error`` may be given to another transport.

    True for a transient :class:`~lettre.errors.TransportError` raised
    before the message can have been accepted: the connection could not be
    made, timed out or broke before the content was handed over, the
    server greeted or answered MAIL with 4xx (or refused every recipient
    with 4xx), no pooled connection came free in time
    (:class:`~lettre.errors.PoolTimeout`), SES throttled or failed with a
    5xx, sendmail exited with ``EX_TEMPFAIL``, direct delivery could not
    reach a domain for now. A nested :class:`AllTransportsFailed` fails over
    too.

    False for everything else, which is raised as it is:

    - the outcome is unknown: :class:`~lettre.errors.OutcomeUnknown` (the
      content was sent, the final reply never came), an SES call that got
      no answer, a sendmail program killed at its timeout, a direct
      delivery with such a recipient. Another transport could deliver the
      message a second time.
    - permanent errors (5xx replies, rejected messages, bad credentials, a
      failed certificate check, a message too large...): the message or its
      recipients are at fault and the next transport would refuse it too,
      or the transport is misconfigured, which failing over would hide.
      A 5xx :class:`~lettre.errors.RecipientsRefused` is the recipients'
      fault, not the transport's.
    - anything that is not a ``TransportError``: ``MessageError``,
      ``AddressError``, ``TypeError``, protocol errors, cancellation.

    A send that returns, even with some recipients refused, is a result,
    not a failure: it never reaches this function.

    Args:
        error: the exception a transport's send raised.

    Returns:
        Whether the next transport should be tried.
    """
    if not isinstance(error, TransportError) or not error.transient:
        return False
    if _outcome_unknown(error):
        return False
    if isinstance(error, RecipientsRefused):
        # With require_all_recipients one 5xx refusal sinks the send: the
        # next transport would refuse that recipient too.
        return all(_refusal_is_transient(r) for r in error.results if not r.accepted)
    return True


def _outcome_unknown(error: BaseException | None) -> bool:
    """Whether the message may have been accepted although the send raised ``error``."""
    if isinstance(error, DeliveryError):
        return any(_outcome_unknown(r.error) for r in error.result.recipients)
    return isinstance(error, TransportError) and error.outcome_unknown


def _refusal_is_transient(result: RecipientResult) -> bool:
    if result.reply is not None:
        return result.reply.is_transient
    error = result.error
    return isinstance(error, TransportError) and error.transient


def _transport_trouble(error: TransportError) -> bool:
    """Whether a failure says the transport is unwell (and starts its cool-down).

    Replies about this message (its sender, recipients or content, short
    of a 421 that closes the connection) and direct delivery's per-domain
    failures say nothing about the transport's health.
    """
    if isinstance(error, DeliveryError):
        return False
    if isinstance(error, (SenderRefused, RecipientsRefused, DataRefused)):
        return error.code == 421
    return True


# --------------------------------------------------------------------------- transports


def _checked_transports(owner: str, transports: object) -> tuple[Transport, ...]:
    if isinstance(transports, Transport) or not isinstance(transports, Iterable):
        raise TypeError(
            f"{owner} takes a list of transports, not a {type(transports).__name__}: "
            f"{owner}([primary, secondary])"
        )
    items = tuple(transports)
    if not items:
        raise ValueError(f"{owner} needs at least one transport, got an empty list")
    for index, item in enumerate(items):
        if isinstance(item, type):
            raise TypeError(
                f"{owner}: item {index} is the class {item.__name__}, not a transport: "
                f"make one ({item.__name__}(...))"
            )
        if not isinstance(item, Transport):
            hint = "an async lettre transport (SmtpTransport, SesTransport, ...)"
            if callable(getattr(item, "send", None)):
                # A BlockingTransport, or another transport with a blocking send().
                hint += (
                    f"; to send from blocking code, wrap the {owner} in BlockingTransport "
                    "rather than the transports in it"
                )
            raise TypeError(f"{owner}: item {index} is a {type(item).__name__}, not {hint}")
        for earlier in range(index):
            if items[earlier] is item:
                raise ValueError(
                    f"{owner}: items {earlier} and {index} are the same transport; "
                    "give each transport once"
                )
    return items


def _checked_cooldown(cooldown: object) -> float:
    if isinstance(cooldown, bool) or not isinstance(cooldown, int | float):
        raise TypeError(f"cooldown must be a number of seconds, not {type(cooldown).__name__}")
    if not (cooldown >= 0 and math.isfinite(cooldown)):
        raise ValueError(
            f"cooldown must be zero or a positive, finite number of seconds, got {cooldown!r}"
        )
    return float(cooldown)


def _renewed(transport: Transport) -> Transport:
    renew = getattr(transport, "for_new_process", None)
    if renew is None:
        return transport
    renewed: Transport = renew()
    return renewed


def _concurrency_of(transport: Transport) -> int:
    if isinstance(transport, BaseTransport):
        return transport._default_concurrency()
    return DEFAULT_CONCURRENCY


class _TransportGroup(BaseTransport):
    """What both transports share: the order of the attempts, failing over, cooling down."""

    def __init__(
        self,
        transports: Sequence[Transport],
        *,
        cooldown: float = 0.0,
        clock: Callable[[], float] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        owner = type(self).__name__
        super().__init__(hooks=hooks)
        self._transports = _checked_transports(owner, transports)
        self._cooldown = _checked_cooldown(cooldown)
        if clock is not None and not callable(clock):
            raise TypeError(
                f"clock must be a function returning seconds, not {type(clock).__name__}"
            )
        self._clock: Callable[[], float] = clock if clock is not None else time.monotonic
        # Per transport: the clock reading until which it cools down.
        self._cool_until: list[float] = [-math.inf] * len(self._transports)
        self._turn = 0

    @property
    def transports(self) -> tuple[Transport, ...]:
        """The transports, in the order given to the constructor."""
        return self._transports

    @property
    def cooldown(self) -> float:
        """Seconds a transport is tried last after a transient failure (0: never)."""
        return self._cooldown

    def cooling_down(self) -> tuple[int, ...]:
        """The positions of the transports that are cooling down now."""
        if not self._cooldown:
            return ()
        now = self._clock()
        return tuple(i for i, until in enumerate(self._cool_until) if until > now)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self._transports)
        cooldown = f", cooldown={self._cooldown:g}" if self._cooldown else ""
        return f"{type(self).__name__}([{inner}]{cooldown})"

    # ------------------------------------------------------------------ sending

    async def send(
        self, message: Message | EmailMessage, *, envelope: Envelope | None = None
    ) -> FailoverSendResult:
        """Hand ``message`` to one transport's ``send()``, then to the next while it fails over.

        The message object goes to each transport as it is, so each one
        serialises and signs it with its own settings.

        Args:
            message: a lettre :class:`~lettre.Message` or a stdlib
                :class:`email.message.EmailMessage`.
            envelope: overrides the envelope derived from the message's headers.

        Returns:
            The result of the transport that took the message, with that
            transport and the earlier failures.

        Raises:
            AllTransportsFailed: every transport failed transiently.
            TransportError: a transport failed in a way that does not fail
                over (see :func:`fails_over`); raised as it is.
            MessageError: the message cannot be serialised.
            AddressError: an address of a stdlib message is invalid.
            TypeError: ``message`` is neither kind of message.
        """

        async def call(transport: Transport) -> SendResult:
            return await transport.send(message, envelope=envelope)

        if not active(self._hooks):
            # No one to tell: the transports serialise; this one need not.
            return await self._deliver(call)
        # Serialised only for the hooks' event (its size); streamed attachments
        # are not read here (a MessageContent knows its size).
        env, content, message_id = prepare_content(message, envelope)

        async def deliver(env: Envelope, data: bytes) -> FailoverSendResult:
            return await self._deliver(call)

        return await self._observed(env, cast("bytes", content), message_id, deliver)

    async def send_raw(self, envelope: Envelope, data: bytes) -> FailoverSendResult:
        """Hand message bytes to one transport's ``send_raw()``, failing over like :meth:`send`.

        Args:
            envelope: the reverse path and the recipients.
            data: the message, CRLF line endings, sent as it is (no signing).

        Returns:
            The result of the transport that took the message.

        Raises:
            AllTransportsFailed: every transport failed transiently.
            TransportError: a transport failed in a way that does not fail over.
        """
        return await self._observed(envelope, data, None, self._send_raw)

    async def _send_raw(self, envelope: Envelope, data: bytes) -> FailoverSendResult:
        async def call(transport: Transport) -> SendResult:
            return await transport.send_raw(envelope, data)

        return await self._deliver(call)

    async def _deliver(
        self, call: Callable[[Transport], Awaitable[SendResult]]
    ) -> FailoverSendResult:
        """``await call(transport)`` for each transport in turn until one does not fail over."""
        attempts: list[FailedAttempt] = []
        order = self._order()
        for index in order:
            transport = self._transports[index]
            try:
                result = await call(transport)
            except TransportError as exc:
                if not fails_over(exc):
                    raise
                attempts.append(FailedAttempt(index, transport, exc))
                self._failed(index, exc)
                _logger.warning(
                    "%s: %s (%d more to try)",
                    type(self).__name__,
                    attempts[-1],
                    len(order) - len(attempts),
                )
                continue
            self._cool_until[index] = -math.inf
            return FailoverSendResult(
                result.recipients,
                result.message_id,
                result.transport_id,
                result.reply,
                transport=transport,
                index=index,
                attempts=tuple(attempts),
                inner=result,
            )
        count = len(attempts)
        described = "; ".join(str(attempt) for attempt in attempts)
        raise AllTransportsFailed(
            f"every transport failed ({count} tried), nothing was sent; "
            f"try again later: {described}",
            attempts=attempts,
        ) from attempts[-1].error

    def _order(self) -> list[int]:
        """The positions of the transports to try, in order, for one send.

        The transports that are not cooling down come first, from this
        send's turn (always the first one for a failover); those cooling
        down follow, the one whose cool-down ends first first.
        """
        count = len(self._transports)
        if self._cooldown:
            now = self._clock()
            ready = [i for i in range(count) if self._cool_until[i] <= now]
            cooling = sorted(
                (i for i in range(count) if self._cool_until[i] > now),
                key=self._cool_until.__getitem__,
            )
        else:
            ready, cooling = list(range(count)), []
        if len(ready) > 1:
            start = self._next_turn() % len(ready)
            ready = ready[start:] + ready[:start]
        return ready + cooling

    def _next_turn(self) -> int:
        """Which of the ready transports goes first for the next send."""
        return 0

    def _failed(self, index: int, error: TransportError) -> None:
        if self._cooldown and _transport_trouble(error):
            self._cool_until[index] = self._clock() + self._cooldown

    # ------------------------------------------------------------------ lifetime

    def for_new_process(self) -> Self:
        """The same arrangement of each transport's ``for_new_process()``, for a forked child.

        Cool-downs start afresh; the hooks and the clock are kept.

        Raises:
            TransportError: a transport cannot be made again in a new process.
        """
        return type(self)(
            [_renewed(t) for t in self._transports],
            cooldown=self._cooldown,
            clock=self._clock,
            hooks=self._hooks,
        )

    async def aclose(self) -> None:
        """Close every transport, in order, each even if closing another raised.

        Raises:
            Exception: what closing a transport raised; when several raise,
                the last one's error, the earlier ones chained as its context.
        """
        async with AsyncExitStack() as stack:
            for transport in reversed(self._transports):
                stack.push_async_callback(transport.aclose)

    async def __aenter__(self) -> Self:
        """Enter every transport's ``async with``, in order (leaving them again if one fails)."""
        async with AsyncExitStack() as stack:
            for transport in self._transports:
                enter = getattr(transport, "__aenter__", None)
                leave = getattr(transport, "__aexit__", None)
                if enter is None or leave is None:
                    stack.push_async_callback(transport.aclose)
                else:
                    await enter()
                    stack.push_async_exit(leave)
            stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave every transport's ``async with`` (or close it), each even if another raises."""
        # The stack runs them last first: the reverse of entering, as their
        # task groups nest.
        async with AsyncExitStack() as stack:
            for transport in self._transports:
                enter = getattr(transport, "__aenter__", None)
                leave = getattr(transport, "__aexit__", None)
                if enter is not None and leave is not None:
                    stack.push_async_callback(leave, exc_type, exc, tb)
                else:
                    stack.push_async_callback(transport.aclose)


class FailoverTransport(_TransportGroup):
    """Send through the first transport; when it fails over, through the next, and so on.

    Example::

        transport = FailoverTransport([
            SmtpTransport.starttls_relay("smtp.example.com"),
            SesTransport(region="eu-west-1"),
        ])
        async with transport:
            result = await transport.send(message)
            print(result.index, result.attempts)

    A send that fails in a way :func:`fails_over` accepts (a transient
    failure before the content can have been accepted) goes to the next
    transport; any other failure is raised as it is, and so is
    :class:`~lettre.errors.OutcomeUnknown`. A send with some recipients
    refused returns its result. When every transport failed, the send
    raises :class:`AllTransportsFailed`, which holds each failure.

    Each attempt is bounded by that transport's own timeouts, so a send may
    take as long as every transport's timeouts together. Cancelling a send
    cancels its current attempt and tries no other transport.

    With ``cooldown``, a transport that failed (because of its own trouble:
    not a reply about this message's sender, recipients or content) is
    tried last for that many seconds, so that later sends do not wait for
    it first; it is still tried when every other transport fails, and a
    success ends its cool-down.

    Args:
        transports: the transports, in order of preference (at least one,
            each once). They are owned by this transport from now on:
            ``async with`` enters each and :meth:`aclose` closes each.
        cooldown: seconds a failing transport is tried last (0, the
            default: never).
        clock: a function returning seconds, for the cool-downs (default
            ``time.monotonic``; tests pass a clock of their own).
        hooks: :class:`~lettre.hooks.Hook` objects told about every send of
            this transport; each transport also tells its own hooks about
            its attempt.

    Raises:
        TypeError: ``transports`` is not a list of async transports, or
            ``cooldown`` is not a number.
        ValueError: the list is empty or holds a transport twice, or
            ``cooldown`` is negative.
    """

    transport_name = "failover"

    def _default_concurrency(self) -> int:
        """The largest of the transports' own, since any one of them may take every send."""
        return max(_concurrency_of(t) for t in self._transports)


class RoundRobinTransport(_TransportGroup):
    """Spread sends over the transports in turn; a send that fails over goes to the next.

    Example::

        transport = RoundRobinTransport([
            SmtpTransport.starttls_relay("smtp1.example.com"),
            SmtpTransport.starttls_relay("smtp2.example.com"),
        ])

    The first send goes to the first transport, the second to the second,
    and so on, round. A send fails over exactly as with
    :class:`FailoverTransport` (see :func:`fails_over`): to the following
    transports in turn, wrapping round, and :class:`AllTransportsFailed`
    when each has failed. With ``cooldown``, a transport that failed is left
    out of the rotation for that many seconds (and tried last), so the
    others share its turns evenly.

    Args:
        transports: the transports (at least one, each once). They are owned
            by this transport from now on: ``async with`` enters each and
            :meth:`aclose` closes each.
        cooldown: seconds a failing transport is left out of the rotation
            (0, the default: never).
        clock: a function returning seconds, for the cool-downs (default
            ``time.monotonic``).
        hooks: :class:`~lettre.hooks.Hook` objects told about every send of
            this transport; each transport also tells its own hooks about
            its attempt.

    Raises:
        TypeError: ``transports`` is not a list of async transports, or
            ``cooldown`` is not a number.
        ValueError: the list is empty or holds a transport twice, or
            ``cooldown`` is negative.
    """

    transport_name = "round-robin"

    def _next_turn(self) -> int:
        turn = self._turn
        self._turn = turn + 1
        return turn

    def _default_concurrency(self) -> int:
        """The transports' own added up, since the sends are spread over all of them."""
        return sum(_concurrency_of(t) for t in self._transports)
