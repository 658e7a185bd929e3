"""``python -m lettre`` in the situations the main CLI tests leave out: text from a file, HTML
only, a server without a queue id, a certificate it is told not to check, bad settings and
headers, an unreadable DKIM key, a missing extra, and an interrupt. Each runs as a real
subprocess (coverage measures it there too)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from servers import RecordingHandler, ServerFactory

TIMEOUT = 120


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LETTRE_")}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lettre", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
        check=False,
    )


def _send(port: int, *more: str, tls: str = "none") -> subprocess.CompletedProcess[str]:
    return _run(
        "send",
        "--url",
        f"smtp://127.0.0.1:{port}?tls={tls}",
        "--from",
        "sender@example.com",
        "--to",
        "a@example.com",
        *more,
    )


def test_text_from_a_file_and_no_queue_id(smtpd: ServerFactory, tmp_path: Path) -> None:
    server = smtpd(handler=RecordingHandler(data_reply="250 Ok"))
    text = tmp_path / "body.txt"
    text.write_text("Grüße aus der Datei.\n", encoding="utf-8")
    proc = _send(server.port, "--text-file", str(text))
    assert proc.returncode == 0, proc.stderr
    assert "server reply: 250 Ok" in proc.stdout
    assert "queue id:" not in proc.stdout
    assert server.messages[0].parsed().get_content() == "Grüße aus der Datei.\r\n"


def test_html_only(smtpd: ServerFactory) -> None:
    server = smtpd()
    proc = _send(server.port, "--html", "<p>Hello</p>")
    assert proc.returncode == 0, proc.stderr
    parsed = server.messages[0].parsed()
    assert parsed.get_content_type() == "text/html"
    assert parsed.get_content() == "<p>Hello</p>\r\n"


def test_a_certificate_it_is_told_not_to_check(smtpd: ServerFactory) -> None:
    server = smtpd(tls="starttls")
    # The test CA is not trusted by the child: without the option the send fails...
    refused = _send(server.port, tls="starttls")
    assert refused.returncode == 1
    assert "TlsError" in refused.stderr or "certificate" in refused.stderr
    proc = _send(server.port, "--insecure-skip-verify", tls="starttls")
    assert proc.returncode == 0, proc.stderr
    assert server.messages[0].tls


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (["--text-file", "/nonexistent/body.txt"], "lettre: --text-file: cannot read "),
        (["--header", "no colon here"], "lettre: --header needs 'Name: value', not 'no colon"),
        (["--header", ": value"], "lettre: --header needs 'Name: value'"),
        (["--timeout", "0"], "lettre: timeout must be"),
    ],
)
def test_usage_errors(more: list[str], message: str) -> None:
    proc = _send(1, *more)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_text_file_that_is_not_utf8(tmp_path: Path) -> None:
    text = tmp_path / "latin1.txt"
    text.write_bytes("Grüße\n".encode("latin-1"))
    proc = _send(1, "--text-file", str(text))
    assert proc.returncode == 2
    assert f"lettre: --text-file: cannot read {text}: 'utf-8' codec" in proc.stderr


def test_check_domain_with_a_dkim_key_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "dkim.pem"
    proc = _run("check-domain", "s.test", "--dkim-selector", "sel", "--dkim-key", str(missing))
    assert proc.returncode == 2
    assert f"lettre: cannot read --dkim-key {str(missing)!r}: No such file" in proc.stderr


def test_check_domain_without_the_direct_extra() -> None:
    code = (
        "import sys; sys.modules['dns'] = None\n"
        "from lettre.__main__ import main\n"
        "sys.exit(main(['check-domain', 's.test']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
        check=False,
    )
    assert proc.returncode == 2
    assert "check-domain needs the direct extra: pip install 'lettre[direct]'" in proc.stderr


def test_an_interrupt_ends_with_status_130() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lettre",
                "send",
                "--url",
                f"smtp://127.0.0.1:{port}?tls=none&timeout=60",
                "--from",
                "sender@example.com",
                "--to",
                "a@example.com",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        try:
            listener.settimeout(60)
            connection, _ = listener.accept()  # the client waits for the greeting now
            with connection:
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert proc.returncode == 130, err
