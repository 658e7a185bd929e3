"""The README's example must stay valid: it compiles and imports real names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import lettre

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_readme_examples_compile_and_import_public_names() -> None:
    blocks = _python_blocks()
    assert blocks
    for block in blocks:
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "lettre":
                for alias in node.names:
                    assert alias.name in lettre.__all__, alias.name
                    assert getattr(lettre, alias.name) is not None


def test_readme_quick_start_names_the_make_targets() -> None:
    text = README.read_text(encoding="utf-8")
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    start = text.index("## Quick start")
    commands = re.findall(r"^make (\w+)", text[start:], flags=re.MULTILINE)
    assert commands[:2] == ["demo", "test"]
    for target in commands[:2]:
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), target
