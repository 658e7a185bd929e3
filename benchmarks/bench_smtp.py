"""SMTP throughput: lettre's pool against aiosmtplib and smtplib.

Sends 1 KiB messages to a sink on 127.0.0.1 (Postfix's smtp-sink when
installed, else the bundled asyncio sink), first directly, then through a
proxy that adds 5 ms of round trip. Every case runs in its own process and
stops after ``--messages`` messages or ``--seconds`` seconds, whichever comes
first. Reported: messages per second and the client's CPU time per message.

Usage::

    python benchmarks/bench_smtp.py                 # the full table
    python benchmarks/bench_smtp.py --quick         # a short smoke run
    python benchmarks/bench_smtp.py --cases aiosmtplib-reuse --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import HERE, Server, delay_proxy, run_in_process, sink
from workload import Budget, Counts


@dataclass(frozen=True, slots=True)
class Case:
    """One way of sending: who sends, how, on which event loop."""

    name: str
    label: str
    loop: str  # "asyncio", "uvloop", "trio" or "threads"
    group: str  # "raw" (pre-serialised bytes) or "messages" (built per send)
    peer: bool


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case("lettre-pool", "lettre, pooled (asyncio)", "asyncio", "raw", peer=False),
        Case("lettre-pool-uvloop", "lettre, pooled (uvloop)", "uvloop", "raw", peer=False),
        Case("lettre-pool-trio", "lettre, pooled (trio)", "trio", "raw", peer=False),
        Case("aiosmtplib-reuse", "aiosmtplib, one connection per worker", "asyncio", "raw", True),
        Case("aiosmtplib-new", "aiosmtplib, new connection per message", "asyncio", "raw", True),
        Case("smtplib-threads", "smtplib, one thread + connection each", "threads", "raw", True),
        Case("lettre-messages", "lettre, Message built and sent", "asyncio", "messages", False),
        Case(
            "lettre-messages-uvloop",
            "lettre, Message built and sent (uvloop)",
            "uvloop",
            "messages",
            False,
        ),
        Case(
            "aiosmtplib-messages",
            "aiosmtplib send_message(EmailMessage)",
            "asyncio",
            "messages",
            True,
        ),
    )
}


def _runner(name: str) -> Callable[[int, int, Budget], Any]:
    runners: dict[str, Callable[[int, int, Budget], Any]]
    if name.startswith("lettre"):
        import lettre_runners

        runners = {
            "lettre-pool": lettre_runners.pooled,
            "lettre-pool-uvloop": lettre_runners.pooled,
            "lettre-pool-trio": lettre_runners.pooled,
            "lettre-messages": lettre_runners.messages,
            "lettre-messages-uvloop": lettre_runners.messages,
        }
    else:
        import peers

        runners = {
            "aiosmtplib-reuse": peers.aiosmtplib_reuse,
            "aiosmtplib-new": peers.aiosmtplib_new_connection,
            "smtplib-threads": peers.smtplib_threads,
            "aiosmtplib-messages": peers.aiosmtplib_stdlib_messages,
        }
    return runners[name]


def lettre_available() -> bool:
    try:
        import lettre_runners
    except ImportError:
        return False
    return bool(lettre_runners.available())


# -- one case, in its own process -------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_worker(
    name: str, port: int, concurrency: int, messages: int, seconds: float
) -> dict[str, Any]:
    case = CASES[name]
    runner = _runner(name)
    budget = Budget(messages, seconds)
    cpu0 = _cpu()
    start = time.perf_counter()
    counts: Counts
    if case.loop == "threads":
        counts = runner(port, concurrency, budget)
    elif case.loop == "trio":
        import trio

        async def go() -> Counts:
            result: Counts = await runner(port, concurrency, budget)
            return result

        counts = trio.run(go)
    elif case.loop == "uvloop":
        import uvloop

        async def go_uvloop() -> Counts:
            result: Counts = await runner(port, concurrency, budget)
            return result

        counts = uvloop.run(go_uvloop())
    else:

        async def go_asyncio() -> Counts:
            result: Counts = await runner(port, concurrency, budget)
            return result

        counts = asyncio.run(go_asyncio())
    elapsed = time.perf_counter() - start
    cpu = _cpu() - cpu0
    assert isinstance(counts, Counts)
    return {
        "case": name,
        "concurrency": concurrency,
        "sent": counts.sent,
        "failed": counts.failed,
        "seconds": elapsed,
        "cpu_seconds": cpu,
    }


@dataclass(frozen=True, slots=True)
class Result:
    case: str
    concurrency: int
    rtt_ms: float
    sent: int
    failed: int
    seconds: float
    cpu_seconds: float
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.sent * 1e6 if self.sent else float("nan")


def run_case(
    name: str, port: int, concurrency: int, rtt_ms: float, messages: int, seconds: float
) -> Result:
    data = run_in_process(
        "bench_smtp.py",
        [
            name,
            *("--port", str(port), "--concurrency", str(concurrency)),
            *("--messages", str(messages), "--seconds", str(seconds)),
        ],
        timeout=seconds + 120,
    )
    if isinstance(data, str):
        return Result(name, concurrency, rtt_ms, 0, 0, 0.0, 0.0, error=data)
    return Result(
        name,
        concurrency,
        rtt_ms,
        data["sent"],
        data["failed"],
        data["seconds"],
        data["cpu_seconds"],
    )


# -- the whole table ----------------------------------------------------------------------


@contextmanager
def _target(server: Server, rtt_ms: float, max_seconds: float) -> Iterator[Server]:
    if rtt_ms <= 0:
        yield server
        return
    with delay_proxy(server.port, rtt_ms, max_seconds) as proxy:
        yield proxy


def _fmt(result: Result | None) -> str:
    if result is None:
        return "-"
    if result.error is not None:
        return f"error: {result.error[:40]}"
    text = f"{result.rate:,.0f}/s ({result.cpu_us:,.0f} µs)"
    if result.failed:
        text += f" [{result.failed} failed]"
    return text


def table(results: list[Result], rtts: list[float], concurrencies: list[int]) -> str:
    lines: list[str] = []
    by_key = {(r.case, r.concurrency, r.rtt_ms): r for r in results}
    names = [name for name in CASES if any(r.case == name for r in results)]
    for rtt in rtts:
        where = "loopback" if rtt <= 0 else f"loopback + {rtt:g} ms round trip"
        lines.append(f"**{where}** — messages/s (client CPU per message)")
        lines.append("")
        header = "| case | " + " | ".join(f"concurrency {n}" for n in concurrencies) + " |"
        lines.append(header)
        lines.append("|---|" + "---|" * len(concurrencies))
        for name in names:
            cells = [_fmt(by_key.get((name, n, rtt))) for n in concurrencies]
            lines.append(f"| {CASES[name].label} | " + " | ".join(cells) + " |")
        lines.append("")
        for ours_name, theirs_name, what in (
            ("lettre-pool", "aiosmtplib-reuse", "lettre / aiosmtplib"),
            ("lettre-pool-uvloop", "aiosmtplib-reuse", "lettre on uvloop / aiosmtplib"),
            ("lettre-pool-uvloop", "lettre-pool", "lettre on uvloop / lettre on asyncio"),
        ):
            ratios = []
            for n in concurrencies:
                for prefix, ours_case, theirs_case in (
                    ("", ours_name, theirs_name),
                    ("messages ", _messages_case(ours_name), _messages_case(theirs_name)),
                ):
                    ours = by_key.get((ours_case, n, rtt))
                    theirs = by_key.get((theirs_case, n, rtt))
                    if ours and theirs and ours.rate and theirs.rate:
                        ratios.append(f"{prefix}{ours.rate / theirs.rate:.1f}x at {n}")
            if ratios:
                lines.append(f"{what}: " + ", ".join(ratios))
                lines.append("")
    return "\n".join(lines)


def _messages_case(raw_case: str) -> str:
    """The end-to-end case that goes with a pre-serialised one."""
    return {
        "lettre-pool": "lettre-messages",
        "lettre-pool-uvloop": "lettre-messages-uvloop",
        "aiosmtplib-reuse": "aiosmtplib-messages",
    }[raw_case]


def anyio_run_memory(port: int, connections: int) -> dict[str, float]:
    import anyio

    import lettre_runners

    return anyio.run(lettre_runners.idle_connection_memory, port, connections)


def measure_memory(port: int, connections: int = 50) -> str:
    """Run the idle-connection memory measurement in its own process."""
    command = [
        sys.executable,
        str(HERE / "bench_smtp.py"),
        "--worker",
        "memory",
        "--port",
        str(port),
        "--concurrency",
        str(connections),
    ]
    try:
        proc = subprocess.run(command, capture_output=True, timeout=120, check=False, text=True)
    except subprocess.TimeoutExpired:
        return "memory per idle pooled connection: timed out"
    if proc.returncode != 0:
        return f"memory per idle pooled connection: failed ({proc.stderr.strip()[-200:]})"
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return (
        f"Memory per idle pooled connection (asyncio, {int(data['connections'])} idle "
        f"connections, tracemalloc): {data['bytes_per_connection'] / 1024:.1f} KiB "
        "(Python objects; kernel socket buffers not included)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SMTP throughput against a local sink")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="*", default=None, choices=sorted(CASES))
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 64])
    parser.add_argument("--rtt-ms", type=float, nargs="*", default=[0.0, 5.0])
    parser.add_argument("--messages", type=int, default=20_000, help="per case")
    parser.add_argument("--seconds", type=float, default=4.0, help="per case")
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "bundled"], default="auto")
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    if args.worker == "memory":
        print(json.dumps(anyio_run_memory(args.port, args.concurrency[0])))
        return 0
    if args.worker:
        concurrency = args.concurrency[0]
        print(
            json.dumps(run_worker(args.worker, args.port, concurrency, args.messages, args.seconds))
        )
        return 0

    if args.quick:
        args.messages = min(args.messages, 2_000)
        args.seconds = min(args.seconds, 1.0)
    names = args.cases or [name for name, case in CASES.items() if case.peer or lettre_available()]
    if not lettre_available():
        print("lettre's SMTP transport is not available: running the peers only", file=sys.stderr)
    results: list[Result] = []
    memory = ""
    budget_seconds = (args.seconds + 30) * len(names) * len(args.concurrency) + 60
    with ExitStack() as stack:
        server = stack.enter_context(sink(args.sink, max_seconds=budget_seconds * len(args.rtt_ms)))
        print(f"sink: {server.kind} on 127.0.0.1:{server.port}", file=sys.stderr)
        if lettre_available() and any(CASES[name].group == "raw" for name in names):
            memory = measure_memory(server.port)
            print(f"  {memory}", file=sys.stderr)
        for rtt in args.rtt_ms:
            with _target(server, rtt, budget_seconds) as target:
                for name in names:
                    for concurrency in args.concurrency:
                        result = run_case(
                            name, target.port, concurrency, rtt, args.messages, args.seconds
                        )
                        print(
                            f"  {name:22} n={concurrency:<3} rtt={rtt:g}ms  {_fmt(result)}",
                            file=sys.stderr,
                        )
                        results.append(result)
    print(
        f"Sink: {server.kind}. Each case: up to {args.messages} messages or {args.seconds:g} s.\n"
    )
    print(table(results, args.rtt_ms, args.concurrency))
    if memory:
        print(memory)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump([asdict(r) for r in results], out, indent=1)
    return 0 if all(r.error is None for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
