"""The core is stdlib only: it imports and works with anyio unavailable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import lettre.protocol

SCRIPT = textwrap.dedent(
    """
    import sys

    sys.modules["anyio"] = None  # any "import anyio" now raises ImportError
    try:
        import anyio  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("anyio is still importable")

    import lettre.protocol
    from lettre.protocol import ClientConnection, Ehlo, NEED_DATA

    conn = ClientConnection()
    conn.receive_data(b"220 mx.example ESMTP\\r\\n")
    assert conn.next_event().code == 220
    assert conn.send(Ehlo("client.example")) == b"EHLO client.example\\r\\n"
    assert conn.next_event() is NEED_DATA
    loaded = sorted(
        name for name in sys.modules
        if name.split(".")[0] in {"anyio", "trio", "asyncio", "socket", "ssl", "selectors"}
        and sys.modules[name] is not None
    )
    print(",".join(loaded))
    """
)


def test_protocol_imports_without_anyio() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Nothing that does I/O was loaded on the way.
    assert result.stdout.strip() == ""


def test_every_public_module_declares_all() -> None:
    import importlib

    for name in ("commands", "connection", "dotstuff", "extensions", "replies", "sasl", "state"):
        module = importlib.import_module(f"lettre.protocol.{name}")
        for public in module.__all__:
            assert hasattr(module, public), (name, public)
    for public in lettre.protocol.__all__:
        assert hasattr(lettre.protocol, public)


def test_documented_state_table_matches_the_code() -> None:
    import re
    from pathlib import Path

    from lettre.protocol.state import TRANSITIONS, ClientState

    page = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
    text = page.read_text(encoding="utf-8")
    table = text.split("<!-- state-table:start -->")[1].split("<!-- state-table:end -->")[0]
    documented: dict[ClientState, dict[str, ClientState]] = {}
    for row in table.strip().splitlines()[2:]:
        state, sent, other = (cell.strip() for cell in row.strip("|").split("|"))
        moves = {}
        for item in re.findall(r"`([^`]+)` → (\w+)", f"{sent} {other}"):
            moves[item[0]] = ClientState[item[1]]
        documented[ClientState[state]] = moves
    assert documented == {state: dict(row) for state, row in TRANSITIONS.items()}
