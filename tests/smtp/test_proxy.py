"""SMTP through proxies: SOCKS5, SOCKS4a and HTTP CONNECT, on asyncio, uvloop and trio.

The proxies are real: pproxy in a subprocess (one process, one listener per
kind of proxy), and, where pproxy cannot play the part (SOCKS4a with a host
name, a SOCKS5 error reply, an HTTP proxy whose ``200`` shares its write with
the server's greeting), small relays written here that speak the protocol's
bytes. Behind them are the aiosmtpd servers of ``tests/servers.py``.

The SMTP server is addressed by a name only the proxies resolve
(:data:`PROXY_ONLY`): a test that sends through a proxy by that name could
not pass if the connection went around the proxy or if the name were looked
up here rather than by the proxy.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import anyio
import pytest
from anyio.abc import ByteStream
from smtp_support import HELLO, envelope, message_bytes, read_exactly, read_until

from lettre import SmtpTransport, TlsMode
from lettre.errors import AuthenticationError, SmtpConnectError, SmtpTimeoutError, TlsError
from lettre.smtp.auth import Credentials
from lettre.smtp.client import SmtpClient
from lettre.smtp.pool import PoolConfig
from lettre.smtp.proxy import Proxy, ProxyKind
from lettre.smtp.settings import SmtpSettings
from lettre.smtp.tls import TlsParameters
from lettre.smtp.url import settings_from_url
from servers import AiosmtpdServer, ServerFactory, TlsMaterial, serve_tcp

#: A host name that does not resolve here; the proxies map it to 127.0.0.1.
PROXY_ONLY = "smtp.proxy-only.test"

PROXY_USER = "proxyuser"
PROXY_PASSWORD = "pr0xy-s3cret"
SOCKS4_USER_ID = "lettre-id"

# pproxy, run with getaddrinfo taught PROXY_ONLY (the proxy's resolver is the
# only one that knows it). pproxy resolves through the stdlib event loop,
# which calls socket.getaddrinfo; it would install uvloop (whose resolver is
# libuv's, and which its start-up code no longer works with): not here.
_PPROXY_MAIN = textwrap.dedent(
    f"""
    import runpy, socket, sys
    sys.modules["uvloop"] = None
    real = socket.getaddrinfo
    def getaddrinfo(host, *args, **kwargs):
        if host in ({PROXY_ONLY!r}, {PROXY_ONLY.encode()!r}):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo
    sys.argv = ["pproxy", *sys.argv[1:]]
    runpy.run_module("pproxy", run_name="__main__")
    """
)


@pytest.fixture(scope="module", autouse=True)
def _name_resolves_only_through_the_proxies() -> None:
    """The premise of these tests: :data:`PROXY_ONLY` does not resolve here."""
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(PROXY_ONLY, 25)


# --------------------------------------------------------------------------- pproxy


@dataclass
class Pproxy:
    """One pproxy process listening on several loopback ports, one per kind of proxy."""

    socks5: int
    socks5_auth: int
    http: int
    http_auth: int
    socks4_auth: int

    def url(self, kind: str, *, user: str | None = None, password: str | None = None) -> str:
        """A proxy URL for one of the listeners ("socks5", "socks5_auth", ...)."""
        port = getattr(self, kind)
        scheme = {"socks4_auth": "socks4a"}.get(kind, kind.partition("_")[0])
        userinfo = ""
        if user is not None:
            userinfo = quote(user, safe="")
            if password is not None:
                userinfo += ":" + quote(password, safe="")
            userinfo += "@"
        return f"{scheme}://{userinfo}127.0.0.1:{port}"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _start_pproxy() -> tuple[subprocess.Popen[bytes], Pproxy]:
    """Start pproxy and wait (polling, bounded) until every listener accepts."""
    ports = Pproxy(*_free_ports(5))
    auth = f"#{PROXY_USER}:{PROXY_PASSWORD}"
    listeners = [
        f"socks5://127.0.0.1:{ports.socks5}",
        f"socks5://127.0.0.1:{ports.socks5_auth}{auth}",
        f"http://127.0.0.1:{ports.http}",
        f"http://127.0.0.1:{ports.http_auth}{auth}",
        # pproxy takes a SOCKS4 user id when it is one of its "users".
        f"socks4://127.0.0.1:{ports.socks4_auth}#{SOCKS4_USER_ID}",
    ]
    args = [sys.executable, "-c", _PPROXY_MAIN]
    for listener in listeners:
        args += ["-l", listener]
    # --auth=-1: every connection authenticates (pproxy otherwise trusts an
    # address that authenticated once, for 30 days).
    args.append("--auth=-1")
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wanted = [ports.socks5, ports.socks5_auth, ports.http, ports.http_auth, ports.socks4_auth]
    limit = time.monotonic() + 20.0
    while wanted and process.poll() is None and time.monotonic() < limit:
        if _accepts(wanted[0]):
            wanted.pop(0)
        else:
            time.sleep(0.05)  # poll interval while pproxy starts
    if wanted:
        _stop(process)
    return process, ports


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def pproxy() -> Iterator[Pproxy]:
    """A running pproxy (started again on other ports if one was taken meanwhile)."""
    for _ in range(3):
        process, ports = _start_pproxy()
        if process.poll() is None:
            break
    else:
        pytest.fail("pproxy did not start")
    try:
        yield ports
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def proxy_only_tls() -> TlsMaterial:
    """A certificate for :data:`PROXY_ONLY` only (not for 127.0.0.1, the proxies' address)."""
    return TlsMaterial.create(PROXY_ONLY)


def transport_for(server: AiosmtpdServer, proxy: str | Proxy, **kwargs: object) -> SmtpTransport:
    """A transport to ``server`` by :data:`PROXY_ONLY`, through ``proxy``."""
    kwargs.setdefault("tls", TlsMode.NONE)
    kwargs.setdefault("hello_name", HELLO)
    kwargs.setdefault("timeout", 10.0)
    return SmtpTransport(PROXY_ONLY, server.port, proxy=proxy, **kwargs)  # type: ignore[arg-type]


def tls_transport_for(
    server: AiosmtpdServer,
    proxy: str,
    mode: TlsMode,
    trusted: TlsMaterial,
    password: str | None = None,
) -> SmtpTransport:
    """:func:`transport_for` over TLS (``mode``) trusting ``trusted``'s CA.

    With ``password``, the transport logs in as alice.
    """
    return transport_for(
        server,
        proxy,
        tls=mode,
        tls_parameters=TlsParameters(ca_data=trusted.ca_pem),
        credentials=None if password is None else Credentials("alice", password),
    )


async def send_one(transport: SmtpTransport, subject: str = "Through the proxy") -> None:
    async with transport:
        result = await transport.send_raw(envelope(), message_bytes(subject))
    assert result.accepted == ("rcpt@example.com",)


def subjects(server: AiosmtpdServer) -> list[str]:
    return [str(m.parsed()["Subject"]) for m in server.messages]


# --------------------------------------------------------------------------- relays


def _pump(source: ByteStream, sink: ByteStream) -> Callable[[], Awaitable[None]]:
    async def pump() -> None:
        try:
            async for chunk in source:
                await sink.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            await anyio.aclose_forcefully(sink)

    return pump


async def _relay(client: ByteStream, upstream: ByteStream) -> None:
    async with upstream, anyio.create_task_group() as tg:
        tg.start_soon(_pump(client, upstream))
        tg.start_soon(_pump(upstream, client))


@asynccontextmanager
async def relay_proxy(
    handshake: Callable[[ByteStream], Awaitable[ByteStream | None]],
) -> AsyncIterator[int]:
    """A proxy in the test's own event loop: ``handshake`` answers, then bytes are relayed.

    ``handshake`` returns the upstream stream to relay to (None: the
    connection ends there). Yields the port.
    """

    async def handle(client: ByteStream) -> None:
        with anyio.fail_after(20):
            upstream = await handshake(client)
            if upstream is not None:
                await _relay(client, upstream)

    async with serve_tcp(handle) as port:
        yield port


async def _connect_by_name(name: str, port: int) -> ByteStream:
    assert name == PROXY_ONLY, name
    return await anyio.connect_tcp("127.0.0.1", port)


# --------------------------------------------------------------------------- parsing


def test_proxy_urls_are_parsed() -> None:
    proxy = Proxy.from_url("socks5://u%40x:p%3Ass@proxy.example:1081")
    assert proxy == Proxy(ProxyKind.SOCKS5, "proxy.example", 1081, "u@x", "p:ss")
    assert Proxy.from_url("socks5h://proxy.example").port == 1080
    assert Proxy.from_url("socks5h://proxy.example").kind is ProxyKind.SOCKS5
    assert Proxy.from_url("SOCKS4A://id@[2001:db8::1]") == Proxy(
        ProxyKind.SOCKS4A, "2001:db8::1", 1080, "id"
    )
    assert Proxy.from_url("http://proxy.example:3128/") == Proxy(
        ProxyKind.HTTP, "proxy.example", 3128
    )
    assert Proxy("http", "proxy.example", 3128).kind is ProxyKind.HTTP  # type: ignore[arg-type]
    assert str(Proxy.from_url("http://u:pw@h:1")) == "http://u:***@h:1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://user:TOPSECRET@h:21", "unsupported proxy scheme"),
        ("socks4://user:TOPSECRET@h:1080", "use socks4a://"),
        ("https://user:TOPSECRET@h:443", "use http://"),
        ("http://user:TOPSECRET@h", "give the HTTP proxy's port"),
        ("socks5://user:TOPSECRET@h:1080/path", "no path, query or fragment"),
        ("socks5://user:TOPSECRET@h:99999", "bad host or port"),
        ("socks5://user:TOPSECRET@:1080", "no host"),
        ("user:TOPSECRET@h:1080", "expected a URL"),
        ("socks4a://user:TOPSECRET@h:1080", "SOCKS4a cannot send"),
        ("socks5://:TOPSECRET@h:1080", "1 to 255 bytes"),
        ("http://user%3Ax:TOPSECRET@h:8080", "holds ':'"),
    ],
)
def test_invalid_proxy_urls_say_why_without_the_password(url: str, expected: str) -> None:
    with pytest.raises(ValueError, match="proxy") as caught:
        SmtpSettings("mail.example", proxy=url)  # type: ignore[arg-type]
    message = str(caught.value)
    assert expected in message
    assert "TOPSECRET" not in message
    assert caught.value.__cause__ is None or "TOPSECRET" not in str(caught.value.__cause__)


def test_a_user_name_without_a_password_is_refused_for_socks5_and_http() -> None:
    with pytest.raises(ValueError, match="give both"):
        Proxy.from_url("socks5://user@h:1080")
    with pytest.raises(ValueError, match="give both"):
        Proxy.from_url("http://user@h:8080")
    assert Proxy.from_url("socks4a://user@h:1080").username == "user"


def test_settings_take_a_url_or_a_proxy_and_never_show_the_password() -> None:
    url = f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example:1080"
    settings = SmtpSettings("mail.example", proxy=url)  # type: ignore[arg-type]
    proxy = Proxy(ProxyKind.SOCKS5, "proxy.example", 1080, PROXY_USER, PROXY_PASSWORD)
    assert settings.proxy == proxy
    assert SmtpSettings("mail.example", proxy=proxy).proxy is proxy
    transport = SmtpTransport("mail.example", proxy=url)
    for shown in (repr(settings), str(settings), repr(proxy), str(proxy), repr(transport)):
        assert PROXY_PASSWORD not in shown
    assert "proxy.example:1080" in repr(transport)
    with pytest.raises(TypeError, match="a proxy must be a Proxy or a URL"):
        SmtpSettings("mail.example", proxy=1080)  # type: ignore[arg-type]


def test_the_smtp_url_takes_a_percent_encoded_proxy_url() -> None:
    proxy_url = f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example:1080"
    settings = settings_from_url(f"smtp://mail.example:587?proxy={quote(proxy_url, safe='')}")
    assert settings.proxy == Proxy(
        ProxyKind.SOCKS5, "proxy.example", 1080, PROXY_USER, PROXY_PASSWORD
    )
    assert (settings.host, settings.port) == ("mail.example", 587)
    with pytest.raises(ValueError, match="repeats"):
        settings_from_url("smtp://mail.example?proxy=http://a:1&proxy=http://b:2")
    with pytest.raises(ValueError, match="use socks4a://") as caught:
        settings_from_url(f"smtp://mail.example?proxy=socks4://u:{PROXY_PASSWORD}@h:1080")
    assert PROXY_PASSWORD not in str(caught.value)


def test_socks_without_the_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "python_socks", None)
    with pytest.raises(ImportError, match=r"lettre\[proxy\]"):
        SmtpSettings("mail.example", proxy="socks5://proxy.example:1080")  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"lettre\[proxy\]"):
        Proxy(ProxyKind.SOCKS4A, "proxy.example", 1080)
    # HTTP CONNECT needs nothing more.
    assert SmtpSettings("mail.example", proxy="http://proxy.example:3128").proxy is not None  # type: ignore[arg-type]


# --------------------------------------------------------------------------- through pproxy


@pytest.mark.anyio
async def test_socks5_sends_by_a_name_only_the_proxy_resolves(
    pproxy: Pproxy, plain_server: AiosmtpdServer
) -> None:
    await send_one(transport_for(plain_server, pproxy.url("socks5")), "socks5")
    assert subjects(plain_server) == ["socks5"]


@pytest.mark.anyio
async def test_socks5_with_a_user_name_and_password(
    pproxy: Pproxy, plain_server: AiosmtpdServer
) -> None:
    url = pproxy.url("socks5_auth", user=PROXY_USER, password=PROXY_PASSWORD)
    await send_one(transport_for(plain_server, url), "socks5 auth")
    assert subjects(plain_server) == ["socks5 auth"]


@pytest.mark.anyio
@pytest.mark.parametrize("password", ["wrong", None])
async def test_socks5_refusing_the_credentials_is_a_connect_error(
    pproxy: Pproxy, plain_server: AiosmtpdServer, password: str | None
) -> None:
    user = PROXY_USER if password is not None else None
    url = pproxy.url("socks5_auth", user=user, password=password)
    transport = transport_for(plain_server, url)
    async with transport:
        with pytest.raises(SmtpConnectError) as caught:
            await transport.test_connection()
    message = str(caught.value)
    assert f"the SOCKS5 proxy 127.0.0.1:{pproxy.socks5_auth}" in message
    assert f"{PROXY_ONLY}:{plain_server.port}" in message
    assert "user name and password" in message
    assert caught.value.__cause__ is not None
    assert "wrong" not in message
    assert plain_server.messages == []


@pytest.mark.anyio
async def test_socks4a_with_a_user_id_through_pproxy(
    pproxy: Pproxy, plain_server: AiosmtpdServer
) -> None:
    # pproxy's SOCKS4 takes addresses only: the server by its IP address here
    # (the name is tested with the relay below). pproxy lets the user id in.
    url = pproxy.url("socks4_auth", user=SOCKS4_USER_ID)
    transport = SmtpTransport(
        "127.0.0.1", plain_server.port, tls=TlsMode.NONE, hello_name=HELLO, proxy=url
    )
    await send_one(transport, "socks4")
    assert subjects(plain_server) == ["socks4"]

    refused = SmtpTransport(
        "127.0.0.1",
        plain_server.port,
        tls=TlsMode.NONE,
        hello_name=HELLO,
        proxy=pproxy.url("socks4_auth", user="someone-else"),
    )
    async with refused:
        with pytest.raises(SmtpConnectError, match=r"SOCKS4a proxy 127\.0\.0\.1"):
            await refused.test_connection()


@pytest.mark.anyio
async def test_http_connect_without_and_with_basic_auth(
    pproxy: Pproxy, plain_server: AiosmtpdServer
) -> None:
    await send_one(transport_for(plain_server, pproxy.url("http")), "http")
    auth = pproxy.url("http_auth", user=PROXY_USER, password=PROXY_PASSWORD)
    await send_one(transport_for(plain_server, auth), "http auth")
    assert subjects(plain_server) == ["http", "http auth"]


@pytest.mark.anyio
@pytest.mark.parametrize("password", ["wrong", None])
async def test_http_407_is_a_permanent_connect_error(
    pproxy: Pproxy, plain_server: AiosmtpdServer, password: str | None
) -> None:
    user = PROXY_USER if password is not None else None
    transport = transport_for(plain_server, pproxy.url("http_auth", user=user, password=password))
    async with transport:
        with pytest.raises(SmtpConnectError) as caught:
            await transport.test_connection()
    message = str(caught.value)
    assert f"the HTTP proxy 127.0.0.1:{pproxy.http_auth}" in message
    assert f"{PROXY_ONLY}:{plain_server.port}" in message
    assert "407" in message
    expected = "refused the user name" if password else "requires a user name"
    assert expected in message
    assert not caught.value.transient


@pytest.mark.anyio
async def test_implicit_tls_through_the_tunnel_checks_the_smtp_servers_name(
    pproxy: Pproxy, smtpd: ServerFactory, proxy_only_tls: TlsMaterial
) -> None:
    # The certificate names PROXY_ONLY only: checked against the proxy's
    # address (127.0.0.1) it would be refused.
    server = smtpd(tls="implicit", tls_material=proxy_only_tls)
    transport = tls_transport_for(server, pproxy.url("socks5"), TlsMode.IMPLICIT, proxy_only_tls)
    async with transport:
        await transport.test_connection()
        result = await transport.send_raw(envelope(), message_bytes("implicit"))
    assert result.accepted == ("rcpt@example.com",)
    assert subjects(server) == ["implicit"]
    assert server.messages[0].tls


@pytest.mark.anyio
async def test_a_certificate_for_another_name_is_refused_through_the_tunnel(
    pproxy: Pproxy, smtpd: ServerFactory, tls_material: TlsMaterial
) -> None:
    # The session's certificate is for 127.0.0.1 and localhost: the proxy's
    # address, not the server's name.
    server = smtpd(tls="implicit", tls_material=tls_material)
    transport = tls_transport_for(server, pproxy.url("socks5"), TlsMode.IMPLICIT, tls_material)
    async with transport:
        with pytest.raises(TlsError, match="certificate"):
            await transport.test_connection()
    assert server.messages == []


@pytest.mark.anyio
async def test_starttls_and_smtp_auth_through_an_http_proxy_with_auth(
    pproxy: Pproxy, smtpd: ServerFactory, proxy_only_tls: TlsMaterial
) -> None:
    server = smtpd(tls="starttls", auth=True, tls_material=proxy_only_tls)
    proxy = pproxy.url("http_auth", user=PROXY_USER, password=PROXY_PASSWORD)
    transport = tls_transport_for(server, proxy, TlsMode.STARTTLS, proxy_only_tls, "wonderland")
    await send_one(transport, "starttls")
    assert subjects(server) == ["starttls"]
    assert (server.messages[0].login, server.messages[0].tls) == ("alice", True)


@pytest.mark.anyio
async def test_smtp_auth_failure_through_the_tunnel_stays_an_smtp_error(
    pproxy: Pproxy, smtpd: ServerFactory, proxy_only_tls: TlsMaterial
) -> None:
    server = smtpd(tls="starttls", auth=True, tls_material=proxy_only_tls)
    proxy = pproxy.url("socks5_auth", user=PROXY_USER, password=PROXY_PASSWORD)
    transport = tls_transport_for(
        server, proxy, TlsMode.STARTTLS, proxy_only_tls, "not her password"
    )
    async with transport:
        with pytest.raises(AuthenticationError):
            await transport.test_connection()


@pytest.mark.anyio
async def test_the_pool_sends_many_messages_through_the_proxy(
    pproxy: Pproxy, plain_server: AiosmtpdServer
) -> None:
    transport = transport_for(
        plain_server,
        pproxy.url("socks5"),
        pool=PoolConfig(max_size=2, max_messages_per_connection=3),
    )
    async with transport:
        async with anyio.create_task_group() as tg:
            for index in range(8):
                tg.start_soon(transport.send_raw, envelope(), message_bytes(f"pooled {index}"))
        stats = transport.statistics()
    assert sorted(subjects(plain_server)) == sorted(f"pooled {i}" for i in range(8))
    assert stats.messages_sent == 8
    assert stats.opened_total >= 3  # at most 3 messages per connection, each through the proxy


@pytest.mark.anyio
async def test_the_smtp_url_form_sends_through_the_proxy(
    pproxy: Pproxy, plain_server: AiosmtpdServer
) -> None:
    proxy_url = pproxy.url("socks5_auth", user=PROXY_USER, password=PROXY_PASSWORD)
    url = (
        f"smtp://{PROXY_ONLY}:{plain_server.port}?tls=none&hello_name={HELLO}"
        f"&proxy={quote(proxy_url, safe='')}"
    )
    transport = SmtpTransport.from_url(url)
    assert PROXY_PASSWORD not in repr(transport)
    await send_one(transport, "url")
    assert subjects(plain_server) == ["url"]


@pytest.mark.anyio
async def test_the_password_is_in_no_log_and_no_error(
    pproxy: Pproxy, plain_server: AiosmtpdServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = pproxy.url("socks5_auth", user=PROXY_USER, password=PROXY_PASSWORD)
    await send_one(transport_for(plain_server, good), "logged")
    bad_password = PROXY_PASSWORD + "-not"
    bad = transport_for(
        plain_server, pproxy.url("http_auth", user=PROXY_USER, password=bad_password)
    )
    async with bad:
        with pytest.raises(SmtpConnectError) as caught:
            await bad.test_connection()
    assert "MAIL FROM" in caplog.text  # the transcript was logged
    assert "through the SOCKS5 proxy" in caplog.text
    shown = [caplog.text, str(caught.value), repr(caught.value), repr(bad), repr(bad.settings)]
    for text in shown:
        assert PROXY_PASSWORD not in text


# --------------------------------------------------------------------------- proxy failures


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, not listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["socks5", "http", "socks4a"])
async def test_a_proxy_that_is_down_is_a_transient_connect_error(
    closed_port: int, scheme: str
) -> None:
    transport = SmtpTransport(
        PROXY_ONLY, 25, tls=TlsMode.NONE, proxy=f"{scheme}://127.0.0.1:{closed_port}"
    )
    async with transport:
        with pytest.raises(SmtpConnectError) as caught:
            await transport.test_connection()
    message = str(caught.value)
    assert f"proxy 127.0.0.1:{closed_port}" in message
    assert f"{PROXY_ONLY}:25" in message
    assert "cannot reach the proxy" in message
    assert caught.value.transient
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["socks5", "http"])
async def test_a_proxy_that_never_answers_times_out_naming_it(scheme: str) -> None:
    with socket.socket() as listener:  # the kernel accepts; nobody answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        transport = SmtpTransport(
            PROXY_ONLY,
            25,
            tls=TlsMode.NONE,
            connect_timeout=0.5,
            proxy=f"{scheme}://127.0.0.1:{port}",
        )
        async with transport:
            with pytest.raises(SmtpTimeoutError) as caught:
                await transport.test_connection()
    message = str(caught.value)
    assert f"connecting to {PROXY_ONLY}:25 through the" in message
    assert f"proxy 127.0.0.1:{port} timed out" in message


@pytest.mark.anyio
async def test_a_socks5_proxy_that_cannot_reach_the_server(plain_server: AiosmtpdServer) -> None:
    requests: list[bytes] = []

    async def refuse(client: ByteStream) -> None:
        greeting = await read_exactly(client, 2)
        await read_exactly(client, greeting[1])
        await client.send(b"\x05\x00")  # no authentication
        head = await read_exactly(client, 5)  # VER CMD RSV ATYP=3 LEN
        requests.append(head + await read_exactly(client, head[4] + 2))
        await client.send(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")  # connection refused

    async def handshake(client: ByteStream) -> None:
        await refuse(client)

    async with relay_proxy(handshake) as port:
        client = SmtpClient(
            SmtpSettings(PROXY_ONLY, 2525, tls=TlsMode.NONE, proxy=f"socks5://127.0.0.1:{port}")  # type: ignore[arg-type]
        )
        with pytest.raises(SmtpConnectError) as caught:
            await client.connect()
    assert "the server refused the proxy's connection" in str(caught.value)
    assert caught.value.transient
    # The name, not an address, went to the proxy (ATYP 3: a domain name).
    name = PROXY_ONLY.encode()
    assert requests == [b"\x05\x01\x00\x03" + bytes([len(name)]) + name + (2525).to_bytes(2, "big")]


# --------------------------------------------------------------------------- relays


@pytest.mark.anyio
async def test_socks4a_sends_the_name_for_the_proxy_to_resolve(
    plain_server: AiosmtpdServer,
) -> None:
    seen: list[tuple[str, str]] = []

    async def socks4a(client: ByteStream) -> ByteStream:
        head = await read_exactly(client, 8)  # VN CD DSTPORT DSTIP
        assert head[:2] == b"\x04\x01"
        assert head[4:7] == b"\x00\x00\x00"  # 0.0.0.x (x > 0): a name follows
        assert head[7] != 0
        user_id = (await read_until(client, b"\x00"))[:-1].decode()
        name = (await read_until(client, b"\x00"))[:-1].decode()
        seen.append((user_id, name))
        upstream = await _connect_by_name(name, int.from_bytes(head[2:4], "big"))
        await client.send(b"\x00\x5a" + head[2:8])
        return upstream

    async with relay_proxy(socks4a) as port:
        url = f"socks4a://{SOCKS4_USER_ID}@127.0.0.1:{port}"
        await send_one(transport_for(plain_server, url), "socks4a")
    assert seen == [(SOCKS4_USER_ID, PROXY_ONLY)]
    assert subjects(plain_server) == ["socks4a"]


@pytest.mark.anyio
async def test_http_connect_keeps_a_greeting_sent_with_the_200(
    plain_server: AiosmtpdServer,
) -> None:
    requests: list[bytes] = []

    async def eager(client: ByteStream) -> ByteStream:
        request = await read_until(client, b"\r\n\r\n")
        requests.append(request)
        authority = request.split(b" ")[1].decode()
        name, _, port = authority.rpartition(":")
        upstream = await _connect_by_name(name, int(port))
        greeting = await read_until(upstream, b"\r\n")
        # The answer and the server's greeting in one write: a client that
        # reads the answer with one large read loses the greeting.
        await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n" + greeting)
        return upstream

    async with relay_proxy(eager) as port:
        proxy = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}"
        await send_one(transport_for(plain_server, proxy), "coalesced")
    assert subjects(plain_server) == ["coalesced"]
    authority = f"{PROXY_ONLY}:{plain_server.port}"
    assert requests[0].startswith(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n".encode())
    assert b"Proxy-Authorization: Basic " in requests[0]


@pytest.mark.anyio
async def test_an_http_proxy_answering_in_another_language_fails_at_once() -> None:
    async def smtp_server(client: ByteStream) -> None:
        await client.send(b"220 mx.example ESMTP\r\n")
        await anyio.sleep_forever()

    async with relay_proxy(smtp_server) as port:
        client = SmtpClient(
            SmtpSettings(PROXY_ONLY, 25, tls=TlsMode.NONE, proxy=f"http://127.0.0.1:{port}")  # type: ignore[arg-type]
        )
        with pytest.raises(SmtpConnectError, match="did not answer CONNECT in HTTP") as caught:
            await client.connect()
    assert "'220 mx.example ESMTP'" in str(caught.value)
    assert not caught.value.transient


@pytest.mark.anyio
async def test_an_http_proxy_that_cannot_reach_the_server(pproxy: Pproxy, closed_port: int) -> None:
    # pproxy connects first and closes the tunnel it could not make.
    transport = SmtpTransport(PROXY_ONLY, closed_port, tls=TlsMode.NONE, proxy=pproxy.url("http"))
    async with transport:
        with pytest.raises(SmtpConnectError) as caught:
            await transport.test_connection()
    assert f"{PROXY_ONLY}:{closed_port} through the HTTP proxy" in str(caught.value)
    assert "closed the connection before answering CONNECT" in str(caught.value)
    assert caught.value.transient


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "expected", "transient"),
    [
        (
            b"HTTP/1.1 502 Bad Gateway",
            "the proxy could not reach the server (502 Bad Gateway)",
            True,
        ),
        (b"HTTP/1.0 403 Forbidden", "the proxy refused the tunnel (403 Forbidden)", False),
    ],
)
async def test_http_proxy_refusals(answer: bytes, expected: str, transient: bool) -> None:
    async def refuse(client: ByteStream) -> None:
        await read_until(client, b"\r\n\r\n")
        await client.send(answer + b"\r\nContent-Length: 0\r\n\r\n")

    async with relay_proxy(refuse) as port:
        client = SmtpClient(
            SmtpSettings(PROXY_ONLY, 25, tls=TlsMode.NONE, proxy=f"http://127.0.0.1:{port}")  # type: ignore[arg-type]
        )
        with pytest.raises(SmtpConnectError) as caught:
            await client.connect()
    assert expected in str(caught.value)
    assert caught.value.transient is transient


@pytest.mark.anyio
async def test_http_connect_works_without_the_extra(
    pproxy: Pproxy, plain_server: AiosmtpdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "python_socks", None)
    await send_one(transport_for(plain_server, pproxy.url("http")), "no extra")
    assert subjects(plain_server) == ["no extra"]
    with pytest.raises(ImportError, match=r"lettre\[proxy\]"):
        transport_for(plain_server, pproxy.url("socks5"))
