"""A real moto server on a loopback port, shared by the SES tests (fixtures in ses_support)."""

from __future__ import annotations

import pytest
from ses_support import aws_environment as aws_environment  # noqa: PLC0414 - shared fixture
from ses_support import moto as moto  # noqa: PLC0414 - shared fixture
from ses_support import moto_server as moto_server  # noqa: PLC0414 - shared fixture


@pytest.fixture(autouse=True)
def _aws_environment_always(aws_environment: None) -> None:
    """Every SES test keeps the user's AWS configuration out, with a server or without."""
