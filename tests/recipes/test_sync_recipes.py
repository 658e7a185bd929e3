"""The Flask and script recipes' own code, run against a real aiosmtpd server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from recipe_pages import blocks, run_page

from lettre import BlockingTransport
from servers import RecordingHandler, ServerFactory


class QuitHandler(RecordingHandler):
    """Also records every QUIT."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quits = 0

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mailers() -> Iterator[list[BlockingTransport]]:
    """BlockingTransports the pages made, closed after the test."""
    made: list[BlockingTransport] = []
    try:
        yield made
    finally:
        for mailer in made:
            mailer.close()


def test_the_recipe_pages_have_runnable_code() -> None:
    for page in ("flask.md", "script.md"):
        assert blocks(f"recipes/{page}"), page


# -- Flask ---------------------------------------------------------------------------------


def test_flask_recipe_sends_through_one_transport_for_every_thread(
    smtpd: ServerFactory, mailers: list[BlockingTransport]
) -> None:
    server = smtpd()
    namespace = run_page("recipes/flask.md", server.port)
    app = namespace["app"]
    mailer = app.extensions["mailer"]
    mailers.append(mailer)
    # The page posted one valid form (the MemoryTransport one stayed in memory).
    assert len(server.messages) == 1
    assert server.messages[0].parsed()["Reply-To"] == "ada@example.com"
    assert server.messages[0].rcpt_tos == ["support@example.com"]

    threads, per_thread = 8, 3
    start = threading.Barrier(threads, timeout=10)
    statuses: list[int] = []

    def visitor(number: int) -> None:
        client = app.test_client()
        start.wait()
        for index in range(per_thread):
            response = client.post(
                "/contact",
                json={"email": f"v{number}-{index}@example.com", "name": "V", "text": "Hi"},
            )
            statuses.append(response.status_code)

    workers = [threading.Thread(target=visitor, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    assert statuses == [202] * threads * per_thread
    assert len(server.messages) == 1 + threads * per_thread
    assert mailer.statistics().opened_total <= 4  # the page's pool: max_size=4


@pytest.mark.parametrize(
    ("reply", "status"),
    [("550 5.1.1 No such user", 502), ("450 4.2.1 Mailbox busy", 503)],
)
def test_flask_recipe_maps_refusals_to_http(
    smtpd: ServerFactory, mailers: list[BlockingTransport], reply: str, status: int
) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"support@example.com"}, refuse_reply=reply))
    namespace = run_page("recipes/flask.md", server.port, upto=1)  # the definitions only
    app = namespace["app"]
    mailers.append(app.extensions["mailer"])
    response = app.test_client().post(
        "/contact", json={"email": "ada@example.com", "name": "Ada", "text": "Hello"}
    )
    assert response.status_code == status
    assert server.messages == []


def test_flask_recipe_reports_an_unreachable_server_as_temporary(
    mailers: list[BlockingTransport],
) -> None:
    namespace = run_page("recipes/flask.md", closed_port(), upto=1)
    app = namespace["app"]
    mailers.append(app.extensions["mailer"])
    response = app.test_client().post(
        "/contact", json={"email": "ada@example.com", "name": "Ada", "text": "Hello"}
    )
    assert response.status_code == 503


def test_flask_recipe_closes_its_transport_at_exit(smtpd: ServerFactory) -> None:
    handler = QuitHandler()
    server = smtpd(handler=handler)
    script = blocks("recipes/flask.md")[0] + (
        "\nresponse = app.test_client().post("
        '"/contact", json={"email": "ada@example.com", "name": "Ada", "text": "Hi"})\n'
        "assert response.status_code == 202, response.json\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "SMTP_PORT": str(server.port)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(server.messages) == 1
    assert handler.quits == 1  # the atexit hook closed the pool: QUIT


# -- the script ----------------------------------------------------------------------------


def test_script_recipe_sends_the_report_and_the_batch(smtpd: ServerFactory) -> None:
    server = smtpd()
    namespace = run_page("recipes/script.md", server.port)
    report, *invoices = server.messages
    parsed = report.parsed()
    assert report.rcpt_tos == ["team@example.com"]
    attachment = next(parsed.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    assert "orders,128" in attachment.get_content()
    assert sorted(m.rcpt_tos[0] for m in invoices) == namespace["customers"]


def test_script_recipe_exit_status_says_whether_to_retry(smtpd: ServerFactory) -> None:
    namespace = run_page("recipes/script.md", closed_port(), upto=1)
    main = namespace["main"]
    assert main() == namespace["EX_TEMPFAIL"]  # the server is down: try again later

    server = smtpd(handler=RecordingHandler(refuse={"team@example.com"}))
    namespace["SMTP_URL"] = f"smtp://127.0.0.1:{server.port}?tls=none"
    assert main() == 1  # refused for good
    assert server.messages == []
