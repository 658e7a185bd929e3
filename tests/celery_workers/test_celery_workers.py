"""The send task with a real redis-server and real Celery workers (prefork, 2 processes).

Every message goes to a recording SMTP sink, which counts what it accepted
by Message-ID: nothing may be lost, nothing may arrive twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from celery.result import ResultSet
from celery_support import DROP, INSTALL_REDIS, RecordingSink, WorkerFactory, redis_server, wait_for

from lettre import Message
from lettre.celery import DeliveryFailed, queue_message


def message(number: int, *recipients: str) -> Message:
    return (
        Message.builder()
        .from_("shop@example.com")
        .to(*(recipients or (f"customer{number}@example.com",)))
        .subject(f"Order {number}")
        .text(f"Order {number} has shipped.\n")
        .build()
    )


def results_of(results: list[Any], timeout: float) -> list[Any]:
    return ResultSet(results).join(timeout=timeout, propagate=False, interval=0.05)


def test_a_thousand_messages_are_each_delivered_exactly_once(
    app: Any, sink: RecordingSink, workers: WorkerFactory
) -> None:
    messages = [message(n) for n in range(1000)]
    queued = [queue_message(m, app=app) for m in messages]
    worker = workers()
    try:
        wait_for(lambda: sink.delivered_count() >= 1000, 50, "1,000 messages at the sink")
    except AssertionError:
        raise AssertionError(worker.output()) from None
    outcomes = results_of(queued, 30)
    assert [o["status"] for o in outcomes] == ["sent"] * 1000
    assert [o["message_id"] for o in outcomes] == [m.message_id for m in messages]
    counts = sink.counts()
    assert set(counts) == {m.message_id for m in messages}
    assert set(counts.values()) == {1}
    # One pooled transport per worker process, reused by every task it ran.
    assert sink.connections <= 2


def test_each_process_keeps_its_transport_and_closes_it_at_shutdown(
    app: Any, sink: RecordingSink, workers: WorkerFactory
) -> None:
    queued = [queue_message(message(n), app=app) for n in range(20)]
    worker = workers()
    assert [o["status"] for o in results_of(queued, 30)] == ["sent"] * 20
    assert 1 <= sink.connections <= 2
    assert sink.quits == 0  # the connections stay open between tasks
    worker.stop()
    assert worker.process.returncode == 0, worker.output()
    # QUIT from each process as it shut down.
    wait_for(lambda: sink.quits == sink.connections, 10, "a QUIT on every connection")


def test_a_worker_killed_mid_run_loses_nothing_and_sends_nothing_twice(
    app: Any, redis_url: str, queue: str, sink: RecordingSink, workers: WorkerFactory
) -> None:
    messages = [message(n) for n in range(200)]
    queued = [queue_message(m, app=app) for m in messages]
    timings = {"LETTRE_TEST_VISIBILITY": "2", "LETTRE_TEST_CLAIM_TTL": "2"}
    # Once 60 messages are in, the sink holds every reply: each worker
    # process is then waiting for the server, and none has a message the
    # server accepted but that is not recorded yet.
    sink.freeze_after(60)
    first = workers(**timings)
    wait_for(lambda: sink.held >= 2, 30, "both worker processes waiting on the sink")
    first.kill()
    sink.drop_held()
    assert sink.delivered_count() == 60
    second = workers(**timings)
    try:
        wait_for(lambda: sink.delivered_count() >= 200, 40, "200 messages at the sink")
    except AssertionError:
        raise AssertionError(second.output()) from None
    outcomes = results_of(queued, 30)
    assert all(o["status"] in ("sent", "duplicate") for o in outcomes), outcomes
    client = redis.Redis.from_url(redis_url)
    try:
        wait_for(
            lambda: client.llen(queue) == 0 and client.hlen("unacked") == 0,
            20,
            "the queue and the unacknowledged tasks to drain",
        )
    finally:
        client.close()
    counts = sink.counts()
    assert set(counts) == {m.message_id for m in messages}
    assert [mid for mid, n in counts.items() if n > 1] == []


def test_a_permanent_refusal_is_not_retried(
    app: Any, sink: RecordingSink, workers: WorkerFactory
) -> None:
    sink.refuse.add("nobody@example.com")
    refused = queue_message(message(1, "nobody@example.com"), app=app)
    partial = queue_message(message(2, "ada@example.com", "nobody@example.com"), app=app)
    workers()
    with pytest.raises(DeliveryFailed, match=r"permanent: .*550"):
        refused.get(timeout=30)
    assert refused.state == "FAILURE"
    outcome = partial.get(timeout=30)
    assert outcome["status"] == "sent"
    assert outcome["accepted"] == ["ada@example.com"]
    assert [(r["recipient"], r["reply"]["code"]) for r in outcome["refused"]] == [
        ("nobody@example.com", 550)
    ]
    assert sink.rcpt_attempts["nobody@example.com"] == 2  # once for each message
    assert sink.rcpt_attempts["ada@example.com"] == 1
    assert sink.delivered_count() == 1


def test_451_twice_then_250_delivers_once_after_two_retries(
    app: Any, sink: RecordingSink, workers: WorkerFactory
) -> None:
    busy = message(1)
    assert busy.message_id is not None
    sink.data_replies[busy.message_id] = [b"451 4.3.0 Try again later"] * 2
    queued = queue_message(busy, app=app)
    workers()
    outcome = queued.get(timeout=30)
    assert outcome["status"] == "sent"
    assert sink.content_attempts[busy.message_id] == 3
    assert sink.counts() == {busy.message_id: 1}


def test_a_message_sent_before_is_not_sent_again(
    app: Any, sink: RecordingSink, workers: WorkerFactory
) -> None:
    once = message(1)
    first = queue_message(once, app=app)
    workers()
    assert first.get(timeout=30)["status"] == "sent"
    again = queue_message(once, app=app)
    outcome = again.get(timeout=30)
    assert outcome["status"] == "duplicate"
    assert outcome["message_id"] == once.message_id
    assert sink.counts() == {once.message_id: 1}


def test_transient_failures_give_up_after_the_limit(
    app: Any, sink: RecordingSink, workers: WorkerFactory
) -> None:
    busy = message(1)
    assert busy.message_id is not None
    sink.data_replies[busy.message_id] = [b"451 4.3.0 Try again later"] * 10
    queued = queue_message(busy, app=app)
    workers()
    with pytest.raises(DeliveryFailed, match="gave up after 3 retries"):
        queued.get(timeout=30)
    assert sink.content_attempts[busy.message_id] == 4
    assert sink.delivered_count() == 0


def test_an_unknown_outcome_is_not_retried(
    app: Any, sink: RecordingSink, workers: WorkerFactory
) -> None:
    lost = message(1)
    assert lost.message_id is not None
    sink.data_replies[lost.message_id] = [DROP]
    queued = queue_message(lost, app=app)
    workers()
    with pytest.raises(DeliveryFailed, match="outcome unknown, not retried"):
        queued.get(timeout=30)
    assert sink.content_attempts[lost.message_id] == 1


def test_without_redis_server_the_tests_say_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        pytest.raises(RuntimeError, match="apt-get install redis-server") as info,
        redis_server(tmp_path),
    ):
        pass
    assert str(info.value) == INSTALL_REDIS


def test_a_message_claimed_by_another_delivery_waits_for_the_claim(
    app: Any, redis_url: str, sink: RecordingSink, workers: WorkerFactory
) -> None:
    import time

    import lettre.celery

    claimed = message(1)
    key = lettre.celery._key(claimed)
    assert key is not None
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(f"lettre:claim:{key}", "another-delivery", px=1500)
        start = time.monotonic()
        queued = queue_message(claimed, app=app)
        workers()
        outcome = queued.get(timeout=30)
        assert time.monotonic() - start >= 1.5
        assert client.exists(f"lettre:claim:{key}") == 0
        assert client.exists(f"lettre:sent:{key}") == 1
    finally:
        client.close()
    assert outcome["status"] == "sent"
    assert sink.counts() == {claimed.message_id: 1}
