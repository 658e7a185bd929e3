"""The local API stand-in, shared by the HTTP API transport tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_server import ApiServer, start, stop


@pytest.fixture(scope="session")
def api_server_session() -> Iterator[ApiServer]:
    server = start()
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture
def api(api_server_session: ApiServer) -> ApiServer:
    """The stand-in, with no request recorded and no answer queued."""
    api_server_session.reset()
    return api_server_session
