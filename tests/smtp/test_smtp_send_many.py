"""SmtpTransport.send_many (BaseTransport's) against real aiosmtpd servers."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import anyio
import pytest

from lettre.errors import RecipientsRefused
from lettre.message import Message
from lettre.smtp import TlsMode
from lettre.smtp.pool import PoolConfig
from lettre.transports.base import SendResult
from lettre.transports.smtp import SmtpTransport
from servers import RecordingHandler, ServerFactory

pytestmark = pytest.mark.anyio

BOUND = 60.0


def message(n: int) -> Message:
    return (
        Message.builder()
        .from_("News <news@example.com>")
        .to(f"reader{n}@example.com")
        .subject(f"Issue {n}")
        .text(f"Hello, reader {n}.")
        .build()
    )


def transport_for(port: int, **kwargs: Any) -> SmtpTransport:
    return SmtpTransport(
        "127.0.0.1", port, tls=TlsMode.NONE, hello_name="client.example.com", timeout=10.0, **kwargs
    )


async def test_one_outcome_per_message_in_order(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"reader2@example.com"}))
    messages = [message(n) for n in range(6)]
    async with transport_for(server.port) as transport:
        with anyio.fail_after(BOUND):
            outcomes = await transport.send_many(messages, concurrency=3)
    assert isinstance(outcomes[2], RecipientsRefused)
    for n in (0, 1, 3, 4, 5):
        outcome = outcomes[n]
        assert isinstance(outcome, SendResult)
        assert outcome.message_id == messages[n].message_id
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [
        f"reader{n}@example.com" for n in (0, 1, 3, 4, 5)
    ]


@pytest.mark.parametrize("kind", ["Message", "EmailMessage"])
async def test_a_single_message_is_refused_with_the_call_to_make(
    smtpd: ServerFactory, kind: str
) -> None:
    server = smtpd()
    single: Message | EmailMessage = message(0)
    if kind == "EmailMessage":
        single = EmailMessage()
        single["From"] = "news@example.com"
        single["To"] = "reader0@example.com"
        single.set_content("Hello.")
    async with transport_for(server.port) as transport:
        with pytest.raises(TypeError) as info:
            await transport.send_many(single)  # type: ignore[arg-type]
    assert f"takes a list of messages, not a single {kind}: pass [message]" in str(info.value)
    assert server.messages == []


class Gated(SmtpTransport):
    """Holds every send until ``gate_at`` are in flight at once, and records the peak."""

    gate: anyio.Event
    gate_at = 0
    in_flight = 0
    peak = 0

    async def send(self, message: Message | EmailMessage, **kwargs: Any) -> SendResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.in_flight >= self.gate_at:
                self.gate.set()
            await self.gate.wait()
            return await super().send(message, **kwargs)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("max_size", [1, 3])
async def test_default_concurrency_is_twice_the_pool_size(
    smtpd: ServerFactory, max_size: int
) -> None:
    server = smtpd()
    transport = Gated(
        "127.0.0.1",
        server.port,
        tls=TlsMode.NONE,
        hello_name="client.example.com",
        timeout=10.0,
        pool=PoolConfig(max_size=max_size),
    )
    transport.gate_at = 2 * max_size
    transport.gate = anyio.Event()
    async with transport:
        with anyio.fail_after(BOUND):
            outcomes = await transport.send_many([message(n) for n in range(5 * max_size)])
    assert transport.peak == 2 * max_size
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert len(server.messages) == 5 * max_size
