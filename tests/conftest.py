"""Shared test configuration: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest
from hypothesis import settings


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Run each ``@pytest.mark.anyio`` test once per event loop."""
    return request.param  # type: ignore[no-any-return]


# Property tests are deterministic (the same examples on every run) and never
# fail on the machine's speed; the examples explored differ per test function.
settings.register_profile("lettre", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("lettre")
