"""The benchmark's bundled sink and latency proxy answer correctly."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from harness import delay_proxy, sink  # noqa: E402
from sink import SinkProtocol, SinkStats  # noqa: E402
from workload import Budget, one_kib_message  # noqa: E402


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def session(chunks: list[bytes]) -> tuple[list[bytes], SinkStats, RecordingTransport]:
    stats = SinkStats()
    protocol = SinkProtocol(stats)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    for chunk in chunks:
        protocol.data_received(chunk)
    replies = b"".join(transport.written).split(b"\r\n")[:-1]
    codes = [line[:4] for line in replies if line[3:4] == b" "]
    return codes, stats, transport


def test_pipelined_group_is_answered_in_order_in_one_write() -> None:
    group = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@x>\r\nDATA\r\n"
    stats = SinkStats()
    protocol = SinkProtocol(stats)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(b"EHLO client\r\n")
    ehlo = transport.written[-1]
    for keyword in (b"PIPELINING", b"CHUNKING", b"8BITMIME", b"SIZE "):
        assert keyword in ehlo
    before = len(transport.written)
    protocol.data_received(group)
    assert len(transport.written) == before + 1
    assert transport.written[-1] == (
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    )


@pytest.mark.parametrize("split", [1, 2, 3, 5, 7, 64])
def test_data_end_found_across_any_split(split: int) -> None:
    message = one_kib_message()
    # Two messages, the second chained with the end of the first; one line
    # starts with a stuffed dot, which must not end the data.
    stream = (
        b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
        + message
        + b"..not the end\r\n.\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
        + b".\r\n"  # an empty message: the terminator right after DATA
        + b"QUIT\r\n"
    )
    chunks = [stream[i : i + split] for i in range(0, len(stream), split)]
    codes, stats, transport = session(chunks)
    assert codes == [
        b"220 ",
        b"250 ",
        b"250 ",
        b"250 ",
        b"354 ",
        b"250 ",
        b"250 ",
        b"250 ",
        b"354 ",
        b"250 ",
        b"221 ",
    ]
    assert stats.messages == 2
    assert transport.closed


@pytest.mark.parametrize("split", [1, 4, 1000])
def test_bdat_chunks_are_counted_exactly(split: int) -> None:
    body = b"BDAT\r\n.\r\nQUIT\r\n" * 10  # content that looks like commands
    stream = (
        b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n"
        + b"BDAT %d\r\n" % len(body)
        + body
        + b"BDAT 0 LAST\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 3 LAST\r\nabcRSET\r\n"
    )
    chunks = [stream[i : i + split] for i in range(0, len(stream), split)]
    codes, stats, _ = session(chunks)
    # EHLO, MAIL, RCPT, chunk, last chunk; MAIL, RCPT, last chunk, RSET.
    assert codes == [b"220 "] + [b"250 "] * 9
    assert stats.messages == 2


def test_unknown_and_malformed_commands_get_errors() -> None:
    codes, stats, _ = session([b"HELO c\r\nXYZZY\r\nBDAT many\r\nNOOP\r\n" + b"x" * 5000])
    assert codes == [b"220 ", b"250 ", b"502 ", b"501 ", b"250 ", b"500 "]
    assert stats.messages == 0


def test_budget_stops_at_the_message_count() -> None:
    budget = Budget(3, 60.0)
    assert [budget.take() for _ in range(5)] == [True, True, True, False, False]
    budget = Budget(1000, 0.0)
    assert not budget.take()


def _transaction(port: int) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.settimeout(10)
        reader = conn.makefile("rb")
        replies = [reader.readline()]
        conn.sendall(b"EHLO client\r\n")
        while True:
            line = reader.readline()
            if line[3:4] == b" ":
                break
        # One flight: the envelope; then the content and the next envelope.
        conn.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        replies += [reader.readline() for _ in range(3)]
        conn.sendall(one_kib_message() + b".\r\nRSET\r\nQUIT\r\n")
        replies += [reader.readline() for _ in range(3)]
        return [line[:3] for line in replies]


@pytest.mark.parametrize("rtt_ms", [0.0, 3.0])
def test_bundled_sink_and_proxy_carry_a_transaction(rtt_ms: float) -> None:
    with sink("bundled", max_seconds=60) as server:
        if rtt_ms:
            with delay_proxy(server.port, rtt_ms, max_seconds=60) as proxy:
                codes = _transaction(proxy.port)
        else:
            codes = _transaction(server.port)
    assert codes == [b"220", b"250", b"250", b"354", b"250", b"250", b"221"]
