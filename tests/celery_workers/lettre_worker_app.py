"""The Celery app the test workers run (``celery -A lettre_worker_app worker``).

The tests configure it through the environment: the broker, the sink's URL,
the queue, and the retry and redelivery timings.
"""

from __future__ import annotations

import os

from celery import Celery

import lettre.celery  # noqa: F401 - registers lettre.send_message


def make_app(
    broker: str,
    smtp_url: str,
    queue: str,
    *,
    backoff: float = 0.05,
    claim_ttl: int = 900,
    visibility_timeout: float = 3600,
) -> Celery:
    app = Celery("lettre_test", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        result_expires=600,
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
        lettre_email_url=smtp_url,
        lettre_email_pool={"max_size": 1, "max_messages_per_connection": None},
        lettre_max_retries=3,
        lettre_retry_backoff=backoff,
        lettre_retry_backoff_max=1.0,
        lettre_claim_ttl=claim_ttl,
    )
    return app


if "LETTRE_TEST_BROKER" in os.environ:
    app = make_app(
        os.environ["LETTRE_TEST_BROKER"],
        os.environ["LETTRE_TEST_SMTP_URL"],
        os.environ["LETTRE_TEST_QUEUE"],
        backoff=float(os.environ.get("LETTRE_TEST_BACKOFF", "0.05")),
        claim_ttl=int(os.environ.get("LETTRE_TEST_CLAIM_TTL", "900")),
        visibility_timeout=float(os.environ.get("LETTRE_TEST_VISIBILITY", "3600")),
    )
