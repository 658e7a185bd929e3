"""What observing sends costs: no hooks, OpenTelemetry's API without an SDK, the SDK recording.

Usage::

    python benchmarks/bench_otel.py                 # the table (about a minute)
    python benchmarks/bench_otel.py --rounds 7 --messages 30000

Each configuration runs pooled SMTP sends (1 KiB, ``send_raw``, 8 connections,
16 sends in flight, asyncio; ``lettre_runners.pooled``, the runner of
``bench_smtp.py``) against the sink (Postfix's smtp-sink when
installed) in a fresh interpreter, in turns, ``--rounds`` times; the table
gives the median CPU time per message and its ratio to no hooks:

- ``no hooks``: nothing attached;
- ``API, no SDK``: :func:`lettre.otel.instrument` with OpenTelemetry's default
  (no-op) providers, as in an application that installed the ``otel`` extra
  but configured no SDK;
- ``SDK recording``: the SDK's tracer provider (spans batched to an exporter
  that drops them) and meter provider (an in-memory reader), so every span and
  measurement is made.

The last columns isolate the per-send cost of the hook call itself, without
I/O: the memory transport's ``send_raw`` in a loop, the configurations taking
turns in one process (the fastest turn of each counts, so that a busy machine
slows them alike). The difference to no hooks, divided by the SMTP CPU time
per message without hooks, is the share of a send that observing costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from typing import Any

from harness import run_in_process, sink
from lettre_runners import pooled
from workload import SENDER, Budget, one_kib_message, recipients

CONFIGS = ("no hooks", "API, no SDK", "SDK recording")
CONCURRENCY = 8


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _configure(config: str) -> None:
    if config == "no hooks":
        return
    from lettre.otel import instrument

    if config == "API, no SDK":
        instrument()
        return
    tracer_provider, meter_provider = _sdk_providers()
    instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def _sdk_providers() -> tuple[Any, Any]:
    """The SDK's tracer provider (spans batched to an exporter that drops them) and meter provider.

    The meter provider has an in-memory reader, so that every measurement is made.
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return tracer_provider, meter_provider


def worker_smtp(config: str, port: int, messages: int) -> dict[str, Any]:
    _configure(config)
    # A first, unmeasured run opens the connections and warms the caches.
    asyncio.run(pooled(port, CONCURRENCY, Budget(1000, 60.0)))
    cpu0 = _cpu()
    counts = asyncio.run(pooled(port, CONCURRENCY, Budget(messages, 600.0)))
    cpu = _cpu() - cpu0
    return {"sent": counts.sent, "failed": counts.failed, "cpu_us": cpu / counts.sent * 1e6}


def _sdk_hook() -> Any:
    from lettre.otel import OpenTelemetryHook

    tracer_provider, meter_provider = _sdk_providers()
    return OpenTelemetryHook(tracer_provider=tracer_provider, meter_provider=meter_provider)


def worker_call(calls: int, rounds: int) -> dict[str, Any]:
    """The hook call alone: the memory transport's ``send_raw``, no I/O.

    The three configurations take turns in one process (hooks registered and
    unregistered between turns), and each keeps its fastest turn, so that a
    loaded machine slows them alike.
    """
    from lettre.envelope import Envelope
    from lettre.hooks import register, unregister
    from lettre.otel import OpenTelemetryHook
    from lettre.transports.memory import MemoryTransport

    data = one_kib_message()
    envelope = Envelope(SENDER, recipients(1))
    hooks = {"no hooks": None, "API, no SDK": OpenTelemetryHook(), "SDK recording": _sdk_hook()}
    best = dict.fromkeys(CONFIGS, float("inf"))

    async def turn(transport: MemoryTransport) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await transport.send_raw(envelope, data)
        seconds = time.perf_counter() - started
        transport.clear()
        return seconds / calls * 1e6

    async def go() -> None:
        transport = MemoryTransport()
        for _ in range(rounds):
            for config in CONFIGS:
                hook = hooks[config]
                if hook is not None:
                    register(hook)
                try:
                    best[config] = min(best[config], await turn(transport))
                finally:
                    if hook is not None:
                        unregister(hook)

    asyncio.run(go())
    return {"us_per_send": best}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="smtp", help=argparse.SUPPRESS)
    parser.add_argument("--config", default="no hooks", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args(argv)
    if args.worker:
        if args.kind == "smtp":
            out = worker_smtp(args.config, args.port, args.messages)
        else:
            out = worker_call(args.calls, args.rounds * 4)
        print(json.dumps(out))
        return 0

    smtp: dict[str, list[float]] = {config: [] for config in CONFIGS}
    with sink() as server:
        print(f"sink: {server.kind}; {args.rounds} rounds of {args.messages} messages each")
        for _ in range(args.rounds):
            for config in CONFIGS:
                data = run_in_process(
                    "bench_otel.py",
                    [
                        *("--kind", "smtp", "--config", config),
                        *("--port", str(server.port), "--messages", str(args.messages)),
                    ],
                    timeout=600,
                )
                if isinstance(data, str):
                    print(f"{config}: {data}")
                    return 1
                smtp[config].append(data["cpu_us"])
    data = run_in_process(
        "bench_otel.py",
        ["--kind", "call", "--calls", str(args.calls), "--rounds", str(args.rounds)],
        timeout=1200,
    )
    if isinstance(data, str):
        print(f"hook call: {data}")
        return 1
    call: dict[str, float] = data["us_per_send"]
    base = statistics.median(smtp["no hooks"])
    base_call = call["no hooks"]
    print()
    print("| configuration | SMTP CPU per message | vs no hooks | hook call alone | its share |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for config in CONFIGS:
        cpu = statistics.median(smtp[config])
        alone = call[config]
        share = (alone - base_call) / base * 100
        print(f"| {config} | {cpu:.1f} µs | {cpu / base:.3f}x | {alone:.2f} µs | {share:+.1f}% |")
    print()
    print(
        "SMTP: median over the rounds (asyncio, 8 connections, 1 KiB). Hook call alone: the "
        "memory transport's send_raw, the fastest of turns taken in one process; its share "
        "is the difference to no hooks over the SMTP CPU time per message without hooks."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
