"""Misbehaving SMTP servers for the hostile suite.

:func:`hostile_server` is an anyio TCP listener on 127.0.0.1 (in the test's own
event loop, so it runs on asyncio and on trio) that plays a script for each
connection. Unlike the servers in ``tests/servers.py`` it is built to observe
the *client's* behaviour after the server misbehaved: every connection records
whether the client closed its side (:attr:`HostileConnection.client_closed`),
and :meth:`HostileConnection.hang_up` half-closes the server's side (TCP FIN)
and keeps reading, so a test can check that the client noticed the disconnect
and closed its socket too.

:class:`SmtpScript` is a lock-step SMTP server whose every step can be replaced
by an action: ``say(...)``, ``raw(...)``, ``drip(...)``, ``hang_up()``,
``silence()``, ``flood(...)``. It decodes DATA (dot-unstuffing) and BDAT
(CHUNKING) content, answers AUTH for PLAIN, LOGIN, CRAM-MD5 and XOAUTH2, and
records every command line and message.

Every wait is bounded: each connection's script is cancelled after
``timeout`` seconds, and floods stop after a fixed number of octets.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from servers import ScriptedConnection, serve_tcp

__all__ = [
    "DEFAULT_EXTENSIONS",
    "Action",
    "HostileConnection",
    "HostileServer",
    "Received",
    "Session",
    "SmtpScript",
    "drip",
    "flood",
    "hang_up",
    "hostile_server",
    "once",
    "raw",
    "say",
    "silence",
]

DEFAULT_EXTENSIONS: tuple[str, ...] = (
    "8BITMIME",
    "SIZE 10485760",
    "ENHANCEDSTATUSCODES",
    "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2",
)
FLOOD_LIMIT = 32 * 1024 * 1024
"""The most octets a flood sends before giving up (a bound, not a target)."""

_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/=]*|\*")


class HostileConnection(ScriptedConnection):
    """One connection to a :class:`HostileServer`, seen from the server.

    Attributes:
        index: 0 for the first connection accepted, 1 for the next...
        client_closed: set once the server saw the client close its side
            (end of file or a reset).
        sent_total: octets sent to the client so far.
    """

    def __init__(self, stream: ByteStream, index: int) -> None:
        super().__init__(stream)
        self.index = index
        self.client_closed = anyio.Event()
        self.sent_total = 0
        self.drip_all = False

    async def send(self, data: bytes | str) -> None:
        """Send bytes (a str is encoded as UTF-8); one octet per write with ``drip_all``."""
        raw_data = data.encode("utf-8") if isinstance(data, str) else data
        self.sent_total += len(raw_data)
        if not self.drip_all:
            await super().send(raw_data)
            return
        for index in range(len(raw_data)):
            await super().send(raw_data[index : index + 1])
            await anyio.lowlevel.checkpoint()

    async def hang_up(self) -> None:
        """Half-close: send end of file to the client, then read until it closes too."""
        stream = self.stream
        if isinstance(stream, TLSStream):
            # TLS has no half-close in anyio; end the TCP stream under it.
            await stream.transport_stream.send_eof()
        else:
            await stream.send_eof()
        await self.wait_closed()

    def lines(self) -> list[str]:
        """Every CRLF-terminated line received so far (decoded as UTF-8)."""
        text = self.received.decode("utf-8", "surrogateescape")
        return text.split("\r\n")[:-1]


Script = Callable[[HostileConnection], Awaitable[None]]


@dataclass
class HostileServer:
    """A running :func:`hostile_server`.

    Attributes:
        host: "127.0.0.1".
        port: the port it listens on.
        connections: every connection accepted so far.
    """

    host: str
    port: int
    connections: list[HostileConnection] = field(default_factory=list)

    async def client_closed(self, index: int = 0, *, timeout: float = 5.0) -> HostileConnection:
        """Wait (bounded) until the client closed connection ``index``; return it."""
        with anyio.fail_after(timeout):
            while len(self.connections) <= index:
                await anyio.lowlevel.checkpoint()
            conn = self.connections[index]
            await conn.client_closed.wait()
        return conn


@asynccontextmanager
async def hostile_server(
    script: Script,
    *,
    timeout: float = 10.0,
    tls_context: ssl.SSLContext | None = None,
) -> AsyncIterator[HostileServer]:
    """Play ``script`` for each connection to a listener on 127.0.0.1 and a free port.

    When the script returns without the client having closed, the server keeps
    reading until it does (bounded by ``timeout``), so that
    :attr:`HostileConnection.client_closed` tells whether the client closed
    its socket. A script that raises anything but a broken connection fails
    the test.

    Args:
        script: ``async def script(conn: HostileConnection) -> None``.
        timeout: seconds each connection may last, script and final read
            together.
        tls_context: a server context for TLS from the first byte (implicit TLS).
    """
    server = HostileServer(host="127.0.0.1", port=0)

    async def handle(stream: ByteStream) -> None:
        async with stream:
            with anyio.move_on_after(timeout):
                conn = HostileConnection(stream, len(server.connections))
                server.connections.append(conn)
                if tls_context is not None:
                    try:
                        conn.stream = await TLSStream.wrap(
                            stream,
                            server_side=True,
                            ssl_context=tls_context,
                            standard_compatible=False,
                        )
                    except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
                        conn.tls_error = exc if isinstance(exc, ssl.SSLError) else None
                        conn.peer_closed = True
                        conn.client_closed.set()
                        return
                try:
                    await script(conn)
                    if not conn.peer_closed:
                        await conn.wait_closed()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    conn.peer_closed = True
                if conn.peer_closed:
                    conn.client_closed.set()

    async with serve_tcp(handle) as port:
        server.port = port
        yield server


# --------------------------------------------------------------------------- actions

Action = Callable[["Session", str], Awaitable[bool | None]]
"""A replacement for one step of :class:`SmtpScript`.

It gets the session and the command line (without CRLF; ``""`` for the
greeting and the end of data) and returns True to go on, False to end the
script (the server then waits for the client to close), or None to let the
well-mannered default handle the step after all (having sent nothing).
"""


def once(action: Action | str) -> Action:
    """Play ``action`` the first time the step comes; behave normally afterwards."""
    inner = _action(action)
    played = False

    async def wrapper(session: Session, line: str) -> bool | None:
        nonlocal played
        if played:
            return None
        played = True
        return await inner(session, line)

    return wrapper


def say(*lines: str) -> Action:
    """Send one reply made of ``lines`` (CRLF added to each)."""
    data = "".join(line + "\r\n" for line in lines).encode("utf-8")

    async def action(session: Session, line: str) -> bool:
        await session.conn.send(data)
        return True

    return action


def raw(data: bytes, *, then_continue: bool = True) -> Action:
    """Send ``data`` exactly as given."""

    async def action(session: Session, line: str) -> bool:
        await session.conn.send(data)
        return then_continue

    return action


def drip(*lines: str, delay: float = 0.0, forever: bool = False) -> Action:
    """Send a reply one octet at a time (``delay`` seconds apart: a slow server).

    With ``forever`` the text is repeated without end (bounded by
    :data:`FLOOD_LIMIT`): a server that never finishes its reply.
    """
    data = "".join(line + "\r\n" for line in lines).encode("utf-8")

    async def action(session: Session, line: str) -> bool:
        sent = 0
        while True:
            for index in range(len(data)):
                await session.conn.send(data[index : index + 1])
                if delay:
                    await anyio.sleep(delay)
                else:
                    await anyio.lowlevel.checkpoint()
            sent += len(data)
            if not forever or sent > FLOOD_LIMIT:
                return True

    return action


def flood(head: bytes, unit: bytes, *, chunk: int = 16384) -> Action:
    """Send ``head`` then ``unit`` repeated without end (bounded by :data:`FLOOD_LIMIT`).

    The action ends when the client closes (the send fails) or the limit is hit.
    """
    block = unit * max(1, chunk // len(unit))

    async def action(session: Session, line: str) -> bool:
        await session.conn.send(head)
        while session.conn.sent_total < FLOOD_LIMIT:
            await session.conn.send(block)
        return False

    return action


def hang_up() -> Action:
    """Close the server's side (end of file) without answering, and end the script."""

    async def action(session: Session, line: str) -> bool:
        await session.conn.hang_up()
        return False

    return action


def silence() -> Action:
    """Never answer: read (and record) until the client gives up and closes."""

    async def action(session: Session, line: str) -> bool:
        await session.conn.wait_closed()
        return False

    return action


# --------------------------------------------------------------------------- SMTP


@dataclass
class Received:
    """One message an :class:`SmtpScript` received.

    Attributes:
        mail: the MAIL command line.
        rcpts: the RCPT command lines.
        content: the content after dot-unstuffing, or the BDAT chunks joined.
        via: "DATA" or "BDAT".
        connection: the index of the connection it came on.
    """

    mail: str
    rcpts: list[str]
    content: bytes
    via: str
    connection: int


class SmtpScript:
    """A lock-step SMTP server whose steps can be replaced by actions.

    Steps (the keys of ``actions``): ``GREETING``, ``EHLO``, ``HELO``,
    ``STARTTLS``, ``AUTH``, ``AUTH-RESPONSE`` (each line of a SASL exchange
    after the AUTH command), ``MAIL``, ``RCPT``, ``DATA``, ``END`` (the reply
    to the end of data or to ``BDAT ... LAST``), ``BDAT`` (a chunk that is
    not the last), ``RSET``, ``NOOP``, ``QUIT``. A step without an action
    behaves like a well-mannered server. A str action is a one-line reply.

    The actions play on every connection while :attr:`hostile` is True (set
    it to False to get a well-mannered server for the next connections), or
    only on the first ``connections`` ones.

    Args:
        actions: step -> action.
        connections: how many connections (the first ones) get the actions;
            None for all of them.
        extensions: the EHLO keywords.
        tls_context: a server context; STARTTLS is then offered (and done).
        greeting: the greeting line.
        drip_all: on the first connection, send every reply one octet per write.
    """

    def __init__(
        self,
        actions: Mapping[str, Action | str] | None = None,
        *,
        connections: int | None = None,
        extensions: Iterable[str] = DEFAULT_EXTENSIONS,
        tls_context: ssl.SSLContext | None = None,
        greeting: str = "220 hostile.lettre.test ESMTP",
        drip_all: bool = False,
    ) -> None:
        self.actions = {k: _action(v) for k, v in (actions or {}).items()}
        self.connections = connections
        self.hostile = True
        self.extensions = list(extensions)
        self.tls_context = tls_context
        self.greeting = greeting
        self.drip_all = drip_all
        self.commands: list[tuple[int, str, str]] = []
        self.messages: list[Received] = []

    def verbs(self, connection: int | None = None) -> list[str]:
        """The steps received (on one connection, or all), in order.

        A step is the command's verb, or ``AUTH-RESPONSE`` for a line of a
        SASL exchange.
        """
        return [
            step for index, step, _ in self.commands if connection is None or index == connection
        ]

    def lines(self, connection: int | None = None) -> list[str]:
        """The command lines received (on one connection, or all), in order."""
        return [
            line for index, _, line in self.commands if connection is None or index == connection
        ]

    async def __call__(self, conn: HostileConnection) -> None:
        active = self.hostile and (self.connections is None or conn.index < self.connections)
        actions = self.actions if active else {}
        conn.drip_all = self.drip_all and conn.index == 0
        await Session(self, conn, actions).run()


def _action(value: Action | str) -> Action:
    return say(value) if isinstance(value, str) else value


class Session:
    """One connection's conversation with an :class:`SmtpScript`."""

    def __init__(
        self, script: SmtpScript, conn: HostileConnection, actions: Mapping[str, Action]
    ) -> None:
        self.script = script
        self.conn = conn
        self.actions = actions
        self.tls = False
        self.in_auth: str | None = None
        self.auth_step = 0
        self.mail: str | None = None
        self.rcpts: list[str] = []
        self.chunks: list[bytes] = []

    async def step(self, name: str, line: str, default: Callable[[], Awaitable[bool]]) -> bool:
        action = self.actions.get(name)
        if action is not None:
            outcome = await action(self, line)
            if outcome is not None:
                return outcome
        return await default()

    async def reply(self, *lines: str) -> bool:
        await self.conn.reply(*lines)
        return True

    async def run(self) -> None:
        if not await self.step("GREETING", "", lambda: self.reply(self.script.greeting)):
            return
        while True:
            raw_line = await self.conn.readline()
            line = raw_line[:-2].decode("utf-8", "surrogateescape")
            if self.in_auth is not None and _BASE64_LINE.fullmatch(raw_line[:-2]):
                name = "AUTH-RESPONSE"
                self.auth_step += 1
            else:
                self.in_auth = None
                name = line.split(" ", 1)[0].upper()
                if name == "AUTH":
                    parts = line.split()
                    self.in_auth = parts[1].upper() if len(parts) > 1 else ""
                    self.auth_step = 0
            self.script.commands.append((self.conn.index, name, line))
            handler = getattr(self, "do_" + name.lower().replace("-", "_"), None)
            if handler is None:
                if not await self.step(name, line, lambda: self.reply("502 5.5.2 What?")):
                    return
                continue
            if not await self.step(name, line, lambda h=handler, ln=line: h(ln)):  # type: ignore[misc]
                return

    async def do_ehlo(self, line: str) -> bool:
        keywords = list(self.script.extensions)
        if self.script.tls_context is not None and not self.tls:
            keywords.append("STARTTLS")
        items = ["hostile.lettre.test", *keywords]
        return await self.reply(
            *(f"250{'-' if i < len(items) - 1 else ' '}{item}" for i, item in enumerate(items))
        )

    async def do_helo(self, line: str) -> bool:
        return await self.reply("250 hostile.lettre.test")

    async def do_starttls(self, line: str) -> bool:
        if self.script.tls_context is None or self.tls:
            return await self.reply("502 5.5.1 STARTTLS not available")
        await self.conn.reply("220 2.0.0 Ready to start TLS")
        await self.conn.start_tls(self.script.tls_context)
        self.tls = True
        return True

    async def do_auth(self, line: str) -> bool:
        parts = line.split()
        mechanism = parts[1].upper() if len(parts) > 1 else ""
        if mechanism in ("PLAIN", "XOAUTH2") and len(parts) > 2:
            self.in_auth = None
            return await self.reply("235 2.7.0 Authentication successful")
        if mechanism == "LOGIN":
            return await self.reply("334 VXNlcm5hbWU6")
        if mechanism == "CRAM-MD5":
            return await self.reply("334 PDEyMzQ1QGhvc3RpbGUubGV0dHJlLnRlc3Q+")
        return await self.reply("334 ")

    async def do_auth_response(self, line: str) -> bool:
        if line == "*":
            self.in_auth = None
            return await self.reply("501 5.7.0 Authentication cancelled")
        if self.in_auth == "LOGIN" and self.auth_step == 1:
            return await self.reply("334 UGFzc3dvcmQ6")
        self.in_auth = None
        return await self.reply("235 2.7.0 Authentication successful")

    async def do_mail(self, line: str) -> bool:
        self.mail = line
        self.rcpts = []
        self.chunks = []
        return await self.reply("250 2.1.0 Ok")

    async def do_rcpt(self, line: str) -> bool:
        self.rcpts.append(line)
        return await self.reply("250 2.1.5 Ok")

    async def do_data(self, line: str) -> bool:
        await self.conn.reply("354 End data with <CR><LF>.<CR><LF>")
        lines: list[bytes] = []
        while True:
            content_line = await self.conn.readline()
            if content_line == b".\r\n":
                break
            lines.append(content_line)
        content = b"".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)
        return await self.finish(content, "DATA")

    async def do_bdat(self, line: str) -> bool:
        parts = line.split()
        size = int(parts[1])
        last = len(parts) > 2 and parts[2].upper() == "LAST"
        self.chunks.append(await self.conn.read_exactly(size))
        if not last:
            return await self.step(
                "BDAT", line, lambda: self.reply(f"250 2.0.0 {size} octets received")
            )
        return await self.finish(b"".join(self.chunks), "BDAT")

    async def finish(self, content: bytes, via: str) -> bool:
        self.script.messages.append(
            Received(self.mail or "", list(self.rcpts), content, via, self.conn.index)
        )
        self.mail = None
        self.chunks = []
        n = len(self.script.messages)
        return await self.step("END", "", lambda: self.reply(f"250 2.0.0 Ok: queued as H{n}"))

    async def do_rset(self, line: str) -> bool:
        self.mail = None
        self.rcpts = []
        self.chunks = []
        return await self.reply("250 2.0.0 Ok")

    async def do_noop(self, line: str) -> bool:
        return await self.reply("250 2.0.0 Ok")

    async def do_quit(self, line: str) -> bool:
        await self.conn.reply("221 2.0.0 Bye")
        return False
