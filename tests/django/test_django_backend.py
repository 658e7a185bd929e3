"""lettre.django.EmailBackend: Django's settings, its API, and where lettre does better."""

from __future__ import annotations

import base64
import logging
import socket
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core import mail
from django.core.mail import EmailMessage, get_connection, mail_admins, send_mail
from django.test import override_settings

import dkim
import lettre.django
from lettre import (
    AddressError,
    BlockingTransport,
    DkimSigner,
    LettreError,
    PoolConfig,
    RecipientsRefused,
    SmtpConnectError,
    TlsError,
    TlsParameters,
)
from lettre.django import EmailBackend, close_transports
from servers import AiosmtpdServer, RecordingHandler, ServerFactory


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_for(server: AiosmtpdServer, **more: object) -> override_settings:
    return override_settings(
        EMAIL_BACKEND="lettre.django.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=server.port,
        **more,
    )


class PeerHandler(RecordingHandler):
    """Also records the client port of each message."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.ports: list[int] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        reply = await super().handle_DATA(server, session, envelope)  # type: ignore[arg-type]
        self.ports.append(int(session.peer[1]))  # type: ignore[attr-defined]
        return reply


# -- Django's settings and API -------------------------------------------------------------


def test_send_mail_uses_the_settings(smtpd: ServerFactory) -> None:
    server = smtpd()
    with settings_for(server):
        assert isinstance(get_connection(), EmailBackend)
        sent = send_mail("Hello", "Body", None, ["to@example.com"])
        admins = mail_admins("Alert", "Text")  # returns None, like Django's

    assert sent == 1
    assert admins is None
    first, second = server.messages
    assert (first.mail_from, first.rcpt_tos) == ("shop@example.com", ["to@example.com"])
    assert second.mail_from == "server@example.com"
    assert second.parsed()["Subject"] == "[Shop] Alert"
    assert sorted(second.rcpt_tos) == ["ada@example.com", "bob@example.com"]


def test_send_messages_counts_what_was_sent(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"nobody@example.com"}))
    backend = EmailBackend(host="127.0.0.1", port=server.port, fail_silently=True)
    messages = [
        EmailMessage("One", "1", "a@example.com", ["x@example.com"]),
        EmailMessage("No recipients", "2", "a@example.com", []),
        EmailMessage("Refused", "3", "a@example.com", ["nobody@example.com"]),
        EmailMessage("Two", "4", "a@example.com", ["y@example.com", "nobody@example.com"]),
    ]

    assert backend.send_messages([]) == 0
    assert backend.send_messages(messages) == 2

    assert sorted(m.rcpt_tos[0] for m in server.messages) == ["x@example.com", "y@example.com"]


def test_failures_raise_typed_errors_unless_fail_silently(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"nobody@example.com"}))
    with settings_for(server):
        with pytest.raises(RecipientsRefused) as refused:
            send_mail("x", "y", "a@example.com", ["nobody@example.com"])
        assert refused.value.code == 550
        assert send_mail("x", "y", "a@example.com", ["nobody@example.com"], fail_silently=True) == 0

    unreachable = EmailBackend(host="127.0.0.1", port=closed_port(), timeout=5)
    with pytest.raises(SmtpConnectError) as failed:
        unreachable.send_messages([EmailMessage("x", "y", "a@example.com", ["b@example.com"])])
    assert failed.value.transient
    quiet = EmailBackend(host="127.0.0.1", port=closed_port(), timeout=5, fail_silently=True)
    assert quiet.send_messages([EmailMessage("x", "y", "a@example.com", ["b@example.com"])]) == 0


def test_a_failure_does_not_stop_the_other_messages(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"nobody@example.com"}))
    backend = EmailBackend(host="127.0.0.1", port=server.port)
    messages = [
        EmailMessage("Refused", "1", "a@example.com", ["nobody@example.com"]),
        EmailMessage("Fine", "2", "a@example.com", ["x@example.com"]),
    ]
    with pytest.raises(RecipientsRefused):
        backend.send_messages(messages)
    assert [m.rcpt_tos for m in server.messages] == [["x@example.com"]]


def test_an_invalid_address_raises_before_anything_is_sent(smtpd: ServerFactory) -> None:
    server = smtpd()
    backend = EmailBackend(host="127.0.0.1", port=server.port, fail_silently=True)
    messages = [
        EmailMessage("Fine", "1", "a@example.com", ["x@example.com"]),
        EmailMessage("Bad", "2", "a@example.com", ["bob@@example.com"]),
    ]
    with pytest.raises(AddressError, match=r"bob@@example\.com"):
        backend.send_messages(messages)
    assert server.messages == []


def test_refused_recipients_are_logged(
    smtpd: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"nobody@example.com"}))
    backend = EmailBackend(host="127.0.0.1", port=server.port)
    message = EmailMessage("Hi", "x", "a@example.com", ["x@example.com", "nobody@example.com"])
    with caplog.at_level(logging.DEBUG, logger="lettre.django"):
        assert backend.send_messages([message]) == 1
        assert backend.send_messages([EmailMessage("Ok", "x", "a@example.com", ["y@x.org"])])

    refused, sent = caplog.records
    assert refused.levelno == logging.WARNING
    assert "refused: nobody@example.com (550 5.1.1 No such user here)" in refused.getMessage()
    assert sent.levelno == logging.DEBUG
    assert "sent to y@x.org (LT0002)" in sent.getMessage()


def test_open_close_and_with(smtpd: ServerFactory) -> None:
    server = smtpd()
    backend = EmailBackend(host="127.0.0.1", port=server.port)
    assert backend.open() is True
    assert backend.open() is False
    shared = backend.connection
    assert isinstance(shared, BlockingTransport)
    backend.close()
    assert backend.connection is None
    with get_connection("lettre.django.EmailBackend", host="127.0.0.1", port=server.port) as c:
        assert c.connection is shared  # one transport per process and settings
        EmailMessage("x", "y", "a@example.com", ["b@example.com"], connection=c).send()
        EmailMessage("x", "y", "a@example.com", ["c@example.com"], connection=c).send()
    assert c.connection is None
    assert not shared.closed  # closing a backend leaves the pool's connections open
    stats = shared.statistics()
    assert (stats.opened_total, stats.idle, stats.messages_sent) == (1, 1, 2)


def test_threads_share_one_pool(smtpd: ServerFactory) -> None:
    handler = PeerHandler()
    server = smtpd(handler=handler)
    threads = 8
    start = threading.Barrier(threads, timeout=10)
    counts: list[int] = []

    def work(number: int) -> None:
        start.wait()
        for index in range(4):
            counts.append(send_mail("x", "y", "a@example.com", [f"u{number}-{index}@x.org"]))

    with settings_for(server, LETTRE_EMAIL_POOL={"max_size": 2}):
        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)

    assert counts == [1] * threads * 4
    assert len(server.messages) == threads * 4
    assert len(set(handler.ports)) <= 2  # Django's backend opens one per send_mail: 32


def test_starttls_and_auth_from_djangos_settings(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True)
    with settings_for(
        server,
        EMAIL_USE_TLS=True,
        EMAIL_HOST_USER="alice",
        EMAIL_HOST_PASSWORD="wonderland",
        EMAIL_TIMEOUT=7,
        LETTRE_EMAIL_OPTIONS={"tls_parameters": tls_params},
    ):
        assert send_mail("x", "y", "a@example.com", ["b@example.com"]) == 1
        backend = get_connection()
        backend.open()
        settings = backend.connection.transport.settings

    (received,) = server.messages
    assert (received.tls, received.login) == (True, "alice")
    assert (settings.timeout, settings.data_timeout) == (7, 7)


def test_implicit_tls_from_email_use_ssl(smtpd: ServerFactory, tls_params: TlsParameters) -> None:
    server = smtpd(tls="implicit")
    with settings_for(
        server, EMAIL_USE_SSL=True, LETTRE_EMAIL_OPTIONS={"tls_parameters": tls_params}
    ):
        assert send_mail("x", "y", "a@example.com", ["b@example.com"]) == 1
    assert server.messages[0].tls


def test_use_tls_and_use_ssl_together_are_refused() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        EmailBackend(use_tls=True, use_ssl=True)


def test_no_password_over_plain_smtp_unless_allowed(smtpd: ServerFactory) -> None:
    server = smtpd(auth=True, auth_require_tls=False)
    with settings_for(server, EMAIL_HOST_USER="alice", EMAIL_HOST_PASSWORD="wonderland"):
        with pytest.raises(TlsError, match="allow_insecure_auth"):
            send_mail("x", "y", "a@example.com", ["b@example.com"])
        with override_settings(LETTRE_EMAIL_OPTIONS={"allow_insecure_auth": True}):
            assert send_mail("x", "y", "a@example.com", ["b@example.com"]) == 1
    assert server.messages[0].login == "alice"


def test_a_url_instead_of_the_host_settings(smtpd: ServerFactory) -> None:
    server = smtpd()
    with override_settings(
        EMAIL_HOST="mail.invalid", LETTRE_EMAIL_URL=f"smtp://127.0.0.1:{server.port}?tls=none"
    ):
        assert send_mail("x", "y", "a@example.com", ["b@example.com"]) == 1
    assert len(server.messages) == 1


def test_pool_settings(smtpd: ServerFactory) -> None:
    server = smtpd()
    backend = EmailBackend(host="127.0.0.1", port=server.port, pool=PoolConfig(max_size=3))
    backend.open()
    assert backend.connection is not None
    assert backend.connection.transport.pool_config.max_size == 3  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="LETTRE_EMAIL_POOL"):
        EmailBackend(host="127.0.0.1", port=server.port, pool=3).open()  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LETTRE_EMAIL_OPTIONS"):
        EmailBackend(options=["x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LETTRE_EMAIL_DKIM"):
        EmailBackend(dkim="key")  # type: ignore[arg-type]


def test_dkim_signs_what_django_built(smtpd: ServerFactory) -> None:
    server = smtpd()
    key = ed25519.Ed25519PrivateKey.generate()
    signer = DkimSigner("example.com", "mail", key)
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(
        key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    with settings_for(server, LETTRE_EMAIL_DKIM=signer):
        send_mail("Signed", "Body\n", "a@example.com", ["b@example.com"])

    content = server.messages[0].content
    assert content.startswith(b"DKIM-Signature:")
    assert dkim.verify(
        content, dnsfunc=lambda name, timeout=5: record if name.startswith(b"mail.") else None
    )


def test_settings_of_another_server_get_another_transport(smtpd: ServerFactory) -> None:
    first, second = smtpd(), smtpd()
    one = EmailBackend(host="127.0.0.1", port=first.port)
    two = EmailBackend(host="127.0.0.1", port=second.port)
    again = EmailBackend(host="127.0.0.1", port=first.port, pool={"max_size": 10})
    same = EmailBackend(host="127.0.0.1", port=first.port, pool={"max_size": 10})
    for backend in (one, two, again, same):
        backend.open()
    assert one.connection is not two.connection
    assert again.connection is same.connection
    assert again.connection is not one.connection
    shared = one.connection
    assert shared is not None
    close_transports()
    assert shared.closed
    one.close()
    one.open()
    assert one.connection is not shared


def test_the_backend_is_found_by_its_dotted_path(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse={"b@example.com"}))
    with settings_for(server):
        assert type(mail.get_connection()) is lettre.django.EmailBackend
        with pytest.raises(LettreError):
            send_mail("x", "y", "a@example.com", ["b@example.com"])
