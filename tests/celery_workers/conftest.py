"""Fixtures: a redis-server for the session, a recording sink and workers per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery_support import RecordingSink, Worker, WorkerFactory, redis_server
from lettre_worker_app import make_app


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with redis_server(tmp_path_factory.mktemp("redis")) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as server:
        yield server


@pytest.fixture
def queue() -> str:
    return f"lettre-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app(redis_url: str, sink: RecordingSink, queue: str) -> Iterator[Any]:
    celery_app = make_app(redis_url, sink.url, queue)
    yield celery_app
    celery_app.close()


@pytest.fixture
def workers(
    redis_url: str, sink: RecordingSink, queue: str, tmp_path: Path
) -> Iterator[WorkerFactory]:
    started: list[Worker] = []

    def start(**settings: str) -> Worker:
        env = {
            "LETTRE_TEST_BROKER": redis_url,
            "LETTRE_TEST_SMTP_URL": sink.url,
            "LETTRE_TEST_QUEUE": queue,
            **settings,
        }
        worker = Worker(tmp_path / f"worker{len(started)}.log", env, queue, f"w{len(started)}")
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        # The queue is the test's own: what a killed worker leaves in it harms no other test.
        for worker in started:
            worker.kill()
