"""lettre.django.CeleryEmailBackend queues Django's messages; a real Celery worker sends them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from celery_support import RecordingSink, WorkerFactory, wait_for

pytest.importorskip("django")


def _configure_django() -> None:
    """Django's settings as the Django backend's tests make them, whichever runs first.

    Settings can be configured once per process: tests/django/conftest.py is
    the one place that says what they are.
    """
    path = Path(__file__).resolve().parents[1] / "django" / "conftest.py"
    spec = importlib.util.spec_from_file_location("lettre_tests_django_settings", path)
    assert spec is not None
    assert spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


_configure_django()

from django.core.mail import EmailMessage, get_connection, send_mail  # noqa: E402


def test_the_backend_queues_and_a_worker_delivers(
    app: Any, sink: RecordingSink, workers: WorkerFactory
) -> None:
    connection = get_connection("lettre.django.CeleryEmailBackend", app=app)
    assert (
        send_mail(
            "Welcome", "Thanks for signing up.", None, ["ada@example.com"], connection=connection
        )
        == 1
    )
    invoice = EmailMessage(
        "Invoice 17",
        "Attached.",
        to=["bob@example.com"],
        bcc=["archive@example.com"],
        connection=connection,
    )
    invoice.attach("invoice.csv", "item,amount\nwidget,9.50\n", "text/csv")
    assert invoice.send() == 1
    assert sink.delivered_count() == 0  # queued, not sent inline
    workers()
    wait_for(lambda: sink.delivered_count() >= 2, 30, "two messages at the sink")
    assert len(sink.counts()) == 2
    assert set(sink.counts().values()) == {1}
    assert sink.rcpt_attempts["archive@example.com"] == 1
    assert sink.rcpt_attempts["ada@example.com"] == 1
