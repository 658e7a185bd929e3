"""TLS modes against real servers: aiosmtpd with trustme certificates, and scripted servers."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from anyio.streams.tls import TLSAttribute
from smtp_support import HELLO, connected, envelope, message_bytes, settings_for

from lettre.errors import RemoteProtocolError, SmtpReplyError, TlsError
from lettre.smtp.client import SmtpClient
from lettre.smtp.tls import TlsMode, TlsParameters
from servers import MiniSmtp, ScriptedConnection, ServerFactory, TlsMaterial, scripted_server

pytestmark = pytest.mark.anyio


async def test_no_tls(smtpd: ServerFactory) -> None:
    server = smtpd()
    client = await connected(server, tls=TlsMode.NONE)
    try:
        assert not client.is_encrypted
        assert client.tls_version is None
        result = await client.send(envelope(), message_bytes())
        assert result.all_accepted
    finally:
        await client.aclose()
    assert len(server.messages) == 1
    assert not server.messages[0].tls


async def test_starttls_required(smtpd: ServerFactory, tls_params: TlsParameters) -> None:
    server = smtpd(tls="starttls")
    client = await connected(server, tls=TlsMode.STARTTLS, tls_parameters=tls_params)
    try:
        assert client.is_encrypted
        assert client.tls_version in ("TLSv1.2", "TLSv1.3")
        # The server's STARTTLS keyword is gone from the EHLO after the upgrade.
        assert client.capabilities is not None
        assert not client.capabilities.starttls
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert server.messages[0].tls


async def test_opportunistic_upgrades_when_offered(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls")
    client = await connected(server, tls=TlsMode.OPPORTUNISTIC, tls_parameters=tls_params)
    try:
        assert client.is_encrypted
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert server.messages[0].tls


async def test_opportunistic_stays_plain_when_not_offered(smtpd: ServerFactory) -> None:
    server = smtpd()
    client = await connected(server, tls=TlsMode.OPPORTUNISTIC)
    try:
        assert not client.is_encrypted
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert not server.messages[0].tls


async def test_implicit_tls(smtpd: ServerFactory, tls_params: TlsParameters) -> None:
    server = smtpd(tls="implicit")
    client = await connected(server, tls=TlsMode.IMPLICIT, tls_parameters=tls_params)
    try:
        assert client.is_encrypted
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert server.messages[0].tls


@pytest.mark.parametrize("mode", [TlsMode.STARTTLS, TlsMode.IMPLICIT])
async def test_untrusted_certificate_is_rejected(smtpd: ServerFactory, mode: TlsMode) -> None:
    server = smtpd(tls="starttls" if mode is TlsMode.STARTTLS else "implicit")
    client = SmtpClient(settings_for(server, tls=mode))  # system trust store only
    with pytest.raises(TlsError, match="certificate") as info:
        await client.connect()
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert not info.value.transient
    assert not client.is_usable
    assert server.messages == []


async def test_wrong_host_name_is_rejected(smtpd: ServerFactory, tls_params: TlsParameters) -> None:
    server = smtpd(tls="starttls")
    params = TlsParameters(ca_data=tls_params.ca_data, server_name="mx.elsewhere.test")
    client = SmtpClient(settings_for(server, tls=TlsMode.STARTTLS, tls_parameters=params))
    with pytest.raises(TlsError) as info:
        await client.connect()
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


async def test_certificate_for_another_name(
    smtpd: ServerFactory, tls_material: TlsMaterial
) -> None:
    other = TlsMaterial(
        ca=tls_material.ca,
        cert=tls_material.ca.issue_cert("mx.other.test"),
        ca_pem=tls_material.ca_pem,
    )
    server = smtpd(tls="implicit", tls_material=other)
    trusting = TlsParameters(ca_data=other.ca_pem)
    client = SmtpClient(settings_for(server, tls=TlsMode.IMPLICIT, tls_parameters=trusting))
    with pytest.raises(TlsError, match="certificate"):
        await client.connect()
    # Naming the server explicitly makes the same certificate acceptable.
    named = TlsParameters(ca_data=other.ca_pem, server_name="mx.other.test")
    client = await connected(server, tls=TlsMode.IMPLICIT, tls_parameters=named)
    await client.aclose()
    # And skipping the host name check (but not the chain) too.
    lax = TlsParameters(ca_data=other.ca_pem, dangerously_skip_hostname_check=True)
    client = await connected(server, tls=TlsMode.IMPLICIT, tls_parameters=lax)
    await client.aclose()


async def test_dangerously_skip_verification(smtpd: ServerFactory) -> None:
    server = smtpd(tls="starttls")
    params = TlsParameters(dangerously_skip_verification=True)
    client = await connected(server, tls=TlsMode.STARTTLS, tls_parameters=params)
    try:
        assert client.is_encrypted
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()


async def test_minimum_version_is_enforced(tls_material: TlsMaterial) -> None:
    context = tls_material.server_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    mini = MiniSmtp(tls_context=context)
    async with scripted_server(mini) as server:
        params = TlsParameters(ca_data=tls_material.ca_pem, min_version=ssl.TLSVersion.TLSv1_3)
        client = SmtpClient(settings_for(server, tls=TlsMode.STARTTLS, tls_parameters=params))
        with pytest.raises(TlsError, match="TLS handshake"):
            await client.connect()
        # TLS 1.2 is accepted by default.
        ok = await connected(
            server, tls=TlsMode.STARTTLS, tls_parameters=TlsParameters(ca_data=tls_material.ca_pem)
        )
        assert ok.tls_version == "TLSv1.2"
        await ok.aclose()


async def test_starttls_required_but_not_offered_fails_closed() -> None:
    mini = MiniSmtp()  # no TLS context: no STARTTLS keyword
    async with scripted_server(mini) as server:
        client = SmtpClient(settings_for(server, tls=TlsMode.STARTTLS))
        with pytest.raises(TlsError, match="does not offer STARTTLS"):
            await client.connect()
        assert not client.is_usable
    assert mini.verbs() == ["EHLO"]
    assert mini.transactions == []


async def test_starttls_refused_fails_closed(tls_material: TlsMaterial) -> None:
    mini = MiniSmtp(
        tls_context=tls_material.server_context(),
        replies={"STARTTLS": "454 4.7.0 TLS not available due to temporary reason"},
    )
    async with scripted_server(mini) as server:
        params = TlsParameters(ca_data=tls_material.ca_pem)
        client = SmtpClient(
            settings_for(
                server,
                tls=TlsMode.STARTTLS,
                tls_parameters=params,
                credentials=None,
            )
        )
        with pytest.raises(TlsError, match="refused STARTTLS") as info:
            await client.connect()
    assert info.value.transient  # a 454 is temporary
    assert mini.verbs() == ["EHLO", "STARTTLS"]


async def test_opportunistic_continues_when_starttls_is_refused(tls_material: TlsMaterial) -> None:
    mini = MiniSmtp(
        tls_context=tls_material.server_context(),
        replies={"STARTTLS": "454 4.7.0 TLS not available"},
    )
    async with scripted_server(mini) as server:
        client = await connected(
            server,
            tls=TlsMode.OPPORTUNISTIC,
            tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
        )
        try:
            assert not client.is_encrypted
            await client.send(envelope(), message_bytes())
        finally:
            await client.aclose()
    assert mini.verbs()[:3] == ["EHLO", "STARTTLS", "MAIL"]
    assert mini.transactions[0].completed


async def test_starttls_with_scripted_server_re_ehlos(tls_material: TlsMaterial) -> None:
    mini = MiniSmtp(tls_context=tls_material.server_context())
    async with scripted_server(mini) as server:
        client = await connected(
            server,
            tls=TlsMode.STARTTLS,
            tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
        )
        try:
            await client.send(envelope(), message_bytes())
        finally:
            await client.aclose()
    assert mini.verbs()[:3] == ["EHLO", "STARTTLS", "EHLO"]
    assert mini.commands[0].line == f"EHLO {HELLO}"


async def test_bytes_injected_after_starttls_reply_are_refused(tls_material: TlsMaterial) -> None:
    async def script(conn: ScriptedConnection) -> None:
        await conn.reply("220 mx ESMTP")
        await conn.readline()
        await conn.reply("250-mx", "250 STARTTLS")
        await conn.readline()
        # The 220 and a forged reply in one write: a man in the middle's trick.
        await conn.send(b"220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n")
        await conn.wait_closed()

    async with scripted_server(script) as server:
        client = SmtpClient(
            settings_for(
                server,
                tls=TlsMode.STARTTLS,
                tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
            )
        )
        with pytest.raises(RemoteProtocolError, match="injection"):
            await client.connect()
        assert not client.is_usable


async def test_client_certificate(tls_material: TlsMaterial, tmp_path: Path) -> None:
    context = tls_material.server_context()
    context.verify_mode = ssl.CERT_REQUIRED
    tls_material.ca.configure_trust(context)
    client_cert = tls_material.ca.issue_cert("client@lettre.test")
    pem = tmp_path / "client.pem"
    pem.write_bytes(
        b"".join(blob.bytes() for blob in client_cert.cert_chain_pems)
        + client_cert.private_key_pem.bytes()
    )
    peers: list[object] = []

    async def script(conn: ScriptedConnection) -> None:
        peers.append(conn.stream.extra(TLSAttribute.peer_certificate))
        await MiniSmtp()(conn)

    async with scripted_server(script, tls_context=context) as server:
        params = TlsParameters(ca_data=tls_material.ca_pem, client_cert=pem)
        client = await connected(server, tls=TlsMode.IMPLICIT, tls_parameters=params)
        try:
            await client.send(envelope(), message_bytes())
        finally:
            await client.aclose()
    assert peers
    peer = peers[0]
    assert isinstance(peer, dict)
    assert "client@lettre.test" in repr(peer.get("subjectAltName"))


async def test_no_helo_fallback_when_starttls_is_required() -> None:
    mini = MiniSmtp(replies={"EHLO": "502 5.5.2 Command not recognized"})
    async with scripted_server(mini) as server:
        client = SmtpClient(settings_for(server, tls=TlsMode.STARTTLS))
        with pytest.raises(SmtpReplyError) as info:
            await client.connect()
    assert info.value.command == "EHLO"
    assert mini.verbs() == ["EHLO"]
