"""OpenTelemetry traces and metrics for every transport (the ``otel`` extra).

:class:`OpenTelemetryHook` is a :class:`~lettre.hooks.Hook`: attach it to a
transport (``hooks=[OpenTelemetryHook()]``) or to every transport of the
process with :func:`instrument`. It uses the global tracer and meter providers
unless given others, so whatever the application configured (an OTLP
exporter, the console) receives lettre's spans and measurements, and a send
made inside a traced request or task is a child of its span.

Traces: a span per send (``smtp send``, ``ses send``...), with a child span
per connection opened during it (``smtp connect``) and a child of that per
step (``connect``, ``starttls``, ``auth``). Metrics: messages by transport and
outcome, send duration, connections opened and closed, pool connections in
use and idle, sends waiting for a connection, and how long they waited.

Nothing that identifies a person is recorded unless asked
(``record_addresses=True``): no address, subject, content or credential;
error messages (which may quote addresses) are not recorded either, only the
error's type and SMTP reply code.
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from lettre.errors import RecipientsRefused, SmtpReplyError, TransportError
from lettre.hooks import (
    ConnectionClosed,
    ConnectionOpened,
    Hook,
    PoolObserved,
    PoolWaited,
    SendObserver,
    SendStarted,
    register,
    unregister,
)

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("lettre.otel needs OpenTelemetry's API: pip install 'lettre[otel]'") from exc

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lettre.results import SendResult

__all__ = ["OUTCOMES", "OpenTelemetryHook", "instrument", "outcome_of", "uninstrument"]

_SCOPE = "lettre"
_LOOK_INTERVAL = 1.0

OUTCOMES: Final = ("accepted", "refused", "transient", "permanent", "unknown", "cancelled")
"""The outcome classes of a send, as the ``lettre.outcome`` attribute gives them."""


def outcome_of(result: SendResult | None, error: BaseException | None) -> str:
    """The outcome class of a send: one of :data:`OUTCOMES`.

    ``accepted``: every recipient; ``refused``: some or all recipients were
    refused (the rest accepted); ``transient`` and ``permanent``: the send
    failed, and a later try may or may not succeed; ``unknown``: the
    message may have been accepted all the same (the error's
    ``outcome_unknown``: an SMTP connection broke after the content was sent,
    an API request went unanswered);
    ``cancelled``: the send was cancelled.
    """
    if error is None:
        assert result is not None
        return "accepted" if result.all_accepted else "refused"
    if isinstance(error, TransportError) and error.outcome_unknown:
        return "unknown"
    if isinstance(error, RecipientsRefused):
        return "refused"
    if isinstance(error, TransportError):
        return "transient" if error.transient else "permanent"
    if isinstance(error, Exception):
        return "permanent"
    return "cancelled"


def _version() -> str:
    try:
        return importlib.metadata.version("lettre")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "0"


def _error_type(error: BaseException) -> str:
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _error_summary(error: BaseException) -> str:
    """The error's type and reply code: never its message, which may quote addresses."""
    name = type(error).__name__
    if isinstance(error, SmtpReplyError):
        status = f" {error.enhanced_status}" if error.enhanced_status else ""
        return f"{name}: {error.code}{status}"
    return name


class _SendSpan(SendObserver):
    """One send: its span (made current while it runs) and its measurements."""

    __slots__ = ("_hook", "_span", "_started", "_token", "_transport")

    def __init__(self, hook: OpenTelemetryHook, event: SendStarted, tracing: bool) -> None:
        self._hook = hook
        self._transport = event.transport
        self._started = time.perf_counter()
        self._span: trace.Span | None = None
        self._token: object = None
        if tracing:
            attributes: dict[str, Any] = {
                "lettre.transport": event.transport,
                "lettre.recipients": len(event.envelope.forward_paths),
                "lettre.message.size": event.size,
            }
            if event.server is not None:
                attributes["server.address"], attributes["server.port"] = event.server
            if hook.record_addresses:
                sender = event.envelope.reverse_path
                attributes["lettre.sender"] = "" if sender is None else str(sender)
                attributes["lettre.recipient_addresses"] = [
                    str(a) for a in event.envelope.forward_paths
                ]
            if hook.record_addresses and event.message_id is not None:
                attributes["lettre.message_id"] = event.message_id
            span = hook._tracer.start_span(
                f"{event.transport} send", kind=SpanKind.CLIENT, attributes=attributes
            )
            self._span = span
            self._token = otel_context.attach(trace.set_span_in_context(span))

    def retried(self, error: BaseException) -> None:
        span = self._span
        if span is not None:
            span.set_attribute("lettre.retried", True)
            span.add_event("retry", {"error.type": _error_type(error)})

    def finished(self, result: SendResult) -> None:
        self._end(result, None)

    def failed(self, error: BaseException) -> None:
        self._end(None, error)

    def _end(self, result: SendResult | None, error: BaseException | None) -> None:
        outcome = outcome_of(result, error)
        hook = self._hook
        labels = {"lettre.transport": self._transport, "lettre.outcome": outcome}
        hook._messages.add(1, labels)
        hook._duration.record(time.perf_counter() - self._started, labels)
        span = self._span
        if span is None:
            return
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        span.set_attribute("lettre.outcome", outcome)
        reply = None
        if result is not None:
            refused = sum(1 for r in result.recipients if not r.accepted)
            span.set_attribute("lettre.recipients.refused", refused)
            reply = result.reply
            if result.transport_id is not None:
                span.set_attribute("lettre.transport_id", result.transport_id)
        else:
            assert error is not None
            span.set_attribute("error.type", _error_type(error))
            if isinstance(error, TransportError) and error.outcome_unknown:
                span.set_attribute("lettre.outcome_unknown", True)
            if isinstance(error, SmtpReplyError):
                span.set_attribute("lettre.reply.code", error.code)
                if error.enhanced_status:
                    span.set_attribute("lettre.reply.enhanced_status", error.enhanced_status)
            if isinstance(error, RecipientsRefused):
                # With require_all_recipients, the accepted ones are in the results too.
                refused = sum(1 for r in error.results if not r.accepted)
                span.set_attribute("lettre.recipients.refused", refused)
            span.set_status(Status(StatusCode.ERROR, _error_summary(error)))
        if reply is not None:
            span.set_attribute("lettre.reply.code", reply.code)
            if reply.enhanced_status:
                span.set_attribute("lettre.reply.enhanced_status", reply.enhanced_status)
        span.end()


class OpenTelemetryHook(Hook):
    """Turns lettre's events into OpenTelemetry spans and metrics.

    With no SDK configured (the API's default providers) and no provider
    given, a send costs one check: nothing is created. The global providers
    are looked at again at most once a second while they are the API's
    defaults, so configure the SDK before sending (as OpenTelemetry asks
    anyway): sends in the second after it may go unrecorded.

    Args:
        tracer_provider: where spans go; the global one by default.
        meter_provider: where measurements go; the global one by default.
        record_addresses: also record the sender, the recipients and the
            Message-ID on send spans (personal data: off by default).

    Instruments (all with ``lettre.transport``):

    - ``lettre.messages`` (counter): sends by ``lettre.outcome``
      (:data:`OUTCOMES`);
    - ``lettre.send.duration`` (histogram, s): by ``lettre.outcome``;
    - ``lettre.connections.opened`` (counter): with ``server.address`` and,
      when it failed, ``error.type``;
    - ``lettre.connections.closed`` (counter): with ``server.address`` and
      ``lettre.close.reason`` (``quit``, ``broken``, ``abandoned``);
    - ``lettre.pool.connections`` (observable up-down counter): by
      ``lettre.pool.state`` (``in_use``, ``idle``) and ``server.address``;
    - ``lettre.pool.waiting`` (observable up-down counter): sends waiting
      for a connection;
    - ``lettre.pool.wait.duration`` (histogram, s): how long sends waited.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        record_addresses: bool = False,
    ) -> None:
        self.record_addresses = bool(record_addresses)
        self._given_tracer = tracer_provider is not None
        self._given_meter = meter_provider is not None
        self._tracing = self._given_tracer
        self._metering = self._given_meter
        self._next_look = 0.0
        version = _version()
        self._tracer = trace.get_tracer(_SCOPE, version, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, version, meter_provider=meter_provider)
        self._messages = meter.create_counter(
            "lettre.messages", unit="{message}", description="Messages sent, by outcome."
        )
        self._duration = meter.create_histogram(
            "lettre.send.duration", unit="s", description="How long sends took."
        )
        self._opened = meter.create_counter(
            "lettre.connections.opened", unit="{connection}", description="Connections opened."
        )
        self._closed = meter.create_counter(
            "lettre.connections.closed", unit="{connection}", description="Connections closed."
        )
        self._wait_duration = meter.create_histogram(
            "lettre.pool.wait.duration",
            unit="s",
            description="How long sends waited for a pooled connection.",
        )
        self._pools: dict[int, PoolObserved] = {}
        self._pools_lock = threading.Lock()
        meter.create_observable_up_down_counter(
            "lettre.pool.connections",
            callbacks=[self._observe_connections],
            unit="{connection}",
            description="Pooled connections, by state.",
        )
        meter.create_observable_up_down_counter(
            "lettre.pool.waiting",
            callbacks=[self._observe_waiting],
            unit="{send}",
            description="Sends waiting for a pooled connection.",
        )

    def __repr__(self) -> str:
        return f"<OpenTelemetryHook record_addresses={self.record_addresses}>"

    def _live(self) -> bool:
        """Whether anything records: a provider was given or an SDK set the global ones.

        While nothing does, the global providers are looked at again at most
        once a second (looking costs more than the rest of a send's hook).
        """
        now = time.monotonic()
        if now < self._next_look:
            return self._tracing or self._metering
        self._next_look = now + _LOOK_INTERVAL
        if not self._tracing:
            self._tracing = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        if not self._metering:
            provider = metrics.get_meter_provider()
            self._metering = not isinstance(provider, metrics.NoOpMeterProvider) and (
                type(provider).__name__ != "_ProxyMeterProvider"
            )
        return self._tracing or self._metering

    # -- sends

    def listening(self) -> bool:
        """True once an SDK (or a provider given) records spans or measurements."""
        return self._tracing or self._live()

    def send_started(self, event: SendStarted) -> SendObserver | None:
        """Start the send's span (made current) and its timer."""
        if not (self._tracing or self._live()):
            return None
        return _SendSpan(self, event, self._tracing)

    # -- connections

    def connection_opened(self, event: ConnectionOpened) -> None:
        """Record the connection's span, with a child per step, and count it."""
        if not (self._tracing or self._live()):
            return
        host, port = event.server
        labels: dict[str, Any] = {"lettre.transport": event.transport, "server.address": host}
        if event.error is not None:
            labels["error.type"] = _error_type(event.error)
        self._opened.add(1, labels)
        if not self._tracing:
            return
        attributes: dict[str, Any] = {"lettre.transport": event.transport, "server.address": host}
        if port is not None:
            attributes["server.port"] = port
        if event.tls_version is not None:
            attributes["tls.protocol.name"] = "tls"
            attributes["tls.protocol.version"] = event.tls_version.removeprefix("TLSv")
        if event.auth_mechanism is not None:
            attributes["lettre.auth.mechanism"] = event.auth_mechanism
        span = self._tracer.start_span(
            f"{event.transport} connect",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=event.start,
        )
        parent = trace.set_span_in_context(span)
        # The connection's span holds its steps' spans, the last one's end included.
        end = max(event.end, event.steps[-1].end) if event.steps else event.end
        for step in event.steps:
            child = self._tracer.start_span(step.name, context=parent, start_time=step.start)
            if step.error is not None:
                child.set_attribute("error.type", _error_type(step.error))
                child.set_status(Status(StatusCode.ERROR, _error_summary(step.error)))
            child.end(end_time=step.end)
        if event.error is not None:
            span.set_attribute("error.type", _error_type(event.error))
            span.set_status(Status(StatusCode.ERROR, _error_summary(event.error)))
        span.end(end_time=end)

    def connection_closed(self, event: ConnectionClosed) -> None:
        """Count the closed connection, by reason."""
        if not (self._metering or self._live()):
            return
        self._closed.add(
            1,
            {
                "lettre.transport": event.transport,
                "server.address": event.server[0],
                "lettre.close.reason": event.reason,
            },
        )

    # -- pools

    def pool_waited(self, event: PoolWaited) -> None:
        """Record how long a send waited for a connection."""
        if not (self._metering or self._live()):
            return
        self._wait_duration.record(
            event.waited,
            {
                "lettre.transport": event.transport,
                "server.address": event.server[0],
                "lettre.pool.acquired": event.acquired,
            },
        )

    def pool_opened(self, event: PoolObserved) -> None:
        """Observe the pool's figures from now on."""
        with self._pools_lock:
            self._pools[id(event)] = event

    def pool_closed(self, event: PoolObserved) -> None:
        """Stop observing the pool."""
        with self._pools_lock:
            self._pools.pop(id(event), None)

    def _observed_pools(self) -> list[PoolObserved]:
        with self._pools_lock:
            return list(self._pools.values())

    def _observe_connections(self, options: CallbackOptions) -> Iterable[Observation]:
        for pool in self._observed_pools():
            labels = {"lettre.transport": pool.transport, "server.address": pool.server[0]}
            yield Observation(pool.in_use(), {**labels, "lettre.pool.state": "in_use"})
            yield Observation(pool.idle(), {**labels, "lettre.pool.state": "idle"})

    def _observe_waiting(self, options: CallbackOptions) -> Iterable[Observation]:
        for pool in self._observed_pools():
            labels = {"lettre.transport": pool.transport, "server.address": pool.server[0]}
            yield Observation(pool.waiting(), labels)


def instrument(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    record_addresses: bool = False,
) -> OpenTelemetryHook:
    """Trace and measure every transport of this process; returns the hook.

    The arguments are :class:`OpenTelemetryHook`'s. Undo with
    :func:`uninstrument`.
    """
    hook = OpenTelemetryHook(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        record_addresses=record_addresses,
    )
    register(hook)
    return hook


def uninstrument(hook: OpenTelemetryHook) -> None:
    """Stop the tracing that :func:`instrument` started."""
    unregister(hook)
