"""docs/django.md, run as the script it is (in a new interpreter) against aiosmtpd."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from servers import ServerFactory

PAGE = Path(__file__).resolve().parents[2] / "docs" / "django.md"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def runnable_code() -> str:
    text = PAGE.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before != "<!-- no-run -->":
            found.append(match.group(1))
    return "\n".join(found)


def test_the_django_page_sends_what_it_says(smtpd: ServerFactory, tmp_path: Path) -> None:
    server = smtpd()
    done = subprocess.run(
        [sys.executable, "-c", runnable_code()],
        env={**os.environ, "SMTP_PORT": str(server.port)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    by_subject = {str(m.parsed()["Subject"]): m for m in server.messages}
    welcome = by_subject["Welcome to the shop"]
    assert welcome.mail_from == "shop@example.com"
    assert welcome.rcpt_tos == ["asa@example.se"]
    assert welcome.parsed()["To"] == "Åsa Ek <asa@example.se>"
    invoice = by_subject["Invoice 2024-017"]
    assert sorted(invoice.rcpt_tos) == ["ada@example.com", "archive@example.com"]
    parsed = invoice.parsed()
    assert parsed["Bcc"] is None
    assert parsed["X-Invoice"] == "2024-017"
    assert parsed["Reply-To"] == "billing@example.com"
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["invoice-2024-017.csv"]
    assert sorted(
        m.rcpt_tos[0] for m in server.messages if m.parsed()["Subject"] == "Spring sale"
    ) == [
        "bob@example.com",
        "carol@example.com",
    ]
    assert by_subject["[Django] Nightly import done"].rcpt_tos == ["ops@example.com"]
    assert by_subject["Welcome"].rcpt_tos == ["ada@example.com"]
    assert len(server.messages) == 6
