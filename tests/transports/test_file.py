"""FileTransport: atomic, private files named by the transport, read back intact."""

from __future__ import annotations

import json
import os
import stat
from email.message import EmailMessage
from pathlib import Path

import anyio
import pytest

from lettre.envelope import Envelope
from lettre.errors import FileTransportError, TransportError
from lettre.message.message import Message
from lettre.transports.base import Transport
from lettre.transports.file import FileTransport

pytestmark = pytest.mark.anyio

DATA = b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def listing(directory: Path) -> set[str]:
    return {entry.name for entry in directory.iterdir()}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_round_trip_through_read(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    envelope = Envelope("alice@example.com", ["bob@example.com", "carol@example.org"])

    result = await transport.send_raw(envelope, DATA)

    file_id = result.transport_id
    assert file_id is not None
    assert len(file_id) == 32
    assert int(file_id, 16) >= 0
    assert listing(tmp_path) == {f"{file_id}.eml", f"{file_id}.json"}
    assert (tmp_path / f"{file_id}.eml").read_bytes() == DATA
    assert result.accepted == ("bob@example.com", "carol@example.org")
    assert transport.read(file_id) == (envelope, DATA)
    assert await transport.aread(file_id) == (envelope, DATA)
    assert transport.path_of(file_id) == tmp_path / f"{file_id}.eml"


async def test_envelope_json_holds_every_field(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    envelope = Envelope(
        "åsa@exämple.se",
        ["bob@example.com", "用户@例子.广告"],
        notify=["failure", "delay"],
        ret="HDRS",
        envid="QQ314159",
        orcpt=True,
    )

    result = await transport.send_raw(envelope, DATA)

    assert result.transport_id is not None
    document = json.loads((tmp_path / f"{result.transport_id}.json").read_text("utf-8"))
    assert document == {
        "reverse_path": "åsa@exämple.se",
        "forward_paths": ["bob@example.com", "用户@例子.广告"],
        "notify": ["DELAY", "FAILURE"],
        "ret": "HDRS",
        "envid": "QQ314159",
        "orcpt": True,
    }
    read_envelope, _ = transport.read(result.transport_id)
    assert read_envelope == envelope


async def test_null_reverse_path_round_trips(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    envelope = Envelope(None, ["bob@example.com"])

    result = await transport.send_raw(envelope, DATA)

    assert result.transport_id is not None
    read_envelope, data = transport.read(result.transport_id)
    assert read_envelope is not None
    assert read_envelope.reverse_path is None
    assert data == DATA


async def test_without_envelope_only_the_message_is_written(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path, envelope=False)

    result = await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), DATA)

    assert listing(tmp_path) == {f"{result.transport_id}.eml"}
    assert result.transport_id is not None
    assert transport.read(result.transport_id) == (None, DATA)


async def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    previous = os.umask(0)
    try:
        result = await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), DATA)
    finally:
        os.umask(previous)

    assert mode(tmp_path / f"{result.transport_id}.eml") == 0o600
    assert mode(tmp_path / f"{result.transport_id}.json") == 0o600


async def test_hundred_concurrent_writes(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    results: dict[int, str] = {}

    async def send(number: int) -> None:
        envelope = Envelope("a@example.com", [f"rcpt{number}@example.com"])
        result = await transport.send_raw(envelope, DATA + f"message {number}\r\n".encode())
        assert result.transport_id is not None
        results[number] = result.transport_id

    async with anyio.create_task_group() as tg:
        for number in range(100):
            tg.start_soon(send, number)

    assert len(set(results.values())) == 100
    # Exactly the final files: no temporary file is left behind.
    assert listing(tmp_path) == {f"{i}.{ext}" for i in results.values() for ext in ("eml", "json")}
    for number, file_id in results.items():
        envelope, data = await transport.aread(file_id)
        assert envelope is not None
        assert [str(a) for a in envelope.forward_paths] == [f"rcpt{number}@example.com"]
        assert data == DATA + f"message {number}\r\n".encode()


async def test_hostile_message_id_cannot_choose_the_path(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (tmp_path / "etc").mkdir()
    transport = FileTransport(outbox)
    message = (
        Message.builder()
        .from_("alice@example.com")
        .to("bob@example.com")
        .subject("hi")
        .message_id("<../../etc/passwd>")
        .text("hello")
        .build()
    )

    result = await transport.send(message)

    assert result.message_id == "<../../etc/passwd>"
    assert result.transport_id is not None
    assert "passwd" not in result.transport_id
    assert listing(outbox) == {f"{result.transport_id}.eml", f"{result.transport_id}.json"}
    assert listing(tmp_path) == {"outbox", "etc"}
    assert listing(tmp_path / "etc") == set()
    _, data = transport.read(result.transport_id)
    assert b"Message-ID: <../../etc/passwd>\r\n" in data


async def test_stdlib_message_with_hostile_message_id(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["To"] = "bob@example.com"
    message["Message-ID"] = "<../x>"
    message.set_content("hello")

    result = await transport.send(message)

    assert result.message_id == "<../x>"
    assert listing(tmp_path) == {f"{result.transport_id}.eml", f"{result.transport_id}.json"}


@pytest.mark.parametrize(
    "hostile",
    [
        "../x",
        "../../etc/passwd",
        "",
        "/etc/passwd",
        "A" * 32,
        "0" * 31,
        "0" * 33,
        "0" * 32 + "/",
        "0" * 32 + "\n",
        "0" * 16 + "/../" + "0" * 12,
        "０" * 32,  # noqa: RUF001 - full-width digits are not hex digits here
    ],
)
def test_read_rejects_hostile_ids(tmp_path: Path, hostile: str) -> None:
    transport = FileTransport(tmp_path)
    with pytest.raises(FileTransportError, match="invalid message id"):
        transport.read(hostile)
    with pytest.raises(FileTransportError, match="invalid message id"):
        transport.path_of(hostile)


def test_read_rejects_non_string_ids(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    with pytest.raises(FileTransportError, match="invalid message id"):
        transport.read(None)  # type: ignore[arg-type]


def test_read_missing_id(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    with pytest.raises(FileTransportError, match="No such file") as info:
        transport.read("0" * 32)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert not info.value.transient


async def test_read_rejects_a_corrupt_envelope(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    result = await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), DATA)
    assert result.transport_id is not None
    json_path = tmp_path / f"{result.transport_id}.json"

    json_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(FileTransportError, match="valid envelope"):
        transport.read(result.transport_id)

    json_path.write_text(json.dumps({"reverse_path": None, "forward_paths": "x"}), "utf-8")
    with pytest.raises(FileTransportError, match="valid envelope"):
        transport.read(result.transport_id)

    json_path.write_text(json.dumps({"reverse_path": None, "forward_paths": []}), "utf-8")
    with pytest.raises(FileTransportError, match="valid envelope"):
        transport.read(result.transport_id)

    bad_address = {"reverse_path": "not an address", "forward_paths": ["b@example.com"]}
    json_path.write_text(json.dumps(bad_address), "utf-8")
    with pytest.raises(FileTransportError, match="valid envelope"):
        transport.read(result.transport_id)


async def test_read_refuses_to_follow_a_symlink(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    file_id = "f" * 32
    (outbox / f"{file_id}.eml").symlink_to(secret)
    transport = FileTransport(outbox)

    with pytest.raises(FileTransportError):
        transport.read(file_id)


async def test_missing_directory(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path / "nowhere")

    with pytest.raises(FileTransportError, match="not an existing directory") as info:
        await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), DATA)
    assert isinstance(info.value, TransportError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
async def test_unwritable_directory_wraps_the_oserror(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    transport = FileTransport(locked)
    try:
        with pytest.raises(FileTransportError, match="Permission denied") as info:
            await transport.send_raw(Envelope("a@example.com", ["b@example.com"]), DATA)
        assert isinstance(info.value.__cause__, PermissionError)
    finally:
        locked.chmod(0o700)
    assert listing(locked) == set()


async def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    # A directory already sitting where the .eml must go makes the final
    # rename fail after the envelope was written: both must be cleaned up.
    transport = FileTransport(tmp_path)
    fixed_id = "e" * 32
    (tmp_path / f"{fixed_id}.eml").mkdir()

    with pytest.raises(FileTransportError, match="cannot write"):
        await anyio.to_thread.run_sync(transport._write, fixed_id, DATA, b"{}")

    assert listing(tmp_path) == {f"{fixed_id}.eml"}


def test_relative_directory_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    transport = FileTransport("outbox")
    assert transport.directory == tmp_path / "outbox"
    assert transport.directory.is_absolute()
    assert "outbox" in repr(transport)


def test_is_a_transport(tmp_path: Path) -> None:
    assert isinstance(FileTransport(tmp_path), Transport)
