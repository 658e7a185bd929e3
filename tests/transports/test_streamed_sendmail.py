"""SendmailTransport with streamed attachments: a real program reads them from its stdin."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lettre.message import Attachment, SourceError
from lettre.transports.sendmail import SendmailTransport
from streamed_support import LARGE, FailingFile, large_file, message_with

pytestmark = pytest.mark.anyio

ScriptFactory = Callable[[str, str], Path]

# Copies its stdin to OUT/<pid>.eml once it reached the end of its input;
# its pid goes first to OUT/<pid>.pid, so a test can see that it ran.
COPIER_BODY = """
open(os.path.join(OUT, f"{os.getpid()}.pid"), "w").close()
path = os.path.join(OUT, f"{os.getpid()}.eml")
with open(path + ".part", "wb") as handle:
    while True:
        chunk = sys.stdin.buffer.read(1 << 20)
        if not chunk:
            break
        handle.write(chunk)
os.replace(path + ".part", path)
"""


def records(tmp_path: Path, suffix: str) -> list[Path]:
    return sorted((tmp_path / "records").glob(f"*{suffix}"))


async def test_a_large_attachment_reaches_the_program_whole(
    tmp_path: Path, make_script: ScriptFactory
) -> None:
    program = make_script("sendmail", COPIER_BODY)
    message = message_with(Attachment.from_path(large_file(tmp_path / "data.tar")))
    result = await SendmailTransport(program).send(message)
    assert [r.accepted for r in result.recipients] == [True]
    (eml,) = records(tmp_path, ".eml")
    data = eml.read_bytes()
    assert data == message.as_bytes()
    assert len(data) > LARGE * 4 // 3


async def test_a_read_error_kills_the_program_before_the_end_of_input(
    tmp_path: Path, make_script: ScriptFactory
) -> None:
    program = make_script("sendmail", COPIER_BODY)
    failing = FailingFile(os.urandom(3_000_000), limit=2_000_000)
    message = message_with(Attachment.from_file(failing, "z.bin"))
    with pytest.raises(SourceError, match="Input/output error"):
        await SendmailTransport(program).send(message)
    # The program started and read part of the message, but never saw the
    # end of its input: it did not take the message.
    (pid_file,) = records(tmp_path, ".pid")
    assert records(tmp_path, ".eml") == []
    assert records(tmp_path, ".part") != []
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.stem), 0)  # killed and reaped
