"""Start and stop the benchmark's helper processes: the sink and the latency proxy.

Every process started here listens on 127.0.0.1 only, is bounded in time by
its own ``--max-seconds`` (or smtp-sink's idle timeout), and is stopped (by
its process id) when the ``with`` block ends.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HERE",
    "Server",
    "delay_proxy",
    "free_port",
    "run_in_process",
    "sink",
    "smtp_sink_path",
]

HERE = Path(__file__).resolve().parent
SMTP_SINK_CANDIDATES = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Server:
    """A running helper: where it listens and what it is."""

    port: int
    kind: str
    pid: int


def smtp_sink_path() -> str | None:
    """Postfix's smtp-sink, if installed."""
    for candidate in SMTP_SINK_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("smtp-sink")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"helper exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5) as probe:
                probe.settimeout(2.0)
                greeting = probe.recv(512)
                if greeting.startswith(b"220"):
                    probe.sendall(b"QUIT\r\n")
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered on port {port} within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def _read_port(proc: subprocess.Popen[bytes], timeout: float) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), True)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(b"PORT "):
            return int(line.split()[1])
    raise RuntimeError("helper did not report its port")


@contextmanager
def _python_helper(script: str, *args: str, kind: str) -> Iterator[Server]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        port = _read_port(proc, 20.0)
        _wait_listening(port, proc, 20.0)
        yield Server(port=port, kind=kind, pid=proc.pid)
    finally:
        _stop(proc)


@contextmanager
def sink(prefer: str = "auto", max_seconds: float = 3600.0) -> Iterator[Server]:
    """Run a sink on 127.0.0.1: Postfix's smtp-sink when present, else the bundled one.

    Args:
        prefer: ``"auto"``, ``"smtp-sink"`` (fail if absent) or ``"bundled"``.
        max_seconds: the bundled sink stops by itself after this long.
    """
    binary = smtp_sink_path() if prefer in ("auto", "smtp-sink") else None
    if prefer == "smtp-sink" and binary is None:
        raise RuntimeError("smtp-sink is not installed (Debian package postfix)")
    if binary is None:
        with _python_helper(
            "sink.py", "--port", "0", "--max-seconds", str(max_seconds), kind="bundled sink"
        ) as server:
            yield server
        return
    port = free_port()
    command = [binary]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]  # smtp-sink refuses to keep root privileges
    # -t: a session idle for 30 s is dropped; -m: up to 1024 concurrent sessions.
    command += ["-t", "30", "-m", "1024", f"{LOOPBACK}:{port}", "1024"]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        _wait_listening(port, proc, 20.0)
        yield Server(port=port, kind="Postfix smtp-sink", pid=proc.pid)
    finally:
        _stop(proc)


@contextmanager
def delay_proxy(target_port: int, rtt_ms: float, max_seconds: float = 3600.0) -> Iterator[Server]:
    """Run the latency proxy in front of ``target_port`` (both on 127.0.0.1)."""
    with _python_helper(
        "proxy.py",
        "--target-port",
        str(target_port),
        "--rtt-ms",
        str(rtt_ms),
        "--max-seconds",
        str(max_seconds),
        kind=f"proxy +{rtt_ms:g} ms",
    ) as server:
        yield server


def run_in_process(script: str, args: list[str], timeout: float) -> dict[str, Any] | str:
    """Run ``script --worker ...`` (a file beside this one) in a fresh interpreter.

    Returns the JSON object on the last line of its output, or a short error
    text: "timed out", or the last meaningful line of its standard error.
    """
    command = [sys.executable, str(HERE / script), "--worker", *args]
    try:
        proc = subprocess.run(command, capture_output=True, timeout=timeout, check=False, text=True)
    except subprocess.TimeoutExpired:
        return "timed out"
    if proc.returncode != 0:
        # An exception group prints boxes: take the last line that says something.
        lines = [line.strip(" |+-") for line in proc.stderr.splitlines()]
        said = [line for line in lines if line]
        return said[-1] if said else f"exit status {proc.returncode}"
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data
