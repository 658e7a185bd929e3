"""Hooks, event loops and closing, for the HTTP API transports."""

from __future__ import annotations

import anyio
import pytest
from api_server import ApiServer, make_transport

from lettre.hooks import Hook, SendObserver, SendStarted
from lettre.message import Message
from lettre.results import SendResult
from lettre.transports.http import HttpApiError


def message() -> Message:
    return Message.builder().from_("a@example.com").to("b@example.com").text("t").build()


class Recorder(Hook):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def send_started(self, event: SendStarted) -> SendObserver | None:
        self.events.append(("started", event))
        hook = self

        class Observer(SendObserver):
            def finished(self, result: SendResult) -> None:
                hook.events.append(("finished", result))

            def failed(self, error: BaseException) -> None:
                hook.events.append(("failed", error))

        return Observer()


@pytest.mark.anyio
async def test_hooks_see_each_send_with_the_service_and_server(api: ApiServer) -> None:
    hook = Recorder()
    async with make_transport("sendgrid", api.url, hooks=[hook]) as transport:
        sent = message()
        result = await transport.send(sent)
        api.answer_next(500, {"errors": [{"message": "boom"}]})
        with pytest.raises(HttpApiError):
            await transport.send(sent)
    kinds = [kind for kind, _ in hook.events]
    assert kinds == ["started", "finished", "started", "failed"]
    started = hook.events[0][1]
    assert isinstance(started, SendStarted)
    assert started.transport == "sendgrid"
    assert started.message_id == sent.message_id
    host, port = api.url.removeprefix("http://").split(":")
    assert started.server == (host, int(port))
    finished = hook.events[1][1]
    assert isinstance(finished, SendResult)
    assert finished.transport_id == result.transport_id
    assert finished.accepted == ("b@example.com",)


def test_one_transport_on_one_loop_after_another(api: ApiServer) -> None:
    """A client belongs to the loop that made it; a finished loop's client is dropped."""
    transport = make_transport("resend", api.url)

    async def send() -> object:
        await transport.send(message())
        return transport._client_here()

    first = anyio.run(send)
    second = anyio.run(send, backend="trio")
    assert first is not second
    assert list(transport._clients.values()) == [second]
    anyio.run(transport.aclose, backend="trio")
    assert transport._clients == {}
    assert len(api.requests) == 2
