"""OpenTelemetry (lettre.otel): spans, their parents and attributes, metrics, nothing sensitive.

The SDK's providers are given to each ``OpenTelemetryHook`` (``otel``
fixture); the global providers are only set in a subprocess, since
OpenTelemetry lets a process set them once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from observability_support import (
    DropSecondMail,
    HoldFirst,
    Otel,
    make_message,
    recorded_text,
    refused_port,
    until,
)
from opentelemetry.trace import SpanKind, StatusCode

import lettre.hooks
from lettre import BlockingTransport
from lettre.envelope import Envelope
from lettre.errors import (
    AuthenticationError,
    OutcomeUnknown,
    RecipientsRefused,
    SmtpConnectError,
)
from lettre.message import Message
from lettre.otel import OUTCOMES, instrument, outcome_of, uninstrument
from lettre.smtp.pool import PoolConfig
from lettre.smtp.tls import TlsParameters
from lettre.transports.memory import MemoryTransport
from pool_support import HookedMini
from servers import MiniSmtp, ServerFactory, scripted_server
from transport_support import smtp_transport, starttls_transport

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


# -- spans -------------------------------------------------------------------------------------


async def test_send_and_connect_spans_in_the_application_trace(
    smtpd: ServerFactory, tls_params: TlsParameters, otel: Otel
) -> None:
    server = smtpd(tls="starttls", auth=True, auth_required=True)
    transport = starttls_transport(server, tls_params, hooks=[otel.hook])
    message = make_message()
    async with transport:
        with otel.app_tracer.start_as_current_span("handle request") as request:
            await transport.send(message)
            # The application's span is current again after the send.
            from opentelemetry import trace

            assert trace.get_current_span() is request

    send = otel.span("smtp send")
    assert send.kind is SpanKind.CLIENT
    assert send.parent is not None
    assert send.parent.span_id == request.get_span_context().span_id
    assert send.context.trace_id == request.get_span_context().trace_id
    assert send.status.status_code is StatusCode.UNSET
    assert dict(send.attributes or {}) == {
        "lettre.transport": "smtp",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "lettre.recipients": 1,
        "lettre.message.size": len(message.as_bytes()),
        "lettre.outcome": "accepted",
        "lettre.recipients.refused": 0,
        "lettre.transport_id": "LT0001",
        "lettre.reply.code": 250,
        "lettre.reply.enhanced_status": "2.0.0",
    }

    connect = otel.span("smtp connect")
    assert connect.kind is SpanKind.CLIENT
    assert connect.parent is not None
    assert connect.parent.span_id == send.context.span_id
    attributes = dict(connect.attributes or {})
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.port
    assert attributes["tls.protocol.name"] == "tls"
    assert attributes["tls.protocol.version"] in ("1.2", "1.3")
    assert attributes["lettre.auth.mechanism"] in ("PLAIN", "LOGIN", "CRAM-MD5")
    steps = otel.children(connect)
    assert [s.name for s in steps] == ["connect", "starttls", "auth"]
    assert connect.start_time is not None
    assert connect.end_time is not None
    for step in steps:
        assert step.start_time is not None
        assert step.end_time is not None
        assert connect.start_time <= step.start_time <= step.end_time <= connect.end_time
        assert step.status.status_code is StatusCode.UNSET
    for before, after in itertools.pairwise(steps):
        assert before.end_time is not None
        assert after.start_time is not None
        assert before.end_time <= after.start_time
    # The connection was opened during the send.
    assert send.start_time is not None
    assert send.end_time is not None
    assert send.start_time <= connect.start_time <= connect.end_time <= send.end_time


async def test_concurrent_sends_have_their_own_spans(smtpd: ServerFactory, otel: Otel) -> None:
    server = smtpd()
    async with smtp_transport(server.host, server.port, hooks=[otel.hook]) as transport:

        async def one(n: int) -> None:
            with otel.app_tracer.start_as_current_span(f"task {n}"):
                await transport.send(make_message(f"user{n}@example.com"))

        async with anyio.create_task_group() as group:
            for n in range(4):
                group.start_soon(one, n)
    tasks = {s.context.span_id: s.name for s in otel.spans() if s.name.startswith("task")}
    sends = otel.spans("smtp send")
    assert len(sends) == 4
    parents = sorted(tasks[s.parent.span_id] for s in sends if s.parent is not None)
    assert parents == ["task 0", "task 1", "task 2", "task 3"]
    for connect in otel.spans("smtp connect"):
        assert connect.parent is not None
        assert connect.parent.span_id in {s.context.span_id for s in sends}


async def test_partial_refusal(otel: Otel) -> None:
    mini = MiniSmtp(refuse={"nobody@example.com": "550 5.1.1 No such user"})
    async with (
        scripted_server(mini) as server,
        smtp_transport(server.host, server.port, hooks=[otel.hook]) as transport,
    ):
        result = await transport.send(make_message("bob@example.com", "nobody@example.com"))
    assert len(result.refused) == 1
    send = otel.span("smtp send")
    attributes = dict(send.attributes or {})
    assert attributes["lettre.outcome"] == "refused"
    assert attributes["lettre.recipients"] == 2
    assert attributes["lettre.recipients.refused"] == 1
    assert send.status.status_code is StatusCode.UNSET
    assert otel.counts("lettre.messages", "lettre.transport", "lettre.outcome") == {
        ("smtp", "refused"): 1
    }


async def test_every_recipient_refused_is_an_error(otel: Otel) -> None:
    mini = MiniSmtp(refuse={"nobody@example.com": "550 5.1.1 nobody@example.com: No such user"})
    async with (
        scripted_server(mini) as server,
        smtp_transport(server.host, server.port, hooks=[otel.hook]) as transport,
    ):
        with pytest.raises(RecipientsRefused):
            await transport.send(make_message("nobody@example.com"))
    send = otel.span("smtp send")
    attributes = dict(send.attributes or {})
    assert attributes["lettre.outcome"] == "refused"
    assert attributes["error.type"] == "lettre.errors.RecipientsRefused"
    assert attributes["lettre.reply.code"] == 550
    assert attributes["lettre.reply.enhanced_status"] == "5.1.1"
    assert attributes["lettre.recipients.refused"] == 1
    assert send.status.status_code is StatusCode.ERROR
    assert send.status.description == "RecipientsRefused: 550 5.1.1"
    assert otel.counts("lettre.messages", "lettre.outcome") == {("refused",): 1}


async def test_refusals_counted_when_every_recipient_is_required(otel: Otel) -> None:
    mini = MiniSmtp(refuse={"nobody@example.com": "550 5.1.1 No such user"})
    async with (
        scripted_server(mini) as server,
        smtp_transport(
            server.host, server.port, require_all_recipients=True, hooks=[otel.hook]
        ) as transport,
    ):
        with pytest.raises(RecipientsRefused) as caught:
            await transport.send(make_message("bob@example.com", "nobody@example.com"))
    assert len(caught.value.results) == 2
    attributes = dict(otel.span("smtp send").attributes or {})
    # One of the two was refused (the other was accepted, then the send given up).
    assert attributes["lettre.recipients.refused"] == 1


async def test_refused_connection(otel: Otel) -> None:
    port = refused_port()
    async with smtp_transport("127.0.0.1", port, hooks=[otel.hook]) as transport:
        with pytest.raises(SmtpConnectError):
            await transport.send(make_message())
    send = otel.span("smtp send")
    attributes = dict(send.attributes or {})
    assert attributes["lettre.outcome"] == "transient"
    assert attributes["error.type"] == "lettre.errors.SmtpConnectError"
    assert send.status.status_code is StatusCode.ERROR
    assert send.status.description == "SmtpConnectError"
    connect = otel.span("smtp connect")
    assert connect.parent is not None
    assert connect.parent.span_id == send.context.span_id
    assert connect.status.status_code is StatusCode.ERROR
    assert dict(connect.attributes or {})["error.type"] == "lettre.errors.SmtpConnectError"
    (step,) = otel.children(connect)
    assert step.name == "connect"
    assert step.status.status_code is StatusCode.ERROR
    assert otel.counts("lettre.messages", "lettre.outcome") == {("transient",): 1}
    assert otel.counts("lettre.connections.opened", "server.address", "error.type") == {
        ("127.0.0.1", "lettre.errors.SmtpConnectError"): 1
    }
    assert otel.points("lettre.connections.closed") == []


async def test_wrong_password(smtpd: ServerFactory, tls_params: TlsParameters, otel: Otel) -> None:
    server = smtpd(tls="starttls", auth=True)
    transport = starttls_transport(server, tls_params, "wrong", hooks=[otel.hook])
    async with transport:
        with pytest.raises(AuthenticationError) as caught:
            await transport.send(make_message())
    connect = otel.span("smtp connect")
    steps = otel.children(connect)
    assert [s.name for s in steps] == ["connect", "starttls", "auth"]
    assert [s.status.status_code for s in steps] == [
        StatusCode.UNSET,
        StatusCode.UNSET,
        StatusCode.ERROR,
    ]
    assert steps[2].status.description == f"AuthenticationError: {caught.value.code}" + (
        f" {caught.value.enhanced_status}" if caught.value.enhanced_status else ""
    )
    assert "lettre.auth.mechanism" not in (connect.attributes or {})
    send = otel.span("smtp send")
    assert dict(send.attributes or {})["lettre.outcome"] == "permanent"


async def test_outcome_unknown(otel: Otel) -> None:
    async with (
        scripted_server(MiniSmtp(on_end_of_data="close")) as server,
        smtp_transport(server.host, server.port, hooks=[otel.hook]) as transport,
    ):
        with pytest.raises(OutcomeUnknown):
            await transport.send(make_message())
        await until(lambda: bool(otel.points("lettre.connections.closed")), "the close")
    attributes = dict(otel.span("smtp send").attributes or {})
    assert attributes["lettre.outcome"] == "unknown"
    assert attributes["lettre.outcome_unknown"] is True
    assert "lettre.retried" not in attributes
    assert otel.counts("lettre.connections.closed", "lettre.close.reason") == {("broken",): 1}


async def test_a_retried_send(otel: Otel) -> None:
    mini = HookedMini(before_command=DropSecondMail(), extensions=("8BITMIME",))
    async with (
        scripted_server(mini) as server,
        smtp_transport(
            server.host, server.port, pool=PoolConfig(max_size=1), hooks=[otel.hook]
        ) as tr,
    ):
        await tr.send(make_message("first@example.com"))
        await tr.send(make_message("second@example.com"))
    first, second = otel.spans("smtp send")
    assert "lettre.retried" not in (first.attributes or {})
    assert dict(second.attributes or {})["lettre.retried"] is True
    assert dict(second.attributes or {})["lettre.outcome"] == "accepted"
    (event,) = second.events
    assert event.name == "retry"
    assert dict(event.attributes or {})["error.type"].startswith("lettre.errors.")
    connects = otel.spans("smtp connect")
    assert len(connects) == 2
    assert connects[1].parent is not None
    assert connects[1].parent.span_id == second.context.span_id
    assert otel.counts("lettre.connections.closed", "lettre.close.reason") == {
        ("broken",): 1,
        ("quit",): 1,
    }


# -- metrics -----------------------------------------------------------------------------------


async def test_pool_metrics(otel: Otel) -> None:
    hold = HoldFirst()
    mini = HookedMini(before_final=hold, refuse={"nobody@example.com": "550 5.1.1 No such user"})
    async with scripted_server(mini) as server:
        transport = smtp_transport(
            server.host, server.port, pool=PoolConfig(max_size=1), hooks=[otel.hook]
        )
        async with transport:

            async def send(*to: str) -> None:
                with contextlib.suppress(RecipientsRefused):
                    await transport.send(make_message(*to))

            async with anyio.create_task_group() as group:
                group.start_soon(send, "first@example.com")
                await until(lambda: hold.finals == 1, "the first message's content")
                group.start_soon(send, "second@example.com", "nobody@example.com")
                await until(
                    lambda: (
                        otel.counts("lettre.pool.waiting", "server.address") == {("127.0.0.1",): 1}
                    ),
                    "the second send waiting",
                )
                assert otel.counts(
                    "lettre.pool.connections", "lettre.transport", "lettre.pool.state"
                ) == {("smtp", "in_use"): 1, ("smtp", "idle"): 0}
                hold.gate.set()
            await transport.send(make_message("third@example.com"))
            with pytest.raises(RecipientsRefused):
                await transport.send(make_message("nobody@example.com"))
            assert otel.counts("lettre.pool.connections", "lettre.pool.state") == {
                ("in_use",): 0,
                ("idle",): 1,
            }
            assert otel.counts("lettre.pool.waiting") == {(): 0}
    # The pool is closed: no longer observed.
    assert otel.points("lettre.pool.connections") == []
    assert otel.points("lettre.pool.waiting") == []

    assert otel.counts("lettre.messages", "lettre.transport", "lettre.outcome") == {
        ("smtp", "accepted"): 2,
        ("smtp", "refused"): 2,
    }
    assert otel.counts("lettre.send.duration", "lettre.outcome") == {
        ("accepted",): 2,
        ("refused",): 2,
    }
    assert otel.counts("lettre.connections.opened", "server.address", "error.type") == {
        ("127.0.0.1", None): 1
    }
    assert otel.counts("lettre.connections.closed", "lettre.close.reason") == {("quit",): 1}
    assert otel.counts("lettre.pool.wait.duration", "lettre.pool.acquired") == {(True,): 1}
    ((_, waited),) = otel.points("lettre.pool.wait.duration")
    assert waited.sum >= 0
    for _, point in otel.points("lettre.send.duration"):
        assert point.min >= 0


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "accepted"),
        (OutcomeUnknown("gone"), "unknown"),
        (RecipientsRefused(550, "no"), "refused"),
        (SmtpConnectError("down", transient=True), "transient"),
        (SmtpConnectError("bad", transient=False), "permanent"),
        (ValueError("odd"), "permanent"),
        (KeyboardInterrupt(), "cancelled"),
    ],
)
def test_outcome_of(error: BaseException | None, outcome: str) -> None:
    from lettre.results import RecipientResult, SendResult

    result = SendResult((RecipientResult("a@example.com", True),)) if error is None else None
    assert outcome_of(result, error) == outcome
    assert outcome in OUTCOMES


# -- nothing sensitive -------------------------------------------------------------------------

SECRETS = (
    "zqsender",
    "zqrcpt",
    "zqrefused",
    "zqbcc",
    "Zq secret subject",
    "zq body text",
    "zquser",
    "zqpassword",
)


async def _send_everything(
    smtpd: ServerFactory, tls_params: TlsParameters, otel: Otel, *, password: str
) -> None:
    """Sends that succeed, are partly refused, wholly refused, lost, and fail to log in."""
    server = smtpd(
        tls="starttls",
        auth=True,
        users={"zquser@example.com": "zqpassword"},
    )
    server.handler.refuse = {"zqrefused@example.com"}
    server.handler.refuse_reply = "550 5.1.1 <zqrefused@example.com>: Recipient unknown"

    def message(*to: str) -> Message:
        return (
            Message.builder()
            .from_("Zq Sender <zqsender@example.com>")
            .to(*to)
            .bcc("zqbcc@example.com")
            .subject("Zq secret subject")
            .text("zq body text\n")
            .build()
        )

    transport = starttls_transport(
        server, tls_params, password, user="zquser@example.com", hooks=[otel.hook]
    )
    async with transport:
        if password == "zqpassword":
            await transport.send(message("zqrcpt@example.com"))
            await transport.send(message("zqrcpt@example.com", "zqrefused@example.com"))
            with pytest.raises(RecipientsRefused):
                await transport.send(
                    message("zqrefused@example.com"),
                    envelope=Envelope("zqsender@example.com", ["zqrefused@example.com"]),
                )
        else:
            with pytest.raises(AuthenticationError):
                await transport.send(message("zqrcpt@example.com"))
    lost = MiniSmtp(on_end_of_data="close")
    async with (
        scripted_server(lost) as mini,
        smtp_transport(mini.host, mini.port, hooks=[otel.hook]) as lossy,
    ):
        with pytest.raises(OutcomeUnknown):
            await lossy.send(message("zqrcpt@example.com"))
    memory = MemoryTransport(hooks=[otel.hook])
    memory.refuse("zqrefused@example.com")
    with pytest.raises(RecipientsRefused):
        await memory.send(
            message("zqrefused@example.com"),
            envelope=Envelope("zqsender@example.com", ["zqrefused@example.com"]),
        )


@pytest.mark.parametrize("password", ["zqpassword", "zqwrong"])
async def test_nothing_sensitive_is_recorded(
    smtpd: ServerFactory, tls_params: TlsParameters, otel: Otel, password: str
) -> None:
    await _send_everything(smtpd, tls_params, otel, password=password)
    text = list(recorded_text(otel))
    assert len(otel.spans("smtp send")) >= 2
    assert any(s.status.status_code is StatusCode.ERROR for s in otel.spans())
    assert "lettre.messages" in text
    lowered = "\n".join(text).lower()
    for secret in (*SECRETS, password):
        assert secret.lower() not in lowered, secret


async def test_addresses_are_recorded_when_asked(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    otel = Otel.make(record_addresses=True)
    try:
        await _send_everything(smtpd, tls_params, otel, password="zqpassword")
        sends = otel.spans("smtp send")
        attributes = dict(sends[1].attributes or {})
        assert attributes["lettre.sender"] == "zqsender@example.com"
        assert list(attributes["lettre.recipient_addresses"]) == [
            "zqrcpt@example.com",
            "zqrefused@example.com",
            "zqbcc@example.com",
        ]
        assert str(attributes["lettre.message_id"]).startswith("<")
        lowered = "\n".join(recorded_text(otel)).lower()
        # Still no subject, body or credential.
        for secret in ("Zq secret subject", "zq body text", "zquser", "zqpassword"):
            assert secret.lower() not in lowered, secret
    finally:
        otel.shutdown()


# -- instrument() and the blocking API ---------------------------------------------------------


async def test_instrument_and_uninstrument(otel: Otel) -> None:
    existing = MemoryTransport()
    hook = instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        assert lettre.hooks.registered() == (hook,)
        assert hook.record_addresses is False
        await existing.send(make_message())
        await MemoryTransport().send(make_message())
    finally:
        uninstrument(hook)
    assert lettre.hooks.registered() == ()
    await existing.send(make_message())
    spans = otel.spans("memory send")
    assert len(spans) == 2
    assert all(dict(s.attributes or {})["lettre.transport"] == "memory" for s in spans)
    assert "server.address" not in (spans[0].attributes or {})
    assert otel.counts("lettre.messages", "lettre.transport") == {("memory",): 2}


@pytest.mark.parametrize(
    ("backend", "options"),
    [("asyncio", {}), ("asyncio", {"use_uvloop": True}), ("trio", {})],
    ids=["asyncio", "uvloop", "trio"],
)
def test_blocking_send_is_a_child_of_the_callers_span(
    smtpd: ServerFactory, otel: Otel, backend: str, options: dict[str, Any]
) -> None:
    server = smtpd()
    mailer = BlockingTransport(
        smtp_transport(server.host, server.port, hooks=[otel.hook]),
        backend=backend,
        backend_options=options,
    )
    parents: dict[str, int] = {}
    try:

        def caller(name: str) -> None:
            with otel.app_tracer.start_as_current_span(name) as span:
                parents[name] = span.get_span_context().span_id
                mailer.send(make_message(f"{name}@example.com"))

        caller("first")
        # Another thread, another span: each call carries its own caller's context.
        thread = threading.Thread(target=caller, args=("second",))
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()
        mailer.send(make_message("orphan@example.com"))  # outside any span: a root
    finally:
        mailer.close()
    sends = otel.spans("smtp send")
    assert len(sends) == 3
    got = [s.parent.span_id if s.parent is not None else None for s in sends]
    assert got == [parents["first"], parents["second"], None]
    assert len(server.messages) == 3


# -- the global providers, in a subprocess -----------------------------------------------------

_GLOBAL = """
import asyncio, json
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lettre import Message
from lettre.otel import instrument, uninstrument
from lettre.transports.memory import MemoryTransport

hook = instrument()  # made before the SDK is configured: it follows the global providers
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

message = (
    Message.builder().from_("a@example.com").to("b@example.com").subject("s").text("t").build()
)

async def main():
    with trace.get_tracer("app").start_as_current_span("job"):
        await MemoryTransport().send(message)

asyncio.run(main())
uninstrument(hook)
names = [s.name for s in exporter.get_finished_spans()]
points = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            points[m.name] = [dict(p.attributes) for p in m.data.data_points]
send = [s for s in exporter.get_finished_spans() if s.name == "memory send"][0]
job = [s for s in exporter.get_finished_spans() if s.name == "job"][0]
print(json.dumps({
    "names": names,
    "messages": points.get("lettre.messages"),
    "child": send.parent.span_id == job.context.span_id,
}))
"""

_NO_SDK = """
import asyncio, json
from lettre import Message
from lettre.envelope import Envelope
from lettre.hooks import SendStarted
from lettre.otel import OpenTelemetryHook, instrument, uninstrument
from lettre.transports.memory import MemoryTransport

hook = OpenTelemetryHook()
event = SendStarted("smtp", Envelope("a@example.com", ["b@example.com"]), 10, None, None)
direct = hook.send_started(event)
registered = instrument()
message = (
    Message.builder().from_("a@example.com").to("b@example.com").subject("s").text("t").build()
)
result = asyncio.run(MemoryTransport().send(message))
again = registered.send_started(event)
uninstrument(registered)
print(json.dumps({"direct": direct is None, "again": again is None, "sent": result.all_accepted}))
"""


def _run(code: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_instrument_follows_the_global_providers() -> None:
    result = _run(_GLOBAL)
    assert result["names"] == ["memory send", "job"]
    assert result["child"] is True
    assert result["messages"] == [{"lettre.transport": "memory", "lettre.outcome": "accepted"}]


def test_without_an_sdk_nothing_is_made() -> None:
    result = _run(_NO_SDK)
    assert result == {"direct": True, "again": True, "sent": True}
