"""Fixtures for the SMTP tests: trustme certificates and aiosmtpd servers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from lettre.smtp.tls import TlsParameters
from servers import AiosmtpdServer, ServerFactory, TlsMaterial
from servers import smtpd as smtpd  # noqa: PLC0414 - re-exported fixture
from servers import tls_material as tls_material  # noqa: PLC0414 - re-exported fixture


@pytest.fixture(scope="session")
def tls_params(tls_material: TlsMaterial) -> TlsParameters:
    """Client TLS parameters trusting the test CA (and the system store)."""
    return TlsParameters(ca_data=tls_material.ca_pem)


@pytest.fixture
def plain_server(smtpd: ServerFactory) -> AiosmtpdServer:
    """aiosmtpd without TLS or AUTH."""
    return smtpd()


@pytest.fixture
def starttls_server(smtpd: ServerFactory) -> AiosmtpdServer:
    """aiosmtpd offering STARTTLS, then AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2) over TLS."""
    return smtpd(tls="starttls", auth=True)


@pytest.fixture
def implicit_server(smtpd: ServerFactory) -> AiosmtpdServer:
    """aiosmtpd speaking TLS from the first byte, with AUTH."""
    # aiosmtpd only counts STARTTLS as TLS for auth_require_tls.
    return smtpd(tls="implicit", auth=True, auth_require_tls=False)


@pytest.fixture(autouse=True)
def _quiet_aiosmtpd() -> Iterator[None]:
    # aiosmtpd logs every session at INFO; keep test output readable.
    logger = logging.getLogger("mail.log")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
