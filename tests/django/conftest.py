"""A real Django for the email backend's tests, configured once for the whole session.

Django's settings can be configured once per process: this does it at
collection time, when nothing else has; each test then points the settings
at its own server with ``override_settings``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        DEBUG=False,
        INSTALLED_APPS=[],
        DEFAULT_CHARSET="utf-8",
        DEFAULT_FROM_EMAIL="Shop <shop@example.com>",
        SERVER_EMAIL="server@example.com",
        ADMINS=[("Ada Admin", "ada@example.com"), ("Bob", "bob@example.com")],
        EMAIL_SUBJECT_PREFIX="[Shop] ",
        EMAIL_BACKEND="lettre.django.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=25,
        USE_TZ=True,
    )
    django.setup()


@pytest.fixture(autouse=True)
def _fresh_transports() -> Iterator[None]:
    """Each test's servers get transports of their own, closed after the test."""
    from lettre.django import close_transports

    close_transports()
    try:
        yield
    finally:
        close_transports()
