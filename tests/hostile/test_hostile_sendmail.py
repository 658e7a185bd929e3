"""A hostile sendmail program: it hangs, floods stderr, or stops reading; every wait is bounded."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from hostile_support import GUARD, envelope, message_bytes

from lettre.errors import SendmailError
from lettre.transports import sendmail as sendmail_module
from lettre.transports.sendmail import MAX_STDERR, SendmailTransport

pytestmark = pytest.mark.anyio


def program(tmp_path: Path, body: str) -> Path:
    """An executable Python script running ``body``."""
    path = tmp_path / "sendmail"
    header = "#!/usr/bin/env python3\nimport os, sys, time\n"
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the processes the transport starts, as it starts them.

    Recorded from the transport's own call, so a program killed by the
    timeout before it ran a line of its own is still accounted for.
    """
    pids: list[int] = []
    real = anyio.open_process

    async def recording(*args: Any, **kwargs: Any) -> anyio.abc.Process:
        process = await real(*args, **kwargs)
        pids.append(process.pid)
        return process

    monkeypatch.setattr(sendmail_module.anyio, "open_process", recording)
    return pids


def assert_gone(spawned: list[int]) -> None:
    """The one program started is neither running nor a zombie."""
    (pid,) = spawned
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_program_that_never_exits_is_killed(tmp_path: Path, spawned: list[int]) -> None:
    path = program(tmp_path, "time.sleep(3600)\n")
    transport = SendmailTransport(path, timeout=0.5)
    with anyio.fail_after(GUARD), pytest.raises(SendmailError) as info:
        await transport.send_raw(envelope(), message_bytes())
    assert info.value.returncode is None
    assert info.value.transient
    assert_gone(spawned)


async def test_a_program_that_never_reads_a_large_message_is_killed(
    tmp_path: Path, spawned: list[int]
) -> None:
    # The message is far larger than a pipe buffer: writing it blocks forever.
    path = program(tmp_path, "time.sleep(3600)\n")
    transport = SendmailTransport(path, timeout=0.5)
    data = message_bytes(body="x" * 1000 + "\r\n") * 2000
    with anyio.fail_after(GUARD), pytest.raises(SendmailError):
        await transport.send_raw(envelope(), data)
    assert_gone(spawned)


async def test_stderr_flood_before_reading_stdin_does_not_deadlock(
    tmp_path: Path, spawned: list[int]
) -> None:
    # 1 MiB on stderr before reading anything: a client that writes stdin
    # first without draining stderr would wait forever.
    path = program(
        tmp_path,
        """
        sys.stderr.write("e" * (1024 * 1024))
        sys.stderr.flush()
        sys.stdin.buffer.read()
        sys.exit(75)
        """,
    )
    transport = SendmailTransport(path, timeout=10)
    data = message_bytes(body="y" * 1000 + "\r\n") * 500
    with anyio.fail_after(GUARD), pytest.raises(SendmailError) as info:
        await transport.send_raw(envelope(), data)
    assert info.value.returncode == 75
    assert info.value.transient
    assert len(info.value.stderr) <= MAX_STDERR
    assert len(str(info.value)) < 2000
    assert_gone(spawned)


async def test_a_program_that_closes_stdin_early_is_reported(
    tmp_path: Path, spawned: list[int]
) -> None:
    path = program(tmp_path, "sys.stdin.close()\nos.close(0)\nsys.exit(70)\n")
    transport = SendmailTransport(path, timeout=10)
    data = message_bytes(body="z" * 1000 + "\r\n") * 500
    with anyio.fail_after(GUARD), pytest.raises(SendmailError) as info:
        await transport.send_raw(envelope(), data)
    assert info.value.returncode == 70
    assert not info.value.transient
    assert_gone(spawned)
