"""SMTP through a proxy: SOCKS5, SOCKS4a and HTTP CONNECT tunnels.

:class:`Proxy` is the setting (``SmtpSettings(proxy=...)``, or a URL such as
``socks5://user:password@proxy.example:1080``), validated once.
:func:`open_tunnel` makes the connection: to the proxy, then through it to
the SMTP server, and hands back a byte stream on which the SMTP session (and
its TLS, implicit or after STARTTLS) runs as on a direct connection. The
server's host name is sent to the proxy, which resolves it (remote DNS); the
certificate is checked against that name, never the proxy's.

How the tunnel is made, per kind:

- SOCKS5 and SOCKS4a go through python-socks (the ``proxy`` extra): on
  asyncio its asyncio proxy hands back the connected socket, which the event
  loop then takes over (``loop.create_connection(sock=...)``), so the
  connection runs on the same byte stream and callbacks as a direct one; on
  trio, its anyio proxy hands back an anyio socket stream.
- HTTP CONNECT is written here, on the byte stream of a direct connection to
  the proxy: an SMTP server speaks first, and its greeting may arrive in the
  same read as the proxy's ``200`` answer. The answer is therefore read one
  byte at a time up to its blank line, so that no byte of the greeting is
  taken from the stream.

Every failure becomes an :class:`~lettre.errors.SmtpConnectError` (or
:class:`~lettre.errors.SmtpTimeoutError`) that names the proxy's host and
port (never its password) and the SMTP server, chained from the original.
"""

from __future__ import annotations

import base64
import enum
import importlib
import ipaddress
import math
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import anyio

from lettre._loops import running_on_asyncio
from lettre.errors import SmtpConnectError, SmtpError, SmtpTimeoutError
from lettre.smtp.asyncio_stream import _AsyncioByteStream, open_tcp_stream
from lettre.smtp.stream_errors import describe_error

if TYPE_CHECKING:
    from anyio.abc import ByteStream

__all__ = ["Proxy", "ProxyKind", "open_tunnel"]

_EXTRA_HINT = "install the 'proxy' extra: pip install 'lettre[proxy]'"

#: The most bytes of an HTTP proxy's answer to CONNECT read before giving up.
_MAX_HTTP_HEAD = 16384


class ProxyKind(str, enum.Enum):
    """The protocol spoken to a proxy.

    Every kind sends the SMTP server's host name to the proxy, which resolves
    it (remote DNS).
    """

    SOCKS5 = "socks5"
    """SOCKS version 5 (RFC 1928), with user name and password (RFC 1929) when given."""
    SOCKS4A = "socks4a"
    """SOCKS version 4a: a user id but no password."""
    HTTP = "http"
    """An HTTP proxy's CONNECT method, with Basic authentication when given."""

    @property
    def default_port(self) -> int | None:
        """The port used when a proxy URL gives none (1080 for SOCKS; HTTP has none)."""
        return None if self is ProxyKind.HTTP else 1080

    @property
    def label(self) -> str:
        """The kind as written in messages: "SOCKS5", "SOCKS4a" or "HTTP"."""
        return {"socks5": "SOCKS5", "socks4a": "SOCKS4a", "http": "HTTP"}[self.value]


# URL schemes -> kinds. socks5h:// (curl's name for SOCKS5 with remote DNS)
# means the same as socks5://: lettre always lets the proxy resolve the name.
_SCHEMES = {
    "socks5": ProxyKind.SOCKS5,
    "socks5h": ProxyKind.SOCKS5,
    "socks4a": ProxyKind.SOCKS4A,
    "http": ProxyKind.HTTP,
}
_REFUSED_SCHEMES = {
    "socks4": (
        "SOCKS4 cannot send a host name to the proxy; use socks4a:// "
        "(or socks5://) so that the proxy resolves the SMTP server's name"
    ),
    "https": (
        "TLS to the proxy itself is not supported; use http:// (the SMTP session "
        "keeps its own TLS through the tunnel)"
    ),
}


def _shown(url: str) -> str:
    """``url`` with its password (and a user name without a password) masked."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, tail = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    masked = f"{user}:***" if colon else "***"
    return f"{scheme}{sep}{masked}@{tail}"


def _check_proxy_host(host: object, shown: str) -> str:
    if not isinstance(host, str):
        raise TypeError(f"the proxy's host must be a str, not {type(host).__name__}")
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    bad = not name or any(c.isspace() or ord(c) < 32 or c in "/\\?#@[]" for c in name)
    if not bad and ":" in name:
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            bad = True
    if bad:
        raise ValueError(
            f"invalid proxy {shown!r}: expected a proxy host name or IP address, "
            "as in socks5://proxy.example:1080"
        )
    return name


def _load_python_socks() -> None:
    """Import python-socks, or raise the ImportError that names the extra."""
    try:
        importlib.import_module("python_socks")
    except ImportError as exc:
        raise ImportError(f"SOCKS proxies need python-socks; {_EXTRA_HINT}") from exc


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy that SMTP connections go through.

    Usually built from a URL with :meth:`from_url` (``SmtpSettings`` and
    ``SmtpTransport`` accept the URL as it is): ``socks5://host:1080``,
    ``socks5://user:password@host:1080``, ``socks4a://user@host:1080`` or
    ``http://user:password@host:3128``. The password never appears in
    ``repr()``, in error messages or in logs.

    Args:
        kind: the :class:`ProxyKind` (or its name: "socks5", "socks4a", "http").
        host: the proxy's host name or IP address.
        port: the proxy's port.
        username: the user name (SOCKS5, HTTP) or user id (SOCKS4a), if any.
        password: the password (SOCKS5, HTTP); given together with ``username``.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an invalid host or port, a password without a user name,
            a password for SOCKS4a, credentials too long for SOCKS5.
        ImportError: a SOCKS proxy without the ``proxy`` extra (python-socks).
    """

    kind: ProxyKind
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        try:
            kind = ProxyKind(self.kind)
        except ValueError:
            known = ", ".join(k.value for k in ProxyKind)
            raise ValueError(f"unknown proxy kind {self.kind!r}: expected {known}") from None
        object.__setattr__(self, "kind", kind)
        shown = f"{kind.value}://{self.host}:{self.port}"
        object.__setattr__(self, "host", _check_proxy_host(self.host, shown))
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise TypeError("the proxy's port must be an int")
        if not 0 < self.port < 65536:
            raise ValueError(
                f"invalid proxy {shown!r}: the port must be between 1 and 65535, not {self.port}"
            )
        for name in ("username", "password"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"the proxy's {name} must be a str")
        if self.password is not None and self.username is None:
            raise ValueError(f"the proxy {shown!r} has a password but no user name")
        if self.username is not None:
            self._check_credentials(kind, shown)
        if kind is not ProxyKind.HTTP:
            _load_python_socks()

    def _check_credentials(self, kind: ProxyKind, shown: str) -> None:
        username, password = self.username or "", self.password
        if any(ord(c) < 32 or c == "\x7f" for c in username + (password or "")):
            raise ValueError(f"the credentials of the proxy {shown!r} hold control characters")
        if kind is ProxyKind.SOCKS4A:
            if password is not None:
                raise ValueError(
                    f"the SOCKS4a proxy {shown!r} was given a password, which SOCKS4a "
                    "cannot send; use socks5:// for a user name and password"
                )
            return
        if password is None:
            raise ValueError(
                f"the {kind.label} proxy {shown!r} was given a user name without a "
                "password; give both (user:password@) or neither"
            )
        if kind is ProxyKind.HTTP and ":" in username:
            raise ValueError(
                f"the user name of the HTTP proxy {shown!r} holds ':', which Basic "
                "authentication cannot carry"
            )
        if kind is ProxyKind.SOCKS5 and (
            not username or len(username.encode()) > 255 or len(password.encode()) > 255
        ):
            raise ValueError(
                f"the SOCKS5 proxy {shown!r} needs a user name and a password of "
                "1 to 255 bytes each (RFC 1929)"
            )

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        """Parse a proxy URL: ``scheme://[user[:password]@]host[:port]``.

        The schemes are ``socks5`` (``socks5h`` too, the same), ``socks4a``
        and ``http``; SOCKS ports default to 1080, an HTTP proxy's port must
        be given. The user name and password are percent-decoded.

        Args:
            url: the proxy URL.

        Raises:
            ValueError: an unsupported scheme, a missing host or port, a
                path, query or fragment. The message quotes the URL with its
                password masked.
            ImportError: a SOCKS proxy without the ``proxy`` extra.
        """
        if not isinstance(url, str):
            raise TypeError(f"a proxy must be a Proxy or a URL str, not {type(url).__name__}")
        text = url.strip()
        shown = _shown(text)
        if "://" not in text:
            raise ValueError(
                f"invalid proxy {shown!r}: expected a URL such as socks5://host:1080, "
                "socks4a://host:1080 or http://host:3128"
            )
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ValueError(
                f"invalid proxy {shown!r}: bad host or port (percent-encode '/', '?', "
                "'#', '@' and ':' in the user name and password)"
            ) from None
        scheme = parts.scheme.lower()
        if scheme in _REFUSED_SCHEMES:
            raise ValueError(f"unsupported proxy {shown!r}: {_REFUSED_SCHEMES[scheme]}")
        kind = _SCHEMES.get(scheme)
        if kind is None:
            raise ValueError(
                f"unsupported proxy scheme in {shown!r}: expected socks5://, socks4a:// or http://"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"invalid proxy {shown!r}: a proxy URL has no path, query or fragment")
        host = parts.hostname
        if not host:
            raise ValueError(f"invalid proxy {shown!r}: the URL has no host")
        if port is None:
            port = kind.default_port
            if port is None:
                raise ValueError(
                    f"invalid proxy {shown!r}: give the HTTP proxy's port, as in "
                    "http://proxy.example:3128"
                )
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        if username == "" and password is None:
            username = None
        return cls(kind, host, port, username, password)

    @property
    def address(self) -> str:
        """``host:port`` (``[host]:port`` for an IPv6 address)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def description(self) -> str:
        """The proxy as messages name it: "the SOCKS5 proxy 192.0.2.1:1080"."""
        return f"the {self.kind.label} proxy {self.address}"

    def __str__(self) -> str:
        user = "" if self.username is None else f"{self.username}:***@"
        if self.kind is ProxyKind.SOCKS4A and self.username is not None:
            user = f"{self.username}@"
        return f"{self.kind.value}://{user}{self.address}"


# --------------------------------------------------------------------------- connecting


async def open_tunnel(
    proxy: Proxy,
    host: str,
    port: int,
    *,
    local_address: str | None,
) -> ByteStream:
    """Connect to ``host``:``port`` through ``proxy``; a byte stream to the server.

    The caller bounds the whole of it with a cancel scope.

    Raises:
        SmtpConnectError: the proxy could not be reached, refused the
            credentials or the request, or could not reach the server.
        SmtpTimeoutError: python-socks' own timeout ran out.
    """
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if proxy.kind is ProxyKind.HTTP:
            return await _http_tunnel(proxy, host, port, local_address, target)
        return await _socks_tunnel(proxy, host, port, local_address)
    except SmtpError:
        raise
    except Exception as exc:
        raise _tunnel_error(exc, proxy, target) from exc


async def _socks_tunnel(
    proxy: Proxy, host: str, port: int, local_address: str | None
) -> ByteStream:
    _load_python_socks()
    # python-socks wants a timeout of its own: the caller's cancel scope ends first.
    deadline = anyio.current_effective_deadline()
    timeout = deadline - anyio.current_time() + 1.0 if deadline != math.inf else None
    from python_socks import ProxyType

    kind = ProxyType.SOCKS5 if proxy.kind is ProxyKind.SOCKS5 else ProxyType.SOCKS4
    if running_on_asyncio():
        from python_socks.async_.asyncio import Proxy as AsyncioProxy

        sock = await AsyncioProxy(
            kind, proxy.host, proxy.port, proxy.username, proxy.password, rdns=True
        ).connect(
            host,
            port,
            timeout=timeout,
            local_addr=(local_address, 0) if local_address is not None else None,
        )
        return await _AsyncioByteStream.from_socket(sock)
    from python_socks.async_.anyio import Proxy as AnyioProxy

    return await AnyioProxy(
        kind, proxy.host, proxy.port, proxy.username, proxy.password, rdns=True
    ).connect(host, port, timeout=timeout, local_host=local_address)


async def _http_tunnel(
    proxy: Proxy, host: str, port: int, local_address: str | None, target: str
) -> ByteStream:
    try:
        stream = await open_tcp_stream(proxy.host, proxy.port, local_address)
    except OSError as exc:
        raise _unreachable(exc, proxy, target) from exc
    try:
        await stream.send(_connect_request(proxy, host, port))
        status, reason = await _read_answer(stream, proxy, target)
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    if status // 100 != 2:
        await anyio.aclose_forcefully(stream)
        raise _http_refusal(status, reason, proxy, target)
    return stream


def _connect_request(proxy: Proxy, host: str, port: int) -> bytes:
    name = host if host.isascii() else host.encode("idna").decode("ascii")
    authority = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.username is not None:
        token = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()
        lines.append(f"Proxy-Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def _read_answer(stream: ByteStream, proxy: Proxy, target: str) -> tuple[int, str]:
    """Read the proxy's answer to CONNECT up to its blank line; its status and reason.

    One byte at a time: what follows the blank line is the SMTP server's and
    stays in the stream.
    """
    head = bytearray()
    status: tuple[int, str] | None = None
    while not head.endswith((b"\r\n\r\n", b"\n\n")):
        if len(head) >= _MAX_HTTP_HEAD:
            raise SmtpConnectError(
                f"cannot connect to {target} through {proxy.description}: its answer to "
                f"CONNECT is longer than {_MAX_HTTP_HEAD} bytes"
            )
        try:
            head += await stream.receive(1)
        except anyio.EndOfStream:
            raise SmtpConnectError(
                f"cannot connect to {target} through {proxy.description}: the proxy "
                "closed the connection before answering CONNECT"
            ) from None
        if status is None and head.endswith(b"\n"):
            status = _status_line(bytes(head), proxy, target)
    assert status is not None
    return status


def _status_line(line: bytes, proxy: Proxy, target: str) -> tuple[int, str]:
    text = line.decode("latin-1").strip()
    version, _, rest = text.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not (len(code) == 3 and code.isdigit()):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise SmtpConnectError(
            f"cannot connect to {target} through {proxy.description}: it did not answer "
            f"CONNECT in HTTP ({shown!r}); is it an HTTP proxy?",
            transient=False,
        )
    return int(code), reason


def _http_refusal(status: int, reason: str, proxy: Proxy, target: str) -> SmtpConnectError:
    head = f"cannot connect to {target} through {proxy.description}"
    answer = f"{status} {reason[:80]}".strip()
    if status == 407:
        detail = (
            "it refused the user name and password"
            if proxy.username is not None
            else "it requires a user name and password (http://user:password@host:port)"
        )
        return SmtpConnectError(f"{head}: {detail} ({answer})", transient=False)
    if status in (502, 503, 504):
        return SmtpConnectError(f"{head}: the proxy could not reach the server ({answer})")
    return SmtpConnectError(
        f"{head}: the proxy refused the tunnel ({answer})", transient=status >= 500
    )


def _unreachable(exc: OSError, proxy: Proxy, target: str) -> SmtpConnectError:
    """The error for a proxy that cannot be reached (refused, unreachable, no such name)."""
    head = f"cannot connect to {target} through {proxy.description}"
    if isinstance(exc, socket.gaierror):
        unknown = exc.errno in {getattr(socket, n, None) for n in ("EAI_NONAME", "EAI_NODATA")}
        return SmtpConnectError(
            f"{head}: looking up the proxy's name {proxy.host!r} failed ({describe_error(exc)})",
            transient=not unknown,
        )
    return SmtpConnectError(f"{head}: cannot reach the proxy ({describe_error(exc)})")


# SOCKS5 replies (RFC 1928 6): reason, and whether trying again later may help.
_SOCKS5_REPLIES = {
    0x01: ("the proxy failed (general SOCKS server failure)", True),
    0x02: ("the proxy's rules do not allow the connection", False),
    0x03: ("the proxy cannot reach the server's network", True),
    0x04: ("the proxy cannot reach the server", True),
    0x05: ("the server refused the proxy's connection", True),
    0x06: ("the proxy's connection to the server timed out", True),
    0x07: ("the proxy does not support CONNECT", False),
    0x08: ("the proxy does not support the address type", False),
}


def _tunnel_error(exc: Exception, proxy: Proxy, target: str) -> SmtpError:
    """The lettre error for a foreign exception raised while the tunnel was made."""
    head = f"cannot connect to {target} through {proxy.description}"
    if proxy.kind is not ProxyKind.HTTP:
        error = _socks_error(exc, proxy, target, head)
        if error is not None:
            return error
    if isinstance(exc, (OSError, anyio.BrokenResourceError, anyio.EndOfStream)):
        return SmtpConnectError(
            f"{head}: the connection to the proxy broke ({describe_error(exc)})"
        )
    # A host name IDNA cannot encode, for one: trying again will not help.
    return SmtpConnectError(
        f"{head}: {type(exc).__name__}: {describe_error(exc)}",
        transient=not isinstance(exc, ValueError),
    )


def _socks_error(exc: Exception, proxy: Proxy, target: str, head: str) -> SmtpError | None:
    """The error for what python-socks raised, or None for other exceptions."""
    from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError

    if isinstance(exc, ProxyTimeoutError):
        return SmtpTimeoutError(f"connecting to {target} through {proxy.description} timed out")
    if isinstance(exc, ProxyConnectionError):
        cause = exc.__cause__
        return _unreachable(cause if isinstance(cause, OSError) else exc, proxy, target)
    if isinstance(exc, ProxyError):
        code = exc.error_code
        if proxy.kind is ProxyKind.SOCKS5 and code in _SOCKS5_REPLIES:
            reason, transient = _SOCKS5_REPLIES[code]
            return SmtpConnectError(f"{head}: {reason}", transient=transient)
        if proxy.kind is ProxyKind.SOCKS4A and code is not None:
            if code == 0x5B:
                return SmtpConnectError(f"{head}: the proxy refused or could not make it")
            return SmtpConnectError(
                f"{head}: the proxy refused the user id {proxy.username!r}", transient=False
            )
        return _socks_failure(str(exc), proxy, head)
    return None


def _socks_failure(detail: str, proxy: Proxy, head: str) -> SmtpConnectError:
    lowered = detail.lower()
    if "authentication failure" in lowered:
        return SmtpConnectError(
            f"{head}: the proxy refused the user name and password", transient=False
        )
    if "no acceptable authentication" in lowered:
        wanted = (
            "it accepts none of the authentication methods offered"
            if proxy.username is not None
            else "it requires a user name and password (socks5://user:password@host:port)"
        )
        return SmtpConnectError(f"{head}: {wanted}", transient=False)
    if "closed unexpectedly" in lowered:
        hint = (
            "; if it keeps doing so, check the proxy's user name and password"
            if proxy.username is not None
            else "; if it keeps doing so, it may require a user name and password"
        )
        return SmtpConnectError(
            f"{head}: the proxy closed the connection during the {proxy.kind.label} handshake{hint}"
        )
    return SmtpConnectError(f"{head}: the {proxy.kind.label} handshake failed ({detail})")
