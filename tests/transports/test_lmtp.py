"""LmtpTransport against a real LMTP server, over TCP and over a Unix socket.

The server is aiosmtpd's ``LMTP`` (LHLO, no EHLO or HELO), run in its own
thread. aiosmtpd answers the end of data once, as SMTP does; RFC 2033 4.2
wants one reply per recipient accepted at RCPT, in RCPT order, so the handler
here returns those replies, one line each. It also announces PIPELINING, which
every LMTP server must offer (RFC 2033 4.1), and notes for each message
whether the client's next envelope came in the same write as its content
(chaining).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiosmtpd.controller import Controller, UnixSocketController
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from lettre.envelope import Envelope
from lettre.errors import (
    RecipientsRefused,
    SmtpConnectError,
    SmtpReplyError,
)
from lettre.hooks import Hook
from lettre.results import SendResult
from lettre.smtp.pool import PoolConfig
from lettre.smtp.settings import LmtpSettings, SmtpSettings
from lettre.smtp.tls import TlsMode
from lettre.transports.lmtp import LMTP_PORT, LmtpTransport
from servers import ServerFactory

HELLO = "client.lettre.test"
CONTENT = b"From: a@example.com\r\nSubject: lmtp\r\n\r\nHello over LMTP.\r\n"


class LmtpHandler:
    """An aiosmtpd handler that answers the end of data once per accepted recipient.

    Args:
        refuse: address -> the reply to its RCPT (refused there).
        after_data: address -> the reply it gets after the data (default:
            delivered, with a queue id).
    """

    def __init__(
        self,
        *,
        refuse: Mapping[str, str] | None = None,
        after_data: Mapping[str, str] | None = None,
    ) -> None:
        self.refuse = dict(refuse or {})
        self.after_data = dict(after_data or {})
        self.delivered: list[tuple[str, bytes]] = []
        self.chained: list[bool] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # aiosmtpd's LMTP answers LHLO with its EHLO code, which calls this.
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", *responses[1:]]

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.refuse.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        # Was the next transaction's MAIL written together with this content?
        buffered = bytes(server._reader._buffer)  # type: ignore[attr-defined]
        replies = []
        with self._lock:
            self.chained.append(buffered.startswith(b"MAIL FROM:"))
            for address in envelope.rcpt_tos:
                reply = self.after_data.get(address)
                if reply is None:
                    reply = f"250 2.0.0 <{address}> Ok: queued as LM{next(self._counter)}"
                    self.delivered.append((address, envelope.original_content))
                replies.append(reply)
        # aiosmtpd writes the status and a CRLF: one line per recipient.
        return "\r\n".join(replies)


class _TcpLmtp(Controller):
    """aiosmtpd's threaded controller on 127.0.0.1 and a port the OS chooses."""

    def factory(self) -> SMTP:
        return LMTP(self.handler, hostname="lmtp.lettre.test", timeout=30)

    def _trigger_server(self) -> None:
        server = self.server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _UnixLmtp(UnixSocketController):
    def factory(self) -> SMTP:
        return LMTP(self.handler, hostname="lmtp.lettre.test", timeout=30)


@pytest.fixture
def socket_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for Unix sockets: tmp_path, unless its path is too long for one."""
    if len(str(tmp_path)) < 80:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="lmtp-"))
    try:
        yield short
    finally:
        for child in short.iterdir():
            child.unlink()
        short.rmdir()


@pytest.fixture(params=["tcp", "unix"])
def serve(request: pytest.FixtureRequest, socket_dir: Path) -> Iterator[Any]:
    """Start an LMTP server (TCP or Unix socket): ``serve(handler) -> LmtpTransport factory``."""
    controllers: list[Controller | UnixSocketController] = []

    def start(handler: LmtpHandler) -> Any:
        if request.param == "tcp":
            tcp = _TcpLmtp(handler, hostname="127.0.0.1", port=0)
            tcp.start()  # type: ignore[no-untyped-call]
            controllers.append(tcp)

            def tcp_transport(**kwargs: Any) -> LmtpTransport:
                kwargs.setdefault("hello_name", HELLO)
                kwargs.setdefault("timeout", 10.0)
                return LmtpTransport("127.0.0.1", int(tcp.port), **kwargs)

            return tcp_transport
        path = socket_dir / "lmtp.sock"
        unix = _UnixLmtp(handler, unix_socket=path)
        unix.start()  # type: ignore[no-untyped-call]
        controllers.append(unix)

        def unix_transport(**kwargs: Any) -> LmtpTransport:
            kwargs.setdefault("hello_name", HELLO)
            kwargs.setdefault("timeout", 10.0)
            return LmtpTransport.unix(path, **kwargs)

        return unix_transport

    try:
        yield start
    finally:
        for controller in controllers:
            controller.stop()  # type: ignore[no-untyped-call]


def envelope(*recipients: str) -> Envelope:
    return Envelope("a@example.com", list(recipients))


def outcomes(results: tuple[Any, ...]) -> list[tuple[str, bool, int, str]]:
    return [(r.recipient, r.accepted, r.reply.code, r.reply.text) for r in results]


# --------------------------------------------------------------------- sending


@pytest.mark.anyio
async def test_every_recipient_accepted(serve: Any) -> None:
    handler = LmtpHandler()
    async with serve(handler)() as transport:
        result = await transport.send_raw(envelope("b@example.com", "c@example.com"), CONTENT)
    assert isinstance(result, SendResult)
    assert outcomes(result.recipients) == [
        ("b@example.com", True, 250, "<b@example.com> Ok: queued as LM1"),
        ("c@example.com", True, 250, "<c@example.com> Ok: queued as LM2"),
    ]
    assert result.transport_id == "LM1"
    assert handler.delivered == [("b@example.com", CONTENT), ("c@example.com", CONTENT)]


@pytest.mark.anyio
async def test_some_refused_at_rcpt(serve: Any) -> None:
    handler = LmtpHandler(refuse={"c@example.com": "550 5.1.1 No such user"})
    async with serve(handler)() as transport:
        result = await transport.send_raw(
            envelope("b@example.com", "c@example.com", "d@example.com"), CONTENT
        )
    assert [(r.recipient, r.accepted, r.reply.code) for r in result.recipients] == [
        ("b@example.com", True, 250),
        ("c@example.com", False, 550),
        ("d@example.com", True, 250),
    ]
    assert [address for address, _ in handler.delivered] == ["b@example.com", "d@example.com"]


@pytest.mark.anyio
async def test_some_refused_after_data(serve: Any) -> None:
    handler = LmtpHandler(
        refuse={"d@example.com": "550 5.1.1 No such user"},
        after_data={"b@example.com": "452 4.2.2 Mailbox full"},
    )
    async with serve(handler)() as transport:
        result = await transport.send_raw(
            envelope("b@example.com", "c@example.com", "d@example.com"), CONTENT
        )
    assert outcomes(result.recipients) == [
        ("b@example.com", False, 452, "Mailbox full"),
        ("c@example.com", True, 250, "<c@example.com> Ok: queued as LM1"),
        ("d@example.com", False, 550, "No such user"),
    ]
    assert result.refused[0].reply is not None
    assert result.refused[0].reply.enhanced_status == "4.2.2"
    assert result.accepted == ("c@example.com",)


@pytest.mark.anyio
async def test_every_recipient_refused_after_data(serve: Any) -> None:
    handler = LmtpHandler(
        after_data={
            "b@example.com": "452 4.2.2 Mailbox full",
            "c@example.com": "550 5.2.1 Mailbox disabled",
        }
    )
    async with serve(handler)() as transport:
        with pytest.raises(RecipientsRefused) as caught:
            await transport.send_raw(envelope("b@example.com", "c@example.com"), CONTENT)
        error = caught.value
        assert (error.code, error.command, error.transient) == (452, "DATA", True)
        assert outcomes(error.results) == [
            ("b@example.com", False, 452, "Mailbox full"),
            ("c@example.com", False, 550, "Mailbox disabled"),
        ]
        # The connection is still good for the next message.
        handler.after_data.clear()
        result = await transport.send_raw(envelope("b@example.com"), CONTENT)
        assert result.all_accepted
        assert transport.statistics().opened_total == 1
    assert handler.delivered == [("b@example.com", CONTENT)]


@pytest.mark.anyio
async def test_the_pool_chains_messages_on_one_connection(serve: Any) -> None:
    handler = LmtpHandler(after_data={"x2@example.com": "550 5.2.1 Mailbox disabled"})
    results: dict[int, SendResult] = {}
    async with serve(handler)(pool=PoolConfig(max_size=1)) as transport:
        await transport.send_raw(envelope("warm@example.com"), CONTENT)  # opens the connection

        async def send(number: int) -> None:
            rcpts = (f"x{number}@example.com", f"y{number}@example.com")
            results[number] = await transport.send_raw(envelope(*rcpts), CONTENT)

        async with anyio.create_task_group() as tg:
            for number in range(5):
                tg.start_soon(send, number)
        assert transport.statistics().opened_total == 1
    for number, result in results.items():
        expected = number != 2
        assert [(r.recipient, r.accepted) for r in result.recipients] == [
            (f"x{number}@example.com", expected),
            (f"y{number}@example.com", True),
        ]
    assert len(handler.delivered) == 1 + 2 * 5 - 1
    # Each waiting message's envelope went in the same write as the content before
    # it: every content but the warm-up's and the last one's.
    assert handler.chained == [False, True, True, True, True, False]


@pytest.mark.anyio
async def test_421_among_the_replies(serve: Any) -> None:
    handler = LmtpHandler(after_data={"c@example.com": "421 4.3.2 Shutting down"})
    async with serve(handler)() as transport:
        result = await transport.send_raw(envelope("b@example.com", "c@example.com"), CONTENT)
        assert [(r.recipient, r.accepted, r.reply.code) for r in result.recipients] == [
            ("b@example.com", True, 250),
            ("c@example.com", False, 421),
        ]
        assert result.refused[0].reply is not None
        assert result.refused[0].reply.is_transient
        # The connection was given up; the next send opens another.
        handler.after_data.clear()
        again = await transport.send_raw(envelope("c@example.com"), CONTENT)
        assert again.all_accepted
        assert transport.statistics().opened_total == 2


@pytest.mark.anyio
async def test_421_as_the_only_reply_after_data(serve: Any) -> None:
    handler = LmtpHandler(after_data={"b@example.com": "421 4.3.2 Shutting down"})
    async with serve(handler)() as transport:
        with pytest.raises(RecipientsRefused) as caught:
            await transport.send_raw(envelope("b@example.com"), CONTENT)
    assert (caught.value.code, caught.value.transient) == (421, True)


@pytest.mark.anyio
async def test_a_message_object(serve: Any) -> None:
    from lettre.message import Message

    handler = LmtpHandler()
    message = (
        Message.builder()
        .from_("a@example.com")
        .to("b@example.com")
        .subject("Hi")
        .text("over LMTP\n")
        .build()
    )
    async with serve(handler)() as transport:
        result = await transport.send(message)
    assert result.accepted == ("b@example.com",)
    assert result.message_id == message.message_id
    assert b"over LMTP" in handler.delivered[0][1]


@pytest.mark.anyio
async def test_a_streamed_attachment_gets_a_reply_per_recipient(serve: Any, tmp_path: Path) -> None:
    from lettre.message import Attachment, Message

    blob = tmp_path / "report.bin"
    blob.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, read while sending
    handler = LmtpHandler(after_data={"c@example.com": "452 4.2.2 Mailbox full"})
    message = (
        Message.builder()
        .from_("a@example.com")
        .to("b@example.com")
        .cc("c@example.com")
        .subject("Report")
        .text("attached\n")
        .attach(Attachment.from_path(blob))
        .build()
    )
    async with serve(handler)() as transport:
        result = await transport.send(message)
    assert [(r.recipient, r.accepted, r.reply.code) for r in result.recipients] == [
        ("b@example.com", True, 250),
        ("c@example.com", False, 452),
    ]
    assert handler.delivered == [("b@example.com", message.as_bytes())]


# --------------------------------------------------------------------- the session


@pytest.mark.anyio
async def test_an_smtp_server_refuses_lhlo(smtpd: ServerFactory) -> None:
    server = smtpd()
    async with LmtpTransport(server.host, server.port, hello_name=HELLO) as transport:
        with pytest.raises(SmtpReplyError) as caught:
            await transport.send_raw(envelope("b@example.com"), CONTENT)
    assert (caught.value.code, caught.value.command) == (500, "LHLO")


@pytest.mark.anyio
async def test_no_server_on_the_unix_socket(socket_dir: Path) -> None:
    path = socket_dir / "missing.sock"
    async with LmtpTransport.unix(path, hello_name=HELLO) as transport:
        with pytest.raises(SmtpConnectError, match=f"cannot connect to unix:{path}"):
            await transport.send_raw(envelope("b@example.com"), CONTENT)


@pytest.mark.anyio
async def test_from_url(serve: Any) -> None:
    handler = LmtpHandler()
    made = serve(handler)()
    settings = made.settings
    if settings.unix_socket is not None:
        url = f"lmtp://{settings.unix_socket}"  # the path starts with "/": lmtp:///...
    else:
        url = f"lmtp://{settings.host}:{settings.port}"
    transport = LmtpTransport.from_url(url, hello_name=HELLO, timeout=10.0)
    assert transport.settings == made.settings
    async with transport:
        result = await transport.send_raw(envelope("b@example.com"), CONTENT)
    assert result.all_accepted


# --------------------------------------------------------------------- settings


def test_defaults() -> None:
    transport = LmtpTransport()
    settings = transport.settings
    assert isinstance(settings, LmtpSettings)
    assert (settings.host, settings.port, settings.tls) == ("localhost", LMTP_PORT, TlsMode.NONE)
    assert LMTP_PORT == 24
    assert transport.transport_name == "lmtp"
    assert transport._server == ("localhost", 24)
    assert repr(transport) == "LmtpTransport(host='localhost', port=24, tls=none)"
    assert LmtpSettings("localhost").port == 24
    assert LmtpSettings("localhost", port=None).port == 24
    assert SmtpSettings("localhost").port == 587
    assert LmtpTransport.local().settings == settings
    assert LmtpTransport.local(2424).settings.port == 2424


def test_unix_socket_settings(tmp_path: Path) -> None:
    path = tmp_path / "lmtp.sock"
    transport = LmtpTransport.unix(path)
    assert transport.settings.unix_socket == str(path)
    assert transport._server is None
    assert repr(transport) == f"LmtpTransport(unix_socket={str(path)!r}, tls=none)"
    again = transport.for_new_process()
    assert isinstance(again, LmtpTransport)
    assert again.settings == transport.settings


def test_for_new_process_keeps_the_hooks() -> None:
    hook = Hook()
    transport = LmtpTransport(hooks=[hook])
    assert transport.for_new_process()._hooks == transport._hooks


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"unix_socket": ""}, ValueError, "unix_socket must be the path of a Unix socket"),
        ({"unix_socket": "a\x00b"}, ValueError, "unix_socket must be the path of a Unix socket"),
        ({"unix_socket": 3}, TypeError, "unix_socket must be a path (str), not int"),
        (
            {"unix_socket": "/run/lmtp", "local_address": "127.0.0.1"},
            ValueError,
            "a Unix socket ('/run/lmtp') is reached directly: it takes no proxy or local_address",
        ),
        (
            {"unix_socket": "/run/lmtp", "proxy": "http://proxy.example:3128"},
            ValueError,
            "a Unix socket ('/run/lmtp') is reached directly",
        ),
    ],
)
def test_invalid_settings(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        LmtpSettings("localhost", **kwargs)


def test_smtp_settings_are_refused() -> None:
    with pytest.raises(
        TypeError,
        match=r"^LmtpTransport needs LmtpSettings \(or an lmtp:// URL\), not SmtpSettings$",
    ):
        LmtpTransport.from_settings(SmtpSettings("localhost"))
    with pytest.raises(ValueError, match=r"^LmtpTransport.from_url takes an lmtp:// URL$"):
        LmtpTransport.from_url("smtp://user:secret@localhost")


def test_urls() -> None:
    tcp = LmtpTransport.from_url("lmtp://mda.example")
    assert (tcp.settings.host, tcp.settings.port, tcp.settings.tls) == (
        "mda.example",
        24,
        TlsMode.NONE,
    )
    starttls = LmtpTransport.from_url("lmtp://mda.example:2003?tls=starttls")
    assert (starttls.settings.port, starttls.settings.tls) == (2003, TlsMode.STARTTLS)
    unix = LmtpTransport.from_url("lmtp:///var/run/dovecot/lmtp?timeout=5")
    assert (unix.settings.unix_socket, unix.settings.timeout) == ("/var/run/dovecot/lmtp", 5.0)
    with pytest.raises(ValueError, match="the SMTP URL has no host"):
        LmtpTransport.from_url("lmtp://")
    with pytest.raises(ValueError, match="an SMTP URL has no path"):
        LmtpTransport.from_url("lmtp://mda.example/path")


def test_path_like_unix_socket() -> None:
    class Where(os.PathLike[str]):
        def __fspath__(self) -> str:
            return "/run/lmtp.sock"

    assert LmtpSettings("localhost", unix_socket=Where()).unix_socket == "/run/lmtp.sock"  # type: ignore[arg-type]
