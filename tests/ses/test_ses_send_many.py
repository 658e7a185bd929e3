"""SesTransport.send_many against a real moto server, on every event loop."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from ses_support import SENDER, Moto

from lettre.errors import SesError
from lettre.message import Message
from lettre.transports.base import SendResult

pytestmark = pytest.mark.anyio

BOUND = 60.0


def message(n: int, sender: str = SENDER) -> Message:
    return (
        Message.builder()
        .from_(sender)
        .to(f"reader{n}@example.com")
        .subject(f"Issue {n}")
        .text(f"Hello, reader {n}.")
        .build()
    )


async def test_one_outcome_per_message_in_order(moto: Moto, anyio_backend: Any) -> None:
    messages = [message(n) for n in range(6)]
    # SES refuses a sender that is not verified: only that message fails.
    messages[3] = message(3, sender="stranger@example.net")
    async with moto.transport() as transport:
        with anyio.fail_after(BOUND):
            outcomes = await transport.send_many(messages, concurrency=2)
    assert len(outcomes) == 6
    failed = outcomes[3]
    assert isinstance(failed, SesError)
    assert failed.code == "MessageRejected"
    assert not failed.transient
    stored = moto.raw_messages()
    assert len(stored) == 5
    for n in (0, 1, 2, 4, 5):
        outcome = outcomes[n]
        assert isinstance(outcome, SendResult)
        assert outcome.accepted == (f"reader{n}@example.com",)
        assert outcome.message_id == messages[n].message_id
    assert {s["id"] for s in stored} == {
        o.transport_id for o in outcomes if isinstance(o, SendResult)
    }


async def test_a_single_message_is_refused(moto: Moto, anyio_backend: Any) -> None:
    async with moto.transport() as transport:
        with pytest.raises(TypeError, match=r"takes a list of messages, not a single Message"):
            await transport.send_many(message(0))  # type: ignore[arg-type]
    assert moto.raw_messages() == []
