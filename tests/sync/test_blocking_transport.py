"""BlockingTransport against real servers and transports: results, errors, closing, bounds."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from sync_support import (
    BlockingLoopTransport,
    FailingEnterTransport,
    HangingTransport,
    SessionHandler,
    SlowEnterTransport,
    message,
)

import lettre
from lettre import (
    BlockingTransport,
    Envelope,
    FileTransport,
    MemoryTransport,
    PoolConfig,
    RecipientsRefused,
    SendmailTransport,
    SendResult,
    SmtpConnectError,
    SmtpTransport,
    TransportError,
)
from servers import RecordingHandler, ServerFactory


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def smtp(port: int, **kwargs: Any) -> SmtpTransport:
    return SmtpTransport.local(port, host="127.0.0.1", **kwargs)


# -- sending ---------------------------------------------------------------------------


def test_send_returns_what_the_async_send_returns(
    smtpd: ServerFactory, loop: dict[str, Any], closing: list[BlockingTransport]
) -> None:
    server = smtpd()
    blocking = BlockingTransport(smtp(server.port), **loop)
    closing.append(blocking)
    sent = message()

    result = blocking.send(sent)

    assert isinstance(result, SendResult)
    assert result.accepted == ("bob@example.com",)
    assert result.message_id == sent.message_id
    assert result.transport_id == "LT0001"  # the queue id in the server's reply
    assert result.reply is not None
    assert result.reply.code == 250

    async def the_async_way() -> SendResult:
        async with smtp(server.port) as transport:
            return await transport.send(sent)

    expected = anyio.run(the_async_way)
    assert [r.recipient for r in result.recipients] == [r.recipient for r in expected.recipients]
    assert [r.accepted for r in result.recipients] == [r.accepted for r in expected.recipients]
    assert server.messages[0].content == server.messages[1].content


def test_send_raw_and_an_explicit_envelope(
    smtpd: ServerFactory, closing: list[BlockingTransport]
) -> None:
    server = smtpd()
    blocking = BlockingTransport(smtp(server.port))
    closing.append(blocking)

    blocking.send(message(), envelope=Envelope("bounce@example.com", ["carol@example.com"]))
    raw = blocking.send_raw(
        Envelope("alice@example.com", ["dave@example.com"]), b"Subject: raw\r\n\r\nbody\r\n"
    )

    assert raw.accepted == ("dave@example.com",)
    first, second = server.messages
    assert (first.mail_from, first.rcpt_tos) == ("bounce@example.com", ["carol@example.com"])
    assert second.content == b"Subject: raw\r\n\r\nbody\r\n"


def test_send_many_gives_an_outcome_per_message_in_order(
    smtpd: ServerFactory, loop: dict[str, Any], closing: list[BlockingTransport]
) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"user3@example.com"}))
    blocking = BlockingTransport(smtp(server.port), **loop)
    closing.append(blocking)
    messages = [message(f"user{n}@example.com") for n in range(6)]

    outcomes = blocking.send_many(messages, concurrency=3)

    assert [type(o).__name__ for o in outcomes] == [
        "SendResult",
        "SendResult",
        "SendResult",
        "RecipientsRefused",
        "SendResult",
        "SendResult",
    ]
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [
        f"user{n}@example.com" for n in (0, 1, 2, 4, 5)
    ]
    with pytest.raises(TypeError, match="list"):
        blocking.send_many(messages[0])  # type: ignore[arg-type]


def test_errors_are_the_async_errors(
    smtpd: ServerFactory, loop: dict[str, Any], closing: list[BlockingTransport]
) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"bob@example.com"}))
    blocking = BlockingTransport(smtp(server.port), **loop)
    unreachable = BlockingTransport(smtp(closed_port(), timeout=5), **loop)
    closing.extend([blocking, unreachable])

    with pytest.raises(RecipientsRefused) as refused:
        blocking.send(message())
    assert refused.value.code == 550
    assert [r.recipient for r in refused.value.results] == ["bob@example.com"]

    with pytest.raises(SmtpConnectError) as failed:
        unreachable.send(message())
    assert failed.value.transient

    async def the_async_way() -> None:
        async with smtp(server.port) as transport:
            await transport.send(message())

    with pytest.raises(RecipientsRefused) as expected:
        anyio.run(the_async_way)
    assert str(refused.value) == str(expected.value)


def test_test_connection_and_statistics(
    smtpd: ServerFactory, closing: list[BlockingTransport]
) -> None:
    server = smtpd()
    blocking = BlockingTransport(smtp(server.port))
    closing.append(blocking)

    blocking.test_connection()
    blocking.send(message())
    stats = blocking.statistics()

    assert stats.opened_total == 1
    assert stats.messages_sent == 1
    assert stats.idle == 1


def test_statistics_and_test_connection_need_a_transport_that_has_them(
    closing: list[BlockingTransport],
) -> None:
    blocking = BlockingTransport(MemoryTransport())
    closing.append(blocking)
    with pytest.raises(TypeError, match=r"MemoryTransport has no statistics\(\)"):
        blocking.statistics()
    with pytest.raises(TypeError, match=r"MemoryTransport has no test_connection\(\)"):
        blocking.test_connection()


# -- other transports --------------------------------------------------------------------


def test_memory_transport_from_a_factory(
    loop: dict[str, Any], closing: list[BlockingTransport]
) -> None:
    blocking = BlockingTransport(MemoryTransport, **loop)
    closing.append(blocking)

    blocking.send(message())

    memory = blocking.transport
    assert isinstance(memory, MemoryTransport)
    assert memory.outbox[0].recipients == ("bob@example.com",)
    blocking.close()
    assert memory.closed  # closed on its loop with the BlockingTransport


def test_file_transport(tmp_path: Path, closing: list[BlockingTransport]) -> None:
    blocking = BlockingTransport(FileTransport(tmp_path))
    closing.append(blocking)

    result = blocking.send(message())

    assert result.transport_id is not None
    envelope, data = FileTransport(tmp_path).read(result.transport_id)
    assert envelope is not None
    assert b"Subject: Hello" in data


def test_sendmail_transport(tmp_path: Path, closing: list[BlockingTransport]) -> None:
    program = tmp_path / "sendmail"
    out = tmp_path / "out.json"
    program.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(out)!r}, 'w').write(json.dumps("
        "{'argv': sys.argv[1:], 'data': sys.stdin.read()}))\n",
        encoding="utf-8",
    )
    program.chmod(0o755)
    blocking = BlockingTransport(SendmailTransport(program))
    closing.append(blocking)

    blocking.send(message())

    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["argv"][-1] == "bob@example.com"
    assert "Subject: Hello" in record["data"]


# -- closing -------------------------------------------------------------------------------


def test_close_says_quit_and_is_final(smtpd: ServerFactory) -> None:
    handler = SessionHandler()
    server = smtpd(handler=handler)
    with BlockingTransport(smtp(server.port)) as blocking:
        blocking.send(message())
        thread = blocking._loop.thread if blocking._loop is not None else None

    assert handler.quits == handler.ports  # the pooled connection said QUIT
    assert thread is not None
    assert not thread.is_alive()
    assert blocking.closed
    blocking.close()  # again: nothing happens
    with pytest.raises(TransportError, match="closed") as error:
        blocking.send(message())
    assert not error.value.transient


def test_close_before_any_call_starts_nothing() -> None:
    blocking = BlockingTransport(MemoryTransport())
    before = threading.active_count()
    blocking.close()
    assert threading.active_count() == before
    with pytest.raises(TransportError, match="closed"):
        blocking.send(message())


def test_close_lets_a_call_in_flight_finish(closing: list[BlockingTransport]) -> None:
    hanging = HangingTransport()
    blocking = BlockingTransport(hanging)
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(blocking.send(message()))
        except Exception as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert hanging.entered.wait(10)
    closer = threading.Thread(target=blocking.close)
    closer.start()
    hanging.release.set()
    closer.join(10)
    sender.join(10)
    assert isinstance(outcome[0], SendResult)
    assert not hanging.cancelled.is_set()


def test_close_cancels_a_call_that_outlives_its_bound() -> None:
    hanging = HangingTransport()
    blocking = BlockingTransport(hanging)
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(blocking.send(message()))
        except Exception as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert hanging.entered.wait(10)
    started = time.monotonic()
    blocking.close(timeout=0.4)
    sender.join(10)
    assert time.monotonic() - started < 5
    assert hanging.cancelled.is_set()
    assert isinstance(outcome[0], TransportError)
    assert "closed while this call was running" in str(outcome[0])


def test_close_while_the_loop_is_starting_stops_it(loop: dict[str, Any]) -> None:
    slow = SlowEnterTransport()
    blocking = BlockingTransport(slow, **loop)
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(blocking.send(message()))
        except Exception as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert slow.entering.wait(10)
    closer = threading.Thread(target=blocking.close, kwargs={"timeout": 10})
    closer.start()
    slow.release.set()
    closer.join(15)
    sender.join(15)
    assert not closer.is_alive()
    assert slow.exited.is_set()  # the loop stopped and closed the transport
    assert isinstance(outcome[0], TransportError)
    assert "closed" in str(outcome[0])


# -- bounds --------------------------------------------------------------------------------


def test_a_call_past_its_timeout_is_cancelled_and_raises(
    loop: dict[str, Any], closing: list[BlockingTransport]
) -> None:
    hanging = HangingTransport()
    blocking = BlockingTransport(hanging, timeout=0.3, **loop)
    closing.append(blocking)

    with pytest.raises(TransportError, match=r"within 0.3 s \(timeout\)") as error:
        blocking.send(message())

    assert error.value.transient
    assert hanging.cancelled.wait(10)


def test_a_call_that_cannot_get_the_loop_raises_instead_of_hanging(
    closing: list[BlockingTransport],
) -> None:
    stuck = BlockingLoopTransport()
    blocking = BlockingTransport(stuck, start_timeout=0.3)
    closing.append(blocking)
    first = threading.Thread(target=blocking.send, args=(message(),))
    first.start()
    try:
        assert stuck.entered.wait(10)
        with pytest.raises(TransportError, match=r"did not take the call within 0.3 s"):
            blocking.send(message())
    finally:
        stuck.release.set()
        first.join(10)
    assert isinstance(blocking.send(message()), SendResult)  # the loop is free again


def test_a_transport_that_fails_to_open_raises_and_is_tried_again(
    closing: list[BlockingTransport],
) -> None:
    transport = FailingEnterTransport(failures=1)
    blocking = BlockingTransport(transport)
    closing.append(blocking)

    with pytest.raises(OSError, match="no way in"):
        blocking.send(message())
    blocking.send(message())

    assert transport.sent == 1


# -- arguments -----------------------------------------------------------------------------


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="'curio'"):
        BlockingTransport(MemoryTransport(), backend="curio")
    with pytest.raises(ValueError, match="timeout"):
        BlockingTransport(MemoryTransport(), timeout=0)
    with pytest.raises(ValueError, match="start_timeout"):
        BlockingTransport(MemoryTransport(), start_timeout=-1)
    with pytest.raises(TypeError, match="not int"):
        BlockingTransport(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must return a transport, not str"):
        BlockingTransport(lambda: "smtp://x")  # type: ignore[arg-type, return-value]


def test_repr_names_the_transport_never_the_password() -> None:
    transport = SmtpTransport.from_url("smtp://user:s3cret@127.0.0.1:2525?tls=none")
    blocking = BlockingTransport(transport, backend="trio")
    text = repr(blocking)
    blocking.close()
    assert "127.0.0.1" in text
    assert "trio" in text
    assert "s3cret" not in text


def test_transport_is_the_wrapped_transport() -> None:
    assert lettre.BlockingTransport is BlockingTransport
    transport = SmtpTransport.local(2525, pool=PoolConfig(max_size=2))
    blocking = BlockingTransport(transport)
    assert blocking.transport is transport
    blocking.close()


def test_a_transport_dropped_without_close_stops_its_loop_thread() -> None:
    import gc

    memory = MemoryTransport()
    blocking = BlockingTransport(memory)
    blocking.send(message())
    assert blocking._loop is not None
    thread = blocking._loop.thread
    del blocking
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()
    assert memory.closed  # closed on its loop before the thread ended
