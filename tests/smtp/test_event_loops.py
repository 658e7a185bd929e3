"""One transport, many event loops: each loop's connections are its own.

A transport made at import time is used from ``asyncio.run`` after
``asyncio.run``, from a trio run after an asyncio one, from two threads that
each run a loop, from FastAPI's ``TestClient`` twice, and from pytest tests
that each get a fresh loop. Every send must work on a connection of its own
loop, never wait on a connection of another one, and the connections of a
loop that is gone must be shut down (the server sees them close).

The server runs in a thread of its own (a blocking portal), so it outlives
the loops under test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from hostile.scripted import HostileServer, SmtpScript, hostile_server
from lettre import Message, SendResult, SmtpTransport, TlsMode
from lettre.errors import SmtpError

#: Every wait in this module is bounded by this many seconds.
BOUND = 10.0

RUNNERS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


def run(runner: str, function: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``function`` in a new event loop of the kind ``runner`` names."""
    backend, options = RUNNERS[runner]
    return anyio.run(function, backend=backend, backend_options=options)


class Server:
    """A well-mannered scripted SMTP server running in a thread of its own."""

    def __init__(self, portal: BlockingPortal, server: HostileServer, script: SmtpScript) -> None:
        self.portal = portal
        self.server = server
        self.script = script

    @property
    def port(self) -> int:
        return self.server.port

    def messages(self) -> int:
        return len(self.script.messages)

    def connections(self) -> int:
        return len(self.server.connections)

    def wait_client_closed(self, index: int) -> None:
        """Wait (bounded) until the client closed connection ``index``."""
        self.portal.call(lambda: self.server.client_closed(index, timeout=BOUND))

    def verbs(self, index: int) -> list[str]:
        return self.script.verbs(index)


@pytest.fixture
def server() -> Iterator[Server]:
    script = SmtpScript(extensions=("PIPELINING", "8BITMIME", "SIZE 10485760"))
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(hostile_server(script, timeout=3 * BOUND)) as srv,
    ):
        yield Server(portal, srv, script)


def message(n: int) -> Message:
    return (
        Message.builder()
        .from_("sender@example.com")
        .to(f"user{n}@example.com")
        .subject(f"message {n}")
        .text(f"number {n}")
        .build()
    )


def transport_for(server: Server, **kwargs: Any) -> SmtpTransport:
    kwargs.setdefault("timeout", 3)
    kwargs.setdefault("deadline", 5)
    return SmtpTransport("127.0.0.1", server.port, tls=TlsMode.NONE, **kwargs)


async def bounded_send(transport: SmtpTransport, n: int) -> SendResult:
    with anyio.fail_after(BOUND):
        return await transport.send(message(n))


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_each_new_loop_sends_on_new_connections(server: Server, runner: str) -> None:
    transport = transport_for(server)
    for n in range(3):
        result = run(runner, lambda n=n: bounded_send(transport, n))
        assert result.accepted == (f"user{n}@example.com",)
    assert server.messages() == 3
    assert server.connections() == 3
    # The connections of the first two loops were shut down, never reused.
    server.wait_client_closed(0)
    server.wait_client_closed(1)
    stats = transport.statistics()
    assert stats.messages_sent == 3
    assert stats.open == 0  # the last loop is closed too


def test_asyncio_run_twice(server: Server) -> None:
    transport = SmtpTransport("127.0.0.1", server.port, tls=TlsMode.NONE, timeout=3, deadline=5)
    first = asyncio.run(asyncio.wait_for(transport.send(message(1)), BOUND))
    second = asyncio.run(asyncio.wait_for(transport.send(message(2)), BOUND))
    assert first.accepted == ("user1@example.com",)
    assert second.accepted == ("user2@example.com",)
    assert server.messages() == 2
    assert transport.statistics().messages_sent == 2


def test_loops_of_every_kind_one_after_another(server: Server) -> None:
    transport = transport_for(server)
    order = ["asyncio", "trio", "uvloop", "trio", "asyncio"]
    for n, runner in enumerate(order):
        assert run(runner, lambda n=n: bounded_send(transport, n)).accepted
    assert server.messages() == len(order)
    for index in range(len(order) - 1):
        server.wait_client_closed(index)
    assert transport.statistics().messages_sent == len(order)


def test_a_loop_that_sends_many_reuses_its_own_connection(server: Server) -> None:
    transport = transport_for(server)

    async def several() -> None:
        for n in range(4):
            await bounded_send(transport, n)

    run("asyncio", several)
    run("trio", several)
    assert server.messages() == 8
    assert server.connections() == 2  # one per loop, reused within it


@pytest.mark.parametrize(("first", "second"), [("asyncio", "uvloop"), ("trio", "asyncio")])
def test_two_live_loops_in_two_threads_send_at_once(
    server: Server, first: str, second: str
) -> None:
    transport = transport_for(server)
    # Both loops are running before either sends, and neither ends before
    # both have sent: the two loops are alive at the same time throughout.
    barrier = threading.Barrier(2, timeout=BOUND)
    results: dict[str, list[SendResult]] = {}
    errors: list[BaseException] = []

    def thread_main(name: str, runner: str, offset: int) -> None:
        async def main() -> None:
            await anyio.to_thread.run_sync(barrier.wait)
            sent: list[SendResult] = []

            async def one(n: int) -> None:
                sent.append(await bounded_send(transport, n))

            async with anyio.create_task_group() as group:
                for n in range(offset, offset + 5):
                    group.start_soon(one, n)
            results[name] = sent
            await anyio.to_thread.run_sync(barrier.wait)

        try:
            run(runner, main)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=thread_main, args=("a", first, 0)),
        threading.Thread(target=thread_main, args=("b", second, 100)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * BOUND)
        assert not thread.is_alive()
    assert errors == []
    assert sorted(r.accepted[0] for r in results["a"]) == sorted(
        f"user{n}@example.com" for n in range(5)
    )
    assert len(results["b"]) == 5
    assert server.messages() == 10
    stats = transport.statistics()
    assert stats.messages_sent == 10
    assert stats.open == 0


@pytest.mark.parametrize("runner", ["asyncio", "trio"])
def test_aclose_closes_the_connections_of_a_live_loop_on_that_loop(
    server: Server, runner: str
) -> None:
    transport = transport_for(server)
    sent = threading.Event()
    closed = threading.Event()
    errors: list[BaseException] = []

    def thread_main() -> None:
        async def main() -> None:
            await bounded_send(transport, 1)
            sent.set()
            # The loop stays alive (and idle) while another loop closes the transport.
            assert await anyio.to_thread.run_sync(closed.wait, BOUND)

        try:
            run(runner, main)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=thread_main)
    thread.start()
    try:
        assert sent.wait(BOUND)
        run("asyncio", transport.aclose)
        # The live loop closes its own connection, politely.
        server.wait_client_closed(0)
        assert server.verbs(0)[-1] == "QUIT"
    finally:
        closed.set()
        thread.join(BOUND)
    assert not thread.is_alive()
    assert errors == []
    assert transport.closed


def test_a_closed_transport_opens_again_with_async_with(server: Server) -> None:
    transport = transport_for(server)

    async def lifespan(n: int) -> SendResult:
        async with transport:
            return await bounded_send(transport, n)

    assert run("asyncio", lambda: lifespan(1)).accepted
    assert transport.closed
    assert run("trio", lambda: lifespan(2)).accepted
    assert server.messages() == 2
    server.wait_client_closed(0)
    server.wait_client_closed(1)
    assert server.verbs(0)[-1] == "QUIT"  # closed by `async with` on its own loop

    async def after_close() -> None:
        await transport.send(message(3))

    with pytest.raises(SmtpError, match="closed") as caught:
        run("asyncio", after_close)
    assert not caught.value.transient
    assert server.messages() == 2


def test_fastapi_test_client_twice(server: Server) -> None:
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    transport = transport_for(server)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        async with transport:
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/send/{n}")
    async def send(n: int) -> dict[str, list[str]]:
        result = await bounded_send(transport, n)
        return {"accepted": list(result.accepted)}

    bare = FastAPI()
    bare.add_api_route("/send/{n}", send, methods=["POST"])

    # Without a lifespan the transport stays open; with one, each run opens it again.
    for application in (bare, bare, app, app):
        with TestClient(application) as client:
            response = client.post("/send/7")
            assert response.status_code == 200
            assert response.json() == {"accepted": ["user7@example.com"]}
    assert server.messages() == 4


def test_pytest_tests_that_each_get_a_new_loop(server: Server, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_module_transport=f"""
        import pytest
        from lettre import Message, SmtpTransport, TlsMode

        transport = SmtpTransport(
            "127.0.0.1", {server.port}, tls=TlsMode.NONE, timeout=3, deadline=5
        )

        def message(n):
            return (
                Message.builder().from_("sender@example.com").to(f"user{{n}}@example.com")
                .subject("s").text("t").build()
            )

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_send(n):
            result = await transport.send(message(n))
            assert result.accepted == (f"user{{n}}@example.com",)
        """
    )
    result = pytester.runpytest_subprocess(
        "-q", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    result.assert_outcomes(passed=3)
    assert server.messages() == 3


@pytest.mark.parametrize("runner", ["asyncio", "trio"])
def test_nested_async_with_closes_at_the_outer_end(server: Server, runner: str) -> None:
    transport = transport_for(server)

    async def nested() -> None:
        async with transport:
            async with transport:
                await bounded_send(transport, 1)
            # The inner block's end leaves the transport open.
            assert not transport.closed
            await bounded_send(transport, 2)
        assert transport.closed

    run(runner, nested)
    assert server.messages() == 2
    assert server.connections() == 1
    server.wait_client_closed(0)
    assert server.verbs(0)[-1] == "QUIT"


def test_one_loop_leaving_async_with_leaves_the_other_loops_open(server: Server) -> None:
    transport = transport_for(server)
    entered = threading.Barrier(2, timeout=BOUND)
    first_left = threading.Event()
    errors: list[BaseException] = []
    results: list[SendResult] = []

    def first() -> None:
        async def main() -> None:
            async with transport:
                await bounded_send(transport, 1)
                await anyio.to_thread.run_sync(entered.wait)
            first_left.set()

        try:
            run("asyncio", main)
        except BaseException as exc:
            errors.append(exc)

    def second() -> None:
        async def main() -> None:
            async with transport:
                await anyio.to_thread.run_sync(entered.wait)
                assert await anyio.to_thread.run_sync(first_left.wait, BOUND)
                # Still open here, on this loop's own connection.
                results.append(await bounded_send(transport, 2))
            assert transport.closed

        try:
            run("trio", main)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * BOUND)
        assert not thread.is_alive()
    assert errors == []
    assert [r.accepted for r in results] == [("user2@example.com",)]
    assert server.messages() == 2
    assert transport.closed
