"""The send task run in this process (``Task.apply``): settings, the record in Redis, backoff."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery_support import RecordingSink

import lettre.celery as lettre_celery
from lettre import Envelope, LettreError, MemoryTransport, Message
from lettre.celery import TASK_NAME, DeliveryFailed
from lettre.errors import OutcomeUnknown, SmtpConnectError
from lettre.message.payload import message_to_payload
from lettre.signing import Signer

MADE: list[MemoryTransport] = []


def memory_transport() -> MemoryTransport:
    """The tests' ``lettre_transport_factory``: a memory transport they can look into."""
    transport = MemoryTransport()
    MADE.append(transport)
    return transport


def flaky_transport() -> MemoryTransport:
    transport = memory_transport()
    transport.fail_with(SmtpConnectError("connection refused"), times=None)
    return transport


def unknown_once_transport() -> MemoryTransport:
    transport = memory_transport()
    transport.fail_with(OutcomeUnknown("connection lost after the content"), times=1)
    return transport


@pytest.fixture
def eager(redis_url: str) -> Iterator[Celery]:
    MADE.clear()
    app = Celery("eager", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(
        lettre_transport_factory=f"{__name__}:memory_transport",
        lettre_retry_backoff=0.0,
        lettre_max_retries=2,
    )
    try:
        yield app
    finally:
        lettre_celery.close_process_transport()
        app.close()


def run(app: Celery, payload: dict[str, Any]) -> Any:
    return app.tasks[TASK_NAME].apply(args=(payload,))


def message(text: str = "Hello.\n") -> Message:
    return (
        Message.builder()
        .from_("shop@example.com")
        .to("ada@example.com")
        .subject("Hi")
        .text(text)
        .build()
    )


def test_the_process_makes_one_transport_and_every_task_uses_it(eager: Celery) -> None:
    first, second = message("one\n"), message("two\n")
    assert run(eager, message_to_payload(first)).get()["status"] == "sent"
    assert run(eager, message_to_payload(second)).get()["status"] == "sent"
    assert len(MADE) == 1
    assert [sent.data for sent in MADE[0].outbox] == [first.as_bytes(), second.as_bytes()]


def test_the_record_is_keyed_by_message_id_and_envelope(eager: Celery) -> None:
    once = message()
    assert run(eager, message_to_payload(once)).get()["status"] == "sent"
    assert run(eager, message_to_payload(once)).get()["status"] == "duplicate"
    other = Envelope("shop@example.com", ["bob@example.com"])
    assert run(eager, message_to_payload(once, envelope=other)).get()["status"] == "sent"
    assert [sent.recipients for sent in MADE[0].outbox] == [
        ("ada@example.com",),
        ("bob@example.com",),
    ]


def test_without_the_record_a_message_is_sent_again(eager: Celery) -> None:
    eager.conf.lettre_dedup = False
    payload = message_to_payload(message())
    run(eager, payload).get()
    run(eager, payload).get()
    assert len(MADE[0].outbox) == 2


def test_transient_failures_are_retried_then_given_up(eager: Celery) -> None:
    eager.conf.lettre_transport_factory = f"{__name__}:flaky_transport"
    outcome = run(eager, message_to_payload(message()))
    with pytest.raises(DeliveryFailed, match="gave up after 2 retries: connection refused"):
        outcome.get()
    assert MADE[0].outbox == []


def test_without_a_url_or_a_factory_the_task_says_what_to_set(redis_url: str) -> None:
    app = Celery("bare", broker=redis_url, backend=redis_url, set_as_current=False)
    try:
        outcome = run(app, message_to_payload(message()))
        with pytest.raises(
            LettreError, match="no lettre_email_url and no lettre_transport_factory"
        ):
            outcome.get()
    finally:
        lettre_celery.close_process_transport()
        app.close()


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    random.seed(7)
    conf = {"lettre_retry_backoff": 2.0, "lettre_retry_backoff_max": 60.0}
    for failures in range(10):
        full = min(60.0, 2.0 * 2**failures)
        for _ in range(20):
            assert full / 2 <= lettre_celery._backoff(conf, failures) <= full
    steady = {**conf, "lettre_retry_jitter": False}
    assert [lettre_celery._backoff(steady, n) for n in range(6)] == [2, 4, 8, 16, 32, 60]


class Stamp(Signer):
    def sign(self, data: bytes) -> bytes:
        return b"X-Stamp: signed\r\n" + data


def test_the_transport_is_made_from_the_url_pool_and_dkim_settings(
    redis_url: str, sink: RecordingSink
) -> None:
    app = Celery("settings", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(
        lettre_email_url=sink.url,
        lettre_email_pool={"max_size": 1},
        lettre_email_dkim=Stamp(),
        lettre_email_options={"hello_name": "worker.example"},
    )
    try:
        sent = message()
        outcome = run(app, message_to_payload(sent)).get()
        assert outcome["status"] == "sent"
        assert outcome["accepted"] == ["ada@example.com"]
        assert outcome["reply"]["code"] == 250
        assert sent.message_id is not None
        assert sink.contents[sent.message_id].startswith(b"X-Stamp: signed\r\n")
        assert sink.contents[sent.message_id].endswith(sent.as_bytes()[-20:] + b".\r\n")
    finally:
        lettre_celery.close_process_transport()
        app.close()


def test_an_unknown_outcome_is_retried_only_when_the_setting_says_so(eager: Celery) -> None:
    eager.conf.lettre_transport_factory = f"{__name__}:unknown_once_transport"
    with pytest.raises(DeliveryFailed, match="outcome unknown, not retried"):
        run(eager, message_to_payload(message())).get()
    assert MADE[0].outbox == []
    lettre_celery.close_process_transport()
    eager.conf.lettre_retry_outcome_unknown = True
    assert run(eager, message_to_payload(message())).get()["status"] == "sent"
    assert len(MADE) == 2
    assert len(MADE[1].outbox) == 1
