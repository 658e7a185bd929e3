"""A loopback TCP proxy that adds round-trip latency (asyncio, no dependencies).

Every chunk read from either side is held for RTT/2 before it is written to
the other side, in order, so a request/reply exchange costs one RTT more. A
new connection is held for one RTT before the proxy connects upstream, the
cost of a TCP handshake. Each direction buffers at most ``MAX_QUEUED`` bytes
(reading pauses beyond that) and honours the writer's flow control.

Run it as a program: it prints ``PORT <n>`` on stdout and stops on
SIGTERM/SIGINT, at end of file on stdin, or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import selectors
from collections import deque

from lifetime import wait_until_stopped

__all__ = ["MAX_QUEUED", "DelayedPipe", "serve"]

#: The most bytes held in one direction of one connection.
MAX_QUEUED = 1 << 20


class DelayedPipe:
    """One direction of a proxied connection: hold each chunk, then forward it."""

    __slots__ = (
        "_delay",
        "_dest",
        "_finish",
        "_loop",
        "_paused_by_dest",
        "_paused_by_queue",
        "_queue",
        "_queued",
        "_source",
        "_timer",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._loop = loop
        self._delay = delay
        self._queue: deque[tuple[float, bytes]] = deque()
        self._queued = 0
        self._timer: asyncio.TimerHandle | None = None
        self._source: asyncio.Transport | None = None
        self._dest: asyncio.Transport | None = None
        self._finish = False
        self._paused_by_queue = False
        self._paused_by_dest = False

    def attach(self, source: asyncio.Transport, dest: asyncio.Transport) -> None:
        self._source = source
        self._dest = dest
        if self._queue and self._timer is None:
            self._schedule()

    def feed(self, data: bytes) -> None:
        self._queue.append((self._loop.time() + self._delay, data))
        self._queued += len(data)
        if self._queued > MAX_QUEUED and not self._paused_by_queue:
            self._paused_by_queue = True
            self._pause_source()
        if self._timer is None and self._dest is not None:
            self._schedule()

    def finish(self) -> None:
        """The source is done: close the destination once everything is forwarded."""
        self._finish = True
        if not self._queue and self._dest is not None:
            self._dest.close()

    def dest_paused(self, paused: bool) -> None:
        self._paused_by_dest = paused
        if paused:
            self._pause_source()
        elif not self._paused_by_queue:
            self._resume_source()

    def _pause_source(self) -> None:
        if self._source is not None and not self._source.is_closing():
            self._source.pause_reading()

    def _resume_source(self) -> None:
        if self._source is not None and not self._source.is_closing():
            self._source.resume_reading()

    def _schedule(self) -> None:
        # Fire early by the loop's measured wake-up lag, so chunks leave on time.
        self._timer = self._loop.call_at(self._queue[0][0] - _LAG[0], self._flush)

    def _flush(self) -> None:
        self._timer = None
        dest = self._dest
        assert dest is not None
        now = self._loop.time() + _LAG[0]
        chunks: list[bytes] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            chunks.append(queue.popleft()[1])
        if chunks and not dest.is_closing():
            dest.write(b"".join(chunks))
        self._queued -= sum(len(chunk) for chunk in chunks)
        if self._paused_by_queue and self._queued <= MAX_QUEUED // 2:
            self._paused_by_queue = False
            if not self._paused_by_dest:
                self._resume_source()
        if queue:
            self._schedule()
        elif self._finish:
            dest.close()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


#: How late a timer fires on this machine (measured at start-up), in seconds.
_LAG = [0.0]


def _fire(fired: asyncio.Future[float], loop: asyncio.AbstractEventLoop) -> None:
    fired.set_result(loop.time())


async def _measure_lag(samples: int = 25) -> float:
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    for _ in range(samples):
        fired: asyncio.Future[float] = loop.create_future()
        due = loop.time() + 0.002
        loop.call_at(due, _fire, fired, loop)
        lags.append(await fired - due)
    lags.sort()
    return max(0.0, min(lags[len(lags) // 2], 0.001))


class _Side(asyncio.Protocol):
    """One socket of a proxied connection."""

    def __init__(self, outgoing: DelayedPipe, incoming: DelayedPipe) -> None:
        self.outgoing = outgoing  # what this side sends, towards the other side
        self.incoming = incoming  # what the other side sends, towards this side
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.outgoing.feed(data)

    def eof_received(self) -> bool | None:
        self.outgoing.finish()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.outgoing.finish()
        self.incoming.cancel()

    def pause_writing(self) -> None:
        self.incoming.dest_paused(True)

    def resume_writing(self) -> None:
        self.incoming.dest_paused(False)


async def serve(host: str, port: int, target_port: int, rtt: float, max_seconds: float) -> None:
    """Proxy ``host:port`` to ``host:target_port`` with ``rtt`` seconds of round trip."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    _LAG[0] = await _measure_lag()

    async def connect_upstream(client: _Side, up: DelayedPipe, down: DelayedPipe) -> None:
        try:
            await asyncio.sleep(rtt)  # the TCP handshake the proxy hides
            _, server = await loop.create_connection(lambda: _Side(down, up), host, target_port)
        except OSError:
            if client.transport is not None:
                client.transport.close()
            return
        assert client.transport is not None
        assert server.transport is not None
        up.attach(client.transport, server.transport)
        down.attach(server.transport, client.transport)
        if client.transport.is_closing():
            up.finish()

    def accept() -> _Side:
        up = DelayedPipe(loop, rtt / 2)
        down = DelayedPipe(loop, rtt / 2)
        client = _Side(up, down)
        task = loop.create_task(connect_upstream(client, up, down))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return client

    server = await loop.create_server(accept, host, port, backlog=1024, reuse_address=True)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await wait_until_stopped(max_seconds)
    finally:
        for task in list(tasks):
            task.cancel()
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--rtt-ms", type=float, default=5.0, help="round trip to add")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the proxy only connects loopback addresses")
    # select() takes microsecond timeouts; epoll rounds them up to whole
    # milliseconds, which would add up to 1 ms to every hop.
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(
            serve(args.host, args.port, args.target_port, args.rtt_ms / 1000, args.max_seconds)
        )
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
