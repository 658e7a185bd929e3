"""Passwords and tokens never show: not in reprs, not in errors, not in DEBUG logs.

The secrets are searched in every form they could leak in: as text, as the
base64 of the password, of the PLAIN message (``\\0user\\0password``) and of
the XOAUTH2 string, and as the base64 of the secret at each of the three
alignments it can take inside a longer base64 text.
"""

from __future__ import annotations

import base64
import logging
import ssl
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hostile_support import GUARD, HELLO, ServerFactory, envelope, message_bytes

from lettre.errors import AuthenticationError, LettreError, RemoteProtocolError
from lettre.protocol.commands import Auth, AuthResponse
from lettre.protocol.sasl import CramMd5, Login, OAuthBearer, Plain, ScramSha256, XOAuth2
from lettre.smtp.auth import Credentials
from lettre.smtp.client import SmtpClient
from lettre.smtp.settings import SmtpSettings
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.smtp.url import parse_smtp_url, settings_from_url
from lettre.transports.smtp import SmtpTransport
from servers import ALL_MECHANISMS

USER = "alice"
PASSWORD = "Tr0ub4dor&3-very-secret"
WRONG_PASSWORD = "n0t-the-r1ght-one-either"
TOKEN = "ya29.hostile-token-0123456789"
STALE_TOKENS = ("ya29.stale-token-aaaaaaaaaa", "ya29.stale-token-bbbbbbbbbb")


def b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def leak_forms(user: str, secret: str) -> list[str]:
    """Every form in which ``secret`` could leak."""
    forms = [
        secret,
        b64(secret),
        b64(f"\0{user}\0{secret}"),
        b64(f"{user}\0{user}\0{secret}"),
        b64(f"user={user}\x01auth=Bearer {secret}\x01\x01"),
    ]
    raw = secret.encode("utf-8")
    for shift in range(3):
        # Inside any longer base64 text the secret sits at one of three
        # alignments; the groups that hold only secret octets are fixed.
        encoded = b64(b"\0" * shift + raw)
        forms.append(encoded[4:-4])
    return [form for form in forms if len(form) >= 8]


def assert_no_leak(texts: Iterable[str], secrets: Iterable[str], *, user: str = USER) -> None:
    forms = [form for secret in secrets for form in leak_forms(user, secret)]
    for text in texts:
        for form in forms:
            assert form not in text, f"a secret leaked as {form!r} in {text[:200]!r}"


def log_texts(records: Iterable[logging.LogRecord]) -> Iterator[str]:
    for record in records:
        yield record.getMessage()
        yield repr(record.args)
        if record.exc_info is not None and record.exc_info[1] is not None:
            yield "".join(traceback.format_exception(record.exc_info[1]))


def error_texts(error: BaseException) -> list[str]:
    """str, repr and the whole formatted chain of an exception."""
    texts = ["".join(traceback.format_exception(error))]
    current: BaseException | None = error
    while current is not None:
        texts += [str(current), repr(current), repr(getattr(current, "args", ()))]
        current = current.__cause__ or current.__context__
    return texts


@pytest.mark.parametrize(
    "leak",
    [
        PASSWORD,
        f"C: AUTH PLAIN {b64(f'{chr(0)}{USER}{chr(0)}{PASSWORD}')}",
        f"C: {b64(PASSWORD)}",
        f"C: AUTH XOAUTH2 {b64(f'user={USER}{chr(1)}auth=Bearer {PASSWORD}{chr(1)}{chr(1)}')}",
        *(b64("x" * n + PASSWORD + "tail") for n in range(3)),
    ],
)
def test_the_leak_detector_finds_every_form(leak: str) -> None:
    # The checks below would be worthless if the detector missed a form.
    with pytest.raises(AssertionError):
        assert_no_leak([f"before {leak} after"], [PASSWORD])


# --------------------------------------------------------------------------- reprs


def test_reprs_of_settings_and_credentials_hide_the_password() -> None:
    credentials = Credentials(USER, PASSWORD)
    settings = SmtpSettings(
        "smtp.example.com",
        tls=TlsMode.STARTTLS,
        credentials=credentials,
        tls_parameters=TlsParameters(
            client_cert="client.pem", client_key="key.pem", client_key_password=PASSWORD
        ),
    )
    client = SmtpClient(settings, ssl_context=ssl.create_default_context())
    texts = [
        repr(credentials),
        str(credentials),
        repr(settings),
        str(settings),
        repr(settings.tls_parameters),
        repr(client),
        str(client),
    ]
    assert USER in repr(credentials)
    assert_no_leak(texts, [PASSWORD])


def test_key_password_errors_hide_the_password(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from lettre.errors import TlsError
    from servers import TlsMaterial

    material = TlsMaterial.create()
    key = serialization.load_pem_private_key(material.cert.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    cert_file = tmp_path / "client.pem"
    key_file = tmp_path / "client.key"
    cert_file.write_bytes(material.cert.cert_chain_pems[0].bytes())
    key_file.write_bytes(encrypted)
    good = TlsParameters(client_cert=cert_file, client_key=key_file, client_key_password=PASSWORD)
    good.create_context()  # the right password loads the key
    bad = TlsParameters(
        client_cert=cert_file, client_key=key_file, client_key_password=WRONG_PASSWORD
    )
    with pytest.raises(TlsError) as info:
        bad.create_context()
    assert_no_leak([*error_texts(info.value), repr(good), repr(bad)], [PASSWORD, WRONG_PASSWORD])


def test_reprs_of_transports_hide_secrets() -> None:
    async def provider() -> str:
        return TOKEN

    transports = [
        SmtpTransport("smtp.example.com", credentials=Credentials(USER, PASSWORD)),
        SmtpTransport.relay("smtp.example.com", credentials=Credentials(USER, PASSWORD)),
        SmtpTransport.starttls_relay(
            "smtp.example.com", credentials=Credentials(USER), token_provider=provider
        ),
        SmtpTransport.from_url(f"smtps://{USER}:{PASSWORD}@smtp.example.com"),
        SmtpTransport.from_url(
            f"smtp://{USER}:{PASSWORD.replace('&', '%26')}@smtp.example.com:2525?tls=starttls"
        ),
    ]
    texts = [text for t in transports for text in (repr(t), str(t), repr(t.settings))]
    assert_no_leak(texts, [PASSWORD, TOKEN])


def test_url_parsing_results_hide_the_password() -> None:
    url = f"smtp://{USER}:{PASSWORD.replace('&', '%26')}@smtp.example.com:587"
    kwargs = parse_smtp_url(url)
    assert kwargs["credentials"].password == PASSWORD
    assert_no_leak([repr(kwargs), str(kwargs), repr(settings_from_url(url))], [PASSWORD])


@pytest.mark.parametrize(
    "url",
    [
        f"smtp://{USER}:{PASSWORD}@smtp.example.com:99999",
        f"smtp://{USER}:{PASSWORD}@smtp.example.com:port",
        f"smtp://{USER}:{PASSWORD}@[::1",
        f"smtp://{USER}:{PASSWORD}@smtp.example.com?tls=bogus",
        f"smtp://{USER}:{PASSWORD}@smtp.example.com?unknown=1",
        f"smtp://{USER}:{PASSWORD}@smtp.example.com?timeout=-1",
        f"smtp://{USER}:{PASSWORD}@smtp.example.com/path",
        f"smtp://{USER}:{PASSWORD}@smtp.example.com#frag",
        f"ftp://{USER}:{PASSWORD}@smtp.example.com",
        f"smtp://{USER}:{PASSWORD}@",
        f"smtps://{USER}:{PASSWORD}@smtp.example.com?tls=none",
    ],
)
def test_url_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        SmtpTransport.from_url(url)
    assert_no_leak(error_texts(info.value), [PASSWORD])


@pytest.mark.parametrize("cut", ["#", "/", "?"])
def test_url_errors_never_show_a_password_with_delimiters(cut: str) -> None:
    url = f"smtp://{USER}:{PASSWORD}{cut}x@smtp.example.com"
    with pytest.raises(ValueError) as info:
        parse_smtp_url(url)
    assert_no_leak([str(info.value), repr(info.value)], [PASSWORD])


def test_protocol_objects_hide_credentials() -> None:
    plain = Plain(USER, PASSWORD)
    mechanisms = [
        plain,
        Login(USER, PASSWORD),
        CramMd5(USER, PASSWORD),
        ScramSha256(USER, PASSWORD),
        XOAuth2(USER, TOKEN),
        OAuthBearer(USER, TOKEN, host="mx.example", port=587),
    ]
    texts = [repr(m) for m in mechanisms] + [str(m) for m in mechanisms]
    initial = plain.initial_response()
    commands = [Auth("PLAIN", initial), AuthResponse(PASSWORD.encode())]
    texts += [repr(c) for c in commands] + [str(c) for c in commands]
    assert_no_leak(texts, [PASSWORD, TOKEN])


def test_ses_credentials_are_hidden() -> None:
    pytest.importorskip("botocore")
    from lettre.transports.ses import AwsCredentials, SesTransport

    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    session = "FwoGZXIvYXdzEXAMPLE-session-token-value"
    credentials = AwsCredentials("AKIAIOSFODNN7EXAMPLE", secret, session)
    transport = SesTransport(region="eu-west-1", credentials=credentials)
    texts = [repr(credentials), str(credentials), repr(transport), str(transport)]
    assert "AKIAIOSFODNN7EXAMPLE" in repr(credentials)
    assert_no_leak(texts, [secret, session], user="AKIAIOSFODNN7EXAMPLE")


# --------------------------------------------------------------------------- logs


def auth_server(smtpd: ServerFactory) -> Any:
    return smtpd(
        tls="starttls",
        auth=True,
        users={USER: PASSWORD},
        tokens={USER: TOKEN},
        mechanisms=ALL_MECHANISMS,
    )


def transport_for_auth(server: Any, tls_params: TlsParameters, **kwargs: Any) -> SmtpTransport:
    return SmtpTransport(
        server.host,
        server.port,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        hello_name=HELLO,
        timeout=5.0,
        **kwargs,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"])
async def test_debug_log_of_a_successful_login_hides_the_password(
    mechanism: str,
    smtpd: ServerFactory,
    tls_params: TlsParameters,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lettre")
    server = auth_server(smtpd)
    transport = transport_for_auth(
        server, tls_params, credentials=Credentials(USER, PASSWORD), auth_mechanisms=[mechanism]
    )
    with anyio.fail_after(GUARD):
        async with transport:
            await transport.send_raw(envelope(), message_bytes())
    assert server.messages[0].login == USER
    transcript = [r.getMessage() for r in caplog.records]
    # The transcript is there (so the check below is not vacuous)...
    assert any(line.startswith(f"C: AUTH {mechanism}") for line in transcript)
    assert any(line.startswith("S: 235") for line in transcript)
    # ...and the password is not, in any form.
    assert_no_leak(log_texts(caplog.records), [PASSWORD])


@pytest.mark.anyio
@pytest.mark.parametrize("chunking", [False, True])
async def test_debug_log_shows_message_content_only_by_size(
    chunking: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from scripted import SmtpScript, hostile_server

    caplog.set_level(logging.DEBUG, logger="lettre")
    secret_body = "Confidential-payroll-figures-4242\r\n"
    extensions = ("8BITMIME", "CHUNKING") if chunking else ("8BITMIME",)
    script = SmtpScript(extensions=extensions)
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = SmtpTransport(
                server.host, server.port, tls=TlsMode.NONE, hello_name=HELLO, timeout=5.0
            )
            async with transport:
                await transport.send_raw(envelope(), message_bytes(body=secret_body))
    assert script.messages[0].via == ("BDAT" if chunking else "DATA")
    transcript = [r.getMessage() for r in caplog.records]
    assert any("bytes of message content" in line for line in transcript)
    assert_no_leak(log_texts(caplog.records), ["Confidential-payroll-figures-4242"])


@pytest.mark.anyio
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"])
async def test_refused_login_hides_the_password_in_logs_and_errors(
    mechanism: str,
    smtpd: ServerFactory,
    tls_params: TlsParameters,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lettre")
    server = auth_server(smtpd)
    transport = transport_for_auth(
        server,
        tls_params,
        credentials=Credentials(USER, WRONG_PASSWORD),
        auth_mechanisms=[mechanism],
    )
    with anyio.fail_after(GUARD):
        async with transport:
            with pytest.raises(AuthenticationError) as info:
                await transport.send_raw(envelope(), message_bytes())
    assert info.value.code == 535
    assert any(r.getMessage().startswith("S: 535") for r in caplog.records)
    texts = [*log_texts(caplog.records), *error_texts(info.value), repr(transport)]
    assert_no_leak(texts, [WRONG_PASSWORD, PASSWORD])


@pytest.mark.anyio
@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
async def test_xoauth2_tokens_never_show(
    mechanism: str,
    smtpd: ServerFactory,
    tls_params: TlsParameters,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lettre")
    server = auth_server(smtpd)
    tokens = iter([STALE_TOKENS[0], TOKEN])

    async def provider() -> str:
        return next(tokens)

    transport = transport_for_auth(
        server,
        tls_params,
        credentials=Credentials(USER),
        token_provider=provider,
        auth_mechanisms=[mechanism],
    )
    with anyio.fail_after(GUARD):
        async with transport:
            await transport.send_raw(envelope(), message_bytes())
    # The stale token was refused, a fresh one asked for and accepted.
    assert server.token_attempts == [STALE_TOKENS[0], TOKEN]
    assert any(r.getMessage().startswith(f"C: AUTH {mechanism}") for r in caplog.records)
    assert_no_leak(log_texts(caplog.records), [TOKEN, STALE_TOKENS[0]])


@pytest.mark.anyio
@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
async def test_refused_xoauth2_hides_tokens_in_errors(
    mechanism: str,
    smtpd: ServerFactory,
    tls_params: TlsParameters,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lettre")
    server = auth_server(smtpd)
    tokens = iter(STALE_TOKENS)

    async def provider() -> str:
        return next(tokens)

    transport = transport_for_auth(
        server,
        tls_params,
        credentials=Credentials(USER),
        token_provider=provider,
        auth_mechanisms=[mechanism],
    )
    with anyio.fail_after(GUARD):
        async with transport:
            with pytest.raises(AuthenticationError) as info:
                await transport.send_raw(envelope(), message_bytes())
    assert server.token_attempts == list(STALE_TOKENS)
    texts = [*log_texts(caplog.records), *error_texts(info.value)]
    assert_no_leak(texts, STALE_TOKENS)
    assert isinstance(info.value, LettreError)


@pytest.mark.anyio
async def test_scram_impostor_gets_no_password_and_no_fallback(
    smtpd: ServerFactory, tls_params: TlsParameters, caplog: pytest.LogCaptureFixture
) -> None:
    # A server that cannot produce the SCRAM server signature (it does not
    # know the password) must not get a second chance through PLAIN.
    caplog.set_level(logging.DEBUG, logger="lettre")
    server = smtpd(
        tls="starttls",
        auth=True,
        users={USER: PASSWORD},
        mechanisms=ALL_MECHANISMS,
        scram_bad_signature=True,
    )
    transport = transport_for_auth(server, tls_params, credentials=Credentials(USER, PASSWORD))
    with anyio.fail_after(GUARD):
        async with transport:
            with pytest.raises(RemoteProtocolError, match="signature is wrong") as info:
                await transport.send_raw(envelope(), message_bytes())
    transcript = [r.getMessage() for r in caplog.records]
    assert [line for line in transcript if line.startswith("C: AUTH")] == [
        "C: AUTH SCRAM-SHA-256 <redacted>"
    ]
    assert "C: *" in transcript
    assert server.messages == []
    texts = [*log_texts(caplog.records), *error_texts(info.value)]
    assert_no_leak(texts, [PASSWORD])


# --------------------------------------------------------------------------- command line


@pytest.mark.anyio
@pytest.mark.parametrize("case", ["accepted", "refused", "unreachable", "bad-url", "env"])
async def test_command_line_never_prints_the_password(case: str, anyio_backend_name: str) -> None:
    import os
    import sys

    from scripted import SmtpScript, hostile_server

    script = SmtpScript({"AUTH": "535 5.7.8 Authentication failed"} if case == "refused" else {})
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            port = server.port
            if case == "unreachable":
                listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
                port = listener.extra(anyio.abc.SocketAttribute.local_port)
                await listener.aclose()  # nobody listens there now
            secret = PASSWORD.replace("&", "%26")
            if case == "bad-url":
                secret = PASSWORD + "#frag"
            query = "tls=none&allow_insecure_auth=true&auth=PLAIN"
            env = dict(os.environ)
            if case == "env":
                url = f"smtp://{USER}@127.0.0.1:{port}?{query}"
                env["LETTRE_SMTP_PASSWORD"] = PASSWORD
            else:
                url = f"smtp://{USER}:{secret}@127.0.0.1:{port}?{query}"
            command = [
                sys.executable,
                "-m",
                "lettre",
                "send",
                "--url",
                url,
                "--from",
                "sender@example.com",
                "--to",
                "rcpt@example.com",
                "--subject",
                "cli",
                "--text",
                "hello",
                "--hello-name",
                HELLO,
                "--timeout",
                "5",
                "--backend",
                anyio_backend_name,
                "-v",
            ]
            done = await anyio.run_process(command, check=False, env=env)
    output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    if case in ("accepted", "env"):
        assert done.returncode == 0, output
        assert "AUTH PLAIN" in output  # the verbose transcript is there
        assert len(script.messages) == 1
    else:
        assert done.returncode != 0, output
    assert_no_leak([output], [PASSWORD])
