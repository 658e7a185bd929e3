"""Fixtures for the hostile suite: trustme certificates and real aiosmtpd servers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hostile_support import ServerFactory

from lettre.smtp.tls import TlsParameters
from servers import AiosmtpdServer, TlsMaterial


@pytest.fixture(scope="session")
def tls_material() -> TlsMaterial:
    """A CA and a server certificate for 127.0.0.1, ::1 and localhost."""
    return TlsMaterial.create()


@pytest.fixture(scope="session")
def tls_params(tls_material: TlsMaterial) -> TlsParameters:
    """Client TLS parameters trusting the test CA."""
    return TlsParameters(ca_data=tls_material.ca_pem)


@pytest.fixture
def smtpd(tls_material: TlsMaterial) -> Iterator[ServerFactory]:
    """Start aiosmtpd servers: ``smtpd(tls="starttls", auth=True, ...)``; stopped afterwards."""
    started: list[AiosmtpdServer] = []

    def start(**kwargs: Any) -> AiosmtpdServer:
        if kwargs.get("tls", "none") != "none":
            kwargs.setdefault("tls_material", tls_material)
        server = AiosmtpdServer(**kwargs).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(autouse=True)
def _quiet_aiosmtpd() -> Iterator[None]:
    # aiosmtpd logs every session at INFO; keep the output readable.
    logger = logging.getLogger("mail.log")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
