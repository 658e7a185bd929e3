"""SendmailTransport with a program the system cannot run, and command arguments of the wrong
type."""

from __future__ import annotations

from pathlib import Path

import pytest

from lettre.envelope import Envelope
from lettre.errors import SendmailError
from lettre.transports.sendmail import SendmailTransport

MESSAGE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\nbody\r\n"


@pytest.mark.anyio
async def test_a_program_the_system_cannot_run(
    tmp_path: Path, anyio_backend: tuple[str, dict[str, object]]
) -> None:
    # Executable, but neither a binary nor a script with a #! line: exec() fails (ENOEXEC).
    # libuv (uvloop) then runs the file with /bin/sh, as execvp() does: the shell fails on it.
    uvloop = bool(anyio_backend[1].get("use_uvloop"))
    expected = (
        r"exited with status 127"
        if uvloop
        else r"cannot run sendmail program .*: Exec format error"
    )
    program = tmp_path / "sendmail"
    program.write_bytes(b"\x00\x01\x02 not a program\n")
    program.chmod(0o755)
    transport = SendmailTransport(program)
    with pytest.raises(SendmailError, match=expected) as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), MESSAGE)
    assert str(program) in str(info.value)
    assert not info.value.transient


def test_command_arguments_must_be_strings() -> None:
    with pytest.raises(TypeError, match=r"command arguments must be str or os\.PathLike\[str\]"):
        SendmailTransport(["/usr/sbin/sendmail", b"-t"])  # type: ignore[list-item]
