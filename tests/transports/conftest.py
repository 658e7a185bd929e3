"""Helpers for the transport tests: executable stand-ins for sendmail."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ScriptFactory = Callable[[str, str], Path]


@pytest.fixture
def make_script(tmp_path: Path) -> ScriptFactory:
    """Write an executable ``#!/usr/bin/env python3`` script into tmp_path.

    The body is dedented; ``OUT`` (a directory for the script's records) is
    defined before it.
    """
    out = tmp_path / "records"
    out.mkdir(exist_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)

    def make(name: str, body: str) -> Path:
        path = bin_dir / name
        header = f"#!/usr/bin/env python3\nimport os, sys\nOUT = {str(out)!r}\n"
        path.write_text(header + textwrap.dedent(body), encoding="utf-8")
        path.chmod(0o755)
        return path

    return make


@dataclass(frozen=True)
class Invocation:
    """What one run of the recording script saw."""

    argv: list[str]
    stdin: bytes


RECORDER_BODY = """
import json
data = sys.stdin.buffer.read()
record = {"argv": sys.argv[1:], "stdin": data.decode("latin-1")}
path = os.path.join(OUT, f"{os.getpid()}.json")
with open(path + ".part", "w", encoding="utf-8") as handle:
    json.dump(record, handle)
os.replace(path + ".part", path)
"""


@pytest.fixture
def invocations(tmp_path: Path) -> Callable[[], list[Invocation]]:
    """A function returning every run the recording script made (any order)."""

    def read() -> list[Invocation]:
        result = []
        for path in sorted((tmp_path / "records").glob("*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            result.append(Invocation(record["argv"], record["stdin"].encode("latin-1")))
        return result

    return read


@pytest.fixture
def recorder(make_script: ScriptFactory) -> Path:
    """A sendmail stand-in that records its arguments and stdin, then exits 0."""
    return make_script("sendmail", RECORDER_BODY)


def _child_pids() -> set[int]:
    me = os.getpid()
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            children.add(int(entry.name))
    return children


@pytest.fixture
def child_pids() -> Callable[[], set[int]]:
    """A function returning this process's children, zombies included.

    Skips the test where there is no Linux-style /proc to read them from.
    """
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to list child processes")
    return _child_pids
