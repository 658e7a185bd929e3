"""SMTP exchangers on loopback addresses for the direct-delivery tests.

The fixtures (``dns_server``, ``mx_servers``) are imported by the conftest files
of the tests that deliver directly.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from anyio.abc import SocketStream
from dns_server import DnsServer

from lettre.dns.mta_sts import MemoryPolicyCache, MtaSts
from lettre.smtp.tls import TlsParameters
from lettre.transports.mx import MxTransport
from servers import SERVER_NAME, RecordingHandler, TlsMaterial

__all__ = [
    "HELLO",
    "EhloCountingHandler",
    "MxServers",
    "PolicyServer",
    "dns_server",
    "greeting_server",
    "mta_sts_for",
    "mx_servers",
    "mx_transport",
]

HELLO = "sender.lettre.test"
"""The name the transports under test say hello with."""


class _Controller(Controller):
    def __init__(self, handler: RecordingHandler, smtp_kwargs: dict[str, Any], **kwargs: Any):
        super().__init__(handler, **kwargs)
        self._smtp_kwargs = smtp_kwargs

    def factory(self) -> SMTP:
        return SMTP(self.handler, **self._smtp_kwargs)


class EhloCountingHandler(RecordingHandler):
    """Also records each EHLO (one per connection without STARTTLS)."""

    async def handle_EHLO(
        self, server: object, session: Any, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd's own EHLO would have done
        self.commands.append("EHLO")
        return responses


class MxServers:
    """aiosmtpd exchangers on 127.0.0.x, all on ``port``.

    Args:
        port: the port every exchanger listens on.
        tls_material: the test CA; each exchanger with STARTTLS gets a
            certificate for the names it is started with.
    """

    def __init__(self, port: int, tls_material: TlsMaterial) -> None:
        self.port = port
        self.tls_material = tls_material
        self._controllers: list[Controller] = []
        self.certificates: dict[str, bytes] = {}
        """The DER certificate each exchanger presents, by address."""
        self.chains: dict[str, list[bytes]] = {}
        """The DER certificates each exchanger sends, leaf first, by address."""

    def start(
        self,
        host: str,
        *,
        starttls: bool = True,
        cert_names: tuple[str, ...] = (),
        handler: RecordingHandler | None = None,
        issuer: trustme.CA | None = None,
    ) -> RecordingHandler:
        """Start an exchanger on ``host``; return its handler (what it received).

        Args:
            host: a 127.0.0.x address.
            starttls: offer STARTTLS.
            cert_names: the names its certificate is for (default: ``host``).
            handler: the handler (default: a new RecordingHandler).
            issuer: the CA that issues its certificate (default: the test CA);
                an intermediate's certificate is sent along with the leaf.
        """
        handler = handler if handler is not None else RecordingHandler()
        smtp_kwargs: dict[str, Any] = {"hostname": SERVER_NAME, "timeout": 30}
        if starttls:
            ca = issuer if issuer is not None else self.tls_material.ca
            cert = ca.issue_cert(*(cert_names or (host,)))
            chain = [
                ssl.PEM_cert_to_DER_cert(p.bytes().decode("ascii")) for p in cert.cert_chain_pems
            ]
            self.certificates[host] = chain[0]
            self.chains[host] = chain
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            smtp_kwargs["tls_context"] = context
        controller = _Controller(handler, smtp_kwargs, hostname=host, port=self.port)
        controller.start()
        self._controllers.append(controller)
        return handler

    def stop(self) -> None:
        for controller in self._controllers:
            controller.stop()
        self._controllers.clear()


@asynccontextmanager
async def greeting_server(host: str, port: int, greeting: bytes) -> AsyncIterator[list[int]]:
    """A listener in the test's loop that greets each client with ``greeting`` (b"": silence).

    Yields a list that gets one entry per connection accepted.
    """
    accepted: list[int] = []
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            accepted.append(1)
            # Greet (or stay silent), then hold the connection until the client leaves.
            with anyio.move_on_after(5):
                if greeting:
                    await stream.send(greeting)
                try:
                    while await stream.receive():
                        pass
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield accepted
        finally:
            tg.cancel_scope.cancel()


class PolicyServer:
    """An HTTPS server (its own thread) serving MTA-STS policies by Host name.

    Args:
        host: the loopback address to listen on (any free port).
        tls_material: the test CA; the certificate is for ``cert_names``.
        cert_names: the names the server's certificate is for.
    """

    def __init__(self, host: str, tls_material: TlsMaterial, cert_names: tuple[str, ...]) -> None:
        self.host = host
        self.responses: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str]] = []  # (Host header, path)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = (self.headers.get("Host") or "").split(":")[0].lower()
                server.requests.append((name, self.path))
                status, headers, body = server.responses.get(
                    name, (404, {"Content-Type": "text/plain"}, b"no policy here")
                )
                if self.path != "/.well-known/mta-sts.txt":
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_material.ca.issue_cert(*cert_names).configure_cert(context)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def policy(
        self,
        domain: str,
        text: str,
        *,
        status: int = 200,
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Serve ``text`` as the policy at ``mta-sts.<domain>``."""
        all_headers = {"Content-Type": content_type, **(headers or {})}
        self.responses[f"mta-sts.{domain}"] = (status, all_headers, text.encode())

    def fetches(self, domain: str) -> int:
        """How many times the policy of ``domain`` was asked for."""
        return sum(1 for name, _ in self.requests if name == f"mta-sts.{domain}")

    def start(self) -> PolicyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


def mx_transport(dns_server: DnsServer, mx_servers: MxServers, **kwargs: object) -> MxTransport:
    """An MxTransport that asks ``dns_server`` and delivers on ``mx_servers``' port."""
    return MxTransport(
        hello_name=HELLO,
        nameservers=["127.0.0.1"],
        dns_port=dns_server.port,
        port=mx_servers.port,
        timeout=5.0,
        **kwargs,  # type: ignore[arg-type]
    )


def mta_sts_for(policy_server: PolicyServer, tls_material: TlsMaterial) -> MtaSts:
    """An MtaSts that fetches from ``policy_server`` (trusting only the test CA), cache empty."""
    return MtaSts(
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem, use_system_trust=False),
        port=policy_server.port,
        timeout=3.0,
        cache=MemoryPolicyCache(),
    )


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A DNS server with no records yet; each test adds its own."""
    with DnsServer() as server:
        yield server


def _shared_port() -> int:
    """A port free on 127.0.0.2 (and, almost surely, on the other loopback addresses)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mx_servers(tls_material: TlsMaterial) -> Iterator[MxServers]:
    """Starts aiosmtpd exchangers on 127.0.0.x and one shared port; stops them after the test."""
    servers = MxServers(_shared_port(), tls_material)
    try:
        yield servers
    finally:
        servers.stop()
