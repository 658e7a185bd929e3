"""send_many on the memory, file and sendmail transports, and its one implementation.

Every transport inherits ``send_many`` from BaseTransport (the SES and SMTP
transports are tested in tests/ses and tests/smtp). The file transport writes
real files and the sendmail transport runs a real program.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import pytest

from lettre.envelope import Envelope
from lettre.errors import AddressError, RecipientsRefused, SendmailError
from lettre.message import Message
from lettre.transports.base import DEFAULT_CONCURRENCY, BaseTransport, SendResult, Transport
from lettre.transports.file import FileTransport
from lettre.transports.memory import MemoryTransport
from lettre.transports.sendmail import SendmailTransport
from lettre.transports.ses import SesTransport
from lettre.transports.smtp import SmtpTransport

pytestmark = pytest.mark.anyio

# A hung test fails after this long instead of blocking the run.
BOUND = 30.0

# A sendmail stand-in: refuses nobody@example.com like sendmail does (EX_NOUSER),
# and keeps every message it accepts in OUT.
SENDMAIL_BODY = """
if "nobody@example.com" in sys.argv:
    sys.stderr.write("nobody@example.com... User unknown\\n")
    sys.exit(67)
data = sys.stdin.buffer.read()
path = os.path.join(OUT, f"{os.getpid()}.eml")
with open(path + ".part", "wb") as handle:
    handle.write(data)
os.replace(path + ".part", path)
"""


def message(n: int, to: str | None = None) -> Message:
    return (
        Message.builder()
        .from_("News <news@example.com>")
        .to(to or f"reader{n}@example.com")
        .subject(f"Issue {n}")
        .text(f"Hello, reader {n}.")
        .build()
    )


def bad_stdlib_message() -> EmailMessage:
    """A stdlib message whose To cannot be parsed: it fails before any transport is involved."""
    msg = EmailMessage()
    msg["From"] = "news@example.com"
    msg["To"] = "bob@@x"
    msg["Subject"] = "broken"
    msg.set_content("never sent")
    return msg


def _to_headers(raw: list[bytes]) -> list[str]:
    return sorted(
        str(email.message_from_bytes(data, policy=email.policy.default)["To"]) for data in raw
    )


@dataclass
class Under:
    """A transport and a way to see what it really delivered."""

    kind: str
    transport: BaseTransport
    delivered: Callable[[], list[str]]  # the To header of each delivered message, sorted


@pytest.fixture(params=["memory", "file", "sendmail"])
def under(request: pytest.FixtureRequest, tmp_path: Path, make_script: Any) -> Under:
    kind: str = request.param
    if kind == "memory":
        memory = MemoryTransport()
        memory.refuse("nobody@example.com")
        return Under(kind, memory, lambda: _to_headers([m.data for m in memory.outbox]))
    if kind == "file":
        directory = tmp_path / "mail"
        directory.mkdir()
        return Under(
            kind,
            FileTransport(directory),
            lambda: _to_headers([p.read_bytes() for p in directory.glob("*.eml")]),
        )
    script = make_script("sendmail", SENDMAIL_BODY)
    records = tmp_path / "records"
    return Under(
        kind,
        SendmailTransport(script, timeout=BOUND),
        lambda: _to_headers([p.read_bytes() for p in records.glob("*.eml")]),
    )


async def test_one_outcome_per_message_in_order(under: Under) -> None:
    messages: list[Message | EmailMessage] = [message(n) for n in range(8)]
    messages[2] = bad_stdlib_message()
    messages[5] = message(5, to="nobody@example.com")
    async with under.transport:
        with anyio.fail_after(BOUND):
            outcomes = await under.transport.send_many(messages, concurrency=3)
    assert len(outcomes) == len(messages)
    # A message that cannot even be serialised is that message's outcome.
    assert isinstance(outcomes[2], AddressError)
    assert str(outcomes[2]) == "To: 'bob@@x' has more than one @"
    # A refusal by the next hop is that message's outcome too.
    refused = {"memory": RecipientsRefused, "sendmail": SendmailError, "file": SendResult}
    assert isinstance(outcomes[5], refused[under.kind])
    delivered = [n for n in range(8) if n != 2 and (n != 5 or under.kind == "file")]
    for n in delivered:
        outcome = outcomes[n]
        assert isinstance(outcome, SendResult)
        assert isinstance(messages[n], Message)
        assert outcome.message_id == messages[n].message_id  # type: ignore[union-attr]
        assert outcome.all_accepted
    expected = sorted(str(messages[n].to) for n in delivered)  # type: ignore[union-attr]
    assert under.delivered() == expected


@pytest.mark.parametrize("single", [message(0), bad_stdlib_message()], ids=["Message", "stdlib"])
async def test_a_single_message_is_refused_with_the_call_to_make(
    under: Under, single: Message | EmailMessage
) -> None:
    with pytest.raises(TypeError) as info:
        await under.transport.send_many(single)  # type: ignore[arg-type]
    text = str(info.value)
    assert f"send_many() takes a list of messages, not a single {type(single).__name__}" in text
    assert "pass [message], or call send(message)" in text
    assert under.delivered() == []


async def test_a_list_holding_something_else_is_refused_before_anything_is_sent(
    under: Under,
) -> None:
    items: list[Any] = [message(0), message(1), "reader2@example.com"]
    with pytest.raises(TypeError, match=r"item 2 is a str, not a Message or EmailMessage"):
        await under.transport.send_many(items)
    with pytest.raises(TypeError, match=r"not int"):
        await under.transport.send_many(42)  # type: ignore[arg-type]
    assert under.delivered() == []


@pytest.mark.parametrize(
    ("concurrency", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)],
)
async def test_concurrency_is_checked_before_anything_is_sent(
    under: Under, concurrency: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="concurrency"):
        await under.transport.send_many([message(0)], concurrency=concurrency)
    assert under.delivered() == []


async def test_nothing_to_send(under: Under) -> None:
    assert await under.transport.send_many([]) == []
    assert await under.transport.send_many(iter(())) == []


async def test_any_iterable_of_messages(under: Under) -> None:
    outcomes = await under.transport.send_many(message(n) for n in range(3))
    assert all(isinstance(outcome, SendResult) for outcome in outcomes)
    assert under.delivered() == [f"reader{n}@example.com" for n in range(3)]


# -- the one implementation ---------------------------------------------------------------


class Gated(MemoryTransport):
    """Holds every send until ``gate_at`` are in flight at once, and records the peak."""

    def __init__(self, gate_at: int) -> None:
        super().__init__()
        self.gate_at = gate_at
        self.in_flight = 0
        self.peak = 0
        self.gate = anyio.Event()

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


@pytest.mark.parametrize("concurrency", [1, 3, 7])
async def test_no_more_sends_run_at_once_than_asked(concurrency: int) -> None:
    transport = Gated(gate_at=concurrency)
    with anyio.fail_after(BOUND):
        outcomes = await transport.send_many(
            [message(n) for n in range(20)], concurrency=concurrency
        )
    assert transport.peak == concurrency
    assert len(transport.outbox) == 20
    assert all(isinstance(outcome, SendResult) for outcome in outcomes)


async def test_the_default_concurrency() -> None:
    transport = Gated(gate_at=DEFAULT_CONCURRENCY)
    with anyio.fail_after(BOUND):
        await transport.send_many([message(n) for n in range(3 * DEFAULT_CONCURRENCY)])
    assert transport.peak == DEFAULT_CONCURRENCY


async def test_an_error_that_is_not_an_exception_stops_the_batch() -> None:
    class Stop(BaseException):
        """Like KeyboardInterrupt or SystemExit: not a message's outcome."""

    transport = MemoryTransport()
    transport.fail_with(Stop())
    with pytest.raises(BaseException) as info:
        await transport.send_many([message(n) for n in range(3)], concurrency=1)
    assert isinstance(info.value, Stop) or info.group_contains(Stop)
    assert transport.outbox == []


def test_every_transport_has_send_many_and_the_protocol_names_it(tmp_path: Path) -> None:
    transports: list[BaseTransport] = [
        MemoryTransport(),
        FileTransport(tmp_path),
        SendmailTransport("sendmail"),
        SesTransport(region="us-east-1"),
        SmtpTransport.local(2525),
    ]
    for transport in transports:
        assert isinstance(transport, Transport)
        assert type(transport).send_many is BaseTransport.send_many, type(transport).__name__

    class WithoutSendMany:
        async def send(self, message: Any, *, envelope: Envelope | None = None) -> Any: ...

        async def send_raw(self, envelope: Envelope, data: bytes) -> Any: ...

        async def aclose(self) -> None: ...

    assert not isinstance(WithoutSendMany(), Transport)


def test_for_new_process_keeps_stateless_transports_and_remakes_smtp() -> None:
    from lettre import MemoryTransport, PoolConfig, SmtpTransport, TlsMode

    memory = MemoryTransport()
    assert memory.for_new_process() is memory
    signer = _NoSigner()
    smtp = SmtpTransport(
        "127.0.0.1", 2525, tls=TlsMode.NONE, dkim=signer, pool=PoolConfig(max_size=3)
    )
    fresh = smtp.for_new_process()
    assert fresh is not smtp
    assert isinstance(fresh, SmtpTransport)
    assert fresh.settings == smtp.settings
    assert fresh.pool_config == smtp.pool_config
    assert fresh._signers == (signer,)
    assert fresh.statistics().opened_total == 0


class _NoSigner:
    def sign(self, data: bytes) -> bytes:
        return data
