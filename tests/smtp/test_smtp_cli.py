"""``python -m lettre demo`` and ``python -m lettre send``, run as real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lettre.__main__ import main
from servers import RecordingHandler, ServerFactory, TlsMaterial

TIMEOUT = 120
_BASE = ["send", "--url", "smtp://127.0.0.1", "--from", "a@e.com", "--to", "b@e.com"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LETTRE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lettre", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=full_env,
        check=False,
    )


def test_demo() -> None:
    proc = _run("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "C: STARTTLS" in out
    assert "S: 220" in out
    assert "C: AUTH PLAIN <redacted>" in out
    assert "S: 235" in out
    assert "queued as DEMO0001" in out
    assert "authenticated as 'demo', over TLS: yes" in out
    assert 'attachment "weather.csv"' in out
    assert "multipart/alternative" in out
    assert "Subject: Hello from lettre ✉" in out
    assert "lettre-demo-password" not in out + proc.stderr


def test_demo_on_trio_with_certificates_from_cryptography() -> None:
    code = (
        "import sys; sys.modules['trustme'] = None\n"
        "from lettre.__main__ import main\n"
        "sys.exit(main(['demo', '--backend', 'trio']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "certificate made with cryptography" in proc.stdout
    assert "on trio" in proc.stdout
    assert "queued as DEMO0001" in proc.stdout


def test_send_with_attachment(smtpd: ServerFactory, tmp_path: Path) -> None:
    server = smtpd()
    attachment = tmp_path / "report.txt"
    attachment.write_text("numbers: 1 2 3\n")
    proc = _run(
        "send",
        "--url",
        f"smtp://127.0.0.1:{server.port}?tls=none",
        "--from",
        "Sender <sender@example.com>",
        "--to",
        "a@example.com",
        "--to",
        "b@example.com",
        "--subject",
        "CLI test",
        "--text",
        "Hello from the command line",
        "--attach",
        str(attachment),
        "--header",
        "X-Test: yes",
        "--hello-name",
        "cli.lettre.test",
    )
    assert proc.returncode == 0, proc.stderr
    assert "accepted (2): a@example.com, b@example.com" in proc.stdout
    assert "queue id: LT0001" in proc.stdout
    (received,) = server.messages
    assert received.rcpt_tos == ["a@example.com", "b@example.com"]
    parsed = received.parsed()
    assert parsed["Subject"] == "CLI test"
    assert parsed["X-Test"] == "yes"
    filenames = [part.get_filename() for part in parsed.walk() if part.get_filename()]
    assert filenames == ["report.txt"]


def test_send_with_password_from_the_environment(
    smtpd: ServerFactory, tls_material: TlsMaterial, tmp_path: Path
) -> None:
    server = smtpd(tls="starttls", auth=True, auth_required=True)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(tls_material.ca_pem)
    proc = _run(
        "send",
        "--url",
        f"smtp://alice@127.0.0.1:{server.port}",
        "--ca-file",
        str(ca_file),
        "--from",
        "alice@example.com",
        "--to",
        "rcpt@example.com",
        "--verbose",
        env={"LETTRE_SMTP_PASSWORD": "wonderland"},
    )
    assert proc.returncode == 0, proc.stderr
    assert server.messages[0].login == "alice"
    assert server.messages[0].tls
    # --verbose shows the conversation on stderr, without the secret.
    assert "C: AUTH PLAIN <redacted>" in proc.stderr
    assert "wonderland" not in proc.stdout + proc.stderr


def test_send_reports_refused_recipients(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse=["nobody@example.com"]))
    proc = _run(
        "send",
        "--url",
        f"smtp://127.0.0.1:{server.port}?tls=none",
        "--from",
        "sender@example.com",
        "--to",
        "a@example.com",
        "--to",
        "nobody@example.com",
    )
    assert proc.returncode == 3, proc.stderr
    assert "refused: nobody@example.com: 550 No such user here" in proc.stdout


def test_send_failure_exit_status(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _run(
        "send",
        "--url",
        f"smtp://127.0.0.1:{port}?tls=none&timeout=5",
        "--from",
        "sender@example.com",
        "--to",
        "a@example.com",
    )
    assert proc.returncode == 1
    assert "SmtpConnectError" in proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["send", "--from", "a@example.com", "--to", "b@example.com"], "--url is required"),
        (
            ["send", "--url", "smtp://alice@127.0.0.1", "--from", "a@e.com", "--to", "b@e.com"],
            "LETTRE_SMTP_PASSWORD",
        ),
        (
            ["send", "--url", "ftp://127.0.0.1", "--from", "a@e.com", "--to", "b@e.com"],
            "scheme",
        ),
        (
            [*_BASE, "--attach", "/nonexistent/file"],
            "no such file",
        ),
        (
            ["send", "--url", "smtp://127.0.0.1", "--from", "not an address", "--to", "b@e.com"],
            "lettre:",
        ),
        (
            ["send", "--url", "smtp://127.0.0.1", "--from", "a@e.com", "--to", "bob@@x"],
            "lettre: --to: 'bob@@x' has more than one @\n",
        ),
        (
            ["send", "--url", "smtp://127.0.0.1", "--from", "a@", "--to", "b@e.com"],
            "lettre: --from: 'a@' has an empty domain",
        ),
        ([*_BASE, "--cc", "ok@e.com, nope"], "lettre: --cc: 'nope' is not an email address"),
        ([*_BASE, "--bcc", "Bob <b@@e.com>"], "lettre: --bcc: 'b@@e.com' has more than one @"),
        ([*_BASE, "--reply-to", "r@e..com"], "lettre: --reply-to: 'r@e..com' has an invalid"),
        ([*_BASE, "--subject", "a\nb"], "lettre: --subject: the subject contains"),
        ([*_BASE, "--header", "Bad Name: x"], "lettre: --header: "),
        (
            ["send", "--url", "smtp://127.0.0.1:2525:25", "--from", "a@e.com", "--to", "b@e.com"],
            "lettre: --url: ",
        ),
    ],
)
def test_usage_errors(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LETTRE_SMTP_URL", raising=False)
    monkeypatch.delenv("LETTRE_SMTP_PASSWORD", raising=False)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert "lettre" in capsys.readouterr().out
    assert main(["send"]) == 2


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_send_on_each_backend(smtpd: ServerFactory, backend: str) -> None:
    server = smtpd()
    proc = _run(
        "send",
        "--url",
        f"smtp://127.0.0.1:{server.port}?tls=none",
        "--from",
        "sender@example.com",
        "--to",
        "a@example.com",
        "--backend",
        backend,
    )
    assert proc.returncode == 0, proc.stderr
    # The name comes from the event loop the send ran on, not from the option.
    assert f"(none) on {backend} ..." in proc.stdout
    assert [m.rcpt_tos for m in server.messages] == [["a@example.com"]]


def test_demo_on_uvloop() -> None:
    proc = _run("demo", "--backend", "uvloop")
    assert proc.returncode == 0, proc.stderr
    assert "sending a multipart message on uvloop ..." in proc.stdout
    assert "queued as DEMO0001" in proc.stdout


@pytest.mark.parametrize(("backend", "extra"), [("uvloop", "uvloop"), ("trio", "trio")])
@pytest.mark.parametrize("command", ["send", "demo"])
def test_a_backend_that_is_not_installed_is_a_usage_error(
    backend: str,
    extra: str,
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, backend, None)
    argv = [*_BASE, "--backend", backend] if command == "send" else ["demo", "--backend", backend]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--backend {backend} needs {backend}" in err
    assert f"pip install 'lettre[{extra}]'" in err


@pytest.mark.parametrize(
    ("missing", "needed"),
    [(["aiosmtpd"], "aiosmtpd"), (["trustme", "cryptography"], "trustme")],
)
def test_the_demo_names_its_extra_when_a_package_is_missing(
    missing: list[str], needed: str
) -> None:
    code = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in missing)
        + "from lettre.__main__ import main\nsys.exit(main(['demo']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert f"the demo needs {needed}" in proc.stderr
    assert "pip install 'lettre[demo]'" in proc.stderr


def test_the_dev_extra_holds_what_the_demo_and_the_backends_need() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is new in Python 3.11")
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    dev = set(extras["dev"])
    for name in ("demo", "uvloop", "trio"):
        assert set(extras[name]) <= dev, name
