"""Load the code of a recipe page from docs/ and run it, as the docs test does."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs"
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_NO_RUN = "<!-- no-run -->"


def blocks(page: str) -> list[str]:
    """The runnable python blocks of ``docs/<page>``, in order."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before != _NO_RUN:
            found.append(match.group(1))
    return found


def run_page(page: str, port: int, *, upto: int | None = None) -> dict[str, Any]:
    """Run the page's blocks (the first ``upto`` of them) in one namespace.

    Like the docs test, the ``SMTP_PORT`` environment variable the examples
    read is ``port`` while they run. The namespace is returned so tests can
    drive the objects the page defined.
    """
    namespace: dict[str, Any] = {"__name__": f"recipe_{Path(page).stem}"}
    saved = os.environ.get("SMTP_PORT")
    os.environ["SMTP_PORT"] = str(port)
    try:
        for index, block in enumerate(blocks(page)[:upto]):
            code = compile(block, f"{page}[block {index}]", "exec", dont_inherit=True)
            exec(code, namespace)
    finally:
        if saved is None:
            del os.environ["SMTP_PORT"]
        else:
            os.environ["SMTP_PORT"] = saved
    return namespace
