"""Event hooks: what every transport reports while it sends.

A :class:`Hook` is told when a send starts and how it ends, when an SMTP
connection is opened (with its steps: TCP connect, STARTTLS, AUTH) or
closed and why, and how long a send waited for a pooled connection. Every
transport calls the same points, so one hook sees every way out;
:mod:`lettre.otel` is one hook, turning the events into OpenTelemetry traces
and metrics.

Hooks are attached to one transport (``SmtpTransport(..., hooks=[hook])``)
or to every transport of the process (:func:`register`). With none, or none
listening (:meth:`Hook.listening`), the cost of a send is one check and no
event is made.

Hooks observe; they never change what is sent. A hook that raises is logged
(logger ``lettre.hooks``) and otherwise ignored. Hooks are called
synchronously, in the task that sends, so they must not block.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lettre.envelope import Envelope
    from lettre.results import SendResult

__all__ = [
    "ConnectionClosed",
    "ConnectionOpened",
    "ConnectionStep",
    "Hook",
    "PoolObserved",
    "PoolWaited",
    "SendObserver",
    "SendStarted",
    "register",
    "registered",
    "unregister",
]

_log = logging.getLogger("lettre.hooks")


class SendStarted(NamedTuple):
    """A send is starting (a named tuple: made for every send while hooks listen).

    Attributes:
        transport: the kind of transport (``"smtp"``, ``"ses"``,
            ``"sendmail"``, ``"file"``, ``"memory"``, ``"mx"``, ...).
        envelope: the reverse path and the recipients.
        size: the message's size in bytes, as sent.
        message_id: the message's Message-ID, when it has one.
        server: the server's host and port, when the transport sends to one.
    """

    transport: str
    envelope: Envelope
    size: int
    message_id: str | None
    server: tuple[str, int] | None


class SendObserver:
    """Follows one send, from :meth:`Hook.send_started` to its end.

    Exactly one of :meth:`finished` and :meth:`failed` is called.
    """

    def finished(self, result: SendResult) -> None:
        """The send returned ``result`` (which may list refused recipients)."""

    def failed(self, error: BaseException) -> None:
        """The send raised ``error`` (cancellation included)."""

    def retried(self, error: BaseException) -> None:
        """The send is tried again on a new connection after ``error``.

        The SMTP pool does this once when a connection fails before the
        message was handed over (for example the server had closed it
        while idle).
        """


@dataclass(frozen=True, slots=True)
class ConnectionStep:
    """One step of opening a connection.

    Attributes:
        name: ``"connect"`` (TCP, and TLS for implicit TLS), ``"starttls"``
            or ``"auth"``.
        start: when it started, in nanoseconds since the epoch
            (``time.time_ns()``).
        end: when it ended, likewise.
        error: what it raised, if it failed.
    """

    name: str
    start: int
    end: int
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """An attempt to open a connection ended, opened or failed.

    Attributes:
        transport: the kind of connection (``"smtp"``).
        server: the server's host and port (for a Unix socket: its path, and None).
        start: when the attempt started (``time.time_ns()``).
        end: when it ended.
        steps: the steps taken, in order; the failed one last.
        tls_version: the TLS version, when the connection is encrypted.
        auth_mechanism: the SASL mechanism that authenticated, if any.
        error: why it failed; None when the connection is open.
    """

    transport: str
    server: tuple[str, int | None]
    start: int
    end: int
    steps: tuple[ConnectionStep, ...]
    tls_version: str | None
    auth_mechanism: str | None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """A connection was closed.

    Attributes:
        transport: the kind of connection (``"smtp"``).
        server: the server's host and port.
        reason: ``"quit"`` (closed in good order), ``"broken"`` (closed
            after an error or a timeout, without QUIT) or ``"abandoned"``
            (its event loop was gone).
        messages: how many messages it carried.
        lifetime: how long it was open, in seconds.
    """

    transport: str
    server: tuple[str, int | None]
    reason: str
    messages: int
    lifetime: float


class PoolWaited(NamedTuple):
    """A send waited for a pooled connection (a named tuple: made for every wait).

    Attributes:
        transport: the kind of transport (``"smtp"``).
        server: the server the pool connects to.
        waited: how long it waited, in seconds.
        acquired: whether it got a connection (False: it timed out or was
            cancelled).
    """

    transport: str
    server: tuple[str, int | None]
    waited: float
    acquired: bool


@dataclass(frozen=True, slots=True)
class PoolObserved:
    """A pool that has opened, for hooks that report how full pools are.

    Attributes:
        transport: the kind of transport (``"smtp"``).
        server: the server the pool connects to.
        in_use: returns how many connections are lent out now.
        idle: returns how many connections are idle now.
        waiting: returns how many sends are waiting for a connection now.
    """

    transport: str
    server: tuple[str, int | None]
    in_use: Callable[[], int]
    idle: Callable[[], int]
    waiting: Callable[[], int]


class Hook:
    """Receives a transport's events; override the methods you need.

    Every method does nothing here. Methods are called in the task that
    sends: they must be quick and must not block.
    """

    def listening(self) -> bool:
        """Whether the hook records anything now (True here).

        A hook with nothing to record at the moment (an exporter not
        configured yet, say) returns False: no event is made for it until it
        says True again. Called before every event: make it cheap.
        """
        return True

    def send_started(self, event: SendStarted) -> SendObserver | None:
        """A send starts; return an observer to hear how it ends, or None."""
        return None

    def connection_opened(self, event: ConnectionOpened) -> None:
        """An attempt to open a connection ended (``event.error`` says whether it failed)."""

    def connection_closed(self, event: ConnectionClosed) -> None:
        """A connection was closed."""

    def pool_waited(self, event: PoolWaited) -> None:
        """A send waited for a pooled connection."""

    def pool_opened(self, event: PoolObserved) -> None:
        """A pool opened; ``event`` reads its figures while it lives."""

    def pool_closed(self, event: PoolObserved) -> None:
        """A pool closed (the same ``event`` as :meth:`pool_opened`)."""


_registered: tuple[Hook, ...] = ()
_registering = threading.Lock()  # register() and unregister() from several threads lose nothing


def register(hook: Hook) -> None:
    """Attach ``hook`` to every transport of this process, existing or future.

    Raises:
        TypeError: ``hook`` is not a :class:`Hook`.
    """
    global _registered
    _check(hook)
    with _registering:
        if hook not in _registered:
            _registered = (*_registered, hook)


def unregister(hook: Hook) -> None:
    """Detach a hook attached by :func:`register` (nothing if it is not attached)."""
    global _registered
    with _registering:
        _registered = tuple(h for h in _registered if h is not hook)


def registered() -> tuple[Hook, ...]:
    """The hooks attached to every transport by :func:`register`."""
    return _registered


def _check(hook: object) -> Hook:
    if not isinstance(hook, Hook):
        raise TypeError(
            f"a hook must be a lettre.hooks.Hook (subclass it), not {type(hook).__name__}"
        )
    return hook


def hook_tuple(hooks: Iterable[Hook] | None) -> tuple[Hook, ...]:
    """Check a ``hooks=`` argument and freeze it.

    Raises:
        TypeError: an item is not a :class:`Hook`, or ``hooks`` is one hook
            rather than a list.
    """
    if hooks is None:
        return ()
    if isinstance(hooks, Hook):
        raise TypeError("hooks= takes a list of hooks: pass [hook]")
    return tuple(_check(hook) for hook in hooks)


def active(own: tuple[Hook, ...]) -> tuple[Hook, ...]:
    """The hooks to call now: the registered ones, then a transport's own, that are listening."""
    if _registered:
        hooks = _registered + own if own else _registered
    elif own:
        hooks = own
    else:
        return ()
    try:
        if len(hooks) == 1:
            return hooks if hooks[0].listening() else ()
        return tuple(hook for hook in hooks if hook.listening())
    except Exception:  # noqa: BLE001 - a hook never changes the send
        _failed_hook(hooks, "listening")
        return ()


def _failed_hook(hook: object, where: str) -> None:
    _log.warning("the hook %r raised in %s; ignored", hook, where, exc_info=True)


_current_send: ContextVar[list[SendObserver] | None] = ContextVar(
    "lettre_current_send", default=None
)
"""The observers of the send running in this context (set only while hooks listen)."""


def start_send(hooks: tuple[Hook, ...], event: SendStarted) -> list[SendObserver]:
    """Call ``send_started`` on every hook; the observers they return."""
    observers: list[SendObserver] = []
    for hook in hooks:
        try:
            observer = hook.send_started(event)
        except Exception:  # noqa: BLE001 - a hook never changes the send
            _failed_hook(hook, "send_started")
            continue
        if observer is not None:
            observers.append(observer)
    return observers


def end_send(
    observers: list[SendObserver], result: SendResult | None, error: BaseException | None
) -> None:
    """Tell every observer how the send ended (a result, or the error), last first."""
    for observer in reversed(observers):
        try:
            if error is None:
                assert result is not None
                observer.finished(result)
            else:
                observer.failed(error)
        except Exception:  # noqa: BLE001 - a hook never changes the send
            _failed_hook(observer, "finished" if error is None else "failed")


def send_retried(error: BaseException) -> None:
    """Tell the observers of the send running in this context that it is tried again."""
    observers = _current_send.get()
    if not observers:
        return
    for observer in observers:
        try:
            observer.retried(error)
        except Exception:  # noqa: BLE001 - a hook never changes the send
            _failed_hook(observer, "retried")


def emit(hooks: tuple[Hook, ...], method: str, event: object) -> None:
    """Call ``hook.<method>(event)`` on every hook, ignoring (and logging) their errors."""
    for hook in hooks:
        try:
            getattr(hook, method)(event)
        except Exception:  # noqa: BLE001 - a hook never changes the send
            _failed_hook(hook, method)
