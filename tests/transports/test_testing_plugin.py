"""The ``mail_outbox`` pytest plugin, exercised the way applications use it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from lettre.transports.memory import MemoryTransport

APP_TESTS = """
import anyio
import pytest

from lettre.message.message import Message
from lettre.errors import SmtpTimeoutError
from lettre.transports.memory import MemoryTransport


async def send_welcome(transport, address):
    message = (
        Message.builder()
        .from_("app@example.com")
        .to(address)
        .subject("Welcome")
        .text("Hello!")
        .build()
    )
    try:
        await transport.send(message)
    except SmtpTimeoutError:
        return "retry later"
    return "sent"


def test_is_a_fresh_memory_transport(mail_outbox):
    assert isinstance(mail_outbox, MemoryTransport)
    assert mail_outbox.outbox == []
    assert anyio.run(send_welcome, mail_outbox, "bob@example.com") == "sent"
    assert mail_outbox.outbox[0].recipients == ("bob@example.com",)


def test_next_test_starts_empty(mail_outbox):
    assert mail_outbox.outbox == []


@pytest.mark.anyio
async def test_in_an_async_test(mail_outbox):
    assert await send_welcome(mail_outbox, "carol@example.org") == "sent"
    (sent,) = mail_outbox.outbox
    assert sent.parsed()["Subject"] == "Welcome"


@pytest.mark.anyio
async def test_error_path(mail_outbox):
    mail_outbox.fail_with(SmtpTimeoutError("no answer"))
    assert await send_welcome(mail_outbox, "bob@example.com") == "retry later"
    assert mail_outbox.outbox == []


def test_failures_do_not_leak_between_tests(mail_outbox):
    assert anyio.run(send_welcome, mail_outbox, "bob@example.com") == "sent"
"""


def test_entry_point_is_registered() -> None:
    (entry,) = [
        ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "lettre"
    ]
    assert entry.value == "lettre.testing"


def test_plugin_is_loaded_in_this_session(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("lettre")
    assert plugin is not None
    assert plugin.__name__ == "lettre.testing"


def test_mail_outbox_in_an_application_test_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=APP_TESTS)
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(passed=5)


def test_fixture_is_listed_with_its_docstring(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:asyncio")

    result.stdout.fnmatch_lines(["*mail_outbox*", "*fresh*MemoryTransport*"])


def test_mail_outbox_fixture_here(mail_outbox: MemoryTransport) -> None:
    assert isinstance(mail_outbox, MemoryTransport)
    assert mail_outbox.outbox == []


def test_import_lettre_does_not_import_pytest() -> None:
    code = (
        "import sys\n"
        "import lettre, lettre.transports.memory, lettre.transports.file, "
        "lettre.transports.sendmail\n"
        "assert 'pytest' not in sys.modules, 'pytest was imported'\n"
        "assert 'lettre.testing' not in sys.modules\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
