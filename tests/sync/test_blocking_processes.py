"""BlockingTransport across os.fork() and at interpreter exit, in real subprocesses."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sync_support import LOOP_IDS, LOOPS, SessionHandler, run_script

from servers import ServerFactory

FORK_SCRIPT = """
import json, os, select, sys, time
from lettre import BlockingTransport, PoolConfig, SmtpTransport
from sync_support import message

port, backend, options = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
blocking = BlockingTransport(
    SmtpTransport.local(port, host="127.0.0.1", pool=PoolConfig(max_size=1)),
    backend=backend,
    backend_options=options,
)
parent_transport = blocking.transport
blocking.send(message("parent1@example.com"))  # a loop thread and a pooled connection

read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    try:
        blocking.send(message("child@example.com"))
        stats = blocking.statistics()
        report = {
            "ok": True,
            "opened": stats.opened_total,
            "sent": stats.messages_sent,
            "same_transport": blocking.transport is parent_transport,
        }
        blocking.close()
    except BaseException as exc:
        report = {"ok": False, "error": repr(exc)}
    os.write(write_end, json.dumps(report).encode())
    os._exit(0)

os.close(write_end)
ready, _, _ = select.select([read_end], [], [], 30)
child = json.loads(os.read(read_end, 65536)) if ready else {"ok": False, "error": "no report"}
deadline = time.monotonic() + 30
while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
    select.select([], [], [], 0.01)
blocking.send(message("parent2@example.com"))  # on the parent's own connection still
stats = blocking.statistics()
blocking.close()
print(json.dumps({"child": child, "opened": stats.opened_total, "sent": stats.messages_sent}))
"""


@pytest.mark.parametrize(("backend", "options"), LOOPS, ids=LOOP_IDS)
def test_a_forked_child_sends_on_its_own_connection(
    smtpd: ServerFactory, backend: str, options: dict[str, Any]
) -> None:
    handler = SessionHandler()
    server = smtpd(handler=handler)

    done = run_script(
        FORK_SCRIPT, timeout=60, args=[str(server.port), backend, json.dumps(options)]
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["child"] == {"ok": True, "opened": 1, "sent": 1, "same_transport": False}
    # The parent's connection outlived the child, unused by it: no reconnect.
    assert (report["opened"], report["sent"]) == (1, 2)
    by_recipient = {
        m.rcpt_tos[0]: port for m, port in zip(server.messages, handler.ports, strict=True)
    }
    parent_port = by_recipient["parent1@example.com"]
    assert by_recipient["parent2@example.com"] == parent_port
    assert by_recipient["child@example.com"] != parent_port
    # Each process said QUIT on its own connection only, the parent's last.
    assert sorted(handler.quits) == sorted({parent_port, by_recipient["child@example.com"]})
    assert handler.quits[-1] == parent_port


MULTIPROCESSING_SCRIPT = """
import multiprocessing, sys
from lettre import BlockingTransport, SmtpTransport
from sync_support import message

port = int(sys.argv[1])
mailer = BlockingTransport(SmtpTransport.local(port, host="127.0.0.1"))
mailer.send(message("parent@example.com"))


def work(number):
    result = mailer.send(message(f"worker{number}@example.com"))
    return result.accepted[0]


if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(2) as pool:
        print(",".join(pool.map(work, range(6), chunksize=1)))
    mailer.send(message("parent-again@example.com"))
    print(mailer.statistics().opened_total)
    mailer.close()
"""


def test_multiprocessing_fork_workers_share_a_transport_made_before(
    smtpd: ServerFactory,
) -> None:
    handler = SessionHandler()
    server = smtpd(handler=handler)

    done = run_script(MULTIPROCESSING_SCRIPT, timeout=60, args=[str(server.port)])

    assert done.returncode == 0, done.stderr
    accepted, opened = done.stdout.split()
    assert accepted.split(",") == [f"worker{n}@example.com" for n in range(6)]
    assert opened == "1"
    ports = dict(zip((m.rcpt_tos[0] for m in server.messages), handler.ports, strict=True))
    assert ports["parent-again@example.com"] == ports["parent@example.com"]
    workers = {ports[f"worker{n}@example.com"] for n in range(6)}
    assert ports["parent@example.com"] not in workers


EXIT_AFTER_SENDING = """
import sys
from lettre import BlockingTransport, SmtpTransport
from sync_support import message

mailer = BlockingTransport(SmtpTransport.local(int(sys.argv[1]), host="127.0.0.1"))
mailer.send(message())
print("sent", flush=True)
"""


@pytest.mark.parametrize(("backend", "options"), LOOPS, ids=LOOP_IDS)
def test_exit_without_close_says_quit_and_does_not_hang(
    smtpd: ServerFactory, backend: str, options: dict[str, Any]
) -> None:
    handler = SessionHandler()
    server = smtpd(handler=handler)
    script = EXIT_AFTER_SENDING.replace(
        'host="127.0.0.1")', f'host="127.0.0.1"), backend={backend!r}, backend_options={options!r}'
    )

    started = time.monotonic()
    done = run_script(script, timeout=30, args=[str(server.port)])

    assert done.returncode == 0, done.stderr
    assert done.stdout == "sent\n"
    assert time.monotonic() - started < 15
    assert handler.quit_seen.wait(10)
    assert handler.quits == handler.ports


EXIT_DURING_A_SEND = """
import socket, sys, threading
from lettre import BlockingTransport, SmtpTransport
from sync_support import message

listener = socket.create_server(("127.0.0.1", 0))
listener.settimeout(20)
port = listener.getsockname()[1]
# A server that accepts and never greets: the send waits for 60 s.
mailer = BlockingTransport(SmtpTransport.local(port, host="127.0.0.1", timeout=60))
threading.Thread(target=mailer.send, args=(message(),), daemon=True).start()
connection, _ = listener.accept()
print("exiting with a send in flight", flush=True)
"""


def test_exit_during_a_send_is_bounded() -> None:
    started = time.monotonic()
    done = run_script(EXIT_DURING_A_SEND, timeout=40)
    took = time.monotonic() - started

    assert done.returncode == 0, done.stderr
    assert done.stdout == "exiting with a send in flight\n"
    assert took < 20  # the send alone would wait 60 s


# -- what a forked child gets instead of the parent's transport -----------------------------


def test_a_child_gets_an_smtp_transport_with_the_same_settings() -> None:
    from lettre import DkimSigner, PoolConfig, SmtpTransport
    from lettre.sync import _renewed

    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.asymmetric import ed25519

    signer = DkimSigner("example.com", "s", ed25519.Ed25519PrivateKey.generate())
    parent = SmtpTransport.local(2525, pool=PoolConfig(max_size=3), dkim=signer)
    child = _renewed(parent)
    assert isinstance(child, SmtpTransport)
    assert child is not parent
    assert child.settings == parent.settings
    assert child.pool_config == parent.pool_config
    assert child._signers == (signer,)


def test_a_child_gets_an_ses_transport_without_the_parents_client() -> None:
    pytest.importorskip("botocore")
    from lettre import SesTransport, TransportError
    from lettre.sync import _renewed

    parent = SesTransport(region="eu-west-1", max_recipients_per_call=7)
    parent._shared = object()  # as if a client were open on the parent's loop
    parent._depth = 1
    child = _renewed(parent)
    assert isinstance(child, SesTransport)
    assert child is not parent
    assert (child._shared, child._depth) == (None, 0)
    assert child.max_recipients_per_call == 7
    assert parent._shared is not None

    external = SesTransport(client=type("Client", (), {"send_email": lambda self: None})())
    with pytest.raises(TransportError, match="function that makes the transport"):
        _renewed(external)


def test_transports_without_connections_are_kept(tmp_path: Any) -> None:
    from lettre import FileTransport, MemoryTransport
    from lettre.sync import _renewed

    for transport in (MemoryTransport(), FileTransport(tmp_path)):
        assert _renewed(transport) is transport


FACTORY_SCRIPT = """
import os
from lettre import BlockingTransport, MemoryTransport
from sync_support import message

made = []


def make():
    made.append(os.getpid())
    return MemoryTransport()


blocking = BlockingTransport(make)
blocking.send(message())
pid = os.fork()
if pid == 0:
    blocking.send(message())
    outbox = len(blocking.transport.outbox)
    os._exit(0 if (outbox, len(made), made[-1]) == (1, 2, os.getpid()) else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), len(made), len(blocking.transport.outbox))
blocking.close()
"""


def test_a_factory_is_called_again_in_a_forked_child() -> None:
    done = run_script(FACTORY_SCRIPT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "1", "1"]
