"""Runs every ```python example in docs/ so the documentation cannot rot.

All python blocks of one page run in order in one namespace, which starts
empty: every name an example uses is defined on its page. A block preceded by
the line ``<!-- no-run -->`` is shown but not run (examples that need the
internet or real credentials). A page holding the line
``<!-- docs-test: own process -->`` runs in an interpreter of its own, as one
script (its examples set up something once per process, like Django's
settings). Examples that talk SMTP read the port of their server from the
``SMTP_PORT`` environment variable (1025 by default, where Mailpit and MailHog
listen); here it is a plain SMTP server on 127.0.0.1 that accepts every
message.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
NO_RUN = "<!-- no-run -->"
OWN_PROCESS = "<!-- docs-test: own process -->"


def _blocks(text: str) -> list[str]:
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before != NO_RUN:
            blocks.append(match.group(1))
    return blocks


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if _blocks(p.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def smtp_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_fence_detection() -> None:
    text = "a\n```python\nx = 1\n```\n<!-- no-run -->\n```python\ny = 2\n```\n"
    assert _blocks(text) == ["x = 1\n"]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_examples_run(
    page: Path, smtp_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMTP_PORT", str(smtp_port))
    text = page.read_text(encoding="utf-8")
    if OWN_PROCESS in text:
        done = subprocess.run(
            [sys.executable, "-c", "\n".join(_blocks(text))],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for index, block in enumerate(_blocks(text)):
        code = compile(block, f"{page.relative_to(DOCS)}[block {index}]", "exec", dont_inherit=True)
        exec(code, namespace)
    assert os.getcwd() == str(tmp_path)


def test_examples_that_talk_smtp_say_where_the_port_comes_from() -> None:
    """A page that uses SMTP_PORT defines it, in its first block that uses it."""
    definition = 'SMTP_PORT = int(os.environ.get("SMTP_PORT", "1025"))'
    for page in _pages():
        for block in _blocks(page.read_text(encoding="utf-8")):
            if "SMTP_PORT" in block:
                assert definition in block, page.relative_to(DOCS)
                break
