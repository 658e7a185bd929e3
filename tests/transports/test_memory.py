"""MemoryTransport: recording, programmed failures and refusals."""

from __future__ import annotations

from email.message import EmailMessage

import anyio
import pytest

from lettre.envelope import Envelope
from lettre.errors import RecipientsRefused, SendmailError, SmtpTimeoutError
from lettre.message.message import Message
from lettre.protocol.replies import Reply
from lettre.transports.base import Transport
from lettre.transports.memory import DEFAULT_REFUSAL, MemoryTransport, SentMessage

pytestmark = pytest.mark.anyio

BOTH = Envelope(None, ["bob@example.com", "carol@example.org"])
DATA = b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: raw\r\n\r\nhello\r\n"


def build(subject: str = "Welcome", *to: str) -> Message:
    return (
        Message.builder()
        .from_("Alice <alice@example.com>")
        .to(*(to or ("bob@example.com",)))
        .subject(subject)
        .text("hello")
        .build()
    )


async def test_send_records_the_message_object_and_exact_bytes() -> None:
    transport = MemoryTransport()
    message = build()

    result = await transport.send(message)

    (sent,) = transport.outbox
    assert isinstance(sent, SentMessage)
    assert sent.message is message
    assert sent.data == message.as_bytes()
    assert sent.envelope == message.envelope
    assert sent.sender == "alice@example.com"
    assert sent.recipients == ("bob@example.com",)
    assert sent.message_id == message.message_id
    assert sent.result is result
    assert result.message_id == message.message_id
    assert result.all_accepted
    assert sent.parsed()["Subject"] == "Welcome"


async def test_send_with_explicit_envelope() -> None:
    transport = MemoryTransport()
    envelope = Envelope("bounces@example.com", ["other@example.org"])

    await transport.send(build(), envelope=envelope)

    assert transport.outbox[0].envelope == envelope
    assert transport.outbox[0].recipients == ("other@example.org",)


async def test_send_raw_records_without_a_message() -> None:
    transport = MemoryTransport()
    envelope = Envelope(None, ["bob@example.com"])

    result = await transport.send_raw(envelope, DATA)

    (sent,) = transport.outbox
    assert sent.message is None
    assert sent.data == DATA
    assert sent.sender is None
    assert sent.message_id is None
    assert result.accepted == ("bob@example.com",)
    assert sent.parsed()["Subject"] == "raw"


async def test_stdlib_message_is_kept() -> None:
    transport = MemoryTransport()
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["To"] = "bob@example.com"
    message["Subject"] = "stdlib"
    message.set_content("hello")

    await transport.send(message)

    (sent,) = transport.outbox
    assert sent.message is message
    assert sent.recipients == ("bob@example.com",)
    assert sent.parsed()["Subject"] == "stdlib"


async def test_signers_sign_the_recorded_bytes() -> None:
    class Stamp:
        def __init__(self, name: str) -> None:
            self.name = name

        def sign(self, data: bytes) -> bytes:
            return f"X-Stamp: {self.name}\r\n".encode() + data

    transport = MemoryTransport(dkim=[Stamp("one"), Stamp("two")])
    message = build()

    await transport.send(message)

    sent = transport.outbox[0]
    assert sent.data == b"X-Stamp: two\r\nX-Stamp: one\r\n" + message.as_bytes()
    assert sent.message is message


async def test_fail_with_once() -> None:
    transport = MemoryTransport()
    error = SmtpTimeoutError("the server did not answer in time")
    transport.fail_with(error)

    with pytest.raises(SmtpTimeoutError) as info:
        await transport.send(build("first"))
    assert info.value is error
    assert transport.outbox == []

    await transport.send(build("second"))
    assert [s.parsed()["Subject"] for s in transport.outbox] == ["second"]


async def test_fail_with_a_number_of_times() -> None:
    transport = MemoryTransport()
    transport.fail_with(SendmailError("queue full", returncode=75, transient=True), times=2)

    for _ in range(2):
        with pytest.raises(SendmailError):
            await transport.send_raw(Envelope(None, ["b@example.com"]), DATA)
    await transport.send_raw(Envelope(None, ["b@example.com"]), DATA)

    assert len(transport.outbox) == 1


async def test_fail_always_until_stopped() -> None:
    transport = MemoryTransport()
    transport.fail_with(ConnectionResetError("gone"), times=None)

    for _ in range(5):
        with pytest.raises(ConnectionResetError):
            await transport.send(build())
    transport.stop_failing()
    await transport.send(build())

    assert len(transport.outbox) == 1


def test_fail_with_validation() -> None:
    transport = MemoryTransport()
    with pytest.raises(TypeError, match="exception instance"):
        transport.fail_with(SmtpTimeoutError)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        transport.fail_with(SmtpTimeoutError("x"), times=0)
    with pytest.raises(ValueError, match="times"):
        transport.fail_with(SmtpTimeoutError("x"), times=True)


async def test_some_recipients_refused() -> None:
    transport = MemoryTransport()
    transport.refuse("carol@example.org")

    result = await transport.send(build("hi", "bob@example.com", "Carol <carol@example.org>"))

    assert result.accepted == ("bob@example.com",)
    (refused,) = result.refused
    assert refused.recipient == "carol@example.org"
    assert refused.reply == DEFAULT_REFUSAL
    (sent,) = transport.outbox
    assert sent.recipients == ("bob@example.com",)
    assert [str(a) for a in sent.envelope.forward_paths] == [
        "bob@example.com",
        "carol@example.org",
    ]


async def test_every_recipient_refused_raises() -> None:
    transport = MemoryTransport()
    transport.refuse("bob@example.com", "carol@example.org")

    with pytest.raises(RecipientsRefused) as info:
        await transport.send(build("hi", "bob@example.com", "carol@example.org"))

    error = info.value
    assert error.code == 550
    assert error.enhanced_status == "5.1.1"
    assert not error.transient
    assert [r.recipient for r in error.results] == ["bob@example.com", "carol@example.org"]
    assert not any(r.accepted for r in error.results)
    assert transport.outbox == []


async def test_transient_refusal() -> None:
    transport = MemoryTransport()
    busy = Reply(451, "4.3.0", ("try again later",))
    transport.refuse("bob@example.com", reply=busy)

    with pytest.raises(RecipientsRefused) as info:
        await transport.send_raw(Envelope(None, ["bob@example.com"]), DATA)

    assert info.value.transient
    assert info.value.results[0].reply == busy


async def test_refusal_matches_addresses_not_text() -> None:
    transport = MemoryTransport()
    transport.refuse("Bob@BÜCHER.example")

    with pytest.raises(RecipientsRefused):
        await transport.send_raw(Envelope(None, ["Bob@xn--bcher-kva.example"]), DATA)
    # The local part is case-sensitive.
    await transport.send_raw(Envelope(None, ["bob@bücher.example"]), DATA)
    assert transport.outbox[0].recipients == ("bob@bücher.example",)


async def test_accept_undoes_refusals() -> None:
    transport = MemoryTransport()
    transport.refuse("bob@example.com", "carol@example.org")
    transport.accept("bob@example.com")

    result = await transport.send_raw(
        Envelope(None, ["bob@example.com", "carol@example.org"]), DATA
    )
    assert result.accepted == ("bob@example.com",)

    transport.accept()
    result = await transport.send_raw(
        Envelope(None, ["bob@example.com", "carol@example.org"]), DATA
    )
    assert result.all_accepted


def test_refuse_validation() -> None:
    transport = MemoryTransport()
    with pytest.raises(ValueError, match="4xx or 5xx"):
        transport.refuse("bob@example.com", reply=Reply(250, None, ("ok",)))
    with pytest.raises(ValueError, match=r"address|@"):
        transport.refuse("not an address")


async def test_clear_and_reset() -> None:
    transport = MemoryTransport()
    transport.refuse("carol@example.org")
    await transport.send_raw(BOTH, DATA)

    transport.clear()
    assert transport.outbox == []
    result = await transport.send_raw(
        Envelope(None, ["bob@example.com", "carol@example.org"]), DATA
    )
    assert not result.all_accepted  # clear() keeps the configuration

    transport.fail_with(SmtpTimeoutError("x"), times=None)
    transport.reset()
    assert transport.outbox == []
    result = await transport.send_raw(
        Envelope(None, ["bob@example.com", "carol@example.org"]), DATA
    )
    assert result.all_accepted


async def test_a_cancelled_send_records_nothing() -> None:
    transport = MemoryTransport()

    with anyio.CancelScope() as scope:
        scope.cancel()
        await transport.send(build())

    assert scope.cancelled_caught
    assert transport.outbox == []


async def test_concurrent_sends_are_all_recorded() -> None:
    transport = MemoryTransport()

    async with anyio.create_task_group() as tg:
        for number in range(50):
            tg.start_soon(transport.send, build(f"message {number}"))

    subjects = sorted(s.parsed()["Subject"] for s in transport.outbox)
    assert subjects == sorted(f"message {n}" for n in range(50))


async def test_async_with_and_closed() -> None:
    async with MemoryTransport() as transport:
        assert not transport.closed
        await transport.send(build())
    assert transport.closed
    assert len(transport.outbox) == 1
    assert "1 message" in repr(transport)


def test_is_a_transport() -> None:
    assert isinstance(MemoryTransport(), Transport)
