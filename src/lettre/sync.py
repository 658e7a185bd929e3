"""Any lettre transport from blocking code: :class:`BlockingTransport` and :func:`send_blocking`.

A :class:`BlockingTransport` owns an event loop that runs in a daemon thread
of its own, and runs the wrapped async transport there: ``send()`` from any
thread hands the send to that loop and waits for its outcome. Every thread of
the process shares the transport, and with it the SMTP connection pool.

How it behaves around the process's life:

- The loop thread starts at the first call (or ``with``), so a transport made
  at import time in a pre-forking server (gunicorn, Celery prefork) starts
  nothing in the parent.
- After ``os.fork()`` the child never touches what the parent's loop owns
  (its sockets, its selector): those objects are kept, unused, for the life
  of the child, and the first call there starts a new loop thread with a new
  transport (see :class:`BlockingTransport` for how it is made).
- At interpreter exit, transports not closed are closed (QUIT) within a few
  seconds in all; the loop thread is a daemon, so it never keeps the process
  alive.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import functools
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from lettre.errors import BlockingCallError, TransportError
from lettre.oneshot import send as _send_once
from lettre.transports.base import (
    DEFAULT_CONCURRENCY,
    BaseTransport,
    Transport,
    gather_outcomes,
)

if TYPE_CHECKING:
    from email.message import EmailMessage
    from types import TracebackType

    from lettre.envelope import Envelope
    from lettre.message.message import Message
    from lettre.results import SendResult
    from lettre.smtp.pool import PoolStatistics

__all__ = ["BlockingTransport", "send_blocking"]

_logger = logging.getLogger("lettre.sync")

T = TypeVar("T")

_BACKENDS = ("asyncio", "trio")
#: Seconds that closing every transport still open may take at interpreter exit.
_EXIT_TIMEOUT = 2.0
_numbers = itertools.count(1)


def _event_loop_in_this_thread() -> str | None:
    """The event loop running in the calling thread ("asyncio", "trio"), or None."""
    if asyncio._get_running_loop() is not None:
        return "asyncio"
    # trio marks the thread that runs it for sniffio (which trio requires).
    sniffio = sys.modules.get("sniffio") if "trio" in sys.modules else None
    if sniffio is not None and sniffio.thread_local.name == "trio":
        return "trio"
    return None


def _refuse_in_event_loop(call: str) -> None:
    """Raise :class:`BlockingCallError` when the calling thread runs an event loop."""
    library = _event_loop_in_this_thread()
    if library is not None:
        raise BlockingCallError(
            f"{call} was called from a thread that runs a {library} event loop: it would "
            "block that loop (and deadlock if it is the transport's own). In async code, "
            "use the async API: `await transport.send(message)` with an async transport "
            "(for example SmtpTransport) opened on your event loop"
        )


def _closed_error() -> TransportError:
    return TransportError(
        "the BlockingTransport is closed; make a new one to send again", transient=False
    )


def _renewed(transport: Transport) -> Transport:
    """A transport for a forked child that shares no connection with ``transport``.

    Each transport says how (``for_new_process()``: SMTP makes a new one from
    its settings, signers and pool limits; SES a copy without its client; the
    others hold no connection and are kept).
    """
    renew = getattr(transport, "for_new_process", None)
    if renew is None:
        return transport
    renewed: Transport = renew()
    return renewed


def _adopt(caller: contextvars.Context) -> None:
    """Set, in the running task, the caller's context variables that the loop does not set.

    The loop's own (anyio's, sniffio's) keep their values; the others (the
    current OpenTelemetry span, for one) follow the call, so a send made from
    a request handler or a Celery task is traced as part of it.
    """
    here = contextvars.copy_context()
    for var, value in caller.items():
        if var not in here:
            var.set(value)


class _Call:
    """One call handed to the loop thread, and how its caller waits for it.

    ``done`` is a lock held until the outcome is set: the caller waits by
    acquiring it (the cheapest wait there is), the loop releases it once.
    """

    __slots__ = (
        "abandoned",
        "args",
        "cancel",
        "context",
        "done",
        "error",
        "finished",
        "function",
        "result",
        "started",
    )

    def __init__(self, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        self.function = function
        self.args = args
        # The calling thread's context variables (OpenTelemetry's current span
        # among them), given to the call on the loop thread.
        self.context = contextvars.copy_context()
        self.done = threading.Lock()
        self.done.acquire()
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.cancel: Callable[[], object] | None = None  # cancels the running call, on the loop
        self.started = False
        self.abandoned = False

    def set_result(self, value: object) -> None:
        if not self.finished:
            self.finished = True
            self.result = value
            self.done.release()

    def set_exception(self, error: BaseException) -> None:
        if not self.finished:
            self.finished = True
            self.error = error
            self.done.release()

    def outcome(self) -> Any:
        """The result, or raise the error (once ``done`` was acquired)."""
        error = self.error
        if error is not None:
            self.error = None  # no reference cycle through the traceback
            raise error
        return self.result


class _Loop:
    """The loop thread of one process: the thread, its event loop and the transport it runs.

    The transport's ``async with`` is entered and left inside the loop. Each
    call runs as a task of that loop (asyncio tasks are made directly: anyio's
    task group costs ten times as much per task); ``stop()`` lets the calls in
    flight finish (within ``drain`` seconds), cancels the others, then closes
    the transport.
    """

    def __init__(
        self, transport: Transport, backend: str, backend_options: Mapping[str, Any]
    ) -> None:
        self.transport = transport
        self.backend = backend
        self.backend_options = dict(backend_options)
        self.thread = threading.Thread(
            target=self._thread_main, name=f"lettre-loop-{next(_numbers)}", daemon=True
        )
        self.ready = threading.Event()  # set once the loop takes calls, or failed to start
        self.failure: BaseException | None = None
        self.accepting = False
        self.call_soon: Callable[[Callable[[], object]], object] | None = None
        self.spawn: Callable[[_Call], None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()  # on asyncio, the calls running
        self.stopping: anyio.Event | None = None
        self.idle: anyio.Event | None = None
        self.drain = 0.0
        self.active = 0
        self.stop_requested = False
        self.orphaned = False  # a parent's loop, seen from a forked child: never touched

    # -- the loop thread

    def _thread_main(self) -> None:
        try:
            anyio.run(self._main, backend=self.backend, backend_options=self.backend_options)
        except BaseException as exc:
            if not self.ready.is_set():
                self.failure = exc
            else:
                _logger.exception("the event loop thread of a BlockingTransport failed")
        finally:
            self.accepting = False
            self.ready.set()

    async def _main(self) -> None:
        self.stopping = anyio.Event()
        async with AsyncExitStack() as stack:
            if hasattr(self.transport, "__aenter__"):
                await stack.enter_async_context(self.transport)  # type: ignore[arg-type]
            else:
                stack.push_async_callback(self.transport.aclose)
            nursery: Any = None
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # trio: the calls run in a nursery, closed before the transport
                import trio

                nursery = await stack.enter_async_context(trio.open_nursery())
                self.spawn = functools.partial(self._spawn_trio, nursery)
                self.call_soon = trio.lowlevel.current_trio_token().run_sync_soon
            else:
                self.spawn = functools.partial(self._spawn_asyncio, loop)
                # Callbacks (and the tasks they make) run in this task's context, in
                # which anyio knows its event loop, not in the calling thread's.
                self.call_soon = functools.partial(
                    loop.call_soon_threadsafe, context=contextvars.copy_context()
                )
            # stop() may have come while the loop was starting: it set the flag first.
            self.accepting = not self.stop_requested
            self.ready.set()
            if self.stop_requested:
                self.stopping.set()
            await self.stopping.wait()
            with anyio.move_on_after(self.drain):
                while self.active:
                    self.idle = anyio.Event()
                    await self.idle.wait()
            # The calls still running are cancelled (their callers get an error).
            if nursery is not None:
                nursery.cancel_scope.cancel()
            elif self.tasks:
                for task in self.tasks:
                    task.cancel()
                with anyio.move_on_after(self.drain):
                    await asyncio.gather(*self.tasks, return_exceptions=True)
        # Leaving the stack closed the transport (QUIT) on this loop.

    def _spawn_asyncio(self, loop: asyncio.AbstractEventLoop, call: _Call) -> None:
        task = loop.create_task(self._run(call))
        call.cancel = task.cancel
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _spawn_trio(self, nursery: Any, call: _Call) -> None:
        nursery.start_soon(self._run_trio, call)

    async def _run_trio(self, call: _Call) -> None:
        import trio

        with trio.CancelScope() as scope:
            call.cancel = scope.cancel
            await self._run(call)

    async def _run(self, call: _Call) -> None:
        self.active += 1
        call.started = True
        if len(call.context):
            _adopt(call.context)
        try:
            result = await call.function(self.transport, *call.args)
        except Exception as exc:  # noqa: BLE001 - the caller's outcome, raised in its thread
            call.set_exception(exc)
        except BaseException:  # cancelled: by its caller, or by close()
            call.set_exception(
                TransportError("the call was cancelled", transient=True)
                if call.abandoned
                else TransportError(
                    "the BlockingTransport was closed while this call was running; "
                    "it may or may not have completed",
                    transient=True,
                )
            )
            raise
        else:
            call.set_result(result)
        finally:
            self.active -= 1
            if not self.active and self.idle is not None:
                self.idle.set()

    # -- from other threads

    def start(self) -> None:
        self.thread.start()

    def submit(self, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> _Call:
        call = _Call(function, args)
        spawn = self.spawn
        assert spawn is not None
        assert self.call_soon is not None

        def start() -> None:
            if not self.accepting:
                call.set_exception(_closed_error())
            elif not call.abandoned:
                spawn(call)

        try:
            self.call_soon(start)
        except RuntimeError:  # the loop is finished
            call.set_exception(_closed_error())
        return call

    def abandon(self, call: _Call) -> None:
        """Cancel ``call`` on the loop (its caller stopped waiting)."""
        call.abandoned = True
        cancel = call.cancel
        if cancel is not None and self.call_soon is not None:
            with suppress(RuntimeError):  # the loop is finished
                self.call_soon(cancel)

    def stop(self, drain: float) -> None:
        """Refuse new calls; let those in flight finish within ``drain`` s, then close."""
        if self.orphaned:
            return
        self.drain = drain
        self.stop_requested = True
        self.accepting = False
        stopping = self.stopping
        if self.call_soon is not None and stopping is not None:
            with suppress(RuntimeError):
                self.call_soon(stopping.set)


# Loops of a parent process, kept (never used, never closed) in a forked child:
# closing them would touch sockets and selectors the parent still uses.
_orphans: list[object] = []
_live: weakref.WeakSet[BlockingTransport] = weakref.WeakSet()


class BlockingTransport:
    """Run any lettre transport from blocking code (Django, Flask, scripts, Celery).

    The transport runs on an event loop in a daemon thread that this object
    owns; every method blocks the calling thread until the loop has its
    outcome, and returns the same results and raises the same exceptions as
    the async API. Make one per process and share it between threads: they
    all use its connection pool, whose ``max_size`` holds across threads.

    Example::

        mailer = BlockingTransport(SmtpTransport.starttls_relay("smtp.example.com"))
        result = mailer.send(message)
        mailer.close()

    The loop thread starts at the first call (or on ``with``). A process
    forked after that (gunicorn, Celery prefork, ``multiprocessing``) never
    uses the parent's connections: the child's first call starts its own loop
    thread with its own transport, made from the one given here. An
    :class:`~lettre.SmtpTransport` is made again from its settings, signers
    and pool limits; an :class:`~lettre.SesTransport` gets a client of its
    own; the memory, file and sendmail transports, which hold no
    connection, are used as they are. For any other transport, pass a
    function that makes it: it is called once here and once in each forked
    child.

    Args:
        transport: the async transport to run (this object owns it from now
            on and closes it in :meth:`close`), or a function without
            arguments that makes one.
        backend: the event loop, ``"asyncio"`` or ``"trio"``.
        backend_options: options for that event loop, as for ``anyio.run``
            (``{"use_uvloop": True}`` runs asyncio on uvloop).
        timeout: seconds a call may take in all before it is cancelled
            and raises; None (the default) leaves the bound to the
            transport's own timeouts.
        start_timeout: seconds a call waits for the loop thread to start and
            take it; a loop that cannot (it is blocked) makes the call raise
            instead of hanging.

    Raises:
        TypeError: ``transport`` is not a transport or a function making one.
        ValueError: an unknown ``backend``, or a timeout that is not positive.
    """

    def __init__(
        self,
        transport: Transport | Callable[[], Transport],
        *,
        backend: str = "asyncio",
        backend_options: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be 'asyncio' or 'trio', not {backend!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive seconds or None, got {timeout!r}")
        if not start_timeout > 0:
            raise ValueError(f"start_timeout must be positive seconds, got {start_timeout!r}")
        factory: Callable[[], Transport] | None = None
        if isinstance(transport, type) or not isinstance(transport, Transport):
            if not callable(transport):
                raise TypeError(
                    "BlockingTransport takes a transport (SmtpTransport, SesTransport, ...) "
                    f"or a function that makes one, not {type(transport).__name__}"
                )
            factory = transport
            transport = _checked(factory())
        self._factory = factory
        self._transport: Transport = transport
        self._backend = backend
        self._backend_options: dict[str, Any] = dict(backend_options or {})
        self._timeout = timeout
        self._start_timeout = float(start_timeout)
        self._lock = threading.Lock()
        self._loop: _Loop | None = None
        self._closed = False
        self._forked = False
        _live.add(self)

    # ------------------------------------------------------------------ state

    @property
    def transport(self) -> Transport:
        """The async transport this object runs (in a forked child, the child's own)."""
        with self._lock:
            self._renew_after_fork()
            return self._transport

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"BlockingTransport({self._transport!r}, backend={self._backend!r}, {state})"

    # ------------------------------------------------------------------ sending

    def send(
        self, message: Message | EmailMessage, *, envelope: Envelope | None = None
    ) -> SendResult:
        """Send a message and wait for its outcome.

        Args:
            message: a lettre :class:`~lettre.Message` or a stdlib
                :class:`email.message.EmailMessage`.
            envelope: the envelope to send with, instead of the one derived
                from the message's headers.

        Returns:
            A :class:`~lettre.SendResult` with an outcome for every recipient.

        Raises:
            TransportError: the send failed (the same errors as the async
                transport's ``send()``), the transport is closed, or the call
                could not get the event loop in time.
            MessageError: the message cannot be serialised or sent as it is.
            BlockingCallError: called from a thread that runs an event loop.
        """
        _refuse_in_event_loop("BlockingTransport.send()")
        return self._call(_send, message, envelope)

    def send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        """Send already-serialised message bytes with an explicit envelope.

        Args:
            envelope: the reverse path and the recipients.
            data: the message, CRLF line endings, sent as it is (no signing).

        Returns:
            A :class:`~lettre.SendResult` with an outcome for every recipient.

        Raises:
            TransportError: the send failed, the transport is closed, or the
                call could not get the event loop in time.
            BlockingCallError: called from a thread that runs an event loop.
        """
        _refuse_in_event_loop("BlockingTransport.send_raw()")
        return self._call(_send_raw, envelope, data)

    def send_many(
        self,
        messages: Iterable[Message | EmailMessage],
        *,
        concurrency: int | None = None,
    ) -> list[SendResult | Exception]:
        """Send a list of messages concurrently on the loop; one outcome per message, in order.

        Args:
            messages: a list of messages; for one message, use :meth:`send`.
            concurrency: how many sends may be in flight at once (the
                transport's default when None).

        Returns:
            For each message, in the same order, its :class:`~lettre.SendResult`
            or the exception its send raised.

        Raises:
            TypeError: ``messages`` is one message rather than a list, or holds
                something that is not a message. Nothing is sent.
            ValueError: ``concurrency`` is less than 1. Nothing is sent.
            TransportError: the transport is closed, or the call could not get
                the event loop in time.
            BlockingCallError: called from a thread that runs an event loop.
        """
        _refuse_in_event_loop("BlockingTransport.send_many()")
        return self._call(_send_many, messages, concurrency)

    def test_connection(self) -> None:
        """Check that the server can be reached (SMTP: TLS and AUTH included, then NOOP).

        Raises:
            TypeError: the wrapped transport has no ``test_connection()``.
            SmtpError: what went wrong, typed (connection, TLS, authentication).
            BlockingCallError: called from a thread that runs an event loop.
        """
        _refuse_in_event_loop("BlockingTransport.test_connection()")
        method = getattr(self.transport, "test_connection", None)
        if method is None:
            raise TypeError(f"{type(self._transport).__name__} has no test_connection()")
        self._call(_test_connection)

    def statistics(self) -> PoolStatistics:
        """A snapshot of the connection pool: open, idle, in use, waiting, messages sent.

        Returns:
            The wrapped transport's :class:`~lettre.PoolStatistics` (taken
            on its event loop).

        Raises:
            TypeError: the wrapped transport has no connection pool.
            BlockingCallError: called from a thread that runs an event loop.
        """
        _refuse_in_event_loop("BlockingTransport.statistics()")
        if getattr(self.transport, "statistics", None) is None:
            raise TypeError(f"{type(self._transport).__name__} has no statistics()")
        result: PoolStatistics = self._call(_statistics)
        return result

    def _send_raw_many(
        self, items: Sequence[tuple[Envelope, bytes]]
    ) -> list[SendResult | Exception]:
        """``send_raw`` for each item, concurrently on the loop; one outcome per item."""
        _refuse_in_event_loop("BlockingTransport.send_raw()")
        return self._call(_send_raw_all, list(items))

    # ------------------------------------------------------------------ the loop

    def _renew_after_fork(self) -> None:
        """In a forked child, make the child's transport (with the lock held)."""
        if self._forked:
            if self._factory is not None:
                self._transport = _checked(self._factory())
            else:
                self._transport = _renewed(self._transport)
            self._forked = False  # only now: a failure above fails the next call too

    def _running_loop(self) -> _Loop:
        loop = self._loop
        if loop is None or not loop.accepting:
            with self._lock:
                if self._closed:
                    raise _closed_error()
                loop = self._loop
                if loop is None or (loop.ready.is_set() and not loop.accepting):
                    self._renew_after_fork()
                    loop = _Loop(self._transport, self._backend, self._backend_options)
                    loop.start()
                    self._loop = loop
                    # Dropped without close(): the loop closes the transport and ends.
                    weakref.finalize(self, loop.stop, 0.0).atexit = False
            if not loop.ready.wait(self._start_timeout):
                raise TransportError(
                    f"the event loop thread of the BlockingTransport did not start within "
                    f"{self._start_timeout:g} s (start_timeout)",
                    transient=True,
                )
            if loop.failure is not None:
                with self._lock:
                    if self._loop is loop:
                        self._loop = None  # the next call tries again
                raise loop.failure
            if not loop.accepting:
                raise _closed_error()
        return loop

    def _call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await function(transport, *args)`` on the loop thread; return or raise its outcome.

        ``transport`` is the loop's own: in a forked child, the child's.
        """
        loop = self._running_loop()
        call = loop.submit(function, args)
        try:
            self._wait(call)
        except BaseException:
            if not call.finished:  # KeyboardInterrupt, a timeout: stop the call too
                loop.abandon(call)
            raise
        return call.outcome()  # type: ignore[no-any-return]

    def _wait(self, call: _Call) -> None:
        """Wait for ``call``: first bounded by ``start_timeout``, then by ``timeout``."""
        timeout = self._timeout
        first = self._start_timeout if timeout is None else min(self._start_timeout, timeout)
        started_at = time.monotonic()
        if call.done.acquire(timeout=first):
            return
        if not call.started:
            raise TransportError(
                f"the event loop thread of the BlockingTransport did not take the call "
                f"within {self._start_timeout:g} s (start_timeout): it is blocked",
                transient=True,
            )
        left = -1.0 if timeout is None else max(0.0, timeout - (time.monotonic() - started_at))
        if call.done.acquire(timeout=left):
            return
        raise TransportError(
            f"the call did not finish within {timeout:g} s (timeout) and was cancelled; "
            "a message may or may not have been sent",
            transient=True,
        )

    # ------------------------------------------------------------------ closing

    def close(self, timeout: float = 10.0) -> None:
        """Close the transport on its loop (SMTP: QUIT) and stop the loop thread.

        Calls in flight may finish first (within half of ``timeout``; then
        they are cancelled); if closing takes longer than ``timeout`` in all,
        the loop thread, a daemon, is left to end by itself. Safe to call more
        than once. Sends after it raise :class:`~lettre.TransportError`.

        Args:
            timeout: seconds to wait in all.

        Raises:
            BlockingCallError: called from a thread that runs an event loop.
        """
        _refuse_in_event_loop("BlockingTransport.close()")
        self._finish_close(self._begin_close(timeout), time.monotonic() + timeout)

    def _begin_close(self, timeout: float) -> _Loop | None:
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            loop, self._loop = self._loop, None
        _live.discard(self)
        if loop is not None:
            loop.stop(timeout / 2)  # the other half for closing the transport
        return loop

    @staticmethod
    def _finish_close(loop: _Loop | None, deadline: float) -> None:
        if loop is None:
            return
        loop.thread.join(max(0.0, deadline - time.monotonic()))
        if loop.thread.is_alive():
            _logger.warning(
                "the event loop thread of a BlockingTransport did not finish closing in "
                "time; it is left to end by itself"
            )

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        if self._loop is not None:
            self._loop.orphaned = True
            _orphans.append(self._loop)
            self._loop = None
        if not self._closed:
            self._forked = True

    def __enter__(self) -> BlockingTransport:
        """Start the loop thread (if not yet running) and return this object."""
        _refuse_in_event_loop("BlockingTransport.__enter__()")
        self._running_loop()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close, as :meth:`close` does."""
        self.close()


# What each call runs on the loop, given the loop's transport.


async def _send(
    transport: Transport, message: Message | EmailMessage, envelope: Envelope | None
) -> SendResult:
    return await transport.send(message, envelope=envelope)


async def _send_raw(transport: Transport, envelope: Envelope, data: bytes) -> SendResult:
    return await transport.send_raw(envelope, data)


async def _send_many(
    transport: Transport, messages: Iterable[Message | EmailMessage], concurrency: int | None
) -> list[SendResult | Exception]:
    return await transport.send_many(messages, concurrency=concurrency)


async def _test_connection(transport: Transport) -> None:
    await transport.test_connection()  # type: ignore[attr-defined]


async def _statistics(transport: Transport) -> Any:
    return transport.statistics()  # type: ignore[attr-defined]


async def _send_raw_all(
    transport: Transport, items: list[tuple[Envelope, bytes]]
) -> list[SendResult | Exception]:
    concurrency = (
        transport._default_concurrency()
        if isinstance(transport, BaseTransport)
        else DEFAULT_CONCURRENCY
    )

    async def send_one(item: tuple[Envelope, bytes]) -> SendResult:
        return await transport.send_raw(*item)

    return await gather_outcomes(send_one, items, concurrency)


def _checked(transport: object) -> Transport:
    if isinstance(transport, type) or not isinstance(transport, Transport):
        raise TypeError(
            "the function given to BlockingTransport must return a transport, "
            f"not {type(transport).__name__}"
        )
    return transport


def _after_fork_in_child() -> None:
    for transport in list(_live):
        transport._after_fork_in_child()


def _close_at_exit() -> None:
    deadline = time.monotonic() + _EXIT_TIMEOUT
    loops = [transport._begin_close(_EXIT_TIMEOUT) for transport in list(_live)]
    for loop in loops:
        BlockingTransport._finish_close(loop, deadline)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)


def send_blocking(
    message: Message | EmailMessage,
    url_or_transport: str | BlockingTransport,
    *,
    envelope: Envelope | None = None,
    backend: str = "asyncio",
    backend_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> SendResult:
    """Send one message from blocking code: a script, a cron job, a management command.

    With a URL, connects, sends and says QUIT, on an event loop that runs in
    the calling thread for the duration of the call. With a
    :class:`BlockingTransport`, sends through it (and leaves it open).

    Example::

        send_blocking(message, "smtp://user:secret@smtp.example.com:587")

    Args:
        message: a lettre :class:`~lettre.Message` or a stdlib
            :class:`email.message.EmailMessage`.
        url_or_transport: an ``smtp://`` or ``smtps://`` URL (see
            :meth:`~lettre.SmtpTransport.from_url`), or a BlockingTransport.
        envelope: the envelope to send with, instead of the one derived from
            the message's headers.
        backend: the event loop for a URL, ``"asyncio"`` or ``"trio"``.
        backend_options: options for that event loop, as for ``anyio.run``.
        options: with a URL, keyword arguments of
            :meth:`~lettre.SmtpTransport.from_url` (``tls_parameters=``...).

    Returns:
        A :class:`~lettre.SendResult` with an outcome for every recipient.

    Raises:
        TransportError: the send failed.
        ValueError: the URL is invalid (the message never shows the password).
        TypeError: ``url_or_transport`` is neither a URL nor a BlockingTransport,
            or ``options`` were given with a BlockingTransport.
        BlockingCallError: called from a thread that runs an event loop.
    """
    _refuse_in_event_loop("send_blocking()")
    if isinstance(url_or_transport, BlockingTransport):
        if options:
            raise TypeError(
                f"send_blocking() takes no {', '.join(sorted(options))} with a "
                "BlockingTransport: those are settings of the transport"
            )
        return url_or_transport.send(message, envelope=envelope)
    if not isinstance(url_or_transport, str):
        raise TypeError(
            "send_blocking() takes an smtp:// or smtps:// URL or a BlockingTransport, not "
            f"{type(url_or_transport).__name__}; wrap an async transport in BlockingTransport"
        )
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be 'asyncio' or 'trio', not {backend!r}")
    result: SendResult = anyio.run(
        functools.partial(_send_once, message, url_or_transport, envelope=envelope, **options),
        backend=backend,
        backend_options=dict(backend_options or {}),
    )
    return result
