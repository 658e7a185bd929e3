"""The README's examples must stay valid: they import real names, and they run.

Every python block runs, in order, in one namespace, against a real aiosmtpd
server whose port is in the ``SMTP_PORT`` environment variable (the examples
read it, defaulting to Mailpit's 1025). A block after a ``<!-- no-run ... -->``
comment (the first example needs a real provider) is only compiled.
"""

from __future__ import annotations

import ast
import re
import threading
from pathlib import Path

import pytest

import lettre
from lettre import BlockingTransport, Message, SmtpTransport
from servers import ServerFactory

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, bool]]:
    """Every python block, and whether it runs (no ``<!-- no-run`` comment right above it)."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        above = text[: match.start()].rstrip("\n").split("\n")
        comments = []
        while above and above[-1].startswith("<!--"):
            comments.append(above.pop())
        runs = not any(line.startswith("<!-- no-run") for line in comments)
        found.append((match.group(1), runs))
    return found


def test_readme_examples_compile_and_import_public_names() -> None:
    blocks = _blocks()
    assert blocks
    for block, _ in blocks:
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "lettre":
                for alias in node.names:
                    assert alias.name in lettre.__all__, alias.name
                    assert getattr(lettre, alias.name) is not None


def test_readme_examples_run(
    smtpd: ServerFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = smtpd()
    monkeypatch.setenv("SMTP_PORT", str(server.port))
    runnable = [block for block, runs in _blocks() if runs]
    assert len(runnable) >= 3
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for index, block in enumerate(runnable):
        code = compile(block, f"README.md[block {index}]", "exec", dont_inherit=True)
        exec(code, namespace)
    # The local-server example, the script and the long-running application's two threads.
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [
        "ada@example.com",
        "alan@example.com",
        "dev@example.com",
        "ops@example.com",
    ]
    out = capsys.readouterr().out
    assert "('dev@example.com',)" in out
    assert "('ada@example.com',)" in out


def test_readme_blocking_transport_shares_one_pool_between_threads(
    smtpd: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The long-running application's pattern: many threads, one transport, few connections."""
    server = smtpd()
    monkeypatch.setenv("SMTP_PORT", str(server.port))
    source = next(block for block, _ in _blocks() if "BlockingTransport(" in block)
    assert "mailer.close()" in source
    transport = SmtpTransport.local(server.port)
    mailer = BlockingTransport(transport)
    try:

        def worker(n: int) -> None:
            for k in range(5):
                message = (
                    Message.builder()
                    .from_("app@example.com")
                    .to(f"user{n}-{k}@example.com")
                    .text("hi")
                    .build()
                )
                assert mailer.send(message).all_accepted

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive()
        stats = mailer.statistics()
    finally:
        mailer.close()
    assert len(server.messages) == 40
    assert stats.messages_sent == 40
    assert stats.opened_total <= transport.pool_config.max_size
    assert transport.closed


def test_readme_quick_start_names_the_make_targets() -> None:
    text = README.read_text(encoding="utf-8")
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    start = text.index("## Quick start")
    commands = re.findall(r"^make (\w+)", text[start:], flags=re.MULTILINE)
    assert commands[:2] == ["demo", "test"]
    for target in commands[:2]:
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), target


def test_readme_quick_start_is_exactly_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start") : text.index("\n## ", text.index("## Quick start"))]
    commands = re.findall(r"^```sh\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert len(commands) == 1
    assert [line.split("#")[0].strip() for line in commands[0].splitlines()] == [
        "make demo",
        "make test",
    ]
