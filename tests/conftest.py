"""Shared test configuration and fixtures; every async test runs on asyncio, uvloop and trio.

``smtpd`` starts real aiosmtpd servers and ``tls_material`` holds the session's trustme
CA and server certificate (both from ``tests/servers.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import settings

from lettre.smtp.tls import TlsParameters
from servers import TlsMaterial
from servers import smtpd as smtpd  # noqa: PLC0414 - shared fixture
from servers import tls_material as tls_material  # noqa: PLC0414 - shared fixture


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Run each ``@pytest.mark.anyio`` test on asyncio, asyncio with uvloop, and trio."""
    return request.param  # type: ignore[no-any-return]


# Property tests are deterministic (the same examples on every run) and never
# fail on the machine's speed; the examples explored differ per test function.
settings.register_profile("lettre", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("lettre")


@pytest.fixture(autouse=True)
def _quiet_aiosmtpd() -> Iterator[None]:
    """aiosmtpd logs every session at INFO; keep test output readable."""
    logger = logging.getLogger("mail.log")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


@pytest.fixture(scope="session")
def tls_params(tls_material: TlsMaterial) -> TlsParameters:
    """Client TLS parameters trusting the test CA (and the system store)."""
    return TlsParameters(ca_data=tls_material.ca_pem)
