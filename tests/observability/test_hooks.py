"""Event hooks (lettre.hooks): what every transport tells a hook, against real servers."""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from direct_support import MxServers
from dns_server import DnsServer
from observability_support import (
    DropSecondMail,
    HoldFirst,
    Raising,
    Recorder,
    StartRaises,
    make_message,
    refused_port,
    until,
)
from ses_support import SENDER, Moto

import lettre.hooks
import lettre.smtp.client as client_module
import lettre.smtp.pool as pool_module
import lettre.transports.base as base_module
from lettre.envelope import Envelope
from lettre.errors import (
    AuthenticationError,
    OutcomeUnknown,
    SendmailError,
    SmtpConnectError,
    TransportError,
)
from lettre.hooks import ConnectionClosed, ConnectionOpened, Hook, SendStarted
from lettre.message import Message
from lettre.results import SendResult
from lettre.smtp.pool import PoolConfig
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.transports.failover import AllTransportsFailed, FailoverTransport
from lettre.transports.file import FileTransport
from lettre.transports.memory import MemoryTransport
from lettre.transports.mx import MxTransport
from lettre.transports.sendmail import SendmailTransport
from lettre.transports.smtp import SmtpTransport
from pool_support import HookedMini, HookedSession
from servers import MiniSmtp, ServerFactory, scripted_server
from transport_support import HELLO, smtp_transport, starttls_transport

pytestmark = pytest.mark.anyio


def _core(result: SendResult) -> tuple[Any, ...]:
    """What a result says, its Message-ID included."""
    return (result.recipients, result.message_id, result.transport_id, result.reply)


def _finished(recorder: Recorder) -> list[tuple[SendStarted, tuple[Any, ...]]]:
    """The results observers were given, as ``_core`` tuples."""
    return [(started, _core(result)) for started, result in recorder.of("finished")]


def _ordered_steps(event: ConnectionOpened) -> None:
    """The steps follow each other in time, inside the attempt."""
    assert event.start == event.steps[0].start
    for step in event.steps:
        assert step.start <= step.end
    for before, after in itertools.pairwise(event.steps):
        assert before.end <= after.start
    # Not checked: the last step's end against ``event.end``. SmtpClient reads
    # the attempt's end before it ends the last step, so the step may end a
    # few microseconds later (the trace clamps it; see test_otel.py).
    assert event.steps[-1].start <= event.end


# -- SMTP --------------------------------------------------------------------------------------


async def test_smtp_send_over_starttls_and_auth(
    smtpd: ServerFactory, tls_params: TlsParameters, recorder: Recorder
) -> None:
    server = smtpd(tls="starttls", auth=True, auth_required=True)
    transport = starttls_transport(server, tls_params, hooks=[recorder])
    message = make_message()
    async with transport:
        result = await transport.send(message)
        assert recorder.kinds() == ["pool_opened", "send_started", "connection_opened", "finished"]
    assert recorder.kinds()[-2:] == ["connection_closed", "pool_closed"]

    (started,) = recorder.of("send_started")
    assert isinstance(started, SendStarted)
    assert started.transport == "smtp"
    assert started.server == (server.host, server.port)
    assert started.message_id == message.message_id
    assert started.size == len(message.as_bytes())
    assert [str(a) for a in started.envelope.forward_paths] == ["bob@example.com"]
    assert _finished(recorder) == [(started, _core(result))]

    (opened,) = recorder.of("connection_opened")
    assert opened.transport == "smtp"
    assert opened.server == (server.host, server.port)
    assert [step.name for step in opened.steps] == ["connect", "starttls", "auth"]
    assert all(step.error is None for step in opened.steps)
    _ordered_steps(opened)
    assert opened.tls_version is not None
    assert opened.tls_version.startswith("TLSv1.")
    assert opened.auth_mechanism in ("PLAIN", "LOGIN", "CRAM-MD5")
    assert opened.error is None

    (closed,) = recorder.of("connection_closed")
    assert isinstance(closed, ConnectionClosed)
    assert (closed.transport, closed.server, closed.reason) == (
        "smtp",
        (server.host, server.port),
        "quit",
    )
    assert closed.messages == 1
    assert closed.lifetime >= 0
    (pool,) = recorder.of("pool_opened")
    assert recorder.of("pool_closed") == [pool]


async def test_implicit_tls_is_one_connect_step(
    smtpd: ServerFactory, tls_params: TlsParameters, recorder: Recorder
) -> None:
    server = smtpd(tls="implicit")
    transport = smtp_transport(
        server.host, server.port, tls=TlsMode.IMPLICIT, tls_parameters=tls_params, hooks=[recorder]
    )
    async with transport:
        await transport.send(make_message())
    (opened,) = recorder.of("connection_opened")
    assert [step.name for step in opened.steps] == ["connect"]
    assert opened.tls_version is not None
    assert opened.auth_mechanism is None


async def test_refused_connection_is_a_failed_connect_step(recorder: Recorder) -> None:
    port = refused_port()
    async with smtp_transport("127.0.0.1", port, hooks=[recorder]) as transport:
        with pytest.raises(SmtpConnectError) as caught:
            await transport.send(make_message())
    (opened,) = recorder.of("connection_opened")
    assert opened.server == ("127.0.0.1", port)
    assert opened.error is caught.value
    assert [step.name for step in opened.steps] == ["connect"]
    assert opened.steps[-1].error is caught.value
    _ordered_steps(opened)
    assert opened.tls_version is None
    (started,) = recorder.of("send_started")
    assert recorder.of("failed") == [(started, caught.value)]
    assert recorder.of("finished") == []
    # A connection that never opened is never closed.
    assert recorder.of("connection_closed") == []


async def test_wrong_password_fails_the_auth_step(
    smtpd: ServerFactory, tls_params: TlsParameters, recorder: Recorder
) -> None:
    server = smtpd(tls="starttls", auth=True)
    transport = starttls_transport(server, tls_params, "not the password", hooks=[recorder])
    async with transport:
        with pytest.raises(AuthenticationError) as caught:
            await transport.send(make_message())
    (opened,) = recorder.of("connection_opened")
    assert [step.name for step in opened.steps] == ["connect", "starttls", "auth"]
    assert [step.error for step in opened.steps] == [None, None, caught.value]
    assert opened.error is caught.value
    assert opened.auth_mechanism is None
    _ordered_steps(opened)
    assert [error for _, error in recorder.of("failed")] == [caught.value]


async def test_a_dropped_connection_is_closed_broken(recorder: Recorder) -> None:
    mini = MiniSmtp(on_end_of_data="close")
    async with (
        scripted_server(mini) as server,
        smtp_transport(server.host, server.port, hooks=[recorder]) as transport,
    ):
        with pytest.raises(OutcomeUnknown) as caught:
            await transport.send(make_message())
        await until(lambda: bool(recorder.of("connection_closed")), "the close")
        (closed,) = recorder.of("connection_closed")
        assert closed.reason == "broken"
        assert closed.messages == 1
    assert [error for _, error in recorder.of("failed")] == [caught.value]
    assert len(recorder.of("connection_closed")) == 1


async def test_a_pool_wait_is_told(recorder: Recorder) -> None:
    hold = HoldFirst()
    mini = HookedMini(before_final=hold)
    outcomes: list[SendResult] = []
    raising = Raising()  # told first, raising: the others are told all the same
    async with scripted_server(mini) as server:
        transport = smtp_transport(
            server.host, server.port, pool=PoolConfig(max_size=1), hooks=[raising, recorder]
        )
        async with transport:

            async def send(to: str) -> None:
                outcomes.append(await transport.send(make_message(to)))

            async with anyio.create_task_group() as group:
                group.start_soon(send, "first@example.com")
                await until(lambda: hold.finals == 1, "the first message's content")
                (pool,) = recorder.of("pool_opened")
                assert (pool.in_use(), pool.idle(), pool.waiting()) == (1, 0, 0)
                group.start_soon(send, "second@example.com")
                await until(lambda: pool.waiting() == 1, "the second send waiting")
                assert recorder.of("pool_waited") == []
                hold.gate.set()
            assert (pool.in_use(), pool.idle(), pool.waiting()) == (0, 1, 0)
    assert len(outcomes) == 2
    (waited,) = recorder.of("pool_waited")
    assert waited.transport == "smtp"
    assert waited.server == (server.host, server.port)
    assert waited.acquired is True
    assert waited.waited >= 0
    assert raising.calls.count("pool_waited") == 1
    # One connection carried both.
    assert len(recorder.of("connection_opened")) == 1
    assert recorder.kinds().count("send_started") == 2


async def test_the_pool_retry_is_told_once(recorder: Recorder) -> None:
    mini = HookedMini(
        before_command=DropSecondMail(),
        extensions=("PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES"),
    )
    async with scripted_server(mini) as server:
        transport = smtp_transport(
            server.host, server.port, pool=PoolConfig(max_size=1), hooks=[recorder]
        )
        async with transport:
            await transport.send(make_message("first@example.com"))
            second = await transport.send(make_message("second@example.com"))
    assert second.accepted == ("second@example.com",)
    started = recorder.of("send_started")
    assert len(started) == 2
    (retried,) = recorder.of("retried")
    assert retried[0] is started[1]
    assert isinstance(retried[1], TransportError)
    assert _finished(recorder)[1] == (started[1], _core(second))
    assert recorder.of("failed") == []
    assert len(recorder.of("connection_opened")) == 2
    reasons = sorted(closed.reason for closed in recorder.of("connection_closed"))
    assert reasons == ["broken", "quit"]


# -- the other transports ----------------------------------------------------------------------


async def test_ses(moto: Moto, recorder: Recorder) -> None:
    message = Message.builder().from_(SENDER).to("bob@example.com").subject("s").text("t\n").build()
    async with moto.transport(hooks=[recorder]) as transport:
        result = await transport.send(message)
    (started,) = recorder.of("send_started")
    assert started.transport == "ses"
    assert started.message_id == message.message_id
    assert _finished(recorder) == [(started, _core(result))]
    assert result.transport_id


async def test_ses_failure(moto: Moto, recorder: Recorder) -> None:
    # The sender's identity is not verified: SES refuses the message.
    message = (
        Message.builder()
        .from_("stranger@unverified.example")
        .to("bob@example.com")
        .subject("s")
        .text("t\n")
        .build()
    )
    async with moto.transport(hooks=[recorder]) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.send(message)
    assert [error for _, error in recorder.of("failed")] == [caught.value]


def _sendmail(tmp_path: Path, status: int) -> Path:
    script = tmp_path / f"sendmail-{status}"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stdin.buffer.read()\n"
        f"sys.stderr.write('refused\\n')\nsys.exit({status})\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


async def test_sendmail(tmp_path: Path, recorder: Recorder) -> None:
    transport = SendmailTransport(_sendmail(tmp_path, 0), hooks=[recorder])
    result = await transport.send(make_message())
    (started,) = recorder.of("send_started")
    assert (started.transport, started.server) == ("sendmail", None)
    assert _finished(recorder) == [(started, _core(result))]
    failing = SendmailTransport(_sendmail(tmp_path, 75), hooks=[recorder])
    with pytest.raises(SendmailError) as caught:
        await failing.send(make_message())
    assert [error for _, error in recorder.of("failed")] == [caught.value]


async def test_file(tmp_path: Path, recorder: Recorder) -> None:
    transport = FileTransport(tmp_path, hooks=[recorder])
    message = make_message()
    result = await transport.send(message)
    (started,) = recorder.of("send_started")
    assert (started.transport, started.server) == ("file", None)
    assert started.size == len(message.as_bytes())
    assert _finished(recorder) == [(started, _core(result))]


async def test_memory_success_refusal_and_failure(recorder: Recorder) -> None:
    transport = MemoryTransport(hooks=[recorder])
    result = await transport.send(make_message())
    transport.refuse("bob@example.com")
    two = Envelope("alice@example.com", ["bob@example.com", "carol@example.com"])
    refused = await transport.send(make_message(), envelope=two)
    assert [r.recipient for r in refused.refused] == ["bob@example.com"]
    error = SmtpConnectError("no route", transient=True)
    transport.fail_with(error)
    with pytest.raises(SmtpConnectError):
        await transport.send(make_message())
    started = recorder.of("send_started")
    assert [s.transport for s in started] == ["memory"] * 3
    assert _finished(recorder) == [(started[0], _core(result)), (started[1], _core(refused))]
    assert recorder.of("failed") == [(started[2], error)]


async def test_mx(dns_server: DnsServer, mx_servers: MxServers, recorder: Recorder) -> None:
    dns_server.add("a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2")
    handler = mx_servers.start("127.0.0.2")
    transport = MxTransport(
        hello_name=HELLO,
        nameservers=["127.0.0.1"],
        dns_port=dns_server.port,
        port=mx_servers.port,
        timeout=5.0,
        hooks=[recorder],
    )
    async with transport:
        result = await transport.send(make_message("bob@a.test"))
    assert [m.rcpt_tos for m in handler.messages] == [["bob@a.test"]]
    (started,) = recorder.of("send_started")
    assert started.transport == "mx"
    assert _finished(recorder) == [(started, _core(result))]
    (opened,) = recorder.of("connection_opened")
    assert opened.error is None
    assert opened.server[1] == mx_servers.port
    assert [step.name for step in opened.steps] == ["connect", "starttls"]
    assert opened.tls_version is not None
    assert [closed.reason for closed in recorder.of("connection_closed")] == ["quit"]


async def test_failover_and_its_transports(recorder: Recorder) -> None:
    first = MemoryTransport(hooks=[recorder])
    second = MemoryTransport(hooks=[recorder])
    first.fail_with(SmtpConnectError("down", transient=True))
    group = FailoverTransport([first, second], hooks=[recorder])
    result = await group.send(make_message())
    started = recorder.of("send_started")
    assert [s.transport for s in started] == ["failover", "memory", "memory"]
    failed = recorder.of("failed")
    assert [(s, type(e)) for s, e in failed] == [(started[1], SmtpConnectError)]
    finished = _finished(recorder)
    assert [s for s, _ in finished] == [started[2], started[0]]
    assert finished[1][1] == _core(result)
    # Every transport failing: the group's observer is told the group's error.
    second.fail_with(SmtpConnectError("down too", transient=True))
    first.fail_with(SmtpConnectError("still down", transient=True))
    with pytest.raises(AllTransportsFailed) as caught:
        await group.send_raw(Envelope("alice@example.com", ["bob@example.com"]), b"x\r\n")
    last = recorder.of("send_started")[3]
    assert (last.transport, last.message_id) == ("failover", None)
    assert recorder.of("failed")[-1] == (last, caught.value)


@pytest.mark.parametrize("service", ["postmark", "sendgrid", "mailgun", "resend"])
async def test_http_api(api: Any, service: str, recorder: Recorder) -> None:
    from api_server import make_transport

    host, port = api.httpd.server_address[:2]
    async with make_transport(service, api.url, hooks=[recorder]) as transport:
        result = await transport.send(make_message())
    (started,) = recorder.of("send_started")
    assert started.transport == service
    assert started.server == (host, port)
    assert _finished(recorder) == [(started, _core(result))]
    async with make_transport(service, api.url, key="wrong", hooks=[recorder]) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.send(make_message())
    assert [error for _, error in recorder.of("failed")] == [caught.value]


# -- send_raw, send_many -----------------------------------------------------------------------


async def test_send_raw_is_observed(smtpd: ServerFactory, recorder: Recorder) -> None:
    server = smtpd()
    data = b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: raw\r\n\r\nraw\r\n"
    envelope = Envelope("alice@example.com", ["bob@example.com", "carol@example.com"])
    async with smtp_transport(server.host, server.port, hooks=[recorder]) as transport:
        result = await transport.send_raw(envelope, data)
    (started,) = recorder.of("send_started")
    assert started.envelope is envelope
    assert (started.size, started.message_id) == (len(data), None)
    assert _finished(recorder) == [(started, _core(result))]


async def test_send_many_is_one_send_per_message(smtpd: ServerFactory, recorder: Recorder) -> None:
    server = smtpd()
    messages = [make_message(f"user{n}@example.com") for n in range(5)]
    async with smtp_transport(server.host, server.port, hooks=[recorder]) as transport:
        outcomes = await transport.send_many(messages, concurrency=3)
    started = recorder.of("send_started")
    assert sorted(s.message_id for s in started) == sorted(m.message_id for m in messages)
    finished = dict(_finished(recorder))
    assert len(finished) == 5
    for message, outcome in zip(messages, outcomes, strict=True):
        (mine,) = [s for s in started if s.message_id == message.message_id]
        assert isinstance(outcome, SendResult)
        assert finished[mine] == _core(outcome)


# -- hooks that fail ---------------------------------------------------------------------------


async def test_a_raising_hook_changes_nothing(
    smtpd: ServerFactory, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtpd()
    raising = Raising()
    caplog.set_level(logging.WARNING, logger="lettre.hooks")
    transport = smtp_transport(server.host, server.port, hooks=[raising, StartRaises(), recorder])
    async with transport:
        result = await transport.send(make_message())
    assert result.accepted == ("bob@example.com",)
    assert server.messages[0].rcpt_tos == ["bob@example.com"]
    everything = [
        "pool_opened",
        "send_started",
        "connection_opened",
        "finished",
        "connection_closed",
        "pool_closed",
    ]
    # The hooks after the raising ones were told everything.
    assert recorder.kinds() == everything
    assert raising.calls == everything
    logged = [r for r in caplog.records if r.name == "lettre.hooks"]
    assert len(logged) == 6  # five of Raising, send_started of StartRaises
    assert all(r.levelno == logging.WARNING and r.exc_info for r in logged)
    assert "send_started" in logged[1].getMessage()


async def test_a_raising_hook_leaves_a_failure_as_it_is(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    raising = Raising()
    async with smtp_transport("127.0.0.1", refused_port(), hooks=[raising, recorder]) as transport:
        with pytest.raises(SmtpConnectError) as caught:
            await transport.send(make_message())
    assert [error for _, error in recorder.of("failed")] == [caught.value]
    assert "failed" in raising.calls
    assert "connection_opened" in raising.calls
    assert any("failed" in r.getMessage() for r in caplog.records if r.name == "lettre.hooks")


async def test_a_raising_retried_observer_changes_nothing(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    raising = Raising()

    async def refuse_the_first_mail(session: HookedSession, line: str) -> None:
        if line.upper().startswith("MAIL") and session is mini.sessions[0]:
            await session.conn.stream.aclose()
            raise anyio.EndOfStream

    mini = HookedMini(before_command=refuse_the_first_mail, extensions=("8BITMIME",))
    async with (
        scripted_server(mini) as server,
        smtp_transport(server.host, server.port, hooks=[raising, recorder]) as transport,
    ):
        result = await transport.send(make_message())
    assert result.accepted == ("bob@example.com",)
    assert raising.calls.count("retried") == 1
    assert len(recorder.of("retried")) == 1
    assert any("retried" in r.getMessage() for r in caplog.records if r.name == "lettre.hooks")


# -- attaching hooks ---------------------------------------------------------------------------


@pytest.fixture
def registered(recorder: Recorder) -> Iterator[Recorder]:
    lettre.hooks.register(recorder)
    try:
        yield recorder
    finally:
        lettre.hooks.unregister(recorder)


async def test_register_reaches_existing_and_new_transports(recorder: Recorder) -> None:
    existing = MemoryTransport()
    lettre.hooks.register(recorder)
    try:
        lettre.hooks.register(recorder)  # twice: still once
        assert lettre.hooks.registered() == (recorder,)
        new = MemoryTransport()
        await existing.send(make_message("one@example.com"))
        await new.send(make_message("two@example.com"))
        assert new.hooks == ()  # the transport's own list does not show it
    finally:
        lettre.hooks.unregister(recorder)
    await existing.send(make_message("three@example.com"))
    await MemoryTransport().send(make_message("four@example.com"))
    recipients = [str(s.envelope.forward_paths[0]) for s in recorder.of("send_started")]
    assert recipients == ["one@example.com", "two@example.com"]
    assert lettre.hooks.registered() == ()
    lettre.hooks.unregister(recorder)  # not attached: nothing


async def test_registered_hooks_come_before_the_transports_own(
    smtpd: ServerFactory, registered: Recorder
) -> None:
    own = Recorder()
    order: list[str] = []

    class Named(Hook):
        def __init__(self, name: str) -> None:
            self.name = name

        def send_started(self, event: SendStarted) -> None:
            order.append(self.name)

    server = smtpd()
    lettre.hooks.register(Named("global"))
    try:
        async with smtp_transport(server.host, server.port, hooks=[own, Named("own")]) as transport:
            await transport.send(make_message())
    finally:
        for hook in lettre.hooks.registered():
            if isinstance(hook, Named):
                lettre.hooks.unregister(hook)
    assert order == ["global", "own"]
    # A registered hook sees the connections too.
    assert registered.kinds() == own.kinds()
    assert "connection_opened" in own.kinds()


def _transports(tmp_path: Path, hooks: Any) -> list[Any]:
    return [
        lambda: MemoryTransport(hooks=hooks),
        lambda: FileTransport(tmp_path, hooks=hooks),
        lambda: SendmailTransport("/bin/true", hooks=hooks),
        lambda: SmtpTransport("127.0.0.1", 2525, tls=TlsMode.NONE, hooks=hooks),
        lambda: MxTransport(hello_name=HELLO, hooks=hooks),
        lambda: FailoverTransport([MemoryTransport()], hooks=hooks),
    ]


def test_hooks_argument_is_checked(tmp_path: Path, recorder: Recorder) -> None:
    for make in _transports(tmp_path, [recorder, object()]):
        with pytest.raises(
            TypeError, match=r"a hook must be a lettre\.hooks\.Hook \(subclass it\), not object"
        ):
            make()
    for make in _transports(tmp_path, recorder):
        with pytest.raises(TypeError, match=r"hooks= takes a list of hooks: pass \[hook\]"):
            make()
    for index in range(len(_transports(tmp_path, None))):
        # Any iterable will do (a generator here), frozen into a tuple.
        make = _transports(tmp_path, (h for h in [recorder]))[index]
        assert make().hooks == (recorder,)
    with pytest.raises(TypeError, match=r"not function"):
        lettre.hooks.register(lambda event: None)  # type: ignore[arg-type]
    assert lettre.hooks.registered() == ()


def test_for_new_process_keeps_the_hooks(
    tmp_path: Path, recorder: Recorder, api: Any, moto: Moto
) -> None:
    from api_server import make_transport

    from lettre.transports.lmtp import LmtpTransport

    made = [make() for make in _transports(tmp_path, [recorder])]
    made += [make_transport(s, api.url, hooks=[recorder]) for s in ("postmark", "mailgun")]
    made.append(moto.transport(hooks=[recorder]))
    made.append(LmtpTransport("127.0.0.1", 24, hooks=[recorder]))
    made.append(LmtpTransport.unix(tmp_path / "lmtp.sock", hooks=[recorder]))
    for transport in made:
        assert transport.for_new_process().hooks == (recorder,), transport


# -- no hooks: nothing built -------------------------------------------------------------------


async def test_without_hooks_no_event_is_built(
    monkeypatch: pytest.MonkeyPatch, tls_params: TlsParameters, smtpd: ServerFactory
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an event was built with no hook to tell")

    monkeypatch.setattr(base_module, "SendStarted", forbidden)
    monkeypatch.setattr(base_module, "start_send", forbidden)
    monkeypatch.setattr(client_module, "ConnectionOpened", forbidden)
    monkeypatch.setattr(client_module, "ConnectionClosed", forbidden)
    monkeypatch.setattr(client_module, "_Steps", forbidden)
    monkeypatch.setattr(pool_module, "PoolWaited", forbidden)
    server = smtpd(tls="starttls", auth=True)
    transport = starttls_transport(server, tls_params, pool=PoolConfig(max_size=1))
    async with transport:
        outcomes = await transport.send_many([make_message(f"u{n}@example.com") for n in range(4)])
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), b"x\r\n")
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert len(server.messages) == 5
    assert await MemoryTransport().send(make_message())
    # The check is real: with a hook, the same send builds an event.
    with pytest.raises(AssertionError, match="an event was built"):
        await MemoryTransport(hooks=[Recorder()]).send(make_message())


# -- LMTP --------------------------------------------------------------------------------------


class _LmtpHandler:
    """One reply per accepted recipient after the content (RFC 2033); ``refuse`` at RCPT."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address == self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "\r\n".join(f"250 2.0.0 <{a}> delivered" for a in envelope.rcpt_tos)


@pytest.fixture
def lmtp_server() -> Iterator[Any]:
    """aiosmtpd's LMTP on 127.0.0.1 (a free port) and on a Unix socket."""
    import asyncio
    import tempfile

    from aiosmtpd.controller import Controller, UnixSocketController
    from aiosmtpd.lmtp import LMTP

    class Tcp(Controller):
        def factory(self) -> Any:
            return LMTP(self.handler, hostname="lmtp.lettre.test", timeout=30)

        def _trigger_server(self) -> None:
            assert isinstance(self.server, asyncio.Server)
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    class Unix(UnixSocketController):
        def factory(self) -> Any:
            return LMTP(self.handler, hostname="lmtp.lettre.test", timeout=30)

    handler = _LmtpHandler(refuse="nobody@example.com")
    directory = Path(tempfile.mkdtemp(prefix="lmtp-"))  # short: a Unix socket's path is bounded
    path = directory / "lmtp.sock"
    tcp = Tcp(handler, hostname="127.0.0.1", port=0)
    unix = Unix(handler, unix_socket=path)
    tcp.start()  # type: ignore[no-untyped-call]
    unix.start()  # type: ignore[no-untyped-call]
    try:
        yield tcp, path
    finally:
        tcp.stop()  # type: ignore[no-untyped-call]
        unix.stop()  # type: ignore[no-untyped-call]
        if path.exists():
            path.unlink()
        directory.rmdir()


async def test_lmtp_over_tcp_and_a_unix_socket(lmtp_server: Any, recorder: Recorder) -> None:
    from lettre.transports.lmtp import LmtpTransport

    tcp, path = lmtp_server
    port = int(tcp.port)
    two = Envelope("alice@example.com", ["bob@example.com", "nobody@example.com"])
    async with LmtpTransport(
        "127.0.0.1", port, hello_name=HELLO, timeout=10.0, hooks=[recorder]
    ) as transport:
        result = await transport.send(make_message(), envelope=two)
    assert [r.recipient for r in result.refused] == ["nobody@example.com"]
    (started,) = recorder.of("send_started")
    assert (started.transport, started.server) == ("lmtp", ("127.0.0.1", port))
    assert _finished(recorder) == [(started, _core(result))]
    (opened,) = recorder.of("connection_opened")
    assert opened.server == ("127.0.0.1", port)
    assert [step.name for step in opened.steps] == ["connect"]
    assert opened.error is None
    assert [closed.reason for closed in recorder.of("connection_closed")] == ["quit"]

    unix = Recorder()
    async with LmtpTransport.unix(path, hello_name=HELLO, timeout=10.0, hooks=[unix]) as transport:
        result = await transport.send(make_message())
    (started,) = unix.of("send_started")
    assert (started.transport, started.server) == ("lmtp", None)
    assert _finished(unix) == [(started, _core(result))]
    (opened,) = unix.of("connection_opened")
    assert opened.error is None
    assert [closed.reason for closed in unix.of("connection_closed")] == ["quit"]


# -- cancellation, pool timeouts ---------------------------------------------------------------


async def test_a_cancelled_send_is_failed(recorder: Recorder) -> None:
    mini = MiniSmtp(hang_on="MAIL", extensions=("8BITMIME",))
    async with (
        scripted_server(mini) as server,
        smtp_transport(server.host, server.port, hooks=[recorder]) as transport,
    ):
        with anyio.CancelScope() as scope:

            async def cancel_when_mail_arrives() -> None:
                await until(lambda: "MAIL" in mini.verbs(), "MAIL")
                scope.cancel()

            async with anyio.create_task_group() as group:
                group.start_soon(cancel_when_mail_arrives)
                await transport.send(make_message())
        assert scope.cancelled_caught
        await until(lambda: bool(recorder.of("connection_closed")), "the close")
    (started,) = recorder.of("send_started")
    ((told, error),) = recorder.of("failed")
    assert told is started
    assert isinstance(error, anyio.get_cancelled_exc_class())
    assert recorder.of("finished") == []
    assert [c.reason for c in recorder.of("connection_closed")] == ["broken"]


async def test_a_pool_timeout_is_a_wait_without_a_connection(recorder: Recorder) -> None:
    from lettre.errors import PoolTimeout

    gate = anyio.Event()

    async def hold(session: HookedSession, content: bytes) -> None:
        await gate.wait()

    mini = HookedMini(before_final=hold)
    async with scripted_server(mini) as server:
        transport = smtp_transport(
            server.host,
            server.port,
            pool=PoolConfig(max_size=1, pool_timeout=0.05),
            hooks=[recorder],
        )
        async with transport, anyio.create_task_group() as group:
            group.start_soon(transport.send, make_message("first@example.com"))
            await until(lambda: bool(mini.transactions), "the first transaction")
            with pytest.raises(PoolTimeout) as caught:
                await transport.send(make_message("second@example.com"))
            gate.set()
    (waited,) = recorder.of("pool_waited")
    assert waited.acquired is False
    assert waited.waited > 0
    assert [error for _, error in recorder.of("failed")] == [caught.value]


async def test_a_hook_registered_later_hears_of_the_pool_at_its_next_connection(
    smtpd: ServerFactory, recorder: Recorder
) -> None:
    server = smtpd()
    transport = smtp_transport(server.host, server.port, pool=PoolConfig(max_size=2))
    async with transport:
        await transport.send(make_message("one@example.com"))  # the pool opens, unobserved
        lettre.hooks.register(recorder)
        try:
            assert recorder.of("pool_opened") == []
            sent = 0

            async def send(to: str) -> None:
                nonlocal sent
                await transport.send(make_message(to))
                sent += 1

            async with anyio.create_task_group() as group:
                # Two at once: the second needs a second connection.
                group.start_soon(send, "two@example.com")
                group.start_soon(send, "three@example.com")
            assert sent == 2
            (pool,) = recorder.of("pool_opened")
            assert pool.transport == "smtp"
            assert pool.server == (server.host, server.port)
            assert len(recorder.of("connection_opened")) == 1
        finally:
            lettre.hooks.unregister(recorder)
    # A hook told of a pool hears once that it closed (it was closed and left),
    # even when detached in between.
    assert recorder.of("pool_closed") == [pool]


class _Quiet(Recorder):
    """A recorder that listens only when told to."""

    def __init__(self) -> None:
        super().__init__()
        self.on = False
        self.asked = 0

    def listening(self) -> bool:
        self.asked += 1
        return self.on


class _Broken(Recorder):
    def listening(self) -> bool:
        raise RuntimeError("listening broke")


async def test_a_hook_that_is_not_listening_gets_no_event(
    smtpd: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtpd()
    quiet, broken = _Quiet(), _Broken()
    transport = smtp_transport(server.host, server.port, hooks=[quiet])
    async with transport:
        await transport.send(make_message("one@example.com"))
        assert quiet.events == []
        assert quiet.asked >= 2  # asked at least for the send and the connection
        quiet.on = True
        await transport.send(make_message("two@example.com"))
        assert quiet.kinds() == ["send_started", "finished"]
    # A hook whose listening() raises is logged and left out; the send goes on.
    with caplog.at_level(logging.WARNING, logger="lettre.hooks"):
        result = await MemoryTransport(hooks=[broken]).send(make_message("three@example.com"))
    assert result.accepted == ("three@example.com",)
    assert broken.events == []
    assert "listening" in caplog.text
