"""BlockingTransport with transports that are no BaseTransport, closes that fail or take too
long, a loop that does not start in time, and a fork with such a transport."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from sync_support import PlainTransport, SlowEnterTransport, message, run_script

from lettre import BlockingTransport, TransportError


def test_a_transport_without_async_with_is_closed_with_aclose() -> None:
    plain = PlainTransport()
    blocking = BlockingTransport(plain)
    assert blocking.send(message("bob@example.com")).accepted == ("bob@example.com",)
    assert not plain.closed.is_set()
    blocking.close()
    assert plain.closed.is_set()
    assert plain.sent == [("bob@example.com",)]


def test_a_close_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    plain = PlainTransport(close_error=OSError("the socket is gone"))
    blocking = BlockingTransport(plain)
    blocking.send(message())
    with caplog.at_level(logging.ERROR, logger="lettre"):
        blocking.close()
    assert plain.closed.is_set()
    [record] = [r for r in caplog.records if "event loop thread" in r.getMessage()]
    assert record.getMessage() == "the event loop thread of a BlockingTransport failed"
    assert record.exc_info is not None
    assert "the socket is gone" in caplog.text


def test_a_close_that_takes_too_long_is_left_to_end(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    plain = PlainTransport(close_gate=gate)
    blocking = BlockingTransport(plain)
    blocking.send(message())
    try:
        with caplog.at_level(logging.WARNING, logger="lettre"):
            blocking.close(timeout=0.2)  # aclose() waits for the gate, never set in time
        assert "did not finish closing in time; it is left to end by itself" in caplog.text
        assert not plain.closed.is_set()
        assert blocking.closed
    finally:
        gate.set()
    assert plain.closed.wait(30)


def test_a_loop_that_does_not_start_in_time() -> None:
    slow = SlowEnterTransport()  # its async with waits until released
    blocking = BlockingTransport(slow, start_timeout=0.2)
    try:
        with pytest.raises(
            TransportError,
            match=r"did not start within 0\.2 s \(start_timeout\)",
        ) as info:
            blocking.send(message())
        assert info.value.transient
        assert slow.entering.is_set()
    finally:
        slow.release.set()
        blocking.close()
    assert slow.exited.is_set()


FORK_SCRIPT = """
import json, os, sys
from lettre import BlockingTransport
from sync_support import PlainTransport, message

made = []

def factory():
    made.append(PlainTransport())
    return made[-1]

kept = PlainTransport()
blocking = BlockingTransport(kept)
built = BlockingTransport(factory)
blocking.send(message("parent@example.com"))
built.send(message("parent@example.com"))
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    blocking.send(message("child@example.com"))
    built.send(message("child@example.com"))
    report = {
        "same": blocking.transport is kept,
        "kept": kept.sent,
        "made": len(made),
        "child_made": made[-1].sent,
    }
    blocking.close()
    built.close()
    os.write(write_end, json.dumps(report).encode())
    os.close(write_end)
    sys.exit(0)  # a normal exit: coverage saves this process's data too
os.close(write_end)
report = json.loads(os.read(read_end, 65536))
_, status = os.waitpid(pid, 0)
print(json.dumps({**report, "status": os.waitstatus_to_exitcode(status), "parent": kept.sent}))
blocking.close()
built.close()
"""


def test_a_fork_with_a_transport_that_has_no_for_new_process() -> None:
    done = run_script(FORK_SCRIPT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["status"] == 0
    # The transport has no for_new_process(): the child keeps using it (it holds nothing)...
    assert report["same"] is True
    assert report["kept"] == [["parent@example.com"], ["child@example.com"]]
    assert report["parent"] == [["parent@example.com"]]
    # ...while a factory makes the child a transport of its own.
    assert report["made"] == 2
    assert report["child_made"] == [["child@example.com"]]
