"""Helpers for the hooks and OpenTelemetry tests: a recording hook, SDK providers in memory.

Also what both test files send and send through: a message, a port that
refuses connections, and the scripted servers' hooks that hold the first
message or drop the first connection.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lettre.hooks import (
    ConnectionClosed,
    ConnectionOpened,
    Hook,
    PoolObserved,
    PoolWaited,
    SendObserver,
    SendStarted,
)
from lettre.message import Message
from lettre.otel import OpenTelemetryHook
from lettre.results import SendResult
from pool_support import HookedSession

#: Every wait for an event in these tests is bounded by this many seconds.
BOUND = 10.0


# -- what the tests send -----------------------------------------------------------------------


def make_message(*to: str, subject: str = "Hello", body: str = "Hello from lettre.\n") -> Message:
    """A text message from alice@example.com to ``to`` (default: bob@example.com)."""
    return (
        Message.builder()
        .from_("alice@example.com")
        .to(*(to or ("bob@example.com",)))
        .subject(subject)
        .text(body)
        .build()
    )


def refused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HoldFirst:
    """A ``HookedMini`` ``before_final``: the first message's content waits for ``gate``.

    ``finals`` counts the contents that arrived; set ``gate`` to let the first
    one through (the later ones never wait).
    """

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.finals = 0

    async def __call__(self, session: HookedSession, content: bytes) -> None:
        self.finals += 1
        if self.finals == 1:
            await self.gate.wait()


class DropSecondMail:
    """A ``HookedMini`` ``before_command``: the first connection goes away at its second MAIL.

    A pool of one connection keeps it idle after the first message; the send
    that reuses it loses it and is retried on a new connection.
    """

    def __init__(self) -> None:
        self.mails = 0

    async def __call__(self, session: HookedSession, line: str) -> None:
        if line.upper().startswith("MAIL") and session is session.server.sessions[0]:
            self.mails += 1
            if self.mails == 2:
                await session.conn.stream.aclose()
                raise anyio.EndOfStream


# -- a hook that records everything ----------------------------------------------------------


class _Observer(SendObserver):
    def __init__(self, recorder: Recorder, started: SendStarted) -> None:
        self.recorder = recorder
        self.started = started

    def finished(self, result: SendResult) -> None:
        self.recorder.add("finished", (self.started, result))

    def failed(self, error: BaseException) -> None:
        self.recorder.add("failed", (self.started, error))

    def retried(self, error: BaseException) -> None:
        self.recorder.add("retried", (self.started, error))


class Recorder(Hook):
    """Records every event as ``(kind, event)``, in order, from any thread.

    ``finished``, ``failed`` and ``retried`` record ``(the SendStarted, the
    result or error)``.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, kind: str, event: Any) -> None:
        with self._lock:
            self.events.append((kind, event))

    def kinds(self) -> list[str]:
        with self._lock:
            return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[Any]:
        with self._lock:
            return [event for k, event in self.events if k == kind]

    def send_started(self, event: SendStarted) -> SendObserver | None:
        self.add("send_started", event)
        return _Observer(self, event)

    def connection_opened(self, event: ConnectionOpened) -> None:
        self.add("connection_opened", event)

    def connection_closed(self, event: ConnectionClosed) -> None:
        self.add("connection_closed", event)

    def pool_waited(self, event: PoolWaited) -> None:
        self.add("pool_waited", event)

    def pool_opened(self, event: PoolObserved) -> None:
        self.add("pool_opened", event)

    def pool_closed(self, event: PoolObserved) -> None:
        self.add("pool_closed", event)


class Raising(Hook):
    """A hook that raises in every method, its observers too; counts its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _boom(self, where: str) -> None:
        self.calls.append(where)
        raise RuntimeError(f"the raising hook failed in {where}")

    def send_started(self, event: SendStarted) -> SendObserver | None:
        self.calls.append("send_started")
        hook = self

        class _Raises(SendObserver):
            def finished(self, result: SendResult) -> None:
                hook._boom("finished")

            def failed(self, error: BaseException) -> None:
                hook._boom("failed")

            def retried(self, error: BaseException) -> None:
                hook._boom("retried")

        return _Raises()

    def connection_opened(self, event: ConnectionOpened) -> None:
        self._boom("connection_opened")

    def connection_closed(self, event: ConnectionClosed) -> None:
        self._boom("connection_closed")

    def pool_waited(self, event: PoolWaited) -> None:
        self._boom("pool_waited")

    def pool_opened(self, event: PoolObserved) -> None:
        self._boom("pool_opened")

    def pool_closed(self, event: PoolObserved) -> None:
        self._boom("pool_closed")


class StartRaises(Hook):
    """A hook whose ``send_started`` raises (so it has no observer)."""

    def send_started(self, event: SendStarted) -> SendObserver | None:
        raise RuntimeError("send_started failed")


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``predicate()`` holds: state another thread or task changes."""
    with anyio.fail_after(BOUND):
        while not predicate():
            await anyio.sleep(0.002)


# -- OpenTelemetry in memory -----------------------------------------------------------------


@dataclass
class Otel:
    """An OpenTelemetryHook on SDK providers of its own, and what they recorded."""

    hook: OpenTelemetryHook
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    @classmethod
    def make(cls, *, record_addresses: bool = False) -> Otel:
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        hook = OpenTelemetryHook(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            record_addresses=record_addresses,
        )
        return cls(hook, tracer_provider, meter_provider, exporter, reader)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    @property
    def app_tracer(self) -> Any:
        """A tracer of the application, on the same provider."""
        return self.tracer_provider.get_tracer("the-application")

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """The spans ended so far (named ``name``), in the order they ended."""
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one span named ``name``."""
        found = self.spans(name)
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The spans whose parent is ``parent``, in the order they started."""
        found = [
            s
            for s in self.spans()
            if s.parent is not None and s.parent.span_id == parent.context.span_id
        ]
        return sorted(found, key=lambda s: s.start_time or 0)

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, data point)`` of every point of ``metric`` collected now."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        found.extend((dict(p.attributes or {}), p) for p in item.data.data_points)
        return found

    def counts(self, metric: str, *keys: str) -> dict[tuple[Any, ...], Any]:
        """A counter's (a histogram's count, a gauge's) values keyed by the attributes ``keys``."""
        result: dict[tuple[Any, ...], Any] = {}
        for attributes, point in self.points(metric):
            key = tuple(attributes.get(k) for k in keys)
            value = point.count if hasattr(point, "count") else point.value
            result[key] = result.get(key, 0) + value
        return result


def recorded_text(otel: Otel) -> Iterator[str]:
    """Every string the providers recorded: span names, attributes, events, statuses, metrics."""

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, (list, tuple)):
            for item in value:
                yield from strings(item)
        else:
            yield str(value)

    for span in otel.spans():
        yield span.name
        for key, value in (span.attributes or {}).items():
            yield key
            yield from strings(value)
        for event in span.events:
            yield event.name
            for key, value in (event.attributes or {}).items():
                yield key
                yield from strings(value)
        if span.status.description:
            yield span.status.description
    data = otel.reader.get_metrics_data()
    if data is not None:
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    yield item.name
                    for point in item.data.data_points:
                        for key, value in (point.attributes or {}).items():
                            yield key
                            yield from strings(value)
