"""TLS handshakes that go wrong in ways the other TLS tests leave out.

A server that answers the ClientHello in plaintext after its 220 to
STARTTLS, a server name the ssl module refuses, a deadline that passes
during a handshake the server never answers: each is a typed error that
names the server and the step.
"""

from __future__ import annotations

import anyio
import pytest
from smtp_support import settings_for

from lettre.errors import SmtpTimeoutError, TlsError
from lettre.smtp.client import SmtpClient
from lettre.smtp.tls import TlsMode, TlsParameters
from servers import ScriptedConnection, ServerFactory, scripted_server

GUARD = 20


async def _until_starttls(conn: ScriptedConnection) -> None:
    await conn.reply("220 mx.lettre.test ESMTP")
    assert (await conn.readline()).startswith(b"EHLO ")
    await conn.reply("250-mx.lettre.test", "250 STARTTLS")
    assert await conn.readline() == b"STARTTLS\r\n"
    await conn.reply("220 go ahead")


@pytest.mark.anyio
async def test_plaintext_answer_to_the_client_hello_after_starttls(
    tls_params: TlsParameters,
) -> None:
    async def script(conn: ScriptedConnection) -> None:
        await _until_starttls(conn)
        await conn.read_exactly(5)  # the ClientHello's record header
        await conn.send("500 5.5.1 what is this\r\n")
        await conn.wait_closed()

    with anyio.fail_after(GUARD):
        async with scripted_server(script) as server:
            client = SmtpClient(
                settings_for(server, tls=TlsMode.STARTTLS, tls_parameters=tls_params)
            )
            with pytest.raises(TlsError, match=r"failed \(after STARTTLS\)") as caught:
                await client.connect()
            assert not client.is_usable
    # The hint about implicit-TLS ports is for connecting only.
    assert "does not speak TLS from the first byte" not in str(caught.value)
    assert f"127.0.0.1:{server.port}" in str(caught.value)


@pytest.mark.parametrize("name", [".lettre.test", "a" * 64 + ".example"])
def test_a_server_name_tls_cannot_check_is_refused_when_configured(name: str) -> None:
    # Refused before any connection: the ssl module would refuse it only at the handshake.
    with pytest.raises(
        ValueError, match=r"is not a host name TLS can check .*'mail\.example\.com'"
    ):
        TlsParameters(server_name=name)
    assert TlsParameters(server_name="mail.example.com").server_name == "mail.example.com"
    assert TlsParameters(server_name="::1").server_name == "::1"


@pytest.mark.anyio
async def test_the_deadline_passing_during_the_starttls_handshake(
    tls_params: TlsParameters,
) -> None:
    async def script(conn: ScriptedConnection) -> None:
        await _until_starttls(conn)
        await conn.wait_closed()  # the ClientHello is never answered

    with anyio.fail_after(GUARD):
        async with scripted_server(script) as server:
            client = SmtpClient(
                settings_for(server, tls=TlsMode.STARTTLS, tls_parameters=tls_params, timeout=30.0)
            )
            with pytest.raises(SmtpTimeoutError, match="deadline") as caught:
                await client.connect(deadline=anyio.current_time() + 0.5)
            assert not client.is_usable
    assert "TLS handshake" in str(caught.value)


@pytest.mark.anyio
async def test_the_deadline_passing_during_the_implicit_tls_handshake(
    tls_params: TlsParameters,
) -> None:
    async def script(conn: ScriptedConnection) -> None:
        await conn.wait_closed()  # accepted, the ClientHello never answered

    with anyio.fail_after(GUARD):
        async with scripted_server(script) as server:
            client = SmtpClient(
                settings_for(
                    server,
                    tls=TlsMode.IMPLICIT,
                    tls_parameters=tls_params,
                    timeout=30.0,
                    connect_timeout=30.0,
                )
            )
            with pytest.raises(
                SmtpTimeoutError,
                match=r"the deadline passed while connecting to 127\.0\.0\.1:\d+$",
            ):
                await client.connect(deadline=anyio.current_time() + 0.5)
            assert not client.is_usable


@pytest.mark.anyio
async def test_a_plain_connection_has_no_tls_version() -> None:
    async def script(conn: ScriptedConnection) -> None:
        await conn.reply("220 mx.lettre.test ESMTP")
        await conn.readline()
        await conn.reply("250 mx.lettre.test")
        assert await conn.readline() == b"QUIT\r\n"
        await conn.reply("221 bye")
        await conn.wait_closed()

    with anyio.fail_after(GUARD):
        async with scripted_server(script) as server:
            client = SmtpClient(settings_for(server))
            await client.connect()
            assert client.is_usable
            assert not client.is_encrypted
            assert client.tls_version is None
            stream = client.stream
            assert stream is not None
            assert stream.ssl_object is None
            await client.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", [TlsMode.STARTTLS, TlsMode.IMPLICIT])
async def test_the_tls_session_is_shown_after_the_handshake(
    mode: TlsMode, smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls=mode.value)
    client = SmtpClient(settings_for(server, tls=mode, tls_parameters=tls_params))
    with anyio.fail_after(GUARD):
        await client.connect()
        try:
            stream = client.stream
            assert stream is not None
            ssl_object = stream.ssl_object
            assert ssl_object is not None
            assert ssl_object.version() == client.tls_version
            assert client.tls_version in ("TLSv1.2", "TLSv1.3")
            assert ssl_object.getpeercert() is not None  # the server's, verified
        finally:
            await client.aclose()
