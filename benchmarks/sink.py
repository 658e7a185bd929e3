"""A minimal, fast SMTP sink for throughput benchmarks (asyncio, no dependencies).

It offers PIPELINING, CHUNKING, 8BITMIME, SIZE and ENHANCEDSTATUSCODES, answers
every command of a pipelined group in order (all replies of one read in one
write), accepts every sender and recipient, and discards message content
(DATA and BDAT). It is the fallback when Postfix's ``smtp-sink`` is not
installed.

Run it as a program: it listens on a loopback address, prints ``PORT <n>``
on stdout, and stops on SIGTERM/SIGINT, when its stdin reaches end of file
(the parent went away) or after ``--max-seconds``, whichever comes first. On
exit it prints ``MESSAGES <n>`` (messages accepted).
"""

from __future__ import annotations

import argparse
import asyncio

from lifetime import wait_until_stopped

__all__ = ["MAX_LINE", "SinkProtocol", "SinkStats", "serve"]

#: The longest command line accepted (RFC 5321 allows 512; be generous).
MAX_LINE = 4096
#: The SIZE the sink announces.
MAX_MESSAGE = 100 * 1024 * 1024

_EHLO = (
    b"250-sink.localhost\r\n"
    b"250-PIPELINING\r\n"
    b"250-SIZE %d\r\n"
    b"250-8BITMIME\r\n"
    b"250-CHUNKING\r\n"
    b"250 ENHANCEDSTATUSCODES\r\n" % MAX_MESSAGE
)
_REPLIES = {
    b"MAIL": b"250 2.1.0 Ok\r\n",
    b"RCPT": b"250 2.1.5 Ok\r\n",
    b"RSET": b"250 2.0.0 Ok\r\n",
    b"NOOP": b"250 2.0.0 Ok\r\n",
    b"HELO": b"250 sink.localhost\r\n",
    b"VRFY": b"252 2.0.0 Cannot verify\r\n",
}
_DATA_GO = b"354 End data with <CR><LF>.<CR><LF>\r\n"
_QUEUED = b"250 2.0.0 Ok: queued\r\n"
_CHUNK_OK = b"250 2.0.0 Ok: chunk received\r\n"
_BYE = b"221 2.0.0 Bye\r\n"
_UNKNOWN = b"502 5.5.2 Error: command not recognized\r\n"
_BAD_BDAT = b"501 5.5.4 Syntax: BDAT size [LAST]\r\n"
_TOO_LONG = b"500 5.5.0 Error: line too long\r\n"
_END = b"\r\n.\r\n"

_COMMAND, _DATA, _BDAT = 0, 1, 2


class SinkStats:
    """Counters shared by every connection of one sink."""

    __slots__ = ("connections", "messages")

    def __init__(self) -> None:
        self.messages = 0
        self.connections = 0


class SinkProtocol(asyncio.Protocol):
    """One SMTP session: parse commands, answer, throw the content away."""

    __slots__ = ("_buffer", "_last", "_mode", "_remaining", "_stats", "_tail", "_transport")

    def __init__(self, stats: SinkStats) -> None:
        self._stats = stats
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._mode = _COMMAND
        self._tail = b""
        self._remaining = 0
        self._last = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._stats.connections += 1
        transport.write(b"220 sink.localhost ESMTP benchmark sink\r\n")

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        out: list[bytes] = []
        pos = 0
        size = len(data)
        while pos < size:
            mode = self._mode
            if mode == _DATA:
                tail = self._tail
                end = -1
                if tail:
                    # The terminator may straddle reads: look across the last bytes seen.
                    found = (tail + data[pos : pos + 4]).find(_END)
                    if found >= 0:
                        end = pos + found + 5 - len(tail)
                if end < 0:
                    found = data.find(_END, pos)
                    if found < 0:
                        rest = data[pos:] if size - pos < 4 else data[-4:]
                        self._tail = (tail + rest)[-4:]
                        pos = size
                        break
                    end = found + 5
                pos = end
                self._tail = b""
                self._mode = _COMMAND
                self._stats.messages += 1
                out.append(_QUEUED)
                continue
            if mode == _BDAT:
                take = min(self._remaining, size - pos)
                pos += take
                self._remaining -= take
                if self._remaining:
                    break
                self._mode = _COMMAND
                if self._last:
                    self._stats.messages += 1
                    out.append(_QUEUED)
                else:
                    out.append(_CHUNK_OK)
                continue
            end = data.find(b"\r\n", pos)
            if end < 0:
                if size - pos > MAX_LINE:
                    out.append(_TOO_LONG)
                    pos = size
                else:
                    self._buffer = data[pos:]
                    pos = size
                break
            line = data[pos:end]
            pos = end + 2
            verb = line[:4].upper()
            reply = _REPLIES.get(verb)
            if reply is not None:
                out.append(reply)
            elif verb == b"DATA":
                self._mode = _DATA
                # The CRLF that ended the DATA line starts the first content line.
                self._tail = b"\r\n"
                out.append(_DATA_GO)
            elif verb == b"BDAT":
                parts = line.split()
                try:
                    self._remaining = int(parts[1])
                except (IndexError, ValueError):
                    out.append(_BAD_BDAT)
                    continue
                self._last = len(parts) > 2 and parts[2].upper() == b"LAST"
                self._mode = _BDAT
                if self._remaining == 0:
                    self._mode = _COMMAND
                    if self._last:
                        self._stats.messages += 1
                        out.append(_QUEUED)
                    else:
                        out.append(_CHUNK_OK)
            elif verb == b"EHLO":
                out.append(_EHLO)
            elif verb == b"QUIT":
                out.append(_BYE)
                transport.write(b"".join(out))
                transport.close()
                return
            else:
                out.append(_UNKNOWN)
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])

    def eof_received(self) -> bool | None:
        return False


async def serve(host: str, port: int, max_seconds: float, stats: SinkStats) -> None:
    """Listen on ``host:port`` until stopped; print the port once listening."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SinkProtocol(stats), host, port, backlog=1024, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    try:
        await wait_until_stopped(max_seconds)
    finally:
        server.close()
        await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the sink only listens on loopback addresses")
    stats = SinkStats()
    asyncio.run(serve(args.host, args.port, args.max_seconds, stats))
    print(f"MESSAGES {stats.messages}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
