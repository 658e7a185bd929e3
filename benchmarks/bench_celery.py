"""Messages per second through Celery workers (Redis broker) into an SMTP sink.

Cases, each with ``--messages`` 1 KiB messages queued to a fresh worker
(``celery worker -P prefork``) and every task result awaited:

- ``lettre-1`` and ``lettre-2``: ``lettre.send_message`` with 1 and 2 worker
  processes; each process sends through its own pooled transport and
  records every accepted message in Redis (de-duplication on);
- ``per-connection-2``: 2 worker processes, a task that opens a new SMTP
  connection (smtplib) for each message and closes it: the way
  django-celery-email sends.

The sink is Postfix's smtp-sink when installed (else benchmarks/sink.py),
on loopback and through a proxy that adds ``--rtt-ms`` of round trip to the
SMTP connections (not to Redis); a redis-server is started on a free
loopback port. Timing starts when the first task is queued and ends when
the last result is in.

Usage::

    python benchmarks/bench_celery.py              # the table (about a minute)
    python benchmarks/bench_celery.py --quick      # a smoke run
    python benchmarks/bench_celery.py --rtt-ms 0 --messages 500
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import HERE, delay_proxy, free_port, sink

NO_DISK = ("--save", "", "--appendonly", "no")
WORKER_FLAGS = ("--without-gossip", "--without-mingle", "--without-heartbeat")

CASES = {
    "lettre-1": ("lettre.send_message", 1),
    "lettre-2": ("lettre.send_message", 2),
    "per-connection-2": ("bench.send_per_connection", 2),
}


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    import redis

    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, *NO_DISK],
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url)
            deadline = time.monotonic() + 15
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            client.close()
            yield url
        finally:
            proc.kill()
            proc.wait(10)


@contextmanager
def worker(broker: str, smtp_port: int, queue: str, processes: int) -> Iterator[None]:
    env = {
        **os.environ,
        "BENCH_BROKER": broker,
        "BENCH_SMTP_PORT": str(smtp_port),
        "BENCH_QUEUE": queue,
        "PYTHONPATH": f"{HERE}{os.pathsep}{HERE.parent / 'src'}",
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_bench_app", "worker"),
            *("-P", "prefork", "-c", str(processes), "-Q", queue, "-n", f"{queue}@%h"),
            *WORKER_FLAGS,
            *("-l", os.environ.get("BENCH_LOGLEVEL", "WARNING")),
        ],
        cwd=HERE,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def run_case(broker: str, smtp_port: int, case: str, count: int) -> float:
    os.environ["BENCH_BROKER"] = broker
    os.environ["BENCH_SMTP_PORT"] = str(smtp_port)
    from celery.result import ResultSet

    import celery_bench_app
    from lettre import Envelope
    from lettre.message.payload import raw_to_payload
    from workload import SENDER, one_kib_message

    app = celery_bench_app.app
    app.conf.broker_url = app.conf.result_backend = broker
    task, processes = CASES[case]
    queue = f"bench-{case}-{uuid.uuid4().hex[:8]}"
    data = one_kib_message()
    payloads = [
        raw_to_payload(
            Envelope(SENDER, [f"rcpt{n}@example.com"]),
            data,
            message_id=f"<{uuid.uuid4().hex}@bench.example>",
        )
        for n in range(count)
    ]
    with worker(broker, smtp_port, queue, processes):
        deadline = time.monotonic() + 30
        while not app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=0.5):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not start")
        start = time.perf_counter()
        results = [app.send_task(task, args=(p,), queue=queue) for p in payloads]
        ResultSet(results).join_native(timeout=600, propagate=True, interval=0.05)
        elapsed = time.perf_counter() - start
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="per case, on loopback")
    parser.add_argument(
        "--rtt-messages", type=int, default=500, help="per case, through the round-trip proxy"
    )
    parser.add_argument("--rtt-ms", type=float, default=5.0, help="0: loopback only")
    parser.add_argument("--quick", action="store_true", help="200 messages per case")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    if args.quick:
        args.messages = args.rtt_messages = 200
    with redis_server() as broker, sink() as server:
        print(f"1 KiB messages, sink: {server.kind}; messages/s")
        print(f"{'case':<20} {'loopback':>10} {f'+{args.rtt_ms:g} ms':>10}")
        for case in args.cases:
            rate = run_case(broker, server.port, case, args.messages)
            delayed = ""
            if args.rtt_ms > 0:
                with delay_proxy(server.port, args.rtt_ms) as proxy:
                    delayed = f"{run_case(broker, proxy.port, case, args.rtt_messages):.0f}"
            print(f"{case:<20} {rate:>10.0f} {delayed:>10}", flush=True)


if __name__ == "__main__":
    main()
