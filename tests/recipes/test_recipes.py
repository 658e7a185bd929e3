"""Each recipe's own code, run against a real aiosmtpd server, plus its error paths."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest
from recipe_pages import blocks, run_page

from servers import RecordingHandler, ServerFactory


class FlakyHandler(RecordingHandler):
    """Answers 451 to the first RCPT of each listed address, then accepts it."""

    def __init__(self, flaky: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flaky = set(flaky)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.flaky:
            self.flaky.discard(address)
            self.commands.append(f"RCPT {address} (451)")
            return "451 4.3.0 Try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_recipe_page_has_runnable_code() -> None:
    for page in ("fastapi.md", "aiohttp.md", "trio.md", "queue-worker.md"):
        assert blocks(f"recipes/{page}"), page


# -- FastAPI -------------------------------------------------------------------------------


def test_fastapi_recipe_sends_through_the_lifespan_transport(smtpd: ServerFactory) -> None:
    server = smtpd()
    namespace = run_page("recipes/fastapi.md", server.port)
    # The page itself posted one valid signup (and the MemoryTransport one
    # did not reach the server).
    assert len(server.messages) == 1
    received = server.messages[0]
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.parsed()["Subject"] == "Welcome, Ada"

    from fastapi.testclient import TestClient

    app = namespace["app"]
    with TestClient(app) as client:
        responses = [
            client.post("/signup", json={"email": f"user{n}@example.com", "name": f"U{n}"})
            for n in range(5)
        ]
        injected = client.post(
            "/signup", json={"email": "eve@example.com", "name": "Eve\r\nBcc: x@evil.example"}
        )
    assert [r.status_code for r in responses] == [202] * 5
    assert all(r.json()["queue_id"] for r in responses)
    assert injected.status_code == 422
    assert sorted(m.rcpt_tos[0] for m in server.messages[1:]) == [
        f"user{n}@example.com" for n in range(5)
    ]


@pytest.mark.parametrize(
    ("reply", "status"),
    [("550 5.1.1 No such user", 502), ("450 4.2.1 Mailbox busy", 503)],
)
def test_fastapi_recipe_maps_refusals_to_http(
    smtpd: ServerFactory, reply: str, status: int
) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"ada@example.com"}, refuse_reply=reply))
    # Runs the page's definitions only (its own assertions expect acceptance).
    namespace = run_page("recipes/fastapi.md", server.port, upto=1)
    from fastapi.testclient import TestClient

    with TestClient(namespace["app"]) as client:
        response = client.post("/signup", json={"email": "ada@example.com", "name": "Ada"})
    assert response.status_code == status
    assert server.messages == []


def test_fastapi_recipe_reports_an_unreachable_server_as_temporary() -> None:
    namespace = run_page("recipes/fastapi.md", closed_port(), upto=1)
    from fastapi.testclient import TestClient

    with TestClient(namespace["app"]) as client:
        response = client.post("/signup", json={"email": "ada@example.com", "name": "Ada"})
    assert response.status_code == 503


# -- aiohttp -------------------------------------------------------------------------------


def test_aiohttp_recipe_sends_through_the_cleanup_context(smtpd: ServerFactory) -> None:
    server = smtpd()
    namespace = run_page("recipes/aiohttp.md", server.port)
    assert len(server.messages) == 1
    parsed = server.messages[0].parsed()
    assert parsed["Reply-To"] == "ada@example.com"
    assert server.messages[0].rcpt_tos == ["support@example.com"]

    from aiohttp.test_utils import TestClient, TestServer

    async def burst() -> list[int]:
        async with TestClient(TestServer(namespace["make_app"]())) as client:

            async def post(n: int) -> int:
                response = await client.post(
                    "/contact", data={"email": f"c{n}@example.com", "text": f"note {n}"}
                )
                return response.status

            statuses: list[int] = []
            async with anyio.create_task_group() as group:
                for n in range(8):

                    async def one(n: int = n) -> None:
                        statuses.append(await post(n))

                    group.start_soon(one)
            return statuses

    statuses = anyio.run(burst)
    assert statuses == [202] * 8
    assert len(server.messages) == 9


def test_aiohttp_recipe_maps_a_permanent_refusal_to_502(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(mail_reply="550 5.7.1 Sender rejected"))
    namespace = run_page("recipes/aiohttp.md", server.port, upto=1)
    from aiohttp.test_utils import TestClient, TestServer

    async def post() -> int:
        async with TestClient(TestServer(namespace["make_app"]())) as client:
            response = await client.post(
                "/contact", data={"email": "ada@example.com", "text": "hi"}
            )
            return response.status

    assert anyio.run(post) == 502


# -- trio ----------------------------------------------------------------------------------


def test_trio_recipe_sends_one_message_per_subscriber(smtpd: ServerFactory) -> None:
    server = smtpd()
    namespace = run_page("recipes/trio.md", server.port)
    subscribers = namespace["subscribers"]
    # 12 from the nursery, then 3 from the bounded example.
    assert len(server.messages) == len(subscribers) + 3
    assert sorted(m.rcpt_tos[0] for m in server.messages[: len(subscribers)]) == sorted(subscribers)


def test_trio_recipe_reports_each_failure_without_cancelling_the_others(
    smtpd: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = {"reader3@example.com", "reader7@example.com"}
    server = smtpd(handler=RecordingHandler(refuse=refused))
    # The page's code is run here, outside run_page: it reads the port from the environment.
    monkeypatch.setenv("SMTP_PORT", str(server.port))
    namespace = run_page("recipes/trio.md", server.port, upto=0)
    code = compile(
        blocks("recipes/trio.md")[0].split("report = trio.run(main)")[0],
        "trio.md",
        "exec",
        dont_inherit=True,
    )
    exec(code, namespace)
    import trio

    report = trio.run(namespace["main"])
    assert {a for a, outcome in report.items() if outcome.startswith("failed")} == refused
    assert len(server.messages) == 10


# -- the queue worker ----------------------------------------------------------------------


def test_queue_worker_recipe_drains_the_queue(smtpd: ServerFactory) -> None:
    server = smtpd()
    run_page("recipes/queue-worker.md", server.port)
    assert len(server.messages) == 25
    assert len({m.rcpt_tos[0] for m in server.messages}) == 25


def test_queue_worker_retries_temporary_failures_and_dead_letters_the_rest(
    smtpd: ServerFactory,
) -> None:
    handler = FlakyHandler({"user1@example.com", "user2@example.com"})
    handler.refuse = {"user4@example.com"}
    server = smtpd(handler=handler)
    namespace = run_page("recipes/queue-worker.md", server.port, upto=0)
    code = compile(
        blocks("recipes/queue-worker.md")[0].split("outcomes = anyio.run(")[0],
        "queue-worker.md",
        "exec",
        dont_inherit=True,
    )
    exec(code, namespace)
    welcome, consume = namespace["welcome"], namespace["consume"]
    outcomes = namespace["Outcomes"]()

    async def run() -> None:
        from lettre.smtp import TlsMode
        from lettre.transports.smtp import SmtpTransport

        send, receive = anyio.create_memory_object_stream[Any](max_buffer_size=10)
        transport = SmtpTransport("127.0.0.1", server.port, tls=TlsMode.NONE)
        async with transport, anyio.create_task_group() as group:
            group.start_soon(
                lambda: consume(transport, receive, outcomes, attempts=3, backoff=0.01)
            )
            async with send:
                for n in range(6):
                    await send.send(welcome(n))

    anyio.run(run)
    assert len(outcomes.sent) == 5
    assert [str(m.envelope.forward_paths[0]) for m, _ in outcomes.dead] == ["user4@example.com"]
    assert "RCPT user1@example.com (451)" in handler.commands
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [
        f"user{n}@example.com" for n in (0, 1, 2, 3, 5)
    ]
