"""A TCP byte stream straight on an asyncio transport.

On asyncio, :class:`~lettre.smtp.stream.SmtpStream` talks to the socket
through :class:`_AsyncioByteStream` rather than anyio's socket stream (which
re-registers the socket with the selector on every receive and yields to the
loop after every send). Its protocol, :class:`_Protocol`, reads into one
buffer it keeps and hands what arrives to the stream, or, while a pipeline
runs, straight to a :class:`PipeConsumer`. TLS goes through the event loop's
own TLS transport (``loop.start_tls``), so the callbacks see plaintext.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import anyio
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSAttribute

from lettre._loops import running_on_asyncio
from lettre.errors import TlsError
from lettre.smtp.stream_errors import _NOT_TLS_PORT, _handshake_error

__all__ = ["PipeConsumer", "open_tcp_stream", "open_unix_stream"]

#: How many bytes one read takes from the socket (the protocol's buffer size).
_READ_SIZE = 65536

#: The most received bytes buffered before reading from the socket pauses.
_READ_BUFFER_LIMIT = 256 * 1024


def _is_address_literal(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def open_tcp_stream(host: str, port: int, local_address: str | None) -> ByteStream:
    """A TCP connection: the event loop's own on asyncio, anyio's elsewhere.

    Raises:
        OSError: the connection could not be made (``socket.gaierror`` for a
            name that did not resolve).
    """
    if running_on_asyncio():
        return await _AsyncioByteStream.connect(host, port, local_address)
    return await anyio.connect_tcp(host, port, local_host=local_address)


async def open_unix_stream(path: str) -> ByteStream:
    """A Unix socket connection: the event loop's own on asyncio, anyio's elsewhere.

    Raises:
        OSError: the connection could not be made (no such socket, refused...).
    """
    if running_on_asyncio():
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_unix_connection(_Protocol, path)
        return _AsyncioByteStream._made(transport, protocol)
    return await anyio.connect_unix(path)


class PipeConsumer(Protocol):
    """What takes a connection's events straight from its socket callbacks.

    :class:`~lettre.smtp.backends.asyncio.AsyncioDriver` is one; while one is
    attached to an asyncio connection, received bytes go to it instead of the
    buffer.
    """

    def data_received(self, data: bytes) -> None:
        """Bytes arrived from the server."""

    def connection_lost(self, eof: bool) -> None:
        """The connection ended (``eof``: cleanly, by the server's end of file)."""

    def writing_resumed(self) -> None:
        """The transport's write buffer drained below its low-water mark."""


# The read buffer of the event loop running in this thread (see _Protocol).
_read_buffer = threading.local()


class _Protocol(asyncio.BufferedProtocol):
    """Buffers what the socket delivers for :class:`_AsyncioByteStream`.

    A buffered protocol: the event loop reads into a buffer (``recv_into``)
    instead of allocating a 256 KiB object per read, which the C allocator
    may serve with a fresh memory mapping each time. The buffer is the
    thread's (one event loop runs in a thread, and each read is copied out
    before the next one starts), so an idle connection keeps none.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.reading_paused = False
        self.writing_paused = False
        self.eof = False
        self.lost = False
        self.exception: BaseException | None = None
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        # While transactions run in a pipeline, it gets the data directly.
        self.pipe: PipeConsumer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without deriving from it.
        self.transport = cast("asyncio.Transport", transport)

    def _wake(self, waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            return _read_buffer.view  # type: ignore[no-any-return]
        except AttributeError:
            view = _read_buffer.view = memoryview(bytearray(_READ_SIZE))
            return view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_read_buffer.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        pipe = self.pipe
        if pipe is not None:
            pipe.data_received(data)
            return
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _READ_BUFFER_LIMIT and not self.reading_paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake(self.reader)

    def eof_received(self) -> bool:
        self.eof = True
        self._wake(self.reader)
        if self.pipe is not None:
            self.pipe.connection_lost(eof=True)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.lost = True
        self.exception = exc
        self._wake(self.reader)
        self._wake(self.writer)
        if self.pipe is not None:
            self.pipe.connection_lost(eof=exc is None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake(self.writer)
        if self.pipe is not None:
            self.pipe.writing_resumed()


class _AsyncioByteStream(ByteStream):
    """A TCP byte stream straight on an asyncio transport.

    anyio's own asyncio stream re-registers the socket with the selector on
    every receive and yields to the event loop after every send; an SMTP
    client receives and sends once or twice per message, so this stream does
    neither: ``receive`` returns at once when data is buffered and ``send``
    only waits when the transport asks it to (flow control). Cancellation is
    delivered at those waits, as anyio delivers it on asyncio.
    """

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = self.transport = transport
        self._protocol = self.protocol = protocol
        self._closed = False

    @classmethod
    async def connect(cls, host: str, port: int, local_address: str | None) -> _AsyncioByteStream:
        loop = asyncio.get_running_loop()
        local_addr = (local_address, 0) if local_address is not None else None
        if isinstance(loop, asyncio.BaseEventLoop) and not _is_address_literal(host):
            # The stdlib loop races the addresses of a name (happy eyeballs,
            # RFC 8305); an address literal has one address, nothing to race.
            # Other loops (uvloop) try the addresses in turn.
            transport, protocol = await loop.create_connection(
                _Protocol, host, port, local_addr=local_addr, happy_eyeballs_delay=0.25
            )
        else:
            transport, protocol = await loop.create_connection(
                _Protocol, host, port, local_addr=local_addr
            )
        return cls._made(transport, protocol)

    @classmethod
    async def from_socket(cls, sock: socket.socket) -> _AsyncioByteStream:
        """The stream of a socket connected already (a proxy's tunnel); it takes the socket."""
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.create_connection(_Protocol, sock=sock)
        except BaseException:
            sock.close()
            raise
        return cls._made(transport, protocol)

    @classmethod
    def _made(cls, transport: asyncio.Transport, protocol: _Protocol) -> _AsyncioByteStream:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(transport, protocol)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        protocol = self._protocol
        chunks = protocol.chunks
        while not chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.eof:
                if protocol.exception is not None:
                    raise anyio.BrokenResourceError from protocol.exception
                raise anyio.EndOfStream
            waiter = protocol.reader = asyncio.get_running_loop().create_future()
            try:
                await self._wait(waiter)
            finally:
                protocol.reader = None
        chunk = chunks.popleft()
        if len(chunk) > max_bytes:
            chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        protocol.buffered -= len(chunk)
        if protocol.reading_paused and protocol.buffered <= _READ_BUFFER_LIMIT // 2:
            protocol.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def send(self, item: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from protocol.exception
        self._transport.write(item)
        while protocol.writing_paused and not protocol.lost:
            waiter = protocol.writer = asyncio.get_running_loop().create_future()
            try:
                await self._wait(waiter)
            finally:
                protocol.writer = None
        if protocol.lost:
            raise anyio.BrokenResourceError from protocol.exception

    async def _wait(self, waiter: asyncio.Future[None]) -> None:
        # Bounded by the caller's cancel scope, like anyio's waits.
        await waiter

    async def send_eof(self) -> None:
        self._transport.write_eof()

    async def start_tls(
        self, context: ssl.SSLContext, server_name: str, peer: str, *, when: str
    ) -> _AsyncioByteStream:
        """Upgrade to TLS with asyncio's own TLS transport; returns the new stream.

        The protocol stays the same, so the connection keeps its callbacks
        (and a pipeline keeps working) over TLS. Errors are mapped as for
        anyio's TLS streams.

        Raises:
            TlsError: the handshake failed, or the server closed the
                connection during it.
            ServerDisconnected: the connection broke during it.
            RemoteProtocolError: bytes arrived before the handshake began
                (they would otherwise be lost unseen).
        """
        protocol = self._protocol
        if protocol.chunks:
            self.close_now()
            if when == "connecting":
                # A server that speaks first, in plaintext: its greeting.
                raise TlsError(
                    f"{peer} sent plaintext instead of a TLS handshake ({when}){_NOT_TLS_PORT}"
                )
            raise TlsError(
                f"{peer} sent data before the TLS handshake ({when}); "
                "refusing to go on (response injection)"
            )
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(
                self._transport, protocol, context, server_hostname=server_name
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self.close_now()
            raise _handshake_error(exc, peer, when) from exc
        except BaseException:
            self.close_now()
            raise
        if transport is None or protocol.lost:
            self.close_now()
            raise TlsError(f"{peer} closed the connection during the TLS handshake ({when})")
        protocol.transport = transport
        # This stream is done: the new one owns the protocol and the transport.
        self._closed = True
        return _AsyncioByteStream(transport, protocol)

    async def aclose(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        """Close the transport at once, dropping whatever it has not written yet.

        Like ``anyio.aclose_forcefully``: bytes still buffered must not reach
        the server after the connection was given up (a message whose send
        failed would otherwise arrive later and be sent twice). Any wait is
        woken.
        """
        if not self._closed:
            self._closed = True
            self._transport.abort()
            self._protocol._wake(self._protocol.reader)
            self._protocol._wake(self._protocol.writer)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        sock: socket.socket = self._transport.get_extra_info("socket")
        attributes: dict[Any, Callable[[], Any]] = {
            SocketAttribute.family: lambda: sock.family,
            SocketAttribute.local_address: sock.getsockname,
            SocketAttribute.raw_socket: lambda: sock,
            SocketAttribute.remote_address: sock.getpeername,
        }
        ssl_object: ssl.SSLObject | None = self._transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            attributes.update(
                {
                    TLSAttribute.ssl_object: lambda: ssl_object,
                    TLSAttribute.tls_version: ssl_object.version,
                    TLSAttribute.cipher: ssl_object.cipher,
                    TLSAttribute.peer_certificate: lambda: ssl_object.getpeercert(False),
                    TLSAttribute.peer_certificate_binary: lambda: ssl_object.getpeercert(True),
                    TLSAttribute.alpn_protocol: ssl_object.selected_alpn_protocol,
                    TLSAttribute.shared_ciphers: ssl_object.shared_ciphers,
                    TLSAttribute.standard_compatible: lambda: True,
                }
            )
        return attributes
