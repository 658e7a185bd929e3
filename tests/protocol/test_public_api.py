"""The public surface: __all__ everywhere, and the documented state table."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import lettre.protocol
from lettre.protocol.state import TRANSITIONS, ClientState


def test_every_public_module_declares_all() -> None:
    for name in (
        "commands",
        "connection",
        "dotstuff",
        "extensions",
        "replies",
        "sasl",
        "state",
        "transactions",
    ):
        module = importlib.import_module(f"lettre.protocol.{name}")
        for public in module.__all__:
            assert hasattr(module, public), (name, public)
    for public in lettre.protocol.__all__:
        assert hasattr(lettre.protocol, public)


def test_documented_state_table_matches_the_code() -> None:
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
