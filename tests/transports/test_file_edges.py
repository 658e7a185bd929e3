"""FileTransport.read() on envelope files that are not what it wrote: fields of the wrong type,
a file too large, a directory in the file's place."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lettre.errors import FileTransportError
from lettre.transports.file import FileTransport

FILE_ID = "f" * 32
DATA = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\nbody\r\n"


def _stored(tmp_path: Path) -> tuple[FileTransport, Path]:
    (tmp_path / f"{FILE_ID}.eml").write_bytes(DATA)
    return FileTransport(tmp_path), tmp_path / f"{FILE_ID}.json"


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (["b@example.com"], "the envelope must be a JSON object"),
        ({"reverse_path": 7, "forward_paths": ["b@example.com"]}, "'reverse_path' must be a"),
        (
            {"reverse_path": None, "forward_paths": ["b@example.com"], "notify": "SUCCESS"},
            "'notify' must be a list of strings or null",
        ),
        (
            {"reverse_path": None, "forward_paths": ["b@example.com"], "notify": [1]},
            "'notify' must be a list of strings or null",
        ),
        (
            {"reverse_path": None, "forward_paths": ["b@example.com"], "orcpt": "yes"},
            "'orcpt' must be a boolean",
        ),
    ],
)
def test_envelope_fields_of_the_wrong_type(tmp_path: Path, document: object, problem: str) -> None:
    transport, json_path = _stored(tmp_path)
    json_path.write_text(json.dumps(document), "utf-8")
    with pytest.raises(FileTransportError, match="does not hold a valid envelope") as info:
        transport.read(FILE_ID)
    assert problem in str(info.value)
    assert repr(os.fspath(json_path)) in str(info.value)


def test_an_envelope_file_too_large(tmp_path: Path) -> None:
    transport, json_path = _stored(tmp_path)
    with open(json_path, "wb") as handle:
        handle.truncate(16 * 1024 * 1024 + 1)  # sparse: nothing written
    with pytest.raises(FileTransportError, match=r"is larger than 16777216 bytes"):
        transport.read(FILE_ID)


def test_a_directory_in_the_envelope_files_place(tmp_path: Path) -> None:
    transport, json_path = _stored(tmp_path)
    json_path.mkdir()
    with pytest.raises(FileTransportError) as info:
        transport.read(FILE_ID)
    assert f"{FILE_ID}.json" in str(info.value)
    assert "read" in str(info.value)
