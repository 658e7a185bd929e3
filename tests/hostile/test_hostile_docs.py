"""docs/security.md names the test behind each guarantee: the names must be real, and complete."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE.parent.parent / "docs" / "security.md"
REFERENCE = re.compile(r"`(test_hostile_\w+\.py)::(test_\w+)`")


def defined_tests() -> dict[str, set[str]]:
    tests: dict[str, set[str]] = {}
    for path in sorted(HERE.glob("test_hostile_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        tests[path.name] = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
        }
    return tests


def test_every_reference_in_the_security_page_exists() -> None:
    tests = defined_tests()
    references = REFERENCE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(references) > 50
    missing = [f"{f}::{t}" for f, t in references if t not in tests.get(f, set())]
    assert missing == []


def test_every_hostile_test_is_named_in_the_security_page() -> None:
    named = set(REFERENCE.findall(PAGE.read_text(encoding="utf-8")))
    unnamed = [
        f"{name}::{test}"
        for name, found in defined_tests().items()
        if name != Path(__file__).name
        for test in sorted(found)
        if (name, test) not in named
    ]
    assert unnamed == []
