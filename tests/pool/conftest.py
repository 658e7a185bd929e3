"""Fixtures for the pool tests: aiosmtpd servers from tests/servers.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from servers import smtpd as smtpd  # noqa: PLC0414 - re-exported fixture
from servers import tls_material as tls_material  # noqa: PLC0414 - re-exported fixture


@pytest.fixture(autouse=True)
def _quiet_aiosmtpd() -> Iterator[None]:
    logger = logging.getLogger("mail.log")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
