"""The send task run in this process (``Task.apply``) in the situations the main tests leave
out: a factory given as a function, refused recipients, permanent failures, messages without a
Message-ID, no Redis to record in, a Redis that cannot be reached; ``queue_message`` with the
current app."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, current_app

import lettre.celery as lettre_celery
from lettre import Envelope, MemoryTransport, Message
from lettre.celery import TASK_NAME, DeliveryFailed, queue_message
from lettre.errors import SmtpConnectError
from lettre.message.payload import message_to_payload, raw_to_payload

MADE: list[MemoryTransport] = []


def _memory_transport() -> MemoryTransport:
    transport = MemoryTransport()
    MADE.append(transport)
    return transport


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def app() -> Iterator[Celery]:
    """An app whose broker is Celery's in-memory one; the task runs in this process."""
    MADE.clear()
    made = Celery("edges", broker="memory://", set_as_current=False)
    made.conf.update(
        lettre_transport_factory=_memory_transport,  # a function, not a "module:name"
        lettre_retry_backoff=0.0,
        lettre_max_retries=0,
    )
    try:
        yield made
    finally:
        lettre_celery.close_process_transport()
        made.close()


def _run(app: Celery, payload: dict[str, Any]) -> Any:
    return app.tasks[TASK_NAME].apply(args=(payload,))


def _message(*to: str) -> Message:
    return (
        Message.builder()
        .from_("shop@example.com")
        .to(*(to or ("ada@example.com",)))
        .subject("Hi")
        .text("Hello.\n")
        .build()
    )


def test_without_redis_the_message_is_sent_unrecorded(app: Celery) -> None:
    # The broker is not Redis and no lettre_dedup_url is set: nothing to record in.
    outcome = _run(app, message_to_payload(_message())).get()
    assert outcome["status"] == "sent"
    assert outcome["accepted"] == ["ada@example.com"]
    assert len(MADE[0].outbox) == 1


def test_refused_recipients_are_in_the_result(app: Celery) -> None:
    _run(app, message_to_payload(_message())).get()  # makes the process's transport
    MADE[0].refuse("bob@example.com")
    outcome = _run(app, message_to_payload(_message("ada@example.com", "bob@example.com"))).get()
    assert outcome["accepted"] == ["ada@example.com"]
    [refused] = outcome["refused"]
    assert refused["recipient"] == "bob@example.com"
    assert refused["reply"]["code"] == 550


def test_a_permanent_failure_is_not_retried(app: Celery) -> None:
    _run(app, message_to_payload(_message())).get()
    MADE[0].fail_with(SmtpConnectError("no such host", transient=False))
    with pytest.raises(DeliveryFailed, match="permanent: no such host"):
        _run(app, message_to_payload(_message())).get()
    assert len(MADE[0].outbox) == 1  # only the first message


def test_a_message_without_message_id_is_sent(app: Celery, redis_url: str) -> None:
    app.conf.lettre_dedup_url = redis_url
    data = b"From: shop@example.com\r\nTo: ada@example.com\r\nSubject: Hi\r\n\r\nHello.\r\n"
    payload = raw_to_payload(Envelope("shop@example.com", ["ada@example.com"]), data)
    assert payload["message_id"] is None
    # No Message-ID: nothing to key a record on, so every delivery sends.
    for _ in range(2):
        assert _run(app, payload).get()["status"] == "sent"
    assert len(MADE[0].outbox) == 2


def test_a_redis_that_cannot_be_reached_is_a_transient_failure(app: Celery) -> None:
    app.conf.lettre_dedup_url = f"redis://127.0.0.1:{_closed_port()}/0"
    with pytest.raises(DeliveryFailed, match=r"gave up after 0 retries: .*Connection refused"):
        _run(app, message_to_payload(_message())).get()
    assert MADE == []  # nothing was sent without its record


def test_queue_message_with_the_current_app(app: Celery) -> None:
    app.conf.task_always_eager = True
    before = current_app._get_current_object()
    app.set_current()
    try:
        outcome = queue_message(_message()).get()
    finally:
        before.set_current()
    assert outcome["status"] == "sent"
    assert len(MADE[0].outbox) == 1
