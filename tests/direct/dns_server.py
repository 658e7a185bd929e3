"""A real authoritative DNS server for the direct-delivery tests.

:class:`DnsServer` answers over UDP and TCP on one loopback port, from its own
thread and asyncio loop (so asyncio, uvloop and trio tests can all use it).
Each test gives it records in zone-file syntax with absolute names
(``"a.test. 300 IN MX 10 mx1.a.test."``) and may ask it to misbehave per
name: answer SERVFAIL, answer late, truncate UDP answers (the client must
retry over TCP), or set the AD bit (as a validating resolver would).

dnspython parses the queries and builds the answers; the records live in a
:class:`dns.zone.Zone` rooted at ``.``, so any test domain can be served.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

__all__ = ["DnsServer", "Query"]

#: How many CNAMEs the server follows inside its own data before it stops.
_MAX_CHASE = 16


@dataclass(frozen=True)
class Query:
    """One question the server was asked."""

    name: str
    rdtype: str
    transport: str  # "udp" or "tcp"


@dataclass
class _Behaviour:
    servfail: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    delay: dict[str, float] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)
    authentic: set[str] = field(default_factory=set)
    authentic_all: bool = False


def _key(name: str) -> str:
    return name.lower().rstrip(".") + "."


class DnsServer:
    """An authoritative DNS server on ``host`` (127.0.0.1), UDP and TCP, one free port.

    Args:
        records: zone-file lines with absolute names; more with :meth:`add`.
        host: the loopback address to listen on.
    """

    def __init__(self, records: str = "", *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.queries: list[Query] = []
        self._zone = dns.zone.Zone(dns.name.root, relativize=False)
        self._behaviour = _Behaviour()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        if records:
            self.add(records)

    # ------------------------------------------------------------------ data

    def add(self, records: str) -> None:
        """Add records given in zone-file syntax (absolute names, TTL and class)."""
        text = "\n".join(line.strip() for line in records.strip().splitlines() if line.strip())
        zone = dns.zone.from_text(
            "$ORIGIN .\n" + text + "\n", origin=dns.name.root, relativize=False, check_origin=False
        )
        with self._lock:
            for name, node in zone.nodes.items():
                for rdataset in node.rdatasets:
                    target = self._zone.find_rdataset(
                        name, rdataset.rdtype, rdataset.covers, create=True
                    )
                    target.update_ttl(rdataset.ttl)
                    for rdata in rdataset:
                        target.add(rdata)

    def clear(self, name: str, rdtype: str) -> None:
        """Remove the records of one type at ``name``."""
        with self._lock:
            self._zone.delete_rdataset(_key(name), rdtype)

    def servfail(self, *names: str) -> None:
        """Answer SERVFAIL to every question about these names."""
        self._behaviour.servfail.update(_key(n) for n in names)

    def delay(self, name: str, seconds: float) -> None:
        """Answer questions about ``name`` only after ``seconds``."""
        self._behaviour.delay[_key(name)] = seconds

    def truncate(self, *names: str) -> None:
        """Answer questions about these names over UDP with TC set and no records."""
        self._behaviour.truncate.update(_key(n) for n in names)

    def authentic(self, *names: str, everything: bool = False) -> None:
        """Set the AD bit on answers about these names (or on every answer)."""
        self._behaviour.authentic.update(_key(n) for n in names)
        self._behaviour.authentic_all = self._behaviour.authentic_all or everything

    def asked(self, name: str, rdtype: str | None = None) -> list[Query]:
        """The questions asked about ``name`` (of one type, if given)."""
        key = _key(name)
        with self._lock:
            return [
                q for q in self.queries if q.name == key and (rdtype is None or q.rdtype == rdtype)
            ]

    # ------------------------------------------------------------------ answers

    def _answer(self, wire: bytes, transport: str) -> tuple[bytes | None, float]:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None, 0.0
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire(), 0.0
        question = query.question[0]
        key = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        behaviour = self._behaviour
        with self._lock:
            self.queries.append(Query(key, rdtype, transport))
        delay = behaviour.delay.get(key, 0.0)
        if key in behaviour.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire(), delay
        if transport == "udp" and key in behaviour.truncate:
            response.flags |= dns.flags.TC
            return response.to_wire(), delay
        self._fill(response, question.name, question.rdtype)
        if behaviour.authentic_all or key in behaviour.authentic:
            response.flags |= dns.flags.AD
        limit = 65535 if transport == "tcp" else 4096
        try:
            return response.to_wire(max_size=limit), delay
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire(), delay

    def _fill(
        self, response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> None:
        with self._lock:
            for _ in range(_MAX_CHASE):
                node = self._zone.get_node(name)
                if node is None:
                    if not self._has_descendants(name):
                        response.set_rcode(dns.rcode.NXDOMAIN)
                    return
                rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
                if rdataset is not None:
                    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
                    rrset.update(rdataset)
                    rrset.update_ttl(rdataset.ttl)
                    response.answer.append(rrset)
                    return
                cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
                if cname is None or rdtype == dns.rdatatype.CNAME:
                    return  # NOERROR, no data
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.CNAME)
                rrset.update(cname)
                response.answer.append(rrset)
                name = next(iter(cname)).target

    def _has_descendants(self, name: dns.name.Name) -> bool:
        return any(other.is_subdomain(name) for other in self._zone.nodes)

    # ------------------------------------------------------------------ serving

    def start(self) -> DnsServer:
        """Start the server thread; return once it listens."""
        self._thread = threading.Thread(target=self._run, name="test-dns", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test DNS server did not start within 10 s")
        if self._error is not None:
            raise RuntimeError("the test DNS server failed to start") from self._error
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        # The TCP listener takes a free port; UDP binds the same one.
        tcp = await asyncio.start_server(
            lambda r, w: self._track(tasks, self._tcp_client(r, w)), self.host, 0
        )
        self.port = tcp.sockets[0].getsockname()[1]
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                server._track(tasks, server._udp_answer(self.transport, data, addr))

        udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.port))
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            udp.close()
            tcp.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _track(self, tasks: set[asyncio.Task[None]], coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _udp_answer(
        self, transport: asyncio.DatagramTransport, data: bytes, addr: tuple[str, int]
    ) -> None:
        answer, delay = self._answer(data, "udp")
        if delay:
            await asyncio.sleep(delay)
        if answer is not None and not transport.is_closing():
            transport.sendto(answer, addr)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    header = await asyncio.wait_for(reader.readexactly(2), 30)
                    (size,) = struct.unpack("!H", header)
                    wire = await asyncio.wait_for(reader.readexactly(size), 30)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                answer, delay = self._answer(wire, "tcp")
                if delay:
                    await asyncio.sleep(delay)
                if answer is None:
                    return
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        finally:
            writer.close()


def zone_lines(lines: Iterable[str]) -> str:
    """Join record lines into the text :meth:`DnsServer.add` takes."""
    return "\n".join(lines)
