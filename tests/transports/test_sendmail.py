"""SendmailTransport against real executables written by the tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from lettre.envelope import Envelope
from lettre.errors import AddressError, SendmailError, TransportError
from lettre.transports import sendmail as sendmail_module
from lettre.transports.base import Transport
from lettre.transports.sendmail import MAX_STDERR, SendmailTransport

ScriptFactory = Callable[[str, str], Path]
Invocations = Callable[[], list[Any]]
ChildPids = Callable[[], set[int]]

pytestmark = pytest.mark.anyio

MESSAGE = (
    b"From: alice@example.com\r\n"
    b"To: bob@example.com\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b"first line\r\n"
    b".\r\n"
    b"..a line that starts with a dot\r\n"
)


def assert_reaped(pid: int) -> None:
    """The process is gone: neither running nor a zombie waiting for wait()."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# -- the command line --------------------------------------------------------


async def test_argv_and_stdin_are_exact(
    recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    transport = SendmailTransport(recorder)
    envelope = Envelope("alice@example.com", ["bob@example.com", "carol@example.org"])

    result = await transport.send_raw(envelope, MESSAGE)

    (run,) = invocations()
    assert run.argv == [
        "-i",
        "-f",
        "alice@example.com",
        "--",
        "bob@example.com",
        "carol@example.org",
    ]
    assert run.stdin == MESSAGE
    assert result.accepted == ("bob@example.com", "carol@example.org")
    assert result.all_accepted
    assert result.transport_id is None


async def test_null_reverse_path_leaves_out_f(
    recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    transport = SendmailTransport(recorder)

    await transport.send_raw(Envelope(None, ["bob@example.com"]), MESSAGE)

    (run,) = invocations()
    assert run.argv == ["-i", "--", "bob@example.com"]


async def test_unicode_addresses_are_passed_unchanged(
    recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    transport = SendmailTransport(recorder)
    envelope = Envelope("åsa@exämple.se", ["用户@例子.广告", "bob@bücher.example"])

    result = await transport.send_raw(envelope, MESSAGE)

    (run,) = invocations()
    assert run.argv == ["-i", "-f", "åsa@exämple.se", "--", "用户@例子.广告", "bob@bücher.example"]
    assert result.accepted == ("用户@例子.广告", "bob@bücher.example")


async def test_command_sequence_keeps_fixed_arguments(
    recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    transport = SendmailTransport([str(recorder), "-C", "relay.conf"])

    await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)

    (run,) = invocations()
    assert run.argv == ["-C", "relay.conf", "-i", "-f", "a@example.com", "--", "b@example.com"]


async def test_default_command_is_found_on_path(
    recorder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, invocations: Invocations
) -> None:
    monkeypatch.setenv("PATH", f"{recorder.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    transport = SendmailTransport()

    envelope = Envelope("a@example.com", ["b@example.com"])
    assert transport.command_line(envelope)[0] == str(recorder)
    await transport.send_raw(envelope, MESSAGE)

    (run,) = invocations()
    assert run.argv == ["-i", "-f", "a@example.com", "--", "b@example.com"]


async def test_no_default_command_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sendmail_module, "_FALLBACK_PATH", str(tmp_path / "no-such-sendmail"))
    transport = SendmailTransport()

    with pytest.raises(SendmailError, match="no sendmail program found") as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)
    assert info.value.returncode is None


async def test_missing_command_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    transport = SendmailTransport(missing)

    with pytest.raises(SendmailError, match="not found") as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)
    assert str(missing) in str(info.value)
    assert info.value.returncode is None
    assert not info.value.transient


async def test_non_executable_command_names_it(tmp_path: Path) -> None:
    script = tmp_path / "sendmail"
    script.write_text("#!/usr/bin/env python3\n", encoding="utf-8")
    script.chmod(0o644)
    transport = SendmailTransport(script)

    with pytest.raises(SendmailError, match="not executable") as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)
    assert str(script) in str(info.value)


# -- hostile addresses ---------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    ["-oQ/tmp@example.com", '"-X/tmp/x"@example.com', "-bi@example.com", "--@example.com"],
)
@pytest.mark.parametrize("role", ["sender", "recipient"])
async def test_option_like_addresses_never_reach_the_program(
    recorder: Path,
    tmp_path: Path,
    hostile: str,
    role: str,
    invocations: Invocations,
    child_pids: ChildPids,
) -> None:
    # Valid addresses (the quotes of "-X/tmp/x" are not needed, so its
    # canonical form starts with '-') that a sendmail could read as options.
    transport = SendmailTransport(recorder)
    before = child_pids()
    if role == "sender":
        envelope = Envelope(hostile, ["bob@example.com"])
    else:
        envelope = Envelope("alice@example.com", ["bob@example.com", hostile])

    with pytest.raises(AddressError, match="option"):
        await transport.send_raw(envelope, MESSAGE)
    with pytest.raises(AddressError, match="option"):
        transport.command_line(envelope)

    assert invocations() == []
    assert child_pids() - before == set()


async def test_quoted_dash_address_stays_one_argument(
    recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    # Quoted (because of the space), it starts with '"' and is passed as is.
    address = '"-X /tmp/x"@example.com'
    transport = SendmailTransport(recorder)

    await transport.send_raw(Envelope(address, [address]), MESSAGE)

    (run,) = invocations()
    assert run.argv == ["-i", "-f", address, "--", address]


@pytest.mark.parametrize(
    "address",
    [
        '"$(touch pwned)"@example.com',
        "`touch${IFS}pwned`@example.com",
        '"a;touch pwned|cat&"@example.com',
        "$HOME@example.com",
        '"x > pwned"@example.com',
        "'*'@example.com",
    ],
)
async def test_shell_metacharacters_are_plain_arguments(
    recorder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    address: str,
    invocations: Invocations,
) -> None:
    monkeypatch.chdir(tmp_path)
    transport = SendmailTransport(recorder)
    envelope = Envelope(address, ["bob@example.com", address])
    text = str(envelope.reverse_path)

    await transport.send_raw(envelope, MESSAGE)

    (run,) = invocations()
    assert run.argv == ["-i", "-f", text, "--", "bob@example.com", text]
    assert not (tmp_path / "pwned").exists()
    assert not (recorder.parent / "pwned").exists()


@pytest.mark.parametrize(
    "bad", ["bob\n@example.com", "bob@example.com\r\n-oQ/x", "a\x00@b.example"]
)
def test_control_characters_are_rejected_before_running(recorder: Path, bad: str) -> None:
    # The address module already refuses these; the transport checks again so
    # that nothing else that stringifies oddly can reach a command line.
    transport = SendmailTransport(recorder)
    fake: Any = SimpleNamespace(reverse_path=None, forward_paths=(bad,))
    with pytest.raises(AddressError, match="control character"):
        transport.command_line(fake)
    fake_sender: Any = SimpleNamespace(reverse_path=bad, forward_paths=("bob@example.com",))
    with pytest.raises(AddressError, match="control character"):
        transport.command_line(fake_sender)


# -- exit statuses and stderr ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "transient", "name"),
    [(75, True, "EX_TEMPFAIL"), (71, True, "EX_OSERR"), (67, False, "EX_NOUSER"), (1, False, "")],
)
async def test_non_zero_exit_raises_with_status_and_stderr(
    make_script: ScriptFactory, status: int, transient: bool, name: str
) -> None:
    script = make_script(
        "failing",
        f"""
        sys.stdin.buffer.read()
        sys.stderr.write("queue file write error\\n")
        sys.exit({status})
        """,
    )
    transport = SendmailTransport(script)

    with pytest.raises(SendmailError) as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)

    error = info.value
    assert isinstance(error, TransportError)
    assert error.returncode == status
    assert error.transient is transient
    assert error.stderr == b"queue file write error\n"
    assert f"status {status}" in str(error)
    assert name in str(error)
    assert "queue file write error" in str(error)


async def test_exit_without_reading_a_large_message(make_script: ScriptFactory) -> None:
    # The program exits before reading its input: writing hits a broken pipe,
    # and the exit status is what gets reported.
    script = make_script("quits", "sys.stderr.write('usage: quits'); sys.exit(64)\n")
    transport = SendmailTransport(script, timeout=60)

    with pytest.raises(SendmailError) as info:
        await transport.send_raw(
            Envelope("a@example.com", ["b@example.com"]), MESSAGE + b"x" * (4 * 1024 * 1024)
        )
    assert info.value.returncode == 64
    assert info.value.stderr == b"usage: quits"
    assert not info.value.transient


async def test_killed_by_signal_is_transient(make_script: ScriptFactory) -> None:
    script = make_script(
        "crashes",
        """
        import signal
        sys.stdin.buffer.read()
        os.kill(os.getpid(), signal.SIGTERM)
        """,
    )
    transport = SendmailTransport(script)

    with pytest.raises(SendmailError, match="signal 15") as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)
    assert info.value.returncode == -15
    assert info.value.transient


FLOOD_BODY = """
chunk = b"E" * 65536
for _ in range(32):  # 2 MiB, far more than a pipe holds
    sys.stderr.buffer.write(chunk)
sys.stderr.buffer.flush()
data = sys.stdin.buffer.read()
with open(os.path.join(OUT, "size"), "w") as handle:
    handle.write(str(len(data)))
sys.exit(STATUS)
"""


async def test_stderr_flood_before_reading_stdin_does_not_deadlock(
    make_script: ScriptFactory, tmp_path: Path
) -> None:
    # The child fills the stderr pipe before reading stdin, and our message is
    # bigger than the stdin pipe: only reading stderr while writing stdin
    # avoids a deadlock (which would end in the timeout error).
    script = make_script("flood", "STATUS = 0\n" + FLOOD_BODY)
    transport = SendmailTransport(script, timeout=60)
    data = MESSAGE + b"y" * (1024 * 1024)

    result = await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), data)

    assert result.all_accepted
    assert (tmp_path / "records" / "size").read_text() == str(len(data))


async def test_stderr_flood_is_truncated_to_64_kib(
    make_script: ScriptFactory, tmp_path: Path
) -> None:
    script = make_script("flood", "STATUS = 1\n" + FLOOD_BODY)
    transport = SendmailTransport(script, timeout=60)
    data = MESSAGE + b"y" * (1024 * 1024)

    with pytest.raises(SendmailError) as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), data)

    assert info.value.returncode == 1
    assert len(info.value.stderr) == MAX_STDERR == 64 * 1024
    assert info.value.stderr == b"E" * MAX_STDERR
    # The child was drained to its end: it read every byte of the message.
    assert (tmp_path / "records" / "size").read_text() == str(len(data))
    # The error message shows only an excerpt.
    assert len(str(info.value)) < 1000


DAEMON_BODY = """
import subprocess
# Like a sendmail that forks a background delivery process: the child keeps
# the inherited stderr open long after this program has exited.
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(3600)"], stdin=subprocess.DEVNULL
)
with open(os.path.join(OUT, "daemon.part"), "w") as handle:
    handle.write(str(child.pid))
os.replace(os.path.join(OUT, "daemon.part"), os.path.join(OUT, "daemon"))
sys.stdin.buffer.read()
sys.stderr.write("local delivery failed\\n")
sys.stderr.flush()
sys.exit(STATUS)
"""


@pytest.mark.parametrize("status", [0, 1])
async def test_background_child_holding_stderr_does_not_block(
    make_script: ScriptFactory, tmp_path: Path, status: int
) -> None:
    script = make_script("daemonizes", f"STATUS = {status}\n" + DAEMON_BODY)
    # A send that waited for the end of stderr would wait for the child's
    # hour of sleep; the guard turns that into a failure instead of a hang.
    transport = SendmailTransport(script, timeout=3600)
    daemon_file = tmp_path / "records" / "daemon"
    envelope = Envelope("a@example.com", ["b@example.com"])
    try:
        with anyio.fail_after(60):
            if status == 0:
                result = await transport.send_raw(envelope, MESSAGE)
                assert result.all_accepted
            else:
                with pytest.raises(SendmailError) as info:
                    await transport.send_raw(envelope, MESSAGE)
                assert info.value.returncode == 1
                assert info.value.stderr == b"local delivery failed\n"
    finally:
        if daemon_file.exists():
            os.kill(int(daemon_file.read_text()), signal.SIGKILL)
    assert daemon_file.exists()


# -- timeouts and cancellation -------------------------------------------------------

HANG_BODY = """
import time
with open(os.path.join(OUT, "pid.part"), "w") as handle:
    handle.write(str(os.getpid()))
os.replace(os.path.join(OUT, "pid.part"), os.path.join(OUT, "pid"))
time.sleep(3600)
"""


async def test_timeout_kills_and_reaps_the_program(
    make_script: ScriptFactory, tmp_path: Path, child_pids: ChildPids
) -> None:
    script = make_script("hangs", HANG_BODY)
    transport = SendmailTransport(script, timeout=0.5)
    before = child_pids()

    with pytest.raises(SendmailError, match="did not finish") as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)

    assert info.value.returncode is None
    assert info.value.transient
    # No child is left behind, running or as a zombie.
    assert child_pids() - before == set()
    pid_file = tmp_path / "records" / "pid"
    if pid_file.exists():  # the child got as far as writing its pid
        assert_reaped(int(pid_file.read_text()))


async def test_cancellation_kills_and_reaps_the_program(
    make_script: ScriptFactory, tmp_path: Path
) -> None:
    script = make_script("hangs", HANG_BODY)
    transport = SendmailTransport(script, timeout=3600)
    pid_file = tmp_path / "records" / "pid"
    finished = False

    async def send() -> None:
        nonlocal finished
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)
        finished = True

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            while not pid_file.exists():  # wait until the child is really running
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    assert not finished
    assert_reaped(int(pid_file.read_text()))


async def test_concurrent_sends_each_run_their_own_process(
    recorder: Path, tmp_path: Path, invocations: Invocations
) -> None:
    transport = SendmailTransport(recorder)

    async with anyio.create_task_group() as tg:
        for number in range(5):
            envelope = Envelope("a@example.com", [f"rcpt{number}@example.com"])
            tg.start_soon(transport.send_raw, envelope, MESSAGE + str(number).encode())

    runs = invocations()
    assert sorted(run.argv[-1] for run in runs) == [f"rcpt{n}@example.com" for n in range(5)]
    for run in runs:
        number = run.argv[-1][len("rcpt")]
        assert run.stdin == MESSAGE + number.encode()


# -- construction ------------------------------------------------------------------


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="timeout"):
        SendmailTransport(timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        SendmailTransport(timeout=float("inf"))
    with pytest.raises(TypeError, match="timeout"):
        SendmailTransport(timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="program"):
        SendmailTransport([])
    with pytest.raises(TypeError, match="command"):
        SendmailTransport(b"/usr/sbin/sendmail")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NUL"):
        SendmailTransport(["sendmail", "-C\0x"])


def test_transport_protocol_and_repr(recorder: Path) -> None:
    transport = SendmailTransport(recorder, timeout=5)
    assert isinstance(transport, Transport)
    assert transport.timeout == 5.0
    assert str(recorder) in repr(transport)


async def test_async_with(recorder: Path, tmp_path: Path, invocations: Invocations) -> None:
    async with SendmailTransport(recorder) as transport:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)
    assert len(invocations()) == 1
