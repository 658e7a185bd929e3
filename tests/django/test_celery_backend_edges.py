"""lettre.django.CeleryEmailBackend: how it finds its Celery app, what it queues, and what it does
with a message too large to queue. Celery's in-memory broker holds the queued tasks; the
real workers' tests are in tests/celery_workers."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

celery = pytest.importorskip("celery")

from django.core.mail import EmailMessage  # noqa: E402
from django.test import override_settings  # noqa: E402

from lettre.celery import TASK_NAME  # noqa: E402
from lettre.django import CeleryEmailBackend  # noqa: E402
from lettre.message.payload import DEFAULT_MAX_PAYLOAD_SIZE, PayloadTooLarge  # noqa: E402

#: The app ``LETTRE_CELERY_APP = "<this module>:APP"`` names.
APP = celery.Celery("lettre-edges", broker="memory://", set_as_current=False)


@pytest.fixture
def queue() -> str:
    return f"lettre-edges-{uuid.uuid4().hex[:12]}"


def _queued(app: Any, queue: str) -> list[tuple[str, dict[str, Any]]]:
    """(task name, payload) of every task waiting in ``queue``."""
    found = []
    with app.connection_for_read() as connection:
        simple = connection.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(block=False)
                except simple.Empty:
                    break
                message.ack()
                args = message.decode()[0]
                found.append((message.headers["task"], args[0]))
        finally:
            simple.close()
    return found


def _message(to: list[str], subject: str = "Hi") -> EmailMessage:
    return EmailMessage(subject, "Body", "shop@example.com", to)


@pytest.fixture
def current_app() -> Iterator[Any]:
    app = celery.Celery("lettre-current", broker="memory://", set_as_current=False)
    previous = celery.current_app._get_current_object()
    app.set_current()
    try:
        yield app
    finally:
        previous.set_current()
        app.close()


def test_the_current_app_by_default(current_app: Any, queue: str) -> None:
    backend = CeleryEmailBackend(queue_options={"queue": queue})
    assert backend.open() is False
    backend.close()
    sent = backend.send_messages([_message(["ada@example.com"]), _message([])])
    assert sent == 1  # the message without recipients is skipped
    [(task, payload)] = _queued(current_app, queue)
    assert task == TASK_NAME
    assert payload["envelope"]["forward_paths"] == ["ada@example.com"]
    assert payload["envelope"]["reverse_path"] == "shop@example.com"
    assert b"Subject: Hi" in base64.b64decode(payload["data"])
    assert backend.send_messages([]) == 0


def test_the_app_named_by_the_setting(queue: str) -> None:
    with override_settings(
        LETTRE_CELERY_APP=f"{__name__}:APP", LETTRE_CELERY_OPTIONS={"queue": queue}
    ):
        backend = CeleryEmailBackend()
        assert backend.send_messages([_message(["bob@example.com"], "Named")]) == 1
    [(task, payload)] = _queued(APP, queue)
    assert task == TASK_NAME
    assert b"Subject: Named" in base64.b64decode(payload["data"])


def test_a_message_too_large_to_queue(queue: str, caplog: pytest.LogCaptureFixture) -> None:
    big = _message(["ada@example.com"], "Big")
    big.attach(
        "big.bin", b"\0" * (DEFAULT_MAX_PAYLOAD_SIZE // 4 * 3 + 1), "application/octet-stream"
    )
    small = _message(["bob@example.com"], "Small")
    backend = CeleryEmailBackend(app=APP, queue_options={"queue": queue})
    with (
        caplog.at_level(logging.WARNING, logger="lettre.django"),
        pytest.raises(PayloadTooLarge) as too_large,
    ):
        backend.send_messages([big, small])
    assert too_large.value.max_size == DEFAULT_MAX_PAYLOAD_SIZE
    assert _queued(APP, queue) == []  # the first failure stops the call
    assert "could not be queued" in caplog.text

    quiet = CeleryEmailBackend(app=APP, queue_options={"queue": queue}, fail_silently=True)
    assert quiet.send_messages([big, small]) == 1
    [(_, payload)] = _queued(APP, queue)
    assert b"Subject: Small" in base64.b64decode(payload["data"])
