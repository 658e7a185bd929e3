"""AUTH against aiosmtpd (every mechanism lettre implements) and scripted servers."""

from __future__ import annotations

import base64
import logging

import pytest
from smtp_support import connected, envelope, message_bytes, settings_for

from lettre.errors import (
    AuthenticationError,
    ExtensionNotSupported,
    RemoteProtocolError,
    TlsError,
)
from lettre.smtp.auth import AuthMechanism, Credentials
from lettre.smtp.client import SmtpClient
from lettre.smtp.tls import TlsMode, TlsParameters
from servers import (
    ALL_MECHANISMS,
    MiniSmtp,
    ScriptedConnection,
    ServerFactory,
    scripted_server,
)

pytestmark = pytest.mark.anyio

ALICE = Credentials("alice", "wonderland")


@pytest.mark.parametrize(
    "mechanism",
    [AuthMechanism.PLAIN, AuthMechanism.LOGIN, AuthMechanism.CRAM_MD5],
)
async def test_password_mechanisms(
    smtpd: ServerFactory, tls_params: TlsParameters, mechanism: AuthMechanism
) -> None:
    server = smtpd(tls="starttls", auth=True, auth_required=True)
    client = await connected(
        server,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        credentials=ALICE,
        auth_mechanisms=(mechanism,),
    )
    try:
        assert client.auth_mechanism is mechanism
        assert client.authenticated_as == "alice"
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert server.messages[0].login == "alice"


async def test_default_mechanism_over_tls_is_plain(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    # aiosmtpd only counts STARTTLS as TLS for auth_require_tls: implicit TLS needs False.
    server = smtpd(tls="implicit", auth=True, auth_require_tls=False)
    client = await connected(
        server, tls=TlsMode.IMPLICIT, tls_parameters=tls_params, credentials=ALICE
    )
    await client.aclose()
    assert client.auth_mechanism is AuthMechanism.PLAIN


async def test_user_name_and_password_with_unicode(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True, users={"bob@example.com": "pässwörd ✓"})
    for mechanism in (AuthMechanism.PLAIN, AuthMechanism.LOGIN):
        client = await connected(
            server,
            tls=TlsMode.STARTTLS,
            tls_parameters=tls_params,
            credentials=Credentials("bob@example.com", "pässwörd ✓"),
            auth_mechanisms=(mechanism,),
        )
        await client.aclose()
        assert client.authenticated_as == "bob@example.com"


@pytest.mark.parametrize(
    "mechanism",
    [AuthMechanism.PLAIN, AuthMechanism.LOGIN, AuthMechanism.CRAM_MD5],
)
async def test_wrong_password_is_535(
    smtpd: ServerFactory, tls_params: TlsParameters, mechanism: AuthMechanism
) -> None:
    server = smtpd(tls="starttls", auth=True)
    client = SmtpClient(
        settings_for(
            server,
            tls=TlsMode.STARTTLS,
            tls_parameters=tls_params,
            credentials=Credentials("alice", "not the password"),
            auth_mechanisms=(mechanism,),
        )
    )
    with pytest.raises(AuthenticationError) as info:
        await client.connect()
    assert info.value.code == 535
    assert info.value.command == f"AUTH {mechanism.value}"
    assert not info.value.transient
    assert "not the password" not in str(info.value)
    assert not client.is_usable


async def test_xoauth2_with_token_provider(smtpd: ServerFactory, tls_params: TlsParameters) -> None:
    server = smtpd(tls="starttls", auth=True)
    calls = 0

    async def token() -> str:
        nonlocal calls
        calls += 1
        return "ya29.valid-token"

    client = await connected(
        server,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        credentials=Credentials("alice"),
        token_provider=token,
    )
    try:
        assert client.auth_mechanism is AuthMechanism.XOAUTH2
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert calls == 1
    assert server.token_attempts == ["ya29.valid-token"]


async def test_xoauth2_refreshes_the_token_after_535(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True)
    tokens = iter(["ya29.expired-token", "ya29.valid-token"])

    async def token() -> str:
        return next(tokens)

    client = await connected(
        server,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        credentials=Credentials("alice"),
        token_provider=token,
    )
    await client.aclose()
    assert server.token_attempts == ["ya29.expired-token", "ya29.valid-token"]


async def test_xoauth2_gives_up_after_one_refresh(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True)
    calls = 0

    async def token() -> str:
        nonlocal calls
        calls += 1
        return f"ya29.bad-{calls}"

    client = SmtpClient(
        settings_for(
            server,
            tls=TlsMode.STARTTLS,
            tls_parameters=tls_params,
            credentials=Credentials("alice"),
            token_provider=token,
        )
    )
    with pytest.raises(AuthenticationError) as info:
        await client.connect()
    assert info.value.code == 535
    assert calls == 2
    assert server.token_attempts == ["ya29.bad-1", "ya29.bad-2"]


async def test_credentials_never_go_over_plain_text() -> None:
    mini = MiniSmtp(extensions=["AUTH PLAIN LOGIN", "PIPELINING"])
    async with scripted_server(mini) as server:
        client = SmtpClient(settings_for(server, tls=TlsMode.OPPORTUNISTIC, credentials=ALICE))
        with pytest.raises(TlsError, match="unencrypted"):
            await client.connect()
    assert mini.verbs() == ["EHLO"]


async def test_insecure_auth_when_allowed(smtpd: ServerFactory) -> None:
    server = smtpd(auth=True, auth_require_tls=False)
    client = await connected(server, tls=TlsMode.NONE, credentials=ALICE, allow_insecure_auth=True)
    try:
        # Without TLS the mechanism that keeps the password off the wire comes first.
        assert client.auth_mechanism is AuthMechanism.CRAM_MD5
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert server.messages[0].login == "alice"


async def test_no_auth_offered() -> None:
    mini = MiniSmtp()
    async with scripted_server(mini) as server:
        client = SmtpClient(
            settings_for(server, tls=TlsMode.NONE, credentials=ALICE, allow_insecure_auth=True)
        )
        with pytest.raises(ExtensionNotSupported, match="does not offer AUTH"):
            await client.connect()


async def test_no_mechanism_in_common() -> None:
    mini = MiniSmtp(extensions=["AUTH GSSAPI NTLM"])
    async with scripted_server(mini) as server:
        client = SmtpClient(
            settings_for(server, tls=TlsMode.NONE, credentials=ALICE, allow_insecure_auth=True)
        )
        with pytest.raises(ExtensionNotSupported, match="GSSAPI NTLM"):
            await client.connect()
    assert "AUTH" not in mini.verbs()


async def test_next_mechanism_after_504() -> None:
    seen: list[str] = []

    async def script(conn: ScriptedConnection) -> None:
        await conn.reply("220 mx ESMTP")
        await conn.readline()
        await conn.reply("250-mx", "250 AUTH CRAM-MD5 PLAIN")
        line = (await conn.readline()).decode()
        seen.append(line.strip())
        await conn.reply("504 5.5.4 Mechanism not available")
        line = (await conn.readline()).decode()
        seen.append(line.split(" ")[0] + " " + line.split(" ")[1])
        blob = base64.b64decode(line.split(" ")[2])
        assert blob == b"\x00alice\x00wonderland"
        await conn.reply("235 2.7.0 Authentication successful")
        await conn.readline()
        await conn.reply("221 bye")

    async with scripted_server(script) as server:
        client = await connected(
            server, tls=TlsMode.NONE, credentials=ALICE, allow_insecure_auth=True
        )
        await client.aclose()
    assert seen == ["AUTH CRAM-MD5", "AUTH PLAIN"]
    assert client.auth_mechanism is AuthMechanism.PLAIN


async def test_transcript_redacts_auth_payloads(
    smtpd: ServerFactory, tls_params: TlsParameters, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtpd(tls="starttls", auth=True)
    secret = "wonderland"
    encoded_plain = base64.b64encode(b"\x00alice\x00" + secret.encode()).decode()
    encoded_password = base64.b64encode(secret.encode()).decode()
    with caplog.at_level(logging.DEBUG, logger="lettre.smtp"):
        for mechanism in (AuthMechanism.PLAIN, AuthMechanism.LOGIN):
            client = await connected(
                server,
                tls=TlsMode.STARTTLS,
                tls_parameters=tls_params,
                credentials=ALICE,
                auth_mechanisms=(mechanism,),
            )
            await client.send(envelope(), message_bytes(body="top secret body\r\n"))
            await client.aclose()
    transcript = "\n".join(r.getMessage() for r in caplog.records if r.name == "lettre.smtp")
    assert "C: AUTH PLAIN <redacted>" in transcript
    assert "C: AUTH LOGIN" in transcript
    assert "C: <redacted>" in transcript
    assert "S: 235" in transcript
    assert "C: MAIL FROM:<sender@example.com>" in transcript
    assert "bytes of message content>" in transcript
    for leak in (secret, encoded_plain, encoded_password, "top secret body"):
        assert leak not in transcript


# ------------------------------------------------------------------ SCRAM-SHA-256


async def test_scram_sha256(smtpd: ServerFactory, tls_params: TlsParameters) -> None:
    server = smtpd(tls="starttls", auth=True, auth_required=True, mechanisms=["SCRAM-SHA-256"])
    client = await connected(
        server, tls=TlsMode.STARTTLS, tls_parameters=tls_params, credentials=ALICE
    )
    try:
        assert client.auth_mechanism is AuthMechanism.SCRAM_SHA_256
        assert client.authenticated_as == "alice"
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert server.messages[0].login == "alice"
    # The server checked the proof, sent its signature, and the client accepted it.
    assert server.auth_events == ["SCRAM-SHA-256 success"]


async def test_scram_sha256_with_unicode_and_an_escaped_user_name(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    users = {"bob@example.com": "pässwörd ✓", "a=b,c": "wonderland"}
    server = smtpd(tls="starttls", auth=True, users=users, mechanisms=["SCRAM-SHA-256"])
    for username, password in users.items():
        client = await connected(
            server,
            tls=TlsMode.STARTTLS,
            tls_parameters=tls_params,
            credentials=Credentials(username, password),
        )
        await client.aclose()
        assert client.authenticated_as == username
    assert server.auth_events == ["SCRAM-SHA-256 success"] * 2


async def test_scram_sha256_wrong_password(smtpd: ServerFactory, tls_params: TlsParameters) -> None:
    server = smtpd(tls="starttls", auth=True, mechanisms=["SCRAM-SHA-256"])
    client = SmtpClient(
        settings_for(
            server,
            tls=TlsMode.STARTTLS,
            tls_parameters=tls_params,
            credentials=Credentials("alice", "not the password"),
        )
    )
    with pytest.raises(AuthenticationError) as info:
        await client.connect()
    assert info.value.code == 535
    assert info.value.command == "AUTH SCRAM-SHA-256"
    assert "not the password" not in str(info.value)
    assert not client.is_usable
    # The server said why (e=invalid-proof) before its 535.
    assert server.auth_events == ["SCRAM-SHA-256 invalid-proof"]


async def test_scram_sha256_wrong_server_signature_is_refused(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(
        tls="starttls",
        auth=True,
        mechanisms=["SCRAM-SHA-256", "PLAIN"],
        scram_bad_signature=True,
    )
    client = SmtpClient(
        settings_for(server, tls=TlsMode.STARTTLS, tls_parameters=tls_params, credentials=ALICE)
    )
    with pytest.raises(RemoteProtocolError, match="signature is wrong") as info:
        await client.connect()
    assert "wonderland" not in str(info.value)
    # The exchange was cancelled instead of completed, nothing else was tried
    # (not even PLAIN, which would hand the password to this server), and the
    # connection is closed.
    assert server.auth_events == ["SCRAM-SHA-256 cancelled after the server signature"]
    assert not client.is_usable
    assert client.authenticated_as is None
    assert server.messages == []


async def test_scram_sha256_success_without_a_server_signature_is_refused() -> None:
    seen: list[str] = []

    async def script(conn: ScriptedConnection) -> None:
        await conn.reply("220 mx ESMTP")
        await conn.readline()
        await conn.reply("250-mx", "250 AUTH SCRAM-SHA-256")
        line = (await conn.readline()).decode().split()
        first = base64.b64decode(line[2]).decode()
        nonce = first.split(",r=")[1] + "server-part"
        server_first = f"r={nonce},s={base64.b64encode(b'salt-salt').decode()},i=4096"
        await conn.reply("334 " + base64.b64encode(server_first.encode()).decode())
        seen.append(base64.b64decode(await conn.readline()).decode().split(",p=")[0])
        # A server that skips its signature: straight to 235.
        await conn.reply("235 2.7.0 Authentication successful")

    async with scripted_server(script) as server:
        client = SmtpClient(
            settings_for(server, tls=TlsMode.NONE, credentials=ALICE, allow_insecure_auth=True)
        )
        with pytest.raises(RemoteProtocolError, match="without proving"):
            await client.connect()
    assert len(seen) == 1
    assert seen[0].startswith("c=biws,r=")
    assert not client.is_usable


# ------------------------------------------------------------------ OAUTHBEARER


async def test_oauthbearer_with_token_provider(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True, mechanisms=["OAUTHBEARER", "PLAIN"])
    calls = 0

    async def token() -> str:
        nonlocal calls
        calls += 1
        return "ya29.valid-token"

    client = await connected(
        server,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        credentials=Credentials("alice"),
        token_provider=token,
    )
    try:
        assert client.auth_mechanism is AuthMechanism.OAUTHBEARER
        await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    assert calls == 1
    assert server.token_attempts == ["ya29.valid-token"]
    assert server.auth_events == [f"OAUTHBEARER user=alice host=127.0.0.1 port={server.port}"]
    assert server.messages[0].login == "alice"


async def test_oauthbearer_refreshes_the_token_after_535(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True, mechanisms=["OAUTHBEARER"])
    tokens = iter(["ya29.expired-token", "ya29.valid-token"])

    async def token() -> str:
        return next(tokens)

    client = await connected(
        server,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        credentials=Credentials("alice"),
        token_provider=token,
    )
    await client.aclose()
    assert client.auth_mechanism is AuthMechanism.OAUTHBEARER
    assert server.token_attempts == ["ya29.expired-token", "ya29.valid-token"]


async def test_oauthbearer_gives_up_after_one_refresh(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True, mechanisms=["OAUTHBEARER"])
    calls = 0

    async def token() -> str:
        nonlocal calls
        calls += 1
        return f"ya29.bad-{calls}"

    client = SmtpClient(
        settings_for(
            server,
            tls=TlsMode.STARTTLS,
            tls_parameters=tls_params,
            credentials=Credentials("alice"),
            token_provider=token,
        )
    )
    with pytest.raises(AuthenticationError) as info:
        await client.connect()
    # 535, not 501: each JSON error was acknowledged with the single 0x01
    # RFC 7628 asks for.
    assert info.value.code == 535
    assert info.value.command == "AUTH OAUTHBEARER"
    assert calls == 2
    assert server.token_attempts == ["ya29.bad-1", "ya29.bad-2"]
    assert "ya29.bad" not in str(info.value)


# ------------------------------------------------------------------ choosing


@pytest.mark.parametrize("mechanism", list(AuthMechanism))
async def test_each_mechanism_is_chosen_when_it_is_the_one_offered(
    smtpd: ServerFactory, tls_params: TlsParameters, mechanism: AuthMechanism
) -> None:
    server = smtpd(tls="starttls", auth=True, mechanisms=[mechanism.value])

    async def token() -> str:
        return "ya29.valid-token"

    token_based = mechanism.mechanism_class.needs == "token"
    client = await connected(
        server,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        credentials=Credentials("alice") if token_based else ALICE,
        token_provider=token if token_based else None,
    )
    await client.aclose()
    assert client.auth_mechanism is mechanism


@pytest.mark.parametrize(
    ("tls", "token", "expected"),
    [
        # Over TLS with a password: SCRAM-SHA-256, the strongest.
        (TlsMode.STARTTLS, False, AuthMechanism.SCRAM_SHA_256),
        # Without TLS (when allowed): still SCRAM-SHA-256, which keeps the
        # password off the wire.
        (TlsMode.NONE, False, AuthMechanism.SCRAM_SHA_256),
        # A token provider: the token mechanisms first, XOAUTH2 before OAUTHBEARER.
        (TlsMode.STARTTLS, True, AuthMechanism.XOAUTH2),
    ],
)
async def test_default_choice_when_everything_is_offered(
    smtpd: ServerFactory,
    tls_params: TlsParameters,
    tls: TlsMode,
    token: bool,
    expected: AuthMechanism,
) -> None:
    server = smtpd(
        tls="starttls" if tls is TlsMode.STARTTLS else "none",
        auth=True,
        auth_require_tls=tls is TlsMode.STARTTLS,
        mechanisms=ALL_MECHANISMS,
    )

    async def provider() -> str:
        return "ya29.valid-token"

    client = await connected(
        server,
        tls=tls,
        tls_parameters=tls_params if tls is TlsMode.STARTTLS else None,
        credentials=ALICE,
        token_provider=provider if token else None,
        allow_insecure_auth=tls is TlsMode.NONE,
    )
    await client.aclose()
    assert client.auth_mechanism is expected


async def test_explicit_preference_from_a_url_name(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="starttls", auth=True, mechanisms=ALL_MECHANISMS)
    client = await connected(
        server,
        tls=TlsMode.STARTTLS,
        tls_parameters=tls_params,
        credentials=ALICE,
        auth_mechanisms=("cram_md5", "scram-sha-256"),
    )
    await client.aclose()
    assert client.auth_mechanism is AuthMechanism.CRAM_MD5
