"""Fixtures for the hooks and OpenTelemetry tests.

The SES, direct-delivery and HTTP API stand-ins live with their own tests;
their support modules are imported from there (their directories are put on
``sys.path``), and the fixtures that start them are made here again.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for _sub in ("ses", "direct", "transports/http"):
    _path = str(_TESTS / _sub)
    if _path not in sys.path:
        sys.path.append(_path)

from direct_support import MxServers  # noqa: E402
from dns_server import DnsServer  # noqa: E402
from observability_support import Otel, Recorder  # noqa: E402
from ses_support import CREDENTIALS, REGION, SENDER, Moto  # noqa: E402

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


# -- SES: a moto server ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Moto:
    """The moto server, reset, with SENDER verified; the user's AWS configuration kept out."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    handle = Moto(moto_server, None)
    handle.admin = handle.boto3_client()
    handle.reset()
    handle.verify(SENDER)
    return handle


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


# -- HTTP email APIs: the local stand-in -----------------------------------------------------


@pytest.fixture(scope="session")
def api_server_session() -> Iterator[Any]:
    from api_server import start, stop

    server = start()
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture
def api(api_server_session: Any) -> Any:
    api_server_session.reset()
    return api_server_session
