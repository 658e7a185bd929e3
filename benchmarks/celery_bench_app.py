"""The Celery app of ``bench_celery.py``'s workers (``celery -A celery_bench_app worker``).

It knows lettre's task, and ``bench.send_per_connection``: the way
django-celery-email sends, a new SMTP connection (smtplib) for each message.
"""

from __future__ import annotations

import os
import smtplib

from celery import Celery

import lettre.celery  # noqa: F401 - registers lettre.send_message
from lettre.message.payload import message_from_payload

app = Celery(
    "lettre_bench",
    broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0"),
)
app.conf.update(
    task_default_queue=os.environ.get("BENCH_QUEUE", "bench"),
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=4,
    result_expires=600,
    lettre_email_url=f"smtp://127.0.0.1:{os.environ.get('BENCH_SMTP_PORT', '25')}?tls=none",
    lettre_email_pool={"max_size": 1, "max_messages_per_connection": None},
)


@app.task(name="bench.send_per_connection", acks_late=True)
def send_per_connection(payload: dict[str, object]) -> str:
    """Connect, send one message, QUIT: what a task of django-celery-email does."""
    message = message_from_payload(payload)  # type: ignore[arg-type]
    envelope = message.envelope
    with smtplib.SMTP("127.0.0.1", int(os.environ["BENCH_SMTP_PORT"]), timeout=30) as smtp:
        smtp.sendmail(
            str(envelope.reverse_path or ""),
            [str(a) for a in envelope.forward_paths],
            message.as_bytes(),
        )
    return message.message_id or ""
