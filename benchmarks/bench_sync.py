"""Blocking code: 8 threads through one BlockingTransport against Django's SMTP backend.

Every case runs 8 threads in one process, each sending 1 KiB messages in a
loop, to a sink on 127.0.0.1 (Postfix's smtp-sink when installed), directly
and through a proxy that adds 5 ms of round trip:

- ``django-smtp``: Django's own ``django.core.mail.backends.smtp.EmailBackend``,
  one backend (one connection) per thread, opened once: Django at its best.
- ``django-smtp-per-send``: the same, with a connection per message, which is
  what ``send_mail()`` does when not handed a connection.
- ``django-lettre``: ``lettre.django.EmailBackend``, the same thread code: the
  backends share one BlockingTransport (one pool) per process.
- ``blocking-messages``: a lettre ``Message`` built and sent per message
  through one ``BlockingTransport`` shared by the threads.
- ``blocking-raw`` and ``smtplib-raw``: pre-serialised bytes, through one
  ``BlockingTransport`` and through one ``smtplib`` connection per thread.

Each case stops after ``--messages`` messages or ``--seconds`` seconds.
Reported: messages per second and the process's CPU time per message.

Usage::

    python benchmarks/bench_sync.py                  # the table (about 40 s)
    python benchmarks/bench_sync.py --quick          # a smoke run
    python benchmarks/bench_sync.py --rtt-ms 0 --cases django-smtp django-lettre
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import smtplib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Server, delay_proxy, run_in_process, sink
from workload import SENDER, Budget, Counts, one_kib_body, one_kib_message, recipients

THREADS = 8
SUBJECT = "Benchmark message"
FROM = "Sender <sender@example.com>"
TO = "Recipient <rcpt0@example.com>"

CASES: dict[str, str] = {
    "django-smtp": "Django's SMTP backend, a connection per thread",
    "django-smtp-per-send": "Django's SMTP backend, a connection per message (send_mail)",
    "django-lettre": "lettre.django.EmailBackend (one pool per process)",
    "blocking-messages": "lettre Message through one BlockingTransport",
    "blocking-raw": "bytes through one BlockingTransport",
    "smtplib-raw": "bytes through smtplib, a connection per thread",
}


# -- the cases, run in a worker process ---------------------------------------------------


def _configure_django(port: int) -> None:
    import django
    from django.conf import settings

    settings.configure(
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        DEFAULT_FROM_EMAIL=FROM,
        DEFAULT_CHARSET="utf-8",
        INSTALLED_APPS=[],
    )
    django.setup()


@dataclass(slots=True)
class Measured:
    """What a case sent, in how long, with how much CPU (from the start line to the end)."""

    counts: Counts
    seconds: float
    cpu_seconds: float


def _threads(
    budget: Budget,
    setup: Callable[[], Any],
    send: Callable[[Any], bool],
    teardown: Callable[[Any], None],
) -> Measured:
    """Run THREADS threads: ``state = setup()``, then ``send(state)`` while the budget lasts.

    Each thread sends one message during its setup (connections open, caches
    warm); the clock and the budget start once every thread is ready.
    """
    counts = Counts()
    lock = threading.Lock()
    errors: list[BaseException] = []
    started: list[float] = []

    def start_clock() -> None:
        budget.restart()
        started[:] = [time.perf_counter(), _cpu()]

    start = threading.Barrier(THREADS, action=start_clock, timeout=60)

    def worker() -> None:
        try:
            state = setup()
            send(state)  # the warm-up message
            start.wait()
            try:
                while True:
                    with lock:
                        if not budget.take():
                            return
                    ok = send(state)
                    with lock:
                        if ok:
                            counts.sent += 1
                        else:
                            counts.failed += 1
            finally:
                teardown(state)
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=budget.seconds + 90)
    if errors:
        raise errors[0]
    return Measured(counts, time.perf_counter() - started[0], _cpu() - started[1])


def _django_case(backend: str, per_send: bool) -> Callable[[int, Budget], Measured]:
    def run(port: int, budget: Budget) -> Measured:
        _configure_django(port)
        from django.core.mail import EmailMessage, get_connection

        body = one_kib_body()

        def setup() -> Any:
            if per_send:
                return None
            connection = get_connection(backend)
            connection.open()
            return connection

        def send(connection: Any) -> bool:
            message = EmailMessage(
                SUBJECT, body, FROM, [TO], connection=connection or get_connection(backend)
            )
            return message.send() == 1

        def teardown(connection: Any) -> None:
            if connection is not None:
                connection.close()

        return _threads(budget, setup, send, teardown)

    return run


def _blocking_messages(port: int, budget: Budget) -> Measured:
    from lettre import BlockingTransport, Message, SmtpTransport

    body = one_kib_body()
    mailer = BlockingTransport(SmtpTransport.local(port, host="127.0.0.1"))

    def send(_: object) -> bool:
        message = Message.builder().from_(FROM).to(TO).subject(SUBJECT).text(body).build()
        return bool(mailer.send(message).accepted)

    try:
        return _threads(budget, lambda: None, send, lambda _: None)
    finally:
        mailer.close()


def _blocking_raw(port: int, budget: Budget) -> Measured:
    from lettre import BlockingTransport, Envelope, SmtpTransport

    data = one_kib_message()
    envelope = Envelope(SENDER, recipients(1))
    mailer = BlockingTransport(SmtpTransport.local(port, host="127.0.0.1"))

    def send(_: object) -> bool:
        return bool(mailer.send_raw(envelope, data).accepted)

    try:
        return _threads(budget, lambda: None, send, lambda _: None)
    finally:
        mailer.close()


def _smtplib_raw(port: int, budget: Budget) -> Measured:
    data = one_kib_message()

    def send(client: smtplib.SMTP) -> bool:
        return not client.sendmail(SENDER, recipients(1), data)

    return _threads(
        budget,
        lambda: smtplib.SMTP("127.0.0.1", port, timeout=30),
        send,
        lambda client: client.quit(),
    )


RUNNERS: dict[str, Callable[[int, Budget], Measured]] = {
    "django-smtp": _django_case("django.core.mail.backends.smtp.EmailBackend", per_send=False),
    "django-smtp-per-send": _django_case(
        "django.core.mail.backends.smtp.EmailBackend", per_send=True
    ),
    "django-lettre": _django_case("lettre.django.EmailBackend", per_send=False),
    "blocking-messages": _blocking_messages,
    "blocking-raw": _blocking_raw,
    "smtplib-raw": _smtplib_raw,
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_worker(name: str, port: int, messages: int, seconds: float) -> dict[str, Any]:
    measured = RUNNERS[name](port, Budget(messages, seconds))
    return {
        "sent": measured.counts.sent,
        "failed": measured.counts.failed,
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,
    }


# -- the table -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    case: str
    rtt_ms: float
    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.sent * 1e6 if self.sent else float("nan")


def run_case(name: str, port: int, rtt_ms: float, messages: int, seconds: float) -> Result:
    data = run_in_process(
        "bench_sync.py",
        [name, "--port", str(port), "--messages", str(messages), "--seconds", str(seconds)],
        timeout=seconds + 90,
    )
    if isinstance(data, str):
        return Result(name, rtt_ms, error=data)
    return Result(name, rtt_ms, **data)


def _fmt(result: Result | None) -> str:
    if result is None:
        return "-"
    if result.error is not None:
        return f"error: {result.error[:40]}"
    text = f"{result.rate:,.0f}/s ({result.cpu_us:,.0f} µs)"
    if result.failed:
        text += f" [{result.failed} failed]"
    return text


def table(results: list[Result], rtts: list[float]) -> str:
    by_key = {(r.case, r.rtt_ms): r for r in results}
    names = [name for name in CASES if any(r.case == name for r in results)]
    where = ["loopback" if rtt <= 0 else f"+{rtt:g} ms round trip" for rtt in rtts]
    lines = [
        f"{THREADS} threads — messages/s (process CPU per message)",
        "",
        "| case | " + " | ".join(where) + " |",
        "|---|" + "---|" * len(rtts),
    ]
    for name in names:
        cells = [_fmt(by_key.get((name, rtt))) for rtt in rtts]
        lines.append(f"| {CASES[name]} | " + " | ".join(cells) + " |")
    lines.append("")
    for ours, theirs in (
        ("django-lettre", "django-smtp"),
        ("blocking-messages", "django-smtp"),
        ("django-lettre", "django-smtp-per-send"),
        ("blocking-raw", "smtplib-raw"),
    ):
        ratios = []
        for rtt, label in zip(rtts, where, strict=True):
            mine, other = by_key.get((ours, rtt)), by_key.get((theirs, rtt))
            if mine and other and mine.rate and other.rate:
                ratios.append(f"{mine.rate / other.rate:.1f}x ({label})")
        if ratios:
            lines.append(f"{ours} / {theirs}: " + ", ".join(ratios))
            lines.append("")
    return "\n".join(lines)


@contextmanager
def _target(server: Server, rtt_ms: float, max_seconds: float) -> Iterator[Server]:
    if rtt_ms <= 0:
        yield server
        return
    with delay_proxy(server.port, rtt_ms, max_seconds) as proxy:
        yield proxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Blocking code: threads, lettre and Django")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="*", default=None, choices=list(CASES))
    parser.add_argument("--rtt-ms", type=float, nargs="*", default=[0.0, 5.0])
    parser.add_argument("--messages", type=int, default=20_000, help="per case")
    parser.add_argument("--seconds", type=float, default=2.0, help="per case")
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "bundled"], default="auto")
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(run_worker(args.worker, args.port, args.messages, args.seconds)))
        return 0
    if args.quick:
        args.messages = min(args.messages, 1_000)
        args.seconds = min(args.seconds, 0.5)
    names = args.cases or list(CASES)
    try:
        import django  # noqa: F401
    except ImportError:
        names = [name for name in names if not name.startswith("django")]
        print("Django is not installed: the Django cases are skipped", file=sys.stderr)
    results: list[Result] = []
    budget = (args.seconds + 60) * len(names) * len(args.rtt_ms) + 60
    with ExitStack() as stack:
        server = stack.enter_context(sink(args.sink, max_seconds=budget))
        print(f"sink: {server.kind} on 127.0.0.1:{server.port}", file=sys.stderr)
        for rtt in args.rtt_ms:
            with _target(server, rtt, budget) as target:
                for name in names:
                    result = run_case(name, target.port, rtt, args.messages, args.seconds)
                    print(f"  {name:22} rtt={rtt:g}ms  {_fmt(result)}", file=sys.stderr)
                    results.append(result)
    print(
        f"Sink: {server.kind}. Each case: {THREADS} threads, up to {args.messages} messages "
        f"or {args.seconds:g} s.\n"
    )
    print(table(results, args.rtt_ms))
    return 0 if all(r.error is None for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
