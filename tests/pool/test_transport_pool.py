"""SmtpTransport over its pool: send_many, statistics, configuration, closing."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pool_fakes import BOUND, settle

from lettre.errors import (
    AddressError,
    RecipientsRefused,
    SmtpError,
)
from lettre.message import Message
from lettre.smtp import TlsMode
from lettre.smtp.pool import PoolConfig
from lettre.transports.base import SendResult
from lettre.transports.smtp import SmtpTransport
from servers import MiniSmtp, RecordingHandler, ServerFactory, scripted_server

pytestmark = pytest.mark.anyio


def transport_for(port: int, **kwargs: Any) -> SmtpTransport:
    kwargs.setdefault("timeout", 5.0)
    return SmtpTransport(
        "127.0.0.1", port, tls=TlsMode.NONE, hello_name="client.example.com", **kwargs
    )


def welcome(n: int, to: str | None = None) -> Message:
    return (
        Message.builder()
        .from_("Sender <sender@example.com>")
        .to(to or f"user{n}@example.com")
        .subject(f"welcome {n}")
        .text(f"Hello number {n}.")
        .build()
    )


async def test_send_many_gives_one_outcome_per_message_in_order(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"user3@example.com", "user7@example.com"}))
    messages = [welcome(n) for n in range(12)]
    async with transport_for(server.port, pool=PoolConfig(max_size=3)) as transport:
        with anyio.fail_after(BOUND):
            outcomes = await transport.send_many(messages, concurrency=5)
        stats = transport.statistics()
    assert len(outcomes) == 12
    for n, outcome in enumerate(outcomes):
        if n in (3, 7):
            assert isinstance(outcome, RecipientsRefused)
            assert outcome.code == 550
        else:
            assert isinstance(outcome, SendResult)
            assert outcome.accepted == (f"user{n}@example.com",)
            assert outcome.message_id == messages[n].message_id
    assert len(server.messages) == 10
    assert stats.opened_total <= 3
    assert stats.messages_sent == 10  # the messages the server accepted


async def test_send_many_keeps_going_when_a_message_cannot_be_sent() -> None:
    refusing = MiniSmtp(replies={"MAIL": "451 4.3.0 Try later"})
    async with (
        scripted_server(refusing) as server,
        transport_for(server.port) as transport,
    ):
        outcomes = await transport.send_many([welcome(n) for n in range(4)])
    assert all(isinstance(o, SmtpError) and o.transient for o in outcomes)


async def test_send_many_records_non_smtp_errors_too(smtpd: ServerFactory) -> None:
    server = smtpd()

    class Broken:
        def sign(self, data: bytes) -> bytes:
            raise AddressError("the signer refused")

    async with transport_for(server.port, dkim=Broken()) as transport:
        outcomes = await transport.send_many([welcome(0), welcome(1)])
    assert [type(o) for o in outcomes] == [AddressError, AddressError]
    assert server.messages == []


async def test_send_many_chains_on_a_pipelining_server() -> None:
    mini = MiniSmtp()
    async with (
        scripted_server(mini) as server,
        transport_for(server.port, pool=PoolConfig(max_size=2)) as transport,
    ):
        outcomes = await transport.send_many([welcome(n) for n in range(20)])
        stats = transport.statistics()
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert len(mini.transactions) == 20
    assert stats.opened_total <= 2
    # Chained: some chunk carried one message's last BDAT and the next MAIL.
    assert any(
        b"BDAT" in chunk and b"MAIL FROM:" in chunk.split(b"BDAT", 1)[1]
        for conn in server.connections
        for chunk in conn.chunks
    )


async def test_send_many_of_nothing() -> None:
    transport = transport_for(9)
    assert await transport.send_many([]) == []
    await transport.aclose()


@pytest.mark.parametrize(("concurrency", "error"), [(0, ValueError), (1.5, TypeError)])
async def test_send_many_checks_its_concurrency(concurrency: Any, error: type[Exception]) -> None:
    transport = transport_for(9)
    with pytest.raises(error):
        await transport.send_many([welcome(0)], concurrency=concurrency)
    await transport.aclose()


def test_pool_configuration_is_checked() -> None:
    with pytest.raises(TypeError, match="PoolConfig"):
        transport_for(9, pool={"max_size": 3})
    transport = transport_for(9, pool=PoolConfig(max_size=3, rate_limit=(5, 1.0)))
    assert transport.pool_config.max_size == 3
    assert transport.pool_config.rate_limit == (5, 1.0)
    assert transport_for(9).pool_config == PoolConfig()


async def test_pool_config_through_every_constructor(smtpd: ServerFactory) -> None:
    server = smtpd()
    config = PoolConfig(max_size=2)
    url = f"smtp://127.0.0.1:{server.port}?tls=none&hello_name=client.example.com"
    for transport in (
        SmtpTransport.from_url(url, pool=config),
        SmtpTransport.local(server.port, host="127.0.0.1", pool=config),
    ):
        assert transport.pool_config is config
        async with transport:
            await transport.send(welcome(0))
            assert transport.statistics().open == 1
        assert transport.statistics().open == 0


async def test_closing_the_transport_while_a_caller_waits() -> None:
    async with scripted_server(MiniSmtp(hang_on="MAIL")) as server:
        transport = transport_for(server.port, pool=PoolConfig(max_size=1), timeout=BOUND)
        errors: list[BaseException] = []

        async def send(n: int) -> None:
            try:
                await transport.send(welcome(n))
            except SmtpError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            group.start_soon(send, 0)  # holds the only connection (the server hangs)
            await settle()
            group.start_soon(send, 1)  # waits for it
            await settle()
            assert transport.statistics().waiting == 1
            await transport.aclose()
            await settle()
            assert any("closed" in str(e) for e in errors)
            group.cancel_scope.cancel()
        assert transport.closed
        with pytest.raises(SmtpError, match="closed"):
            await transport.send(welcome(2))
