"""Fixtures for the SMTP tests: trustme certificates and aiosmtpd servers."""

from __future__ import annotations

import pytest

from servers import AiosmtpdServer, ServerFactory


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
