"""TLS against real servers with trustme certificates: bad certificates and old TLS fail closed.

Every bad certificate (untrusted, expired, issued for another host) and every
server stuck at TLS 1.1 or older must fail with :class:`TlsError`, for implicit
TLS and for STARTTLS, before anything else is said; credentials never cross a
connection that is not encrypted unless the caller explicitly allows it.
"""

from __future__ import annotations

import datetime
import ssl
import warnings
from typing import Any

import anyio
import pytest
import trustme
from hostile_support import GUARD, HELLO, ServerFactory, envelope, message_bytes, transport_for
from scripted import SmtpScript, hostile_server, say

from lettre.errors import ExtensionNotSupported, TlsError
from lettre.smtp.auth import Credentials
from lettre.smtp.client import SmtpClient
from lettre.smtp.settings import SmtpSettings
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.transports.smtp import SmtpTransport
from servers import AiosmtpdServer, TlsMaterial

pytestmark = pytest.mark.anyio

MODES = [TlsMode.IMPLICIT, TlsMode.STARTTLS]
PASSWORD = "tls-hostile-password"


def material(cert_of: str = "good", *, ca: trustme.CA | None = None) -> TlsMaterial:
    """Certificates: "good", "expired", "not-yet-valid" or "wrong-host" (all from one CA)."""
    ca = ca or trustme.CA()
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert_of == "expired":
        cert = ca.issue_cert(
            "127.0.0.1",
            "localhost",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )
    elif cert_of == "not-yet-valid":
        cert = ca.issue_cert(
            "127.0.0.1",
            "localhost",
            not_before=now + datetime.timedelta(days=1),
            not_after=now + datetime.timedelta(days=30),
        )
    elif cert_of == "wrong-host":
        cert = ca.issue_cert("mail.other.example")
    else:
        cert = ca.issue_cert("127.0.0.1", "localhost")
    return TlsMaterial(ca=ca, cert=cert, ca_pem=ca.cert_pem.bytes().decode("ascii"))


class OldTlsMaterial(TlsMaterial):
    """A server that speaks TLS 1.0 or 1.1 and nothing newer."""

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(context)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        return context


def start(smtpd: ServerFactory, mode: TlsMode, tls: TlsMaterial, **kwargs: Any) -> AiosmtpdServer:
    kind = "implicit" if mode is TlsMode.IMPLICIT else "starttls"
    if mode is TlsMode.IMPLICIT:
        kwargs.setdefault("auth_require_tls", False)
    return smtpd(tls=kind, tls_material=tls, **kwargs)


async def send_fails_with_tls_error(
    server: AiosmtpdServer, mode: TlsMode, params: TlsParameters | None, **kwargs: Any
) -> TlsError:
    transport = transport_for(server, tls=mode, tls_parameters=params, timeout=5.0, **kwargs)
    with anyio.fail_after(GUARD):
        async with transport:
            with pytest.raises(TlsError) as info:
                await transport.send_raw(envelope(), message_bytes())
    assert server.messages == []
    return info.value


# --------------------------------------------------------------------------- certificates


@pytest.mark.parametrize("mode", MODES)
async def test_valid_certificate_is_accepted(mode: TlsMode, smtpd: ServerFactory) -> None:
    # The control for the failures below: the same set-up with a good certificate.
    tls = material()
    server = start(smtpd, mode, tls)
    transport = transport_for(
        server, tls=mode, tls_parameters=TlsParameters(ca_data=tls.ca_pem), timeout=5.0
    )
    with anyio.fail_after(GUARD):
        async with transport:
            await transport.send_raw(envelope(), message_bytes())
    assert server.messages[0].tls


@pytest.mark.parametrize("mode", MODES)
async def test_untrusted_certificate_fails(mode: TlsMode, smtpd: ServerFactory) -> None:
    server = start(smtpd, mode, material())
    # The system trust store does not know the test CA...
    error = await send_fails_with_tls_error(server, mode, None)
    assert "certificate" in str(error)
    # ...and neither does another CA.
    other = trustme.CA().cert_pem.bytes().decode("ascii")
    await send_fails_with_tls_error(
        server, mode, TlsParameters(ca_data=other, use_system_trust=False)
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("validity", ["expired", "not-yet-valid"])
async def test_certificate_outside_its_validity_fails(
    mode: TlsMode, validity: str, smtpd: ServerFactory
) -> None:
    tls = material(validity)
    server = start(smtpd, mode, tls)
    error = await send_fails_with_tls_error(server, mode, TlsParameters(ca_data=tls.ca_pem))
    word = "expired" if validity == "expired" else "not yet valid"
    assert word in str(error).lower()


@pytest.mark.parametrize("mode", MODES)
async def test_certificate_for_another_host_fails(mode: TlsMode, smtpd: ServerFactory) -> None:
    tls = material("wrong-host")
    server = start(smtpd, mode, tls)
    error = await send_fails_with_tls_error(server, mode, TlsParameters(ca_data=tls.ca_pem))
    assert "127.0.0.1" in str(error)
    # The same certificate passes when the expected name is the one it names.
    params = TlsParameters(ca_data=tls.ca_pem, server_name="mail.other.example")
    transport = transport_for(server, tls=mode, tls_parameters=params, timeout=5.0)
    with anyio.fail_after(GUARD):
        async with transport:
            await transport.send_raw(envelope(), message_bytes())
    assert len(server.messages) == 1


@pytest.mark.parametrize("cert_of", ["untrusted", "expired", "wrong-host"])
async def test_bad_certificate_after_starttls_sends_nothing_more(cert_of: str) -> None:
    # A scripted server records every line: after STARTTLS fails, the client
    # says nothing (no AUTH, no MAIL), in the clear or otherwise.
    tls = material("good" if cert_of == "untrusted" else cert_of)
    trusted = trustme.CA() if cert_of == "untrusted" else tls.ca
    script = SmtpScript(tls_context=tls.server_context())
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(
                server,
                tls=TlsMode.STARTTLS,
                tls_parameters=TlsParameters(
                    ca_data=trusted.cert_pem.bytes().decode("ascii"), use_system_trust=False
                ),
                credentials=Credentials("alice", PASSWORD),
            )
            async with transport:
                with pytest.raises(TlsError):
                    await transport.send_raw(envelope(), message_bytes())
            await server.client_closed(0)
    assert script.verbs(0) == ["EHLO", "STARTTLS"]
    assert script.messages == []


# --------------------------------------------------------------------------- versions


def permissive_context(tls: TlsMaterial) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.ca.configure_trust(context)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def old_tls_really_works(host: str, port: int, mode: TlsMode, tls: TlsMaterial) -> bool:
    """Whether a client that allows TLS 1.0/1.1 gets through (the local OpenSSL may refuse)."""
    settings = SmtpSettings(
        host,
        port,
        tls=mode,
        tls_parameters=TlsParameters(ca_data=tls.ca_pem),
        hello_name=HELLO,
        timeout=5.0,
    )
    client = SmtpClient(settings, ssl_context=permissive_context(tls))
    try:
        with anyio.fail_after(GUARD):
            await client.connect()
    except TlsError:
        return False
    try:
        assert client.tls_version in ("TLSv1", "TLSv1.1")
    finally:
        await client.aclose()
    return True


def old_tls_material() -> OldTlsMaterial:
    good = material()
    return OldTlsMaterial(ca=good.ca, cert=good.cert, ca_pem=good.ca_pem)


async def test_starttls_server_limited_to_tls_1_1_is_refused(smtpd: ServerFactory) -> None:
    tls = old_tls_material()
    server = start(smtpd, TlsMode.STARTTLS, tls)
    if not await old_tls_really_works(server.host, server.port, TlsMode.STARTTLS, tls):
        # This OpenSSL cannot speak TLS 1.1 at all, so the failure below would
        # prove nothing by itself: the client's own floor is checked too.
        context = TlsParameters(ca_data=tls.ca_pem).create_context()
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    await send_fails_with_tls_error(server, TlsMode.STARTTLS, TlsParameters(ca_data=tls.ca_pem))


async def test_implicit_tls_server_limited_to_tls_1_1_is_refused() -> None:
    # aiosmtpd's Controller checks an implicit-TLS server with a modern client
    # before it returns, which a TLS 1.1 server fails; the scripted server
    # speaks TLS from the first byte with the same context instead.
    tls = old_tls_material()
    script = SmtpScript()
    with anyio.fail_after(GUARD):
        async with hostile_server(script, tls_context=tls.server_context()) as server:
            if not await old_tls_really_works(server.host, server.port, TlsMode.IMPLICIT, tls):
                context = TlsParameters(ca_data=tls.ca_pem).create_context()
                assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
            else:
                assert len(script.messages) == 0
            before = len(server.connections)
            transport = transport_for(
                server, tls=TlsMode.IMPLICIT, tls_parameters=TlsParameters(ca_data=tls.ca_pem)
            )
            async with transport:
                with pytest.raises(TlsError):
                    await transport.send_raw(envelope(), message_bytes())
            await server.client_closed(before)
    # The handshake failed: no SMTP command was ever read on that connection.
    assert script.verbs(before) == []
    assert server.connections[before].tls_error is not None


@pytest.mark.parametrize(
    "transport",
    [
        lambda: SmtpTransport("smtp.example.com"),
        lambda: SmtpTransport.relay("smtp.example.com"),
        lambda: SmtpTransport.starttls_relay("smtp.example.com"),
        lambda: SmtpTransport("smtp.example.com", tls=TlsMode.OPPORTUNISTIC),
        lambda: SmtpTransport.from_url("smtp://smtp.example.com"),
        lambda: SmtpTransport.from_url("smtps://smtp.example.com"),
        lambda: SmtpTransport("smtp.example.com", tls_parameters=TlsParameters(ca_data=None)),
    ],
)
def test_default_contexts_verify_and_require_tls_1_2(transport: Any) -> None:
    context = transport().ssl_context
    assert context is not None
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


# --------------------------------------------------------------------------- plain text


@pytest.mark.parametrize("mode", [TlsMode.NONE, TlsMode.OPPORTUNISTIC])
async def test_credentials_never_go_over_plain_text_by_default(
    mode: TlsMode, smtpd: ServerFactory
) -> None:
    # aiosmtpd offering AUTH without TLS.
    server = smtpd(auth=True, auth_require_tls=False, users={"alice": PASSWORD})
    error = await send_fails_with_tls_error(
        server, mode, None, credentials=Credentials("alice", PASSWORD)
    )
    assert "allow_insecure_auth" in str(error)
    # The scripted twin records every line: no AUTH arrived.
    script = SmtpScript()
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as scripted:
            transport = transport_for(
                scripted, tls=mode, credentials=Credentials("alice", PASSWORD)
            )
            async with transport:
                with pytest.raises(TlsError):
                    await transport.send_raw(envelope(), message_bytes())
            await scripted.client_closed(0)
    assert "AUTH" not in script.verbs()
    assert PASSWORD.encode() not in scripted.connections[0].received


async def test_allow_insecure_auth_is_the_explicit_way_out(smtpd: ServerFactory) -> None:
    # The control: with the opt-in, the same server gets the login.
    server = smtpd(auth=True, auth_require_tls=False, users={"alice": PASSWORD})
    transport = transport_for(
        server, credentials=Credentials("alice", PASSWORD), allow_insecure_auth=True, timeout=5.0
    )
    with anyio.fail_after(GUARD):
        async with transport:
            await transport.send_raw(envelope(), message_bytes())
    assert server.messages[0].login == "alice"


async def test_capabilities_from_before_starttls_are_forgotten() -> None:
    # Before TLS the (possibly forged) EHLO offers AUTH; after TLS the real one
    # does not. The client must trust only the second.
    tls = material()

    async def ehlo(session: Any, line: str) -> bool:
        if session.tls:
            return await say("250-hostile.lettre.test", "250 8BITMIME")(session, line) is not False
        return (
            await say("250-hostile.lettre.test", "250-AUTH PLAIN LOGIN", "250 STARTTLS")(
                session, line
            )
            is not False
        )

    script = SmtpScript({"EHLO": ehlo}, tls_context=tls.server_context())
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(
                server,
                tls=TlsMode.STARTTLS,
                tls_parameters=TlsParameters(ca_data=tls.ca_pem),
                credentials=Credentials("alice", PASSWORD),
                timeout=5.0,
            )
            async with transport:
                with pytest.raises(ExtensionNotSupported):
                    await transport.send_raw(envelope(), message_bytes())
            await server.client_closed(0)
    assert script.verbs(0) == ["EHLO", "STARTTLS", "EHLO"]
