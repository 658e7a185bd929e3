"""Fixtures for the hooks and OpenTelemetry tests.

The SES, direct-delivery and HTTP API stand-ins live with their own tests;
their support modules are imported from there (their directories are put on
``sys.path``), the fixtures that start moto, the HTTP API stand-in, the DNS
server and the exchangers on 127.0.0.x with them.
"""

from __future__ import annotations

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
from direct_support import dns_server as dns_server  # noqa: E402, PLC0414 - shared fixture
from direct_support import mx_servers as mx_servers  # noqa: E402, PLC0414 - shared fixture
from observability_support import Otel, Recorder  # noqa: E402
from ses_support import aws_environment as aws_environment  # noqa: E402, PLC0414
from ses_support import moto as moto  # noqa: E402, PLC0414 - shared fixture
from ses_support import moto_server as moto_server  # noqa: E402, PLC0414

import lettre.hooks  # noqa: E402


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
