"""FailoverTransport and RoundRobinTransport against real transports and servers.

SMTP servers that are down (a closed port), busy (421), refuse with 4xx or
5xx, hang or drop the connection after the data; SES answering like a
throttled service or closing the connection; the memory transport.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from lettre.envelope import Envelope
from lettre.errors import (
    AuthenticationError,
    DataRefused,
    DeliveryError,
    HttpApiError,
    MessageError,
    OutcomeUnknown,
    PoolTimeout,
    RecipientsRefused,
    SenderRefused,
    SendmailError,
    ServerDisconnected,
    SesError,
    SmtpConnectError,
    SmtpError,
    SmtpTimeoutError,
    TlsError,
    TransportError,
)
from lettre.hooks import Hook, SendObserver, SendStarted, register, unregister
from lettre.message.message import Message
from lettre.results import RecipientResult, Reply, SendResult
from lettre.smtp.tls import TlsMode
from lettre.sync import BlockingTransport
from lettre.transports.base import DEFAULT_CONCURRENCY
from lettre.transports.failover import (
    AllTransportsFailed,
    FailoverSendResult,
    FailoverTransport,
    RoundRobinTransport,
    fails_over,
)
from lettre.transports.memory import MemoryTransport
from lettre.transports.smtp import SmtpTransport
from servers import AiosmtpdServer, MiniSmtp, RecordingHandler, ServerFactory, scripted_server

HELLO = "client.lettre.test"
TIMEOUT = 5.0
BOB = "bob@example.com"
CAROL = "carol@example.org"
NO_CHUNKING = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
"""MiniSmtp's extensions without CHUNKING: the content goes with DATA."""
BUSY = Reply(450, "4.2.1", ("mailbox busy, try later",))


def build(subject: str = "Hello", *to: str) -> Message:
    return (
        Message.builder()
        .from_("Alice <alice@example.com>")
        .to(*(to or (BOB,)))
        .subject(subject)
        .text("hello")
        .build()
    )


def smtp(port: int, **kwargs: Any) -> SmtpTransport:
    kwargs.setdefault("timeout", TIMEOUT)
    return SmtpTransport("127.0.0.1", port, tls=TlsMode.NONE, hello_name=HELLO, **kwargs)


def to(server: AiosmtpdServer) -> SmtpTransport:
    return smtp(server.port)


@asynccontextmanager
async def scripted_then_memory(
    mini: MiniSmtp,
) -> AsyncIterator[tuple[FailoverTransport, MemoryTransport]]:
    """A FailoverTransport trying SMTP to ``mini`` first, then a memory transport (the backup)."""
    backup = MemoryTransport()
    async with (
        scripted_server(mini) as server,
        FailoverTransport([smtp(server.port), backup]) as transport,
    ):
        yield transport, backup


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, not listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder(Hook):
    """Records every send's start and end, by transport kind."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.started: list[SendStarted] = []

    def send_started(self, event: SendStarted) -> SendObserver:
        self.started.append(event)
        self.events.append(("start", event.transport))
        events, name = self.events, event.transport

        class Observer(SendObserver):
            def finished(self, result: SendResult) -> None:
                events.append(("finished", name))

            def failed(self, error: BaseException) -> None:
                events.append(("failed", name, type(error).__name__))

        return Observer()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    hook = Recorder()
    register(hook)
    try:
        yield hook
    finally:
        unregister(hook)


# --------------------------------------------------------------------------- what fails over


def _ses_failure(cause: BaseException) -> SesError:
    """An SesError raised the way SesTransport raises it (chained from the AWS error)."""
    from lettre.transports.ses import ses_error_from_exception

    try:
        raise ses_error_from_exception(cause) from cause
    except SesError as error:
        return error


def _botocore(name: str) -> BaseException:
    exceptions = pytest.importorskip("botocore.exceptions")
    if name == "Throttling":
        return exceptions.ClientError(  # type: ignore[no-any-return]
            {"Error": {"Code": "Throttling", "Message": "slow down"}}, "SendEmail"
        )
    if name == "MessageRejected":
        return exceptions.ClientError(  # type: ignore[no-any-return]
            {"Error": {"Code": "MessageRejected", "Message": "no"}}, "SendEmail"
        )
    return getattr(exceptions, name)(endpoint_url="https://email.test")  # type: ignore[no-any-return]


def _refused(*replies: Reply) -> RecipientsRefused:
    results = [
        RecipientResult(f"r{i}@example.com", False, reply) for i, reply in enumerate(replies)
    ]
    first = replies[0]
    return RecipientsRefused(first.code, first.text, results=results)


def _refused_by_calls(error: Exception) -> RecipientsRefused:
    """Every recipient refused by an error rather than a reply."""
    results = [RecipientResult(BOB, False, None, error)]
    return RecipientsRefused(450, "refused", results=results)


def _delivery(error: Exception) -> DeliveryError:
    result = SendResult((RecipientResult(BOB, False, None, error),))
    return DeliveryError("no recipient was accepted", result=result, transient=True)


FAILS_OVER: dict[str, Any] = {
    "connection refused": lambda: SmtpConnectError("cannot connect to 127.0.0.1:2525"),
    "timeout before the content": lambda: SmtpTimeoutError("no reply to RCPT"),
    "disconnect before the content": lambda: ServerDisconnected("closed before DATA"),
    "no pooled connection": lambda: PoolTimeout("every connection busy"),
    "4xx to MAIL": lambda: SenderRefused(451, "local error", command="MAIL"),
    "4xx to the greeting": lambda: SmtpConnectError("refused: 421 busy", transient=True),
    "4xx to every recipient": lambda: _refused(BUSY, BUSY),
    "4xx to the end of data": lambda: DataRefused(451, "queue full", command="DATA"),
    "4xx STARTTLS": lambda: TlsError("STARTTLS refused: 454", transient=True),
    "4xx AUTH": lambda: AuthenticationError(454, "temporary auth failure", command="AUTH"),
    "SES throttling": lambda: _ses_failure(_botocore("Throttling")),
    "SES unreachable": lambda: _ses_failure(_botocore("EndpointConnectionError")),
    "sendmail EX_TEMPFAIL": lambda: SendmailError("exit 75", returncode=75, transient=True),
    "direct delivery, domain unreachable": lambda: _delivery(SmtpConnectError("no route")),
    "a nested failover": lambda: AllTransportsFailed("all failed", attempts=()),
    "SES, not chained": lambda: SesError("service unavailable", transient=True),
    "an HTTP API unreachable": lambda: HttpApiError(
        "cannot connect", service="Resend", transient=True
    ),
    "every recipient's call failed": lambda: _refused_by_calls(SesError("x", transient=True)),
}

RAISED_AS_IS: dict[str, Any] = {
    "outcome unknown": lambda: OutcomeUnknown("closed after the end of data"),
    "SES read timeout": lambda: _ses_failure(_botocore("ReadTimeoutError")),
    "SES connection closed": lambda: _ses_failure(_botocore("ConnectionClosedError")),
    "sendmail killed at its timeout": lambda: SendmailError(
        "killed", transient=True, outcome_unknown=True
    ),
    "an HTTP API that did not answer": lambda: HttpApiError(
        "no answer", service="Postmark", transient=True, outcome_unknown=True
    ),
    "direct delivery, outcome unknown": lambda: _delivery(OutcomeUnknown("closed")),
    "5xx to MAIL": lambda: SenderRefused(550, "no such sender", command="MAIL"),
    "5xx to every recipient": lambda: _refused(Reply(550, "5.1.1", ("no such user",))),
    "4xx and 5xx refusals": lambda: _refused(BUSY, Reply(550, "5.1.1", ("no such user",))),
    "5xx to the data": lambda: DataRefused(554, "spam", command="DATA"),
    "bad credentials": lambda: AuthenticationError(535, "bad credentials", command="AUTH"),
    "certificate check": lambda: TlsError("certificate verify failed"),
    "SES message rejected": lambda: _ses_failure(_botocore("MessageRejected")),
    "sendmail not found": lambda: SendmailError("cannot run sendmail"),
    "transport closed": lambda: SmtpError("the SMTP transport is closed", transient=False),
    "message error": lambda: MessageError("no From"),
    "not a lettre error": lambda: OSError("disk full"),
    "type error": lambda: TypeError("not a message"),
    "a recipient's call failed for good": lambda: _refused_by_calls(SesError("no")),
}


@pytest.mark.parametrize("make", FAILS_OVER.values(), ids=FAILS_OVER.keys())
def test_transient_failures_before_the_content_fail_over(make: Any) -> None:
    assert fails_over(make())


@pytest.mark.parametrize("make", RAISED_AS_IS.values(), ids=RAISED_AS_IS.keys())
def test_unknown_outcomes_and_permanent_failures_do_not_fail_over(make: Any) -> None:
    assert not fails_over(make())


# --------------------------------------------------------------------------- the constructor


def test_constructor_checks_its_arguments() -> None:
    memory = MemoryTransport()
    with pytest.raises(ValueError, match="at least one transport"):
        FailoverTransport([])
    with pytest.raises(TypeError, match="takes a list of transports"):
        FailoverTransport(memory)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1 is a str"):
        RoundRobinTransport([memory, "smtp://localhost"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="item 0 is the class MemoryTransport"):
        FailoverTransport([MemoryTransport])  # type: ignore[list-item]
    blocking = BlockingTransport(MemoryTransport())
    try:
        with pytest.raises(TypeError, match="wrap the FailoverTransport in BlockingTransport"):
            FailoverTransport([blocking])  # type: ignore[list-item]
    finally:
        blocking.close()
    with pytest.raises(ValueError, match="items 0 and 1 are the same transport"):
        FailoverTransport([memory, memory])
    with pytest.raises(ValueError, match="cooldown"):
        FailoverTransport([memory], cooldown=-1)
    with pytest.raises(ValueError, match="cooldown"):
        FailoverTransport([memory], cooldown=float("inf"))
    with pytest.raises(TypeError, match="cooldown"):
        FailoverTransport([memory], cooldown=True)
    with pytest.raises(TypeError, match="clock"):
        FailoverTransport([memory], clock=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hooks"):
        FailoverTransport([memory], hooks=Recorder())  # type: ignore[arg-type]


def test_repr_names_the_transports() -> None:
    transport = FailoverTransport([smtp(2525), MemoryTransport()], cooldown=30)
    assert repr(transport) == (
        "FailoverTransport([SmtpTransport(host='127.0.0.1', port=2525, tls=none), "
        "<MemoryTransport outbox=0 message(s)>], cooldown=30)"
    )


def test_default_concurrency() -> None:
    smtps = [smtp(2525), smtp(2526), smtp(2527)]
    per_pool = smtps[0]._default_concurrency()
    assert FailoverTransport([MemoryTransport(), smtps[0]])._default_concurrency() == per_pool
    assert RoundRobinTransport(smtps)._default_concurrency() == 3 * per_pool
    assert FailoverTransport([MemoryTransport()])._default_concurrency() == DEFAULT_CONCURRENCY


def test_for_new_process_renews_each_transport() -> None:
    hook = Recorder()
    primary, memory = smtp(2525), MemoryTransport()
    clock = Clock()
    for kind in (FailoverTransport, RoundRobinTransport):
        group = kind([primary, memory], cooldown=5, clock=clock, hooks=[hook])
        fresh = group.for_new_process()
        assert type(fresh) is kind
        new_smtp, same_memory = fresh.transports
        assert isinstance(new_smtp, SmtpTransport)
        assert new_smtp is not primary
        assert new_smtp.settings == primary.settings
        assert same_memory is memory  # holds no connection: kept
        assert fresh.cooldown == 5
        assert fresh.hooks == (hook,)


# --------------------------------------------------------------------------- failing over


@pytest.mark.anyio
async def test_a_server_that_is_down_fails_over_to_the_next(
    smtpd: ServerFactory, closed_port: int
) -> None:
    server = smtpd()
    down, up = smtp(closed_port), to(server)
    message = build()
    async with FailoverTransport([down, up]) as transport:
        result = await transport.send(message)
    assert isinstance(result, FailoverSendResult)
    assert result.transport is up
    assert result.index == 1
    assert result.failed_over
    (attempt,) = result.attempts
    assert attempt.index == 0
    assert attempt.transport is down
    assert isinstance(attempt.error, SmtpConnectError)
    assert result.message_id == message.message_id
    assert result.accepted == (BOB,)
    assert result.reply is not None
    assert result.reply.code == 250
    assert result.inner is not None
    assert result.inner.reply == result.reply
    assert [m.rcpt_tos for m in server.messages] == [[BOB]]
    assert server.messages[0].content == message.as_bytes()


@pytest.mark.anyio
async def test_the_first_transport_takes_the_message_when_it_can(smtpd: ServerFactory) -> None:
    server = smtpd()
    backup = MemoryTransport()
    async with FailoverTransport([to(server), backup]) as transport:
        result = await transport.send(build())
    assert (result.index, result.attempts, result.failed_over) == (0, (), False)
    assert len(server.messages) == 1
    assert backup.outbox == []


@pytest.mark.anyio
async def test_a_busy_server_421_fails_over() -> None:
    mini = MiniSmtp(greeting="421 4.3.2 too busy, try later")
    async with scripted_then_memory(mini) as (transport, backup):
        result = await transport.send(build())
    assert result.index == 1
    assert "421" in str(result.attempts[0].error)
    assert result.attempts[0].error.transient
    assert len(backup.outbox) == 1


@pytest.mark.anyio
async def test_4xx_to_mail_fails_over(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(mail_reply="451 4.3.0 try again later"))
    backup = MemoryTransport()
    async with FailoverTransport([to(server), backup]) as transport:
        result = await transport.send(build())
    error = result.attempts[0].error
    assert isinstance(error, SenderRefused)
    assert error.code == 451
    assert result.transport is backup
    assert server.messages == []


@pytest.mark.anyio
async def test_a_timeout_before_the_content_fails_over() -> None:
    # Without PIPELINING and CHUNKING the content waits for the replies.
    mini = MiniSmtp(extensions=["8BITMIME"], hang_on="RCPT")
    backup = MemoryTransport()
    async with (
        scripted_server(mini) as server,
        FailoverTransport([smtp(server.port, timeout=0.3), backup]) as transport,
    ):
        result = await transport.send(build())
    assert isinstance(result.attempts[0].error, SmtpTimeoutError)
    assert result.transport is backup
    assert all(t.content is None for t in mini.transactions)


@pytest.mark.anyio
async def test_4xx_to_every_recipient_fails_over(smtpd: ServerFactory) -> None:
    handler = RecordingHandler(refuse=[BOB], refuse_reply="450 4.2.1 mailbox busy")
    server = smtpd(handler=handler)
    backup = MemoryTransport()
    async with FailoverTransport([to(server), backup]) as transport:
        result = await transport.send(build())
    assert isinstance(result.attempts[0].error, RecipientsRefused)
    assert result.transport is backup
    assert backup.outbox[0].recipients == (BOB,)


@pytest.mark.anyio
async def test_4xx_to_the_end_of_data_fails_over() -> None:
    mini = MiniSmtp(extensions=NO_CHUNKING, replies={"END": "451 4.3.0 queue full"})
    async with scripted_then_memory(mini) as (transport, backup):
        result = await transport.send(build())
    assert isinstance(result.attempts[0].error, DataRefused)
    assert result.transport is backup


@pytest.mark.anyio
async def test_outcome_unknown_is_raised_as_is_and_never_fails_over() -> None:
    mini = MiniSmtp(on_end_of_data="close")
    message = build()
    async with scripted_then_memory(mini) as (transport, backup):
        with pytest.raises(OutcomeUnknown):
            await transport.send(message)
    assert backup.outbox == []
    # The server did get the content: failing over could have delivered it twice.
    assert [t.content for t in mini.transactions] == [message.as_bytes()]


@pytest.mark.anyio
async def test_5xx_refusing_every_recipient_is_raised_as_is(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse=[BOB]))
    backup = MemoryTransport()
    async with FailoverTransport([to(server), backup]) as transport:
        with pytest.raises(RecipientsRefused) as caught:
            await transport.send(build())
    assert caught.value.code == 550
    assert backup.outbox == []


@pytest.mark.anyio
async def test_5xx_to_the_data_is_raised_as_is() -> None:
    mini = MiniSmtp(extensions=NO_CHUNKING, replies={"END": "554 5.7.1 rejected as spam"})
    async with scripted_then_memory(mini) as (transport, backup):
        with pytest.raises(DataRefused) as caught:
            await transport.send(build())
    assert caught.value.code == 554
    assert backup.outbox == []


@pytest.mark.anyio
async def test_a_message_that_cannot_be_sent_is_raised_as_is(recorder: Recorder) -> None:
    from email.message import EmailMessage

    first, second = MemoryTransport(), MemoryTransport()
    transport = FailoverTransport([first, second])
    no_from = EmailMessage()
    no_from["To"] = BOB
    no_from.set_content("hello")
    with pytest.raises(MessageError, match="no From"):
        await transport.send(no_from)
    with pytest.raises(TypeError, match="cannot send a str"):
        await transport.send("hello")  # type: ignore[arg-type]
    unregister(recorder)  # without hooks, the first transport finds out
    with pytest.raises(MessageError, match="no From"):
        await transport.send(no_from)
    with pytest.raises(TypeError, match="cannot send a str"):
        await transport.send("hello")  # type: ignore[arg-type]
    assert first.outbox == second.outbox == []


@pytest.mark.anyio
async def test_a_partial_refusal_is_a_result(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse=[CAROL]))
    backup = MemoryTransport()
    async with FailoverTransport([to(server), backup]) as transport:
        result = await transport.send(build("Hi", BOB, CAROL))
    assert result.index == 0
    assert result.accepted == (BOB,)
    assert [r.recipient for r in result.refused] == [CAROL]
    assert result.refused[0].reply is not None
    assert result.refused[0].reply.code == 550
    assert backup.outbox == []


@pytest.mark.anyio
async def test_every_transport_failing_raises_one_error_with_each(
    smtpd: ServerFactory, closed_port: int
) -> None:
    busy = smtpd(handler=RecordingHandler(mail_reply="452 4.3.1 insufficient storage"))
    memory = MemoryTransport()
    memory.fail_with(SmtpTimeoutError("no answer"))
    down, full = smtp(closed_port), to(busy)
    async with FailoverTransport([down, full, memory]) as transport:
        with pytest.raises(AllTransportsFailed) as caught:
            await transport.send(build())
    error = caught.value
    assert isinstance(error, TransportError)
    assert error.transient
    assert [type(e) for e in error.errors] == [SmtpConnectError, SenderRefused, SmtpTimeoutError]
    assert [a.transport for a in error.attempts] == [down, full, memory]
    assert error.__cause__ is error.errors[-1]
    text = str(error)
    assert "every transport failed (3 tried)" in text
    assert f"#0 SmtpTransport(host='127.0.0.1', port={closed_port}" in text
    assert "#1 SmtpTransport" in text
    assert "452" in text
    assert "#2 <MemoryTransport" in text
    assert "no answer" in text


@pytest.mark.anyio
async def test_no_password_in_the_error_or_the_log(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    from lettre.smtp.auth import Credentials

    secret = "pa55-w0rd-never-shown"
    relays = [smtp(closed_port, credentials=Credentials("app", secret)) for _ in range(2)]
    async with FailoverTransport(relays) as transport:
        with pytest.raises(AllTransportsFailed) as caught:
            await transport.send(build())
    assert "user='app'" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value.attempts)
    assert secret not in caplog.text
    assert "FailoverTransport: #0 SmtpTransport" in caplog.text


@pytest.mark.anyio
async def test_a_later_transport_failing_for_good_is_raised_as_is(closed_port: int) -> None:
    refusing = MemoryTransport()
    refusing.refuse(BOB)
    async with FailoverTransport([smtp(closed_port), refusing]) as transport:
        with pytest.raises(RecipientsRefused):
            await transport.send(build())


@pytest.mark.anyio
async def test_a_nested_failover_fails_over_as_a_whole(closed_port: int) -> None:
    last = MemoryTransport()
    inner = FailoverTransport([smtp(closed_port), smtp(closed_port)])
    async with FailoverTransport([inner, last]) as transport:
        result = await transport.send(build())
    assert result.transport is last
    error = result.attempts[0].error
    assert isinstance(error, AllTransportsFailed)
    assert len(error.errors) == 2


@pytest.mark.anyio
async def test_send_raw_fails_over_with_the_same_bytes(smtpd: ServerFactory) -> None:
    server = smtpd()
    memory = MemoryTransport()
    memory.fail_with(ServerDisconnected("went away"))
    data = build().as_bytes()
    async with FailoverTransport([memory, to(server)]) as transport:
        result = await transport.send_raw(Envelope("alice@example.com", [BOB]), data)
    assert result.index == 1
    assert server.messages[0].content == data


@pytest.mark.anyio
async def test_cancelling_a_send_tries_no_other_transport() -> None:
    mini = MiniSmtp(hang_on="MAIL")
    async with scripted_then_memory(mini) as (transport, backup):
        with anyio.move_on_after(0.5) as scope:
            await transport.send(build())
    assert scope.cancelled_caught
    assert backup.outbox == []


# --------------------------------------------------------------------------- SES


class SesStub:
    """A loopback HTTP server answering like SES: throttled, or closing the connection."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                stub.requests += 1
                if stub.mode == "close":
                    self.close_connection = True
                    return
                body = json.dumps({"message": "Maximum sending rate exceeded."}).encode()
                self.send_response(429)
                self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def __enter__(self) -> SesStub:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def ses(url: str) -> Any:
    pytest.importorskip("botocore")
    from lettre.transports.ses import AwsCredentials, SesTransport

    credentials = AwsCredentials("AKIDTESTING", "testing-secret")
    return SesTransport(
        region="us-east-1", endpoint_url=url, credentials=credentials, max_attempts=1
    )


@pytest.mark.anyio
async def test_ses_throttling_fails_over() -> None:
    backup = MemoryTransport()
    with SesStub("throttle") as stub:
        async with FailoverTransport([ses(stub.url), backup]) as transport:
            result = await transport.send(build())
    error = result.attempts[0].error
    assert isinstance(error, SesError)
    assert error.code == "TooManyRequestsException"
    assert result.transport is backup
    assert stub.requests == 1


@pytest.mark.anyio
async def test_ses_without_an_answer_is_raised_as_is() -> None:
    backup = MemoryTransport()
    with SesStub("close") as stub:
        async with FailoverTransport([ses(stub.url), backup]) as transport:
            with pytest.raises(SesError, match="may or may not"):
                await transport.send(build())
    assert backup.outbox == []


# --------------------------------------------------------------------------- round robin


@pytest.mark.anyio
async def test_round_robin_takes_turns(smtpd: ServerFactory) -> None:
    servers = [smtpd(), smtpd(), smtpd()]
    transports = [to(s) for s in servers]
    async with RoundRobinTransport(transports) as transport:
        results = [await transport.send(build(f"#{n}")) for n in range(6)]
        outcomes = await transport.send_many([build(f"many #{n}") for n in range(9)])
    assert [r.index for r in results] == [0, 1, 2, 0, 1, 2]
    assert [r.transport for r in results] == transports * 2
    assert all(isinstance(o, FailoverSendResult) and not o.attempts for o in outcomes)
    assert [len(s.messages) for s in servers] == [5, 5, 5]
    subjects = sorted(m.parsed()["Subject"] for s in servers for m in s.messages)
    assert subjects == sorted([f"#{n}" for n in range(6)] + [f"many #{n}" for n in range(9)])


@pytest.mark.anyio
async def test_round_robin_fails_over_to_the_next_in_turn(
    smtpd: ServerFactory, closed_port: int
) -> None:
    first, third = smtpd(), smtpd()
    down = smtp(closed_port)
    async with RoundRobinTransport([to(first), down, to(third)]) as transport:
        results = [await transport.send(build(f"#{n}")) for n in range(6)]
    assert [r.index for r in results] == [0, 2, 2, 0, 2, 2]
    assert [len(r.attempts) for r in results] == [0, 1, 0, 0, 1, 0]
    assert all(a.transport is down for r in results for a in r.attempts)
    assert (len(first.messages), len(third.messages)) == (2, 4)


# --------------------------------------------------------------------------- cool-down


@pytest.mark.anyio
async def test_a_failing_transport_cools_down_then_comes_back() -> None:
    clock = Clock()
    primary, backup = MemoryTransport(), MemoryTransport()
    transport = FailoverTransport([primary, backup], cooldown=30, clock=clock)
    primary.fail_with(SmtpConnectError("connection refused"))  # once only
    assert (await transport.send(build())).index == 1
    assert transport.cooling_down() == (0,)

    # The primary would take it now, but it is not asked while it cools down.
    clock.now += 29.9
    result = await transport.send(build())
    assert (result.index, result.attempts) == (1, ())
    assert primary.outbox == []

    clock.now += 0.1
    assert transport.cooling_down() == ()
    assert (await transport.send(build())).index == 0
    assert len(primary.outbox) == 1


@pytest.mark.anyio
async def test_a_cooling_transport_is_still_the_last_resort() -> None:
    clock = Clock()
    primary, backup = MemoryTransport(), MemoryTransport()
    transport = FailoverTransport([primary, backup], cooldown=30, clock=clock)
    primary.fail_with(PoolTimeout("busy"))
    await transport.send(build())
    backup.fail_with(SmtpTimeoutError("no answer"))
    result = await transport.send(build())
    assert result.index == 0
    assert [a.index for a in result.attempts] == [1]
    # The primary's success ended its cool-down; the backup's failure began one.
    assert transport.cooling_down() == (1,)


class TickingClock(Clock):
    """A clock one second further on at each reading."""

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.mark.anyio
async def test_every_transport_cooling_down_is_tried_soonest_back_first() -> None:
    first, second = MemoryTransport(), MemoryTransport()
    transport = RoundRobinTransport([first, second], cooldown=30, clock=TickingClock())
    assert (await transport.send(build())).index == 0
    first.fail_with(SmtpConnectError("refused"))
    second.fail_with(SmtpConnectError("refused"))
    with pytest.raises(AllTransportsFailed) as caught:
        await transport.send(build())  # the second's turn: it fails first
    assert [a.index for a in caught.value.attempts] == [1, 0]
    assert transport.cooling_down() == (0, 1)
    # Both cool down; the second's cool-down ends first, so it is tried first.
    result = await transport.send(build())
    assert (result.index, result.attempts) == (1, ())


@pytest.mark.anyio
async def test_a_refusal_of_this_message_starts_no_cool_down() -> None:
    clock = Clock()
    primary, backup = MemoryTransport(), MemoryTransport()
    transport = FailoverTransport([primary, backup], cooldown=30, clock=clock)
    primary.refuse(BOB, reply=BUSY)
    assert (await transport.send(build())).index == 1
    assert transport.cooling_down() == ()
    primary.accept()
    assert (await transport.send(build())).index == 0


@pytest.mark.anyio
async def test_direct_delivery_failing_for_a_domain_starts_no_cool_down() -> None:
    clock = Clock()
    primary, backup = MemoryTransport(), MemoryTransport()
    transport = FailoverTransport([primary, backup], cooldown=30, clock=clock)
    primary.fail_with(_delivery(SmtpConnectError("no exchanger of example.com answered")))
    assert (await transport.send(build())).index == 1
    assert transport.cooling_down() == ()


@pytest.mark.anyio
async def test_round_robin_leaves_a_cooling_transport_out_of_the_rotation() -> None:
    clock = Clock()
    a, b, c = MemoryTransport(), MemoryTransport(), MemoryTransport()
    transport = RoundRobinTransport([a, b, c], cooldown=60, clock=clock)
    b.fail_with(SmtpConnectError("refused"))
    indexes = [(await transport.send(build())).index for _ in range(6)]
    assert indexes == [0, 2, 0, 2, 0, 2]  # b failed at its turn, then sat out
    clock.now += 60
    indexes = [(await transport.send(build())).index for _ in range(3)]
    assert sorted(indexes) == [0, 1, 2]


@pytest.mark.anyio
async def test_without_cooldown_the_primary_is_always_tried_first() -> None:
    primary, backup = MemoryTransport(), MemoryTransport()
    transport = FailoverTransport([primary, backup], clock=Clock())
    primary.fail_with(SmtpConnectError("refused"))
    assert (await transport.send(build())).index == 1
    assert transport.cooling_down() == ()
    assert (await transport.send(build())).index == 0


# --------------------------------------------------------------------------- lifetime


class CloseFails(MemoryTransport):
    async def aclose(self) -> None:
        await super().aclose()
        raise SmtpError("could not close")


class OpenFails(MemoryTransport):
    async def __aenter__(self) -> OpenFails:
        raise SmtpConnectError("cannot open")


@pytest.mark.anyio
async def test_aclose_closes_every_transport_even_if_one_raises(smtpd: ServerFactory) -> None:
    server = smtpd()
    broken, memory, relay = CloseFails(), MemoryTransport(), to(server)
    transport = RoundRobinTransport([broken, memory, relay])
    for _ in range(3):
        await transport.send(build())
    with pytest.raises(SmtpError, match="could not close"):
        await transport.aclose()
    assert broken.closed
    assert memory.closed
    assert relay.closed
    assert relay.statistics().open == 0


@pytest.mark.anyio
async def test_async_with_enters_and_leaves_every_transport(smtpd: ServerFactory) -> None:
    server = smtpd()
    relay, memory = to(server), MemoryTransport()
    async with FailoverTransport([relay, memory]) as transport:
        await transport.send(build())
        assert relay.statistics().open == 1
        assert not relay.closed
        assert not memory.closed
    assert relay.closed
    assert memory.closed
    assert relay.statistics().open == 0


@pytest.mark.anyio
async def test_a_transport_that_cannot_open_leaves_the_others_closed(
    smtpd: ServerFactory,
) -> None:
    relay = to(smtpd())
    with pytest.raises(SmtpConnectError, match="cannot open"):
        async with FailoverTransport([relay, OpenFails()]):
            pass  # pragma: no cover - never entered
    assert relay.closed


class Plain:
    """A transport by the Transport protocol alone: no ``async with``, no for_new_process()."""

    def __init__(self) -> None:
        self.memory = MemoryTransport()

    async def send(self, message: Any, *, envelope: Envelope | None = None) -> SendResult:
        return await self.memory.send(message, envelope=envelope)

    async def send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        return await self.memory.send_raw(envelope, data)

    async def send_many(self, messages: Any, *, concurrency: int | None = None) -> Any:
        return await self.memory.send_many(messages, concurrency=concurrency)

    async def aclose(self) -> None:
        await self.memory.aclose()


@pytest.mark.anyio
async def test_a_transport_by_the_protocol_alone_is_closed_and_kept() -> None:
    plain = Plain()
    memory = MemoryTransport()
    group = RoundRobinTransport([plain, memory])
    assert group._default_concurrency() == 2 * DEFAULT_CONCURRENCY
    assert group.for_new_process().transports == (plain, memory)
    async with group:
        await group.send(build())
        await group.send(build())
    assert plain.memory.closed
    assert memory.closed
    assert len(plain.memory.outbox) == len(memory.outbox) == 1


# --------------------------------------------------------------------------- hooks


@pytest.mark.anyio
async def test_hooks_see_the_failover_send_and_each_attempt(
    recorder: Recorder, closed_port: int
) -> None:
    message = build()
    async with FailoverTransport([smtp(closed_port), MemoryTransport()]) as transport:
        await transport.send(message)
    assert recorder.events == [
        ("start", "failover"),
        ("start", "smtp"),
        ("failed", "smtp", "SmtpConnectError"),
        ("start", "memory"),
        ("finished", "memory"),
        ("finished", "failover"),
    ]
    outer = recorder.started[0]
    assert outer.size == len(message.as_bytes())
    assert outer.message_id == message.message_id
    assert outer.envelope == message.envelope
    assert outer.server is None


@pytest.mark.anyio
async def test_hooks_see_a_round_robin_failure(recorder: Recorder) -> None:
    memory = MemoryTransport()
    memory.fail_with(OutcomeUnknown("closed after the data"))
    transport = RoundRobinTransport([memory, MemoryTransport()])
    with pytest.raises(OutcomeUnknown):
        await transport.send_raw(Envelope("alice@example.com", [BOB]), build().as_bytes())
    assert recorder.events == [
        ("start", "round-robin"),
        ("start", "memory"),
        ("failed", "memory", "OutcomeUnknown"),
        ("failed", "round-robin", "OutcomeUnknown"),
    ]


@pytest.mark.anyio
async def test_hooks_given_to_the_failover_see_only_its_sends(closed_port: int) -> None:
    hook = Recorder()
    async with FailoverTransport([smtp(closed_port), MemoryTransport()], hooks=[hook]) as t:
        await t.send(build())
    assert hook.events == [("start", "failover"), ("finished", "failover")]


# --------------------------------------------------------------------------- blocking code


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_transport_runs_a_failover(
    smtpd: ServerFactory, closed_port: int, backend: str
) -> None:
    server = smtpd()
    relay = to(server)
    mailer = BlockingTransport(FailoverTransport([smtp(closed_port), relay]), backend=backend)
    try:
        result = mailer.send(build())
        outcomes = mailer.send_many([build("a"), build("b")])
    finally:
        mailer.close()
    assert isinstance(result, FailoverSendResult)
    assert result.transport is relay
    assert isinstance(result.attempts[0].error, SmtpConnectError)
    assert all(isinstance(o, FailoverSendResult) and o.index == 1 for o in outcomes)
    assert len(server.messages) == 3
    assert relay.closed


def test_every_outcome_unknown_error_says_so_itself() -> None:
    """The decision reads `outcome_unknown`, which each kind of error carries through pickling."""
    import pickle

    for error in (
        OutcomeUnknown("closed after the end of data"),
        SesError("no answer", transient=True, outcome_unknown=True),
        SendmailError("killed", transient=True, outcome_unknown=True),
    ):
        assert error.outcome_unknown
        assert pickle.loads(pickle.dumps(error)).outcome_unknown
        assert not fails_over(error)
    assert not SesError("throttled", transient=True).outcome_unknown
