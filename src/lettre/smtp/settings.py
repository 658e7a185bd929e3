"""Everything needed to open and use one SMTP connection, validated once.

:class:`SmtpSettings` is shared by :class:`~lettre.smtp.client.SmtpClient`,
:class:`~lettre.transports.smtp.SmtpTransport` and the connection pool: it is
immutable, so one instance serves every connection made from it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

import anyio

from lettre.smtp.auth import AuthMechanism, Credentials, TokenProvider
from lettre.smtp.proxy import Proxy
from lettre.smtp.tls import TlsMode, TlsParameters

__all__ = [
    "DEFAULT_DATA_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "LMTP_PORT",
    "LmtpSettings",
    "SmtpSettings",
    "address_literal",
    "default_hello_name",
    "is_valid_hello_domain",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for each reply (and for the connection) unless configured."""

DEFAULT_DATA_TIMEOUT = 600.0

LMTP_PORT = 24
"""The TCP port LMTP connections use unless configured (RFC 2033 names none; 24 is usual)."""
"""Seconds to wait for the reply to the end of the data: RFC 5321 4.5.3.2 says 10 minutes."""

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


def is_valid_hello_domain(name: str) -> bool:
    """Whether ``name`` can go into EHLO as a domain.

    It must be an ASCII (A-label) fully qualified domain name: LDH labels of at
    most 63 characters, at least two labels, 253 characters in all.
    """
    if not name or len(name) > 253 or not name.isascii():
        return False
    labels = name.rstrip(".").split(".")
    if len(labels) < 2:
        return False
    return all(_LABEL.match(label) for label in labels)


def _valid_address_literal(name: str) -> bool:
    if not (name.startswith("[") and name.endswith("]")):
        return False
    inner = name[1:-1]
    try:
        if inner[:5].upper() == "IPV6:":
            ipaddress.IPv6Address(inner[5:])
        else:
            ipaddress.IPv4Address(inner)
    except ValueError:
        return False
    return True


def address_literal(address: str) -> str:
    """The RFC 5321 address literal of an IP address: ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]``.

    Raises:
        ValueError: when ``address`` is not an IP address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"[{ip.ipv4_mapped}]"
        return f"[IPv6:{ip.compressed}]"
    return f"[{ip}]"


_fqdn_cache: list[str] = []


async def default_hello_name(local_ip: str | None = None) -> str:
    """The EHLO name to use when none is configured.

    The machine's fully qualified domain name (``socket.getfqdn()``, looked up
    once per process in a worker thread, since it may query DNS) when it is a
    valid domain; otherwise the address literal of ``local_ip`` (the local
    address of the connection), or ``[127.0.0.1]`` when that is unknown.
    """
    if not _fqdn_cache:
        name = await anyio.to_thread.run_sync(socket.getfqdn)
        _fqdn_cache.append(name)
    fqdn = _fqdn_cache[0]
    if is_valid_hello_domain(fqdn):
        return fqdn.rstrip(".")
    if local_ip is not None:
        try:
            return address_literal(local_ip)
        except ValueError:
            pass
    return "[127.0.0.1]"


# Characters no host name or IP address holds; a host given with one of them is
# most likely a URL, a path or an address mistaken for a host.
_NOT_IN_HOST = frozenset("/\\?#@[]")


def _redacted(text: str) -> str:
    """``text`` with everything before its last ``@`` (a user name and password) hidden."""
    head, at, tail = text.rpartition("@")
    if not at:
        return text
    scheme, sep, _ = head.partition("://")
    return f"{scheme}{sep}...@{tail}" if sep else f"...@{tail}"


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _check_host(value: object) -> str:
    """Validate a host name or IP address; return it without brackets or surrounding space.

    Host names and IPv4 addresses are accepted as they are; an IPv6 address
    with or without brackets (``::1``, ``[::1]``, ``fe80::1%eth0``). A port,
    a URL or a user name in the host is refused with the call to use instead.
    """
    if not isinstance(value, str):
        raise TypeError(f"host must be a str, not {type(value).__name__}")
    host = value.strip()
    if not host:
        raise ValueError(f"host must be a host name or an IP address, not {value!r}")
    if "://" in host:
        shown = _redacted(host)
        example = "SmtpTransport.from_url(url)"
        if shown == host:
            example = f"SmtpTransport.from_url({host!r})"
        raise ValueError(
            f"host {shown!r} is a URL, not a host name: use {example}, or pass the host name alone"
        )
    if "@" in host:
        raise ValueError(
            f"host {_redacted(host)!r} holds a user name: pass the host name alone and "
            "credentials=Credentials(username, password)"
        )
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in host):
        raise ValueError(f"invalid host {host!r}: a host name has no spaces or control characters")
    name, port = host, None
    if host.startswith("["):
        inner, bracket, rest = host[1:].partition("]")
        if not bracket:
            raise ValueError(f"invalid host {host!r}: the bracket is not closed")
        name = inner
        if rest:
            port = rest[1:] if rest.startswith(":") else rest
            if not rest.startswith(":") or not _is_port(port):
                raise ValueError(f"invalid host {host!r}: expected [IPv6 address] alone")
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
        if not _is_port(port):
            raise ValueError(f"invalid host {host!r}: expected a host name or an IP address")
    if port is not None:
        shown_name = name if ":" not in name else f"[{name}]"
        raise ValueError(
            f"host {host!r} includes a port: pass the port on its own, "
            f"SmtpTransport({name!r}, {int(port)}), or use a URL, "
            f"SmtpTransport.from_url('smtp://{shown_name}:{int(port)}')"
        )
    if ":" in name:
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            raise ValueError(
                f"invalid host {host!r}: expected a host name, an IPv4 address or an IPv6 address"
            ) from None
    elif not name or not _NOT_IN_HOST.isdisjoint(name):
        raise ValueError(f"invalid host {host!r}: expected a host name or an IP address")
    return name


def _check_timeout(name: str, value: float | None, *, optional: bool) -> float | None:
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} must be a positive number of seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds")
    if not value > 0 or math.isnan(value):
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _check_unix_socket(settings: LmtpSettings) -> str:
    """Validate ``settings.unix_socket``; return it as a str."""
    value: object = settings.unix_socket
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"unix_socket must be a path (str), not {type(value).__name__}")
    if not value or "\x00" in value:
        raise ValueError(f"unix_socket must be the path of a Unix socket, not {value!r}")
    if settings.proxy is not None or settings.local_address is not None:
        raise ValueError(
            f"a Unix socket ({value!r}) is reached directly: it takes no proxy or local_address"
        )
    return value


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The settings of SMTP connections to one server.

    Args:
        host: the server's host name or IP address.
        port: the TCP port; defaults to the TLS mode's port (465 for IMPLICIT,
            587 for STARTTLS, 25 otherwise).
        tls: the :class:`TlsMode` (default STARTTLS, required).
        tls_parameters: certificate and version settings; the secure defaults
            when None.
        credentials: user name and password for AUTH; None to skip AUTH.
        token_provider: an async callable returning an OAuth 2.0 token; enables
            the token mechanisms, XOAUTH2 and OAUTHBEARER (the user name comes
            from ``credentials``).
        auth_mechanisms: the mechanisms to try, in order, instead of the
            default preference.
        allow_insecure_auth: allow AUTH over a connection that is not encrypted.
        hello_name: the name sent with EHLO; default: the machine's fully
            qualified name, or an address literal when that is not a domain.
        timeout: seconds to wait for each reply (and each write).
        connect_timeout: seconds for the TCP connection and the implicit TLS
            handshake; defaults to ``timeout``.
        data_timeout: seconds to wait for the reply to the end of the data
            (and for the content to be written); RFC 5321 recommends 600.
        deadline: seconds one whole send may take, connecting included; None
            for no overall limit beyond the per-reply timeouts.
        local_address: the local IP address to connect from.
        proxy: a proxy to connect through: a :class:`~lettre.smtp.proxy.Proxy`
            or its URL (``socks5://user:password@host:1080``,
            ``socks4a://host:1080``, ``http://user:password@host:3128``). The
            proxy resolves ``host``; the certificate is still checked against
            ``host`` (or ``tls_parameters.server_name``). SOCKS needs the
            ``proxy`` extra.
        require_all_recipients: refuse the whole send (nothing is delivered)
            when the server refuses any recipient, instead of delivering to
            the others and reporting the refusals.

    Raises:
        TypeError: on an argument of the wrong type.
        ValueError: on an invalid value (port out of range, negative timeout,
            a token provider without a user name, a hello name with spaces, a
            proxy URL of an unknown scheme...).
        ImportError: a SOCKS proxy without the ``proxy`` extra (python-socks).
    """

    # Each field is defined here once. Its ``url`` metadata says how an SMTP
    # URL's query parameter of the same name sets it (lettre.smtp.url); a
    # field without it is not settable from a URL (or is part of the URL's
    # authority: host, port, credentials).
    host: str
    port: int | None = None
    tls: TlsMode = field(default=TlsMode.STARTTLS, metadata={"url": "tls"})
    tls_parameters: TlsParameters | None = None
    credentials: Credentials | None = None
    token_provider: TokenProvider | None = field(default=None, repr=False)
    auth_mechanisms: tuple[AuthMechanism, ...] | None = field(
        default=None, metadata={"url": "mechanisms", "url_aliases": ("auth",)}
    )
    allow_insecure_auth: bool = field(default=False, metadata={"url": "bool"})
    hello_name: str | None = field(default=None, metadata={"url": "str"})
    timeout: float = field(default=DEFAULT_TIMEOUT, metadata={"url": "seconds"})
    connect_timeout: float | None = field(default=None, metadata={"url": "seconds"})
    data_timeout: float = field(default=DEFAULT_DATA_TIMEOUT, metadata={"url": "seconds"})
    deadline: float | None = field(default=None, metadata={"url": "seconds"})
    local_address: str | None = field(default=None, metadata={"url": "str"})
    proxy: Proxy | None = field(default=None, metadata={"url": "str"})
    require_all_recipients: bool = field(default=False, metadata={"url": "bool"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", _check_host(self.host))
        object.__setattr__(self, "tls", TlsMode.parse(self.tls))
        if self.port is None:
            object.__setattr__(self, "port", self.tls.default_port)
        elif isinstance(self.port, bool) or not isinstance(self.port, int):
            raise TypeError("port must be an int")
        elif not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {self.port}")
        if self.tls_parameters is not None and not isinstance(self.tls_parameters, TlsParameters):
            raise TypeError("tls_parameters must be a TlsParameters")
        if self.credentials is not None and not isinstance(self.credentials, Credentials):
            raise TypeError("credentials must be a Credentials(username, password)")
        if self.token_provider is not None:
            if not callable(self.token_provider):
                raise TypeError("token_provider must be an async callable returning a token")
            if self.credentials is None:
                raise ValueError(
                    "the token mechanisms (XOAUTH2, OAUTHBEARER) need a user name: pass "
                    "credentials=Credentials(username) with the token_provider"
                )
        elif self.credentials is not None and self.credentials.password is None:
            raise ValueError(
                "credentials without a password need a token_provider (XOAUTH2, OAUTHBEARER)"
            )
        if self.auth_mechanisms is not None:
            mechanisms = tuple(AuthMechanism.parse(m) for m in _iterable(self.auth_mechanisms))
            if not mechanisms:
                raise ValueError("auth_mechanisms must name at least one mechanism")
            object.__setattr__(self, "auth_mechanisms", mechanisms)
        if self.hello_name is not None:
            name = self.hello_name
            if not isinstance(name, str):
                raise TypeError("hello_name must be a str")
            if not (is_valid_hello_domain(name) or _valid_address_literal(name)):
                raise ValueError(
                    f"invalid hello_name {name!r}: expected a fully qualified domain name "
                    "or an address literal such as [192.0.2.1]"
                )
        object.__setattr__(self, "timeout", _check_timeout("timeout", self.timeout, optional=False))
        object.__setattr__(
            self,
            "connect_timeout",
            _check_timeout("connect_timeout", self.connect_timeout, optional=True),
        )
        object.__setattr__(
            self,
            "data_timeout",
            _check_timeout("data_timeout", self.data_timeout, optional=False),
        )
        object.__setattr__(
            self, "deadline", _check_timeout("deadline", self.deadline, optional=True)
        )
        if self.proxy is not None and not isinstance(self.proxy, Proxy):
            object.__setattr__(self, "proxy", Proxy.from_url(self.proxy))
        if self.local_address is not None:
            try:
                ipaddress.ip_address(self.local_address)
            except ValueError:
                raise ValueError(
                    f"local_address must be an IP address, not {self.local_address!r}"
                ) from None

    @property
    def effective_port(self) -> int:
        """The port to connect to (the explicit one or the TLS mode's default)."""
        return self.port if self.port is not None else self.tls.default_port

    @property
    def effective_connect_timeout(self) -> float:
        """Seconds allowed for the TCP connection (and implicit TLS handshake)."""
        return self.connect_timeout if self.connect_timeout is not None else self.timeout

    @property
    def uses_tls(self) -> bool:
        """Whether connections may use TLS (every mode but NONE)."""
        return self.tls is not TlsMode.NONE

    @property
    def server_name(self) -> str:
        """The name the server's certificate is checked against."""
        params = self.tls_parameters
        if params is not None and params.server_name is not None:
            return params.server_name
        return self.host

    def create_ssl_context(self) -> ssl.SSLContext | None:
        """Build the ``ssl.SSLContext`` for these settings (None for TlsMode.NONE).

        Raises:
            TlsError: when the certificates cannot be loaded.
        """
        if not self.uses_tls:
            return None
        return (self.tls_parameters or TlsParameters()).create_context()


def _iterable(
    value: Iterable[AuthMechanism | str] | AuthMechanism | str,
) -> list[AuthMechanism | str]:
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return list(value)


@dataclass(frozen=True, slots=True)
class LmtpSettings(SmtpSettings):
    """The settings of LMTP (RFC 2033) connections to one server.

    Those of :class:`SmtpSettings`, with LMTP's defaults (port 24, no TLS),
    and a Unix socket as an alternative to ``host``:``port``. A client made
    with them opens its sessions with LHLO and reads one reply per accepted
    recipient after each message's content.

    Args:
        unix_socket: the path of a Unix socket to connect to instead of
            ``host``:``port`` (``host`` still names the server for TLS);
            no ``proxy`` or ``local_address`` with it.

    Raises:
        TypeError, ValueError: as for :class:`SmtpSettings`, and for a
            ``unix_socket`` that is not a path.
    """

    port: int | None = LMTP_PORT
    tls: TlsMode = field(default=TlsMode.NONE, metadata={"url": "tls"})
    unix_socket: str | None = None

    def __post_init__(self) -> None:
        if self.port is None:
            object.__setattr__(self, "port", LMTP_PORT)
        SmtpSettings.__post_init__(self)
        if self.unix_socket is not None:
            object.__setattr__(self, "unix_socket", _check_unix_socket(self))
