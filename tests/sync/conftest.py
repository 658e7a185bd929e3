"""Fixtures of the blocking API's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sync_support import LOOP_IDS, LOOPS

from lettre import BlockingTransport


@pytest.fixture(params=LOOPS, ids=LOOP_IDS)
def loop(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Keyword arguments of BlockingTransport choosing each event loop in turn."""
    backend, options = request.param
    return {"backend": backend, "backend_options": options}


@pytest.fixture
def closing() -> Iterator[list[BlockingTransport]]:
    """A list whose BlockingTransports are closed after the test."""
    made: list[BlockingTransport] = []
    try:
        yield made
    finally:
        for transport in made:
            transport.close()


@pytest.fixture(autouse=True)
def _loop_threads_do_not_fail(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A loop thread that fails logs it on ``lettre.sync``: that fails the test."""
    yield
    failures = [r for r in caplog.records if r.name == "lettre.sync" and r.levelno >= 40]
    assert not failures, [r.getMessage() for r in failures]
