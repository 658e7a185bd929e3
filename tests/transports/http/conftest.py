"""The local API stand-in, shared by the HTTP API transport tests (fixtures in api_server)."""

from __future__ import annotations

from api_server import api as api  # noqa: PLC0414 - shared fixture
from api_server import api_server_session as api_server_session  # noqa: PLC0414 - shared fixture
