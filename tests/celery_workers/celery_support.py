"""Real services for the Celery tests: redis-server, a recording SMTP sink, worker processes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"

INSTALL_REDIS = (
    "redis-server was not found on PATH; the Celery tests need a real Redis. "
    "Install it with `apt-get install redis-server` (Debian, Ubuntu), "
    "`brew install redis` (macOS) or `dnf install redis` (Fedora); "
    ".ci/run installs it on CI."
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A redis-server on a free loopback port, in ``directory``; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(INSTALL_REDIS)
    import redis

    port = free_port()
    log = (directory / "redis.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"redis-server exited: {(directory / 'redis.log').read_text()}"
                )
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(up, 15, "redis-server to answer PING")
        client.close()
        yield url
    finally:
        process.kill()
        process.wait(10)
        log.close()


# --------------------------------------------------------------------------- the SMTP sink

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


DROP = b"DROP"
"""A reply in ``data_replies`` that closes the connection instead of answering."""


class _Dropped(Exception):
    """A held connection is dropped without a reply."""


class RecordingSink:
    """An SMTP server on a loop thread that records the Message-ID of every message it accepts.

    ``data_replies[message_id]`` lists replies to give to that message's
    content before it is accepted (``b"451 4.3.0 Busy"``, or ``DROP`` to
    close the connection without a reply); ``refuse`` holds
    recipients refused with 550. ``freeze_after(n)``: once ``n`` messages
    are accepted, every command's reply is held (nothing more is accepted)
    until ``drop_held()`` closes those connections without a reply.
    """

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.contents: dict[str, bytes] = {}
        self.content_attempts: collections.Counter[str] = collections.Counter()
        self.rcpt_attempts: collections.Counter[str] = collections.Counter()
        self.data_replies: dict[str, list[bytes]] = {}
        self.refuse: set[str] = set()
        self.connections = 0
        self.quits = 0
        self.held = 0
        self._freeze_at: int | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._release: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> RecordingSink:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._release = asyncio.Event()
        self._server = await asyncio.start_server(
            self._session, "127.0.0.1", 0, limit=64 * 1024 * 1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        assert self._release is not None
        self._release.set()
        self._server.close()
        # Sessions of clients that were killed may still wait for a read.
        for task in self._sessions:
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    def counts(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self.delivered)

    def delivered_count(self) -> int:
        with self._lock:
            return len(self.delivered)

    def freeze_after(self, count: int) -> None:
        self._freeze_at = count

    def drop_held(self) -> None:
        def drop() -> None:
            assert self._release is not None
            self._freeze_at = None
            self._release.set()

        self._loop.call_soon_threadsafe(drop)

    async def _gate(self) -> None:
        if self._freeze_at is None or len(self.delivered) < self._freeze_at:
            return
        assert self._release is not None
        with self._lock:
            self.held += 1
        try:
            await self._release.wait()
        finally:
            with self._lock:
                self.held -= 1
        raise _Dropped

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)
        with self._lock:
            self.connections += 1
        recipients: list[str] = []
        try:
            writer.write(b"220 sink.test ESMTP\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    return
                await self._gate()
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-sink.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")
                elif verb == b"MAIL":
                    recipients = []
                    writer.write(b"250 2.1.0 Ok\r\n")
                elif verb == b"RCPT":
                    address = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                    with self._lock:
                        self.rcpt_attempts[address] += 1
                    if address in self.refuse:
                        writer.write(b"550 5.1.1 No such user\r\n")
                    else:
                        recipients.append(address)
                        writer.write(b"250 2.1.5 Ok\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 Go ahead\r\n")
                    content = await reader.readuntil(b"\r\n.\r\n")
                    await self._gate()
                    found = _MESSAGE_ID.search(content)
                    message_id = found.group(1).decode() if found else ""
                    with self._lock:
                        self.content_attempts[message_id] += 1
                        script = self.data_replies.get(message_id)
                        reply = script.pop(0) if script else None
                        if reply is None:
                            self.delivered.append(message_id)
                            self.contents[message_id] = content
                    if reply == DROP:
                        return  # the connection closes with no reply to the content
                    writer.write((reply or b"250 2.0.0 Ok: queued") + b"\r\n")
                elif verb in (b"RSET", b"NOOP"):
                    writer.write(b"250 2.0.0 Ok\r\n")
                elif verb == b"QUIT":
                    with self._lock:
                        self.quits += 1
                    writer.write(b"221 2.0.0 Bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"502 5.5.2 Not implemented\r\n")
                await writer.drain()
        except (_Dropped, ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.transport.abort()


# --------------------------------------------------------------------------- workers


class Worker:
    """A ``celery worker`` (prefork, 2 processes) in its own process group."""

    def __init__(self, log: Path, env: dict[str, str], queue: str, name: str) -> None:
        self.log_path = log
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "lettre_worker_app",
                "worker",
                "-P",
                "prefork",
                "-c",
                "2",
                "-Q",
                queue,
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            cwd=HERE,
            env={**os.environ, **env, "PYTHONPATH": f"{HERE}{os.pathsep}{SRC}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the worker and every process it forked."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.log.close()

    def stop(self, timeout: float = 20) -> None:
        """A warm shutdown (SIGTERM); SIGKILL if it takes longer than ``timeout``."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


WorkerFactory = Callable[..., Worker]
"""The ``workers`` fixture: starts a worker with extra environment settings."""
