"""lettre.django.EmailBackend in the situations the main tests leave out: settings holding lists,
sets and lists of signers, client certificate files that cannot be loaded, a shared transport
closed under an open backend, every message failing, a fork while the registry is locked."""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.mail import EmailMessage, send_mail
from django.test import override_settings

import dkim
from lettre import DkimSigner, LettreError, RecipientsRefused, TlsError
from lettre.django import EmailBackend, close_transports
from lettre.hooks import Hook, SendStarted
from servers import RecordingHandler, ServerFactory


def _message(to: str = "b@example.com", subject: str = "x") -> EmailMessage:
    return EmailMessage(subject, "y", "a@example.com", [to])


def test_options_holding_lists_and_sets_share_a_transport(smtpd: ServerFactory) -> None:
    server = smtpd()
    seen: list[tuple[str, ...]] = []

    class Recorder(Hook):
        def send_started(self, event: SendStarted) -> None:
            seen.append(tuple(str(r) for r in event.envelope.forward_paths))
            return None

    options = {"hooks": [Recorder()], "auth_mechanisms": {"PLAIN"}}
    with override_settings(
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=server.port, LETTRE_EMAIL_OPTIONS=options
    ):
        one, two = EmailBackend(), EmailBackend()
        one.open()
        two.open()
        # A list counts by content and an unhashable set by identity: the same settings object
        # gives the same transport.
        assert one.connection is two.connection
        assert one.send_messages([_message()]) == 1
    assert len(server.messages) == 1
    assert seen == [("b@example.com",)]


def test_a_list_of_signers_signs_in_order(smtpd: ServerFactory) -> None:
    server = smtpd()
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(2)]
    signers = [DkimSigner("example.com", f"s{n}", key) for n, key in enumerate(keys)]
    records = {
        f"s{n}.".encode(): b"v=DKIM1; k=ed25519; p="
        + base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        for n, key in enumerate(keys)
    }
    backend = EmailBackend(host="127.0.0.1", port=server.port, dkim=signers)
    assert backend.send_messages([_message()]) == 1
    content = server.messages[0].content
    # The last signer's signature comes first.
    assert content.startswith(b"DKIM-Signature:")
    assert content.count(b"DKIM-Signature:") == 2
    assert content.index(b"s=s1") < content.index(b"s=s0")

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return next((r for prefix, r in records.items() if name.startswith(prefix)), None)

    assert dkim.verify(content, dnsfunc=dns)


def test_client_certificate_files_that_cannot_be_loaded(
    smtpd: ServerFactory, tmp_path: Path
) -> None:
    missing = str(tmp_path / "client.pem")
    backend = EmailBackend(host="127.0.0.1", port=25, ssl_certfile=missing, use_tls=True)
    # The message names the file.
    with pytest.raises(TlsError, match=f"loading client_cert {re.escape(repr(missing))}: No such"):
        backend.open()
    assert backend.connection is None
    quiet = EmailBackend(
        host="127.0.0.1", port=25, ssl_keyfile=missing, use_tls=True, fail_silently=True
    )
    assert quiet.open() is None
    assert quiet.send_messages([_message()]) == 0


def test_messages_without_recipients_are_skipped(smtpd: ServerFactory) -> None:
    server = smtpd()
    backend = EmailBackend(host="127.0.0.1", port=server.port)
    assert backend.send_messages([EmailMessage("x", "y", "a@example.com", [])]) == 0
    assert backend.connection is None  # nothing to send: nothing opened
    assert server.messages == []


def test_a_shared_transport_closed_under_an_open_backend(
    smtpd: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtpd()
    backend = EmailBackend(host="127.0.0.1", port=server.port)
    quiet = EmailBackend(host="127.0.0.1", port=server.port, fail_silently=True)
    backend.open()
    quiet.open()
    close_transports()  # another thread's shutdown, say
    with caplog.at_level(logging.WARNING, logger="lettre.django"):
        with pytest.raises(LettreError, match="closed"):
            backend.send_messages([_message()])
        assert quiet.send_messages([_message(), _message("c@example.com")]) == 0
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "1 message(s) were not sent",
        "2 message(s) were not sent",
    ]
    assert server.messages == []
    # Opened again, a backend gets a new transport.
    backend.close()
    assert backend.send_messages([_message()]) == 1


def test_the_first_of_several_failures_is_raised(
    smtpd: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"no1@example.com", "no2@example.com"}))
    backend = EmailBackend(host="127.0.0.1", port=server.port)
    with (
        caplog.at_level(logging.WARNING, logger="lettre.django"),
        pytest.raises(RecipientsRefused, match=r"no1@example\.com"),
    ):
        backend.send_messages(
            [_message("no1@example.com", "first"), _message("no2@example.com", "second")]
        )
    assert len([r for r in caplog.records if "was not sent" in r.getMessage()]) == 2
    assert server.messages == []


def test_a_name_and_address_pair_as_sender(smtpd: ServerFactory) -> None:
    server = smtpd()
    with override_settings(EMAIL_HOST="127.0.0.1", EMAIL_PORT=server.port):
        assert send_mail("x", "y", ("Shop", "shop@example.com"), ["b@example.com"]) == 1  # type: ignore[arg-type]
    assert server.messages[0].mail_from == "shop@example.com"


_FORK_CHILD = textwrap.dedent(
    """
    import os, sys
    from django.conf import settings
    settings.configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=25)
    import lettre.django as backend

    # A thread of the parent holds the registry's lock at the fork.
    backend._transports_lock.acquire()
    pid = os.fork()
    if pid == 0:
        # Without a fresh lock in the child this would wait for ever.
        if not backend._transports_lock.acquire(timeout=5):
            print("child: the lock is held", flush=True)
            os._exit(3)
        backend._transports_lock.release()
        backend.close_transports()
        print("child sent nothing, closed nothing", flush=True)
    else:
        _, status = os.waitpid(pid, 0)
        backend._transports_lock.release()
        print("parent", os.waitstatus_to_exitcode(status), flush=True)
    """
)


def test_a_forked_child_gets_its_own_registry_lock() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FORK_CHILD], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["child sent nothing, closed nothing", "parent 0"]
