"""Fixtures for the hooks and OpenTelemetry tests.

The SES, direct-delivery and HTTP API stand-ins live with their own tests;
their support modules are imported from there (their directories are put on
``sys.path``), the fixtures that start moto and the HTTP API stand-in with
them. The direct-delivery fixtures live in ``tests/direct/conftest.py``, which
cannot be imported: they are made here again.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for _sub in ("ses", "direct", "transports/http"):
    _path = str(_TESTS / _sub)
    if _path not in sys.path:
        sys.path.append(_path)

from api_server import api as api  # noqa: E402, PLC0414 - shared fixture
from api_server import api_server_session as api_server_session  # noqa: E402, PLC0414
from direct_support import MxServers  # noqa: E402
from dns_server import DnsServer  # noqa: E402
from observability_support import Otel, Recorder  # noqa: E402
from ses_support import aws_environment as aws_environment  # noqa: E402, PLC0414
from ses_support import moto as moto  # noqa: E402, PLC0414 - shared fixture
from ses_support import moto_server as moto_server  # noqa: E402, PLC0414

import lettre.hooks  # noqa: E402
from servers import TlsMaterial  # noqa: E402


@pytest.fixture(autouse=True)
def _no_hook_left_registered() -> Iterator[None]:
    """A test that registers a hook must unregister it: the next tests would see it."""
    before = lettre.hooks.registered()
    yield
    left = lettre.hooks.registered()
    for hook in left:
        if hook not in before:
            lettre.hooks.unregister(hook)
    assert left == before, f"hooks left registered: {left}"


@pytest.fixture
def recorder() -> Recorder:
    """A hook that records every event."""
    return Recorder()


@pytest.fixture
def otel() -> Iterator[Otel]:
    """An OpenTelemetryHook on SDK providers of its own: spans and metrics kept in memory."""
    handle = Otel.make()
    try:
        yield handle
    finally:
        handle.shutdown()


# -- direct delivery: a DNS server and exchangers on 127.0.0.x -------------------------------


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.fixture
def mx_servers(tls_material: TlsMaterial) -> Iterator[MxServers]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        port = int(sock.getsockname()[1])
    servers = MxServers(port, tls_material)
    try:
        yield servers
    finally:
        servers.stop()
