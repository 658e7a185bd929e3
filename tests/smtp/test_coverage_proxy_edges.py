"""Proxies that answer badly, and proxy settings that are refused.

Each proxy here is a small server in the test's own event loop speaking the
SOCKS5, SOCKS4a or HTTP bytes of one misbehaviour (refusing the credentials,
offering no usable authentication, a reply code lettre has no words for, an
answer that never ends, a reset): the error the user sees names the proxy and
the target and says whether trying again may help.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable

import anyio
import pytest
from anyio.abc import ByteStream, SocketAttribute
from smtp_support import read_exactly, read_until

from lettre import TlsMode
from lettre.errors import SmtpConnectError
from lettre.smtp.client import SmtpClient
from lettre.smtp.proxy import Proxy, ProxyKind
from lettre.smtp.settings import SmtpSettings
from servers import serve_tcp

#: The SMTP server behind the proxy; never reached.
TARGET = "smtp.proxy-only.test"

Handshake = Callable[[ByteStream], Awaitable[None]]


async def _connect_through(
    handshake: Handshake, scheme: str, userinfo: str = ""
) -> SmtpConnectError:
    """Connect to :data:`TARGET` through a proxy that runs ``handshake``; the error raised."""

    async def handle(client: ByteStream) -> None:
        with anyio.fail_after(10):
            await handshake(client)

    async with serve_tcp(handle) as port:
        settings = SmtpSettings(
            TARGET,
            25,
            tls=TlsMode.NONE,
            proxy=f"{scheme}://{userinfo}127.0.0.1:{port}",  # type: ignore[arg-type]
            connect_timeout=10.0,
        )
        with pytest.raises(SmtpConnectError) as caught:
            await SmtpClient(settings).connect()
    return caught.value


async def _socks5_greeting(client: ByteStream) -> bytes:
    """Read the client's SOCKS5 greeting; the methods it offers."""
    head = await read_exactly(client, 2)
    assert head[0] == 5
    return await read_exactly(client, head[1])


async def _socks5_request(client: ByteStream) -> None:
    head = await read_exactly(client, 5)  # VER CMD RSV ATYP=3 LEN
    await read_exactly(client, head[4] + 2)


def _socks5_answering(code: int) -> Handshake:
    """A SOCKS5 proxy that asks for no authentication and answers the request with ``code``."""

    async def answer(client: ByteStream) -> None:
        await _socks5_greeting(client)
        await client.send(b"\x05\x00")  # no authentication
        await _socks5_request(client)
        await client.send(bytes([5, code]) + b"\x00\x01" + bytes(6))  # bound to 0.0.0.0:0

    return answer


# --------------------------------------------------------------------------- SOCKS5


@pytest.mark.anyio
async def test_socks5_refusing_the_password_is_a_permanent_error() -> None:
    async def refuse(client: ByteStream) -> None:
        assert b"\x02" in await _socks5_greeting(client)
        await client.send(b"\x05\x02")  # user name and password, please
        version, ulen = await read_exactly(client, 2)
        assert version == 1
        assert (await read_exactly(client, ulen)) == b"proxyuser"
        (plen,) = await read_exactly(client, 1)
        await read_exactly(client, plen)
        await client.send(b"\x01\x01")  # failure

    error = await _connect_through(refuse, "socks5", "proxyuser:pr0xy-s3cret@")
    assert "the proxy refused the user name and password" in str(error)
    assert f"cannot connect to {TARGET}:25 through the SOCKS5 proxy 127.0.0.1:" in str(error)
    assert "pr0xy-s3cret" not in str(error)
    assert not error.transient


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("userinfo", "expected"),
    [
        ("", "it requires a user name and password (socks5://user:password@host:port)"),
        ("proxyuser:pw@", "it accepts none of the authentication methods offered"),
    ],
)
async def test_socks5_accepting_no_offered_method_is_a_permanent_error(
    userinfo: str, expected: str
) -> None:
    async def no_method(client: ByteStream) -> None:
        await _socks5_greeting(client)
        await client.send(b"\x05\xff")  # no acceptable methods

    error = await _connect_through(no_method, "socks5", userinfo)
    assert expected in str(error)
    assert not error.transient


@pytest.mark.anyio
async def test_socks5_rules_refusing_the_connection_is_permanent() -> None:
    error = await _connect_through(_socks5_answering(0x02), "socks5")  # not allowed by rules
    assert "the proxy's rules do not allow the connection" in str(error)
    assert not error.transient


@pytest.mark.anyio
async def test_socks5_reply_code_outside_the_rfc_is_reported_as_a_failed_handshake() -> None:
    error = await _connect_through(_socks5_answering(0x42), "socks5")
    assert "the SOCKS5 handshake failed (" in str(error)
    assert "0X42" in str(error).upper()


# --------------------------------------------------------------------------- SOCKS4a


async def _socks4a_request(client: ByteStream) -> None:
    head = await read_exactly(client, 8)
    assert head[:2] == b"\x04\x01"
    await read_until(client, b"\x00")  # user id
    await read_until(client, b"\x00")  # host name


@pytest.mark.anyio
async def test_socks4a_request_rejected_is_transient() -> None:
    async def reject(client: ByteStream) -> None:
        await _socks4a_request(client)
        await client.send(b"\x00\x5b\x00\x00\x00\x00\x00\x00")

    error = await _connect_through(reject, "socks4a")
    assert "the proxy refused or could not make it" in str(error)
    assert "SOCKS4a proxy" in str(error)
    assert error.transient


@pytest.mark.anyio
async def test_socks4a_refusing_the_user_id_names_it_and_is_permanent() -> None:
    async def wrong_id(client: ByteStream) -> None:
        await _socks4a_request(client)
        await client.send(b"\x00\x5d\x00\x00\x00\x00\x00\x00")  # user ids differ

    error = await _connect_through(wrong_id, "socks4a", "lettre-id@")
    assert "the proxy refused the user id 'lettre-id'" in str(error)
    assert not error.transient


# --------------------------------------------------------------------------- HTTP


@pytest.mark.anyio
async def test_http_answer_without_end_is_cut_at_the_bound() -> None:
    async def endless(client: ByteStream) -> None:
        await read_until(client, b"\r\n\r\n")
        await client.send(b"HTTP/1.1 200 OK\r\n")
        header = b"X-Padding: " + b"a" * 1000 + b"\r\n"
        try:
            while True:
                await client.send(header)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the client gave up

    error = await _connect_through(endless, "http")
    assert "its answer to CONNECT is longer than" in str(error)
    assert "bytes" in str(error)


@pytest.mark.anyio
async def test_http_proxy_resetting_the_connection_is_a_broken_tunnel() -> None:
    async def reset(client: ByteStream) -> None:
        await read_until(client, b"\r\n\r\n")
        sock = client.extra(SocketAttribute.raw_socket)
        # Linger 0: closing sends a reset, not an orderly end.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await client.aclose()

    error = await _connect_through(reset, "http")
    assert "the connection to the proxy broke" in str(error)
    assert f"{TARGET}:25 through the HTTP proxy" in str(error)
    assert error.transient


@pytest.mark.anyio
async def test_a_server_name_idna_cannot_encode_is_a_permanent_error() -> None:
    # A label of 64 characters is one too many for IDNA: the CONNECT request
    # cannot be written, and the proxy hears nothing.
    heard: list[bytes] = []

    async def handle(client: ByteStream) -> None:
        with anyio.fail_after(10):
            with contextlib.suppress(anyio.EndOfStream):
                heard.append(await client.receive())

    name = "ä" * 64 + ".example"
    async with serve_tcp(handle) as port:
        settings = SmtpSettings(
            name,
            25,
            tls=TlsMode.NONE,
            proxy=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
        )
        with pytest.raises(SmtpConnectError) as caught:
            await SmtpClient(settings).connect()
    assert "through the HTTP proxy 127.0.0.1:" in str(caught.value)
    assert "UnicodeError: " in str(caught.value)  # the exception's kind and its reason
    assert not caught.value.transient
    assert isinstance(caught.value.__cause__, ValueError)
    assert heard == []


@pytest.mark.anyio
async def test_a_proxy_name_that_does_not_resolve_is_a_lookup_error() -> None:
    with pytest.raises(socket.gaierror) as lookup:
        socket.getaddrinfo("proxy.invalid", 3128)
    unknown = lookup.value.errno in {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)}
    settings = SmtpSettings(
        TARGET,
        25,
        tls=TlsMode.NONE,
        proxy="http://proxy.invalid:3128",  # type: ignore[arg-type]
    )
    with pytest.raises(SmtpConnectError) as caught:
        await SmtpClient(settings).connect()
    assert "looking up the proxy's name 'proxy.invalid' failed" in str(caught.value)
    assert caught.value.transient is not unknown


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "ftp"}, ValueError, "unknown proxy kind 'ftp': expected socks5, socks4a, http"),
        ({"host": 1080}, TypeError, "the proxy's host must be a str, not int"),
        ({"host": "[2001:db8::zz]"}, ValueError, "expected a proxy host name or IP address"),
        ({"host": "2001:db8:zz"}, ValueError, "expected a proxy host name or IP address"),
        ({"host": "proxy example"}, ValueError, "expected a proxy host name or IP address"),
        ({"port": "1080"}, TypeError, "the proxy's port must be an int"),
        ({"port": True}, TypeError, "the proxy's port must be an int"),
        ({"port": 70000}, ValueError, "the port must be between 1 and 65535, not 70000"),
        ({"username": b"user", "password": "pw"}, TypeError, "the proxy's username must be a str"),
        ({"password": "pw"}, ValueError, "has a password but no user name"),
        (
            {"username": "user\r\n", "password": "pw"},
            ValueError,
            "the credentials of the proxy 'socks5://proxy.example:1080' hold control characters",
        ),
    ],
)
def test_invalid_proxies_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    arguments: dict[str, object] = {"kind": "socks5", "host": "proxy.example", "port": 1080}
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        Proxy(**arguments)  # type: ignore[arg-type]


def test_a_bracketed_ipv6_proxy_host_is_kept_without_brackets() -> None:
    proxy = Proxy(ProxyKind.SOCKS5, "[2001:db8::1]", 1080)
    assert proxy.host == "2001:db8::1"
    assert proxy.address == "[2001:db8::1]:1080"


def test_an_empty_user_name_in_a_proxy_url_means_none() -> None:
    proxy = Proxy.from_url("socks5://@proxy.example:1080")
    assert proxy.username is None
    assert str(proxy) == "socks5://proxy.example:1080"


def test_a_socks4a_user_id_is_shown_since_it_is_no_secret() -> None:
    assert str(Proxy.from_url("socks4a://lettre-id@proxy.example")) == (
        "socks4a://lettre-id@proxy.example:1080"
    )
