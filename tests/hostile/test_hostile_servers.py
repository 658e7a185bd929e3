"""Scripted misbehaving servers: every failure is typed, bounded in time and memory, and closes.

Each test plays a hostile script on loopback against :class:`SmtpTransport`
with a 0.5 s reply timeout, and checks:

- the send fails with the right error TYPE (never a hang: ``anyio.fail_after``
  guards every test, and no test asserts elapsed time);
- the server sees the client close its socket;
- the broken connection is not reused: no connection stays in the pool, and
  once the script turns well-mannered the next send opens a new one. (A send
  that failed before the content may be retried once on a new connection:
  the hostile behaviour holds on every connection until switched off.)
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

import anyio
import pytest
from hostile_support import (
    GUARD,
    assert_next_send_uses_new_connection,
    assert_no_pooled_connection,
    bounded_memory,
    each_step,
    envelope,
    message_bytes,
    transport_for,
)
from scripted import (
    DEFAULT_EXTENSIONS,
    Action,
    Session,
    SmtpScript,
    drip,
    flood,
    hang_up,
    hostile_server,
    once,
    raw,
    say,
    silence,
)

from lettre.errors import (
    AuthenticationError,
    DataRefused,
    OutcomeUnknown,
    RecipientsRefused,
    RemoteProtocolError,
    SenderRefused,
    ServerDisconnected,
    SmtpConnectError,
    SmtpReplyError,
    SmtpTimeoutError,
    TlsError,
    TransportError,
)
from lettre.smtp.auth import Credentials
from lettre.smtp.tls import TlsMode, TlsParameters
from servers import TlsMaterial

pytestmark = pytest.mark.anyio

PASSWORD = "s3cret-hostile"
CHUNKING = ("8BITMIME", "CHUNKING", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2")


def step_kwargs(step: str, tls_material: TlsMaterial) -> tuple[dict[str, Any], dict[str, Any]]:
    """Script and transport arguments that make the client reach ``step``."""
    script: dict[str, Any] = {}
    client: dict[str, Any] = {}
    if step == "STARTTLS":
        script["tls_context"] = tls_material.server_context()
        client["tls"] = TlsMode.STARTTLS
        client["tls_parameters"] = TlsParameters(ca_data=tls_material.ca_pem)
    if step in ("AUTH", "AUTH-RESPONSE"):
        client["credentials"] = Credentials("alice", PASSWORD)
        client["allow_insecure_auth"] = True
        if step == "AUTH-RESPONSE":
            client["auth_mechanisms"] = ["LOGIN"]
    if step == "BDAT":
        script["extensions"] = CHUNKING
    return script, client


async def expect_failure(
    script: SmtpScript,
    error: type[BaseException] | tuple[type[BaseException], ...],
    *,
    memory: bool = False,
    **client: Any,
) -> Any:
    """Send through ``script`` and check the failure, the close and the next send."""
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server, **client)
            try:
                with bounded_memory(enabled=memory), pytest.raises(error) as info:
                    await transport.send_raw(envelope(), message_bytes())
                # Every connection involved (a retry may have opened a second)
                # was closed by the client and none went back to the pool.
                for index in range(len(server.connections)):
                    await server.client_closed(index)
                assert_no_pooled_connection(transport)
                if isinstance(info.value, OutcomeUnknown):
                    # The message in doubt went out once and was never resent.
                    assert len(script.messages) == 1
                elif isinstance(info.value, DataRefused):
                    # Refused at DATA (nothing sent) or after the content (sent once).
                    assert len(script.messages) <= 1
                else:
                    assert not script.messages
                await assert_next_send_uses_new_connection(transport, server, script)
            finally:
                await transport.aclose()
    return info.value


# --------------------------------------------------------------------------- silence


SILENT_STEPS = (
    "GREETING",
    "EHLO",
    "STARTTLS",
    "TLS-HANDSHAKE",
    "AUTH",
    "AUTH-RESPONSE",
    "MAIL",
    "RCPT",
    "DATA",
    "END",
    "BDAT-END",
)


async def ready_then_silent(session: Session, line: str) -> bool:
    """Say 220 to STARTTLS, then never answer the TLS handshake."""
    await session.conn.reply("220 2.0.0 Ready to start TLS")
    await session.conn.wait_closed()
    return False


async def test_silence_at_every_step_times_out(tls_material: TlsMaterial) -> None:
    async def scenario(step: str) -> None:
        script_kwargs, client = step_kwargs(step, tls_material)
        action: Action = silence()
        if step == "BDAT-END":
            script_kwargs["extensions"] = CHUNKING
            step = "END"
        if step == "TLS-HANDSHAKE":
            script_kwargs, client = step_kwargs("STARTTLS", tls_material)
            step, action = "STARTTLS", ready_then_silent
        script = SmtpScript({step: action}, **script_kwargs)
        error = await expect_failure(script, (SmtpTimeoutError, OutcomeUnknown), **client)
        if step == "END":
            # The content went out: a timeout now leaves the outcome unknown.
            assert isinstance(error, OutcomeUnknown)
            assert error.transient
            # The message in doubt was not resent: once in doubt, once after.
            assert [m.connection for m in script.messages] == [0, 1]
        else:
            assert isinstance(error, SmtpTimeoutError)
            assert not isinstance(error, OutcomeUnknown)

    await each_step(SILENT_STEPS, scenario)


async def test_silent_implicit_tls_handshake_times_out(tls_material: TlsMaterial) -> None:
    # The server accepts the connection and never answers the ClientHello.
    script = SmtpScript({"GREETING": silence()})
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(
                server,
                tls=TlsMode.IMPLICIT,
                tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
            )
            async with transport:
                with pytest.raises(SmtpTimeoutError):
                    await transport.send_raw(envelope(), message_bytes())
                assert_no_pooled_connection(transport)
            await server.client_closed(0)
    # The client spoke first (a TLS ClientHello), nothing in the clear.
    assert server.connections[0].received[:1] == b"\x16"


async def test_silent_quit_does_not_block_close() -> None:
    script = SmtpScript({"QUIT": silence()})
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server)
            await transport.send_raw(envelope(), message_bytes())
            await transport.aclose()
            await server.client_closed(0)
    assert script.verbs()[-1] == "QUIT"


# --------------------------------------------------------------------------- dripping


async def test_every_reply_dripped_one_octet_at_a_time_works() -> None:
    script = SmtpScript(drip_all=True)
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(
                server,
                timeout=5.0,
                data_timeout=5.0,
                credentials=Credentials("alice", PASSWORD),
                allow_insecure_auth=True,
                auth_mechanisms=["LOGIN"],
            )
            try:
                result = await transport.send_raw(envelope(), message_bytes())
            finally:
                await transport.aclose()
            await server.client_closed(0)
    assert result.all_accepted
    assert result.transport_id == "H1"
    assert [m.content for m in script.messages] == [message_bytes()]
    assert script.verbs(0)[:4] == ["EHLO", "AUTH", "AUTH-RESPONSE", "AUTH-RESPONSE"]


async def test_slow_drip_is_bounded_by_the_reply_timeout() -> None:
    # One octet every 20 ms: each read makes progress, but the reply would take
    # 40 s. The timeout bounds the whole reply, not each read.
    async def scenario(step: str) -> None:
        code = "220" if step == "GREETING" else "250"
        script = SmtpScript({step: drip(code + " " + "x" * 2000, delay=0.02)})
        error = await expect_failure(script, (SmtpTimeoutError, OutcomeUnknown))
        assert isinstance(error, OutcomeUnknown) is (step == "END")

    await each_step(("GREETING", "EHLO", "MAIL", "END"), scenario)


@pytest.mark.parametrize("step", ["GREETING", "EHLO", "MAIL", "DATA"])
async def test_endless_multiline_reply_is_refused(step: str) -> None:
    code = {"GREETING": b"220", "DATA": b"354"}.get(step, b"250")
    script = SmtpScript({step: flood(b"", code + b"-more and more\r\n")})
    await expect_failure(script, RemoteProtocolError, memory=True)


@pytest.mark.parametrize("step", ["GREETING", "EHLO", "RCPT"])
async def test_endless_line_is_refused(step: str) -> None:
    code = b"220" if step == "GREETING" else b"250"
    script = SmtpScript({step: flood(code + b" ", b"a")})
    await expect_failure(script, RemoteProtocolError, memory=True)


async def test_endless_reply_after_end_of_data_is_outcome_unknown() -> None:
    script = SmtpScript({"END": flood(b"", b"250-queued, probably\r\n")})
    await expect_failure(script, OutcomeUnknown, memory=True)


async def test_over_long_but_finite_line_is_refused() -> None:
    script = SmtpScript({"EHLO": say("250 " + "x" * 5000)})
    await expect_failure(script, RemoteProtocolError)


# --------------------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    "garbage",
    [
        b"999 what is this\r\n",
        b"199 too low\r\n",
        b"600 too high\r\n",
        b"abc\r\n",
        b"2500 four digits\r\n",
        b"25\r\n",
        b"250\x00nul\r\n",
        b"250_under\r\n",
        b"\r\n",
        b"\n",
        b" 250 leading space\r\n",
        b"\x16\x03\x01\x00\x05hello",
        b"250-first\r\n251 second\r\n",
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
    ],
)
async def test_garbage_reply_is_refused(garbage: bytes) -> None:
    await expect_failure(SmtpScript({"EHLO": raw(garbage)}), RemoteProtocolError)


@pytest.mark.parametrize("step", ["GREETING", "MAIL", "DATA"])
async def test_garbage_at_other_steps(step: str) -> None:
    await expect_failure(SmtpScript({step: raw(b"xyz garbage\r\n")}), RemoteProtocolError)


async def test_garbage_after_end_of_data_is_outcome_unknown() -> None:
    await expect_failure(SmtpScript({"END": raw(b"OK!\r\n")}), OutcomeUnknown)


async def test_stray_blank_line_after_a_reply_is_refused() -> None:
    # The blank line rides after the EHLO reply; it is read as the reply to MAIL.
    script = SmtpScript({"MAIL": raw(b"\r\n250 2.1.0 Ok\r\n")})
    await expect_failure(script, RemoteProtocolError)


async def test_stray_blank_line_before_greeting_is_refused() -> None:
    script = SmtpScript({"GREETING": raw(b"\r\n220 hostile ESMTP\r\n")})
    await expect_failure(script, RemoteProtocolError)


async def test_reply_text_controls_never_reach_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lettre")
    hostile = b"550 5.1.0 no\rFAKE LOG LINE \x1b[2J\x1b[31mred\x00 \x07bell\r\n"
    script = SmtpScript({"MAIL": once(raw(hostile))})
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server)
            async with transport:
                with pytest.raises(SenderRefused) as info:
                    await transport.send_raw(envelope(), message_bytes())
    texts = [str(info.value), info.value.text, *(r.getMessage() for r in caplog.records)]
    for text in texts:
        assert re.search("[\x00-\x08\x0a-\x1f\x7f]", text) is None, repr(text)


# --------------------------------------------------------------------------- unsolicited


EHLO_REPLY = b"250-hostile.lettre.test\r\n250 8BITMIME\r\n"


async def test_unsolicited_reply_in_the_same_write_is_refused() -> None:
    script = SmtpScript({"EHLO": raw(EHLO_REPLY + b"250 2.0.0 unsolicited\r\n")})
    await expect_failure(script, RemoteProtocolError)


async def test_unsolicited_reply_after_the_greeting_is_refused() -> None:
    script = SmtpScript({"GREETING": raw(b"220 hostile ESMTP\r\n250 2.0.0 surprise\r\n")})
    await expect_failure(script, RemoteProtocolError)


async def test_unsolicited_reply_is_refused_before_the_next_command_is_sent() -> None:
    script = SmtpScript({"EHLO": raw(EHLO_REPLY + b"250 2.0.0 unsolicited\r\n")})
    await expect_failure(script, RemoteProtocolError)
    # The client noticed before it said anything more on that connection.
    assert script.verbs(0) == ["EHLO"]


async def test_unsolicited_reply_between_transactions_does_not_desynchronise() -> None:
    # After the first message is queued the server says something nobody
    # asked for. The next send on that connection must not take it for the
    # reply to its MAIL (which would shift every later reply by one).
    script = SmtpScript(
        {"END": once(raw(b"250 2.0.0 Ok: queued as H1\r\n250 2.0.0 unsolicited\r\n"))}
    )
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server)
            try:
                first = await transport.send_raw(envelope(), message_bytes("First"))
                assert first.transport_id == "H1"
                # Either the send fails (the connection is refused as soon as it
                # is used) or it goes out on a new connection (the stale one was
                # dropped before reuse); never on the desynchronised one.
                try:
                    second = await transport.send_raw(envelope(), message_bytes("Second"))
                except RemoteProtocolError:
                    await server.client_closed(0)
                    await assert_next_send_uses_new_connection(transport, server, script)
                else:
                    assert second.all_accepted
                    await server.client_closed(0)
            finally:
                await transport.aclose()
    # Nothing after the first message went out on the desynchronised connection.
    assert [m.connection for m in script.messages][:2] == [0, 1]
    assert script.verbs(0).count("MAIL") == 1


async def test_unsolicited_reply_never_turns_a_refusal_into_success() -> None:
    # With CHUNKING there is no DATA/354 step to expose the shift: the stale
    # "250" would be read as the reply to RCPT, the RCPT reply as the reply to
    # BDAT, and the server's refusal of the message would go unnoticed.
    ends = 0

    async def accept_then_refuse(session: Any, line: str) -> bool:
        nonlocal ends
        ends += 1
        if ends == 1:
            await session.conn.send(b"250 2.0.0 Ok: queued as H1\r\n250 2.0.0 unsolicited\r\n")
        else:
            await session.conn.reply("554 5.6.0 Message refused")
        return True

    script = SmtpScript({"END": accept_then_refuse}, extensions=CHUNKING)
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server)
            try:
                await transport.send_raw(envelope(), message_bytes("First"))
                with pytest.raises((RemoteProtocolError, DataRefused)):
                    await transport.send_raw(envelope(), message_bytes("Second"))
            finally:
                await transport.aclose()


async def test_unsolicited_421_is_a_clean_close() -> None:
    # RFC 5321 3.8: a server may send 421 at any time before closing.
    script = SmtpScript({"MAIL": raw(b"421 4.3.2 shutting down\r\n", then_continue=False)})
    error = await expect_failure(script, SmtpReplyError)
    assert error.transient


# --------------------------------------------------------------------------- disconnects


@pytest.mark.parametrize(
    "step", ["GREETING", "EHLO", "STARTTLS", "AUTH", "AUTH-RESPONSE", "MAIL", "RCPT", "DATA"]
)
async def test_disconnect_before_content_is_server_disconnected(
    step: str, tls_material: TlsMaterial
) -> None:
    script_kwargs, client = step_kwargs(step, tls_material)
    script = SmtpScript({step: hang_up()}, **script_kwargs)
    error = await expect_failure(script, ServerDisconnected, **client)
    assert not isinstance(error, OutcomeUnknown)
    assert error.transient


async def test_disconnect_after_the_last_bdat_chunk_is_outcome_unknown() -> None:
    script = SmtpScript({"END": hang_up()}, extensions=CHUNKING)
    error = await expect_failure(script, OutcomeUnknown)
    assert script.messages[0].via == "BDAT"
    assert error.transient


async def test_disconnect_after_end_of_data_is_outcome_unknown() -> None:
    script = SmtpScript({"END": hang_up()})
    error = await expect_failure(script, OutcomeUnknown)
    assert error.transient
    assert script.messages[0].via == "DATA"


async def test_disconnect_on_reused_connection_before_content_is_retried_once() -> None:
    # The first connection carries one message, then dies at the next MAIL; the
    # transport may resend on a new connection: nothing was handed over.
    calls = 0

    async def mail_then_die(session: Any, line: str) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            await session.conn.reply("250 2.1.0 Ok")
            session.mail = line
            session.rcpts = []
            return True
        await session.conn.hang_up()
        return False

    script = SmtpScript({"MAIL": mail_then_die}, connections=1)
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server)
            try:
                await transport.send_raw(envelope(), message_bytes("First"))
                await transport.send_raw(envelope(), message_bytes("Second"))
            finally:
                await transport.aclose()
            await server.client_closed(0)
    assert [m.connection for m in script.messages] == [0, 1]


async def test_disconnect_on_reused_connection_after_content_is_not_retried() -> None:
    ends = 0

    async def queue_then_die(session: Any, line: str) -> bool:
        nonlocal ends
        ends += 1
        if ends == 1:
            await session.conn.reply("250 2.0.0 Ok: queued as H1")
            return True
        await session.conn.hang_up()
        return False

    script = SmtpScript({"END": queue_then_die}, connections=1)
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server)
            try:
                await transport.send_raw(envelope(), message_bytes("First"))
                with pytest.raises(OutcomeUnknown):
                    await transport.send_raw(envelope(), message_bytes("Second"))
            finally:
                await transport.aclose()
            await server.client_closed(0)
    # Resending would risk a duplicate: the second message went out exactly once.
    assert len(server.connections) == 1
    assert len(script.messages) == 2


# --------------------------------------------------------------------------- STARTTLS


@pytest.mark.parametrize(
    "injected",
    [
        b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 AUTH PLAIN\r\n",
        b"220 2.0.0 Ready to start TLS\r\n235 2.7.0 you are in\r\n",
        b"220 2.0.0 Ready\r\n\r\n",
    ],
)
async def test_starttls_reply_with_injected_lines_is_refused(
    injected: bytes, tls_material: TlsMaterial
) -> None:
    script = SmtpScript(
        {"STARTTLS": raw(injected, then_continue=False)},
        tls_context=tls_material.server_context(),
    )
    await expect_failure(
        script,
        RemoteProtocolError,
        tls=TlsMode.STARTTLS,
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
        credentials=Credentials("alice", PASSWORD),
    )
    # Nothing after STARTTLS went out in the clear on the first connection.
    assert script.verbs(0) == ["EHLO", "STARTTLS"]


@pytest.mark.parametrize("mode", [TlsMode.STARTTLS, TlsMode.OPPORTUNISTIC])
async def test_starttls_injection_in_opportunistic_and_required_modes(
    mode: TlsMode, tls_material: TlsMaterial
) -> None:
    script = SmtpScript(
        {"STARTTLS": raw(b"220 go ahead\r\n250 2.1.0 Ok\r\n", then_continue=False)},
        tls_context=tls_material.server_context(),
    )
    await expect_failure(
        script,
        RemoteProtocolError,
        tls=mode,
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
    )
    assert script.verbs(0) == ["EHLO", "STARTTLS"]


# An EHLO reply without STARTTLS, as an attacker on the path would rewrite it.
STRIPPED_EHLO = say("250-hostile.lettre.test", "250-8BITMIME", "250 AUTH PLAIN LOGIN")


@pytest.mark.parametrize(
    "refusal",
    [
        None,
        "454 4.7.0 TLS not available due to temporary reason",
        "502 5.5.1 Not implemented",
        "220-Ready\r\n",
    ],
)
async def test_starttls_required_but_absent_or_refused_fails_closed(
    refusal: str | None, tls_material: TlsMaterial
) -> None:
    if refusal is None:
        # No STARTTLS keyword at all: a stripping attack on the first connection.
        script = SmtpScript({"EHLO": STRIPPED_EHLO}, tls_context=tls_material.server_context())
    elif refusal.endswith("\r\n"):
        # A multi-line reply that never ends: it cannot count as consent.
        script = SmtpScript(
            {"STARTTLS": raw(refusal.encode(), then_continue=False)},
            tls_context=tls_material.server_context(),
        )
    else:
        script = SmtpScript({"STARTTLS": say(refusal)}, tls_context=tls_material.server_context())
    expected: type[BaseException] = SmtpTimeoutError if refusal and "\r\n" in refusal else TlsError
    error = await expect_failure(
        script,
        expected,
        tls=TlsMode.STARTTLS,
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
        credentials=Credentials("alice", PASSWORD),
    )
    verbs = script.verbs(0)
    assert "AUTH" not in verbs
    assert "MAIL" not in verbs
    assert PASSWORD not in str(error)


async def test_stripped_starttls_never_exposes_credentials_in_opportunistic_mode(
    tls_material: TlsMaterial,
) -> None:
    script = SmtpScript({"EHLO": STRIPPED_EHLO}, tls_context=tls_material.server_context())
    error = await expect_failure(
        script,
        TlsError,
        tls=TlsMode.OPPORTUNISTIC,
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
        credentials=Credentials("alice", PASSWORD),
    )
    assert "AUTH" not in script.verbs(0)
    assert PASSWORD not in str(error)


async def test_tls_handshake_against_plain_text_server_fails(tls_material: TlsMaterial) -> None:
    # The server says 220 to STARTTLS and then keeps talking plain text.
    async def fake_tls(session: Any, line: str) -> bool:
        await session.conn.reply("220 2.0.0 Ready to start TLS")
        await session.conn.readline()  # whatever the client sends (a ClientHello)
        await session.conn.send(b"250 2.0.0 hello in the clear\r\n")
        return True

    script = SmtpScript({"STARTTLS": fake_tls}, tls_context=tls_material.server_context())
    await expect_failure(
        script,
        (TlsError, SmtpTimeoutError),
        tls=TlsMode.STARTTLS,
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
    )


# --------------------------------------------------------------------------- AUTH


def endless(challenge: str) -> dict[str, Action | str]:
    reply = f"334 {challenge}"
    return {"AUTH": say(reply), "AUTH-RESPONSE": say(reply)}


@pytest.mark.parametrize(
    ("mechanism", "challenge"),
    [
        ("PLAIN", ""),
        ("LOGIN", "VXNlcm5hbWU6"),
        ("CRAM-MD5", base64.b64encode(b"<1.2@hostile>").decode()),
        ("XOAUTH2", base64.b64encode(b'{"status":"401"}').decode()),
    ],
)
async def test_endless_auth_challenges_are_refused(mechanism: str, challenge: str) -> None:
    async def token() -> str:
        return "ya29.hostile-token"

    script = SmtpScript(endless(challenge))
    await expect_failure(
        script,
        (RemoteProtocolError, AuthenticationError),
        credentials=Credentials("alice", None if mechanism == "XOAUTH2" else PASSWORD),
        token_provider=token if mechanism == "XOAUTH2" else None,
        allow_insecure_auth=True,
        auth_mechanisms=[mechanism],
    )
    # A few lines, then the client gave up (with "*" or by closing).
    assert 1 <= script.verbs(0).count("AUTH-RESPONSE") <= 4


@pytest.mark.parametrize("challenge", ["!!!not base64!!!", "dGVzdA==\r\n334-two lines"])
async def test_malformed_auth_challenge_is_refused(challenge: str) -> None:
    script = SmtpScript({"AUTH": say(f"334 {challenge}")})
    await expect_failure(
        script,
        RemoteProtocolError,
        credentials=Credentials("alice", PASSWORD),
        allow_insecure_auth=True,
        auth_mechanisms=["LOGIN"],
    )


# --------------------------------------------------------------------------- 4xx / 5xx


STEP_ERRORS: dict[str, tuple[type[BaseException], str]] = {
    "EHLO": (SmtpReplyError, "EHLO"),
    "AUTH": (AuthenticationError, "AUTH"),
    "AUTH-RESPONSE": (AuthenticationError, "AUTH LOGIN"),
    "MAIL": (SenderRefused, "MAIL"),
    "RCPT": (RecipientsRefused, "RCPT"),
    "DATA": (DataRefused, "DATA"),
    "END": (DataRefused, "DATA"),
    "BDAT": (DataRefused, "BDAT"),
}
REPLIES = {4: "451 4.3.0 Try again later", 5: "554 5.7.1 Go away"}


TRANSACTION_STEPS = ("MAIL", "RCPT", "DATA", "END", "BDAT")


async def send_expecting(
    script: SmtpScript, step: str, error: type[BaseException], **client: Any
) -> BaseException:
    """Send, expect ``error``; then check what became of the connection.

    A refusal inside a transaction leaves a healthy connection, which the next
    send reuses; a refusal while connecting (EHLO, AUTH) closes it.
    """
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server, **client)
            try:
                with pytest.raises(error) as info:
                    await transport.send_raw(envelope(), message_bytes())
                if step not in TRANSACTION_STEPS:
                    await server.client_closed(0)
                    assert_no_pooled_connection(transport)
                result = await transport.send_raw(envelope(), message_bytes("After"))
                assert result.all_accepted
                if step in TRANSACTION_STEPS:
                    assert len(server.connections) == 1
                    verbs = script.verbs(0)
                    second_mail = [i for i, v in enumerate(verbs) if v == "MAIL"][1]
                    if step in ("MAIL", "RCPT", "DATA"):
                        # The refused transaction was reset before the next one.
                        assert verbs[second_mail - 1] == "RSET"
                else:
                    assert len(server.connections) == 2
            finally:
                await transport.aclose()
            await server.client_closed(len(server.connections) - 1)
    return info.value


@pytest.mark.parametrize("klass", [4, 5])
@pytest.mark.parametrize("step", list(STEP_ERRORS))
async def test_error_reply_at_every_step(step: str, klass: int, tls_material: TlsMaterial) -> None:
    error_type, command = STEP_ERRORS[step]
    reply = REPLIES[klass]
    actions: dict[str, Action | str] = {step: once(reply)}
    client: dict[str, Any] = {}
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    if step == "EHLO":
        actions["HELO"] = once(reply)  # no fallback escape
        command = "EHLO" if klass == 4 else "HELO"
    if step in ("AUTH", "AUTH-RESPONSE"):
        client = {"credentials": Credentials("alice", PASSWORD), "allow_insecure_auth": True}
        if step == "AUTH-RESPONSE":
            client["auth_mechanisms"] = ["LOGIN"]
    if step == "BDAT":
        extensions = CHUNKING
        actions = {"END": once(reply)}
    script = SmtpScript(actions, extensions=extensions)
    error = await send_expecting(script, step, error_type, **client)
    assert isinstance(error, SmtpReplyError)
    assert isinstance(error, TransportError)
    assert error.code == int(reply[:3])
    assert error.transient is (klass == 4)
    assert error.command is not None
    assert error.command.startswith(command)
    # The message names the command, or (RCPT) the refused recipient.
    assert command in str(error) or "rcpt@example.com" in str(error)
    assert error.enhanced_status == reply[4:9]
    if step not in ("END", "BDAT"):
        assert [m.content for m in script.messages] == [message_bytes("After")]


@pytest.mark.parametrize("klass", [4, 5])
async def test_error_reply_to_greeting(klass: int) -> None:
    reply = {4: "421 4.3.2 Too busy", 5: "554 5.3.2 No SMTP service here"}[klass]
    script = SmtpScript({"GREETING": say(reply)})
    error = await expect_failure(script, SmtpConnectError)
    assert error.transient is (klass == 4)
    assert reply[10:] in str(error)


@pytest.mark.parametrize("klass", [4, 5])
async def test_error_reply_to_starttls(klass: int, tls_material: TlsMaterial) -> None:
    reply = {4: "454 4.7.0 TLS not available", 5: "501 5.5.4 Syntax error"}[klass]
    script = SmtpScript({"STARTTLS": say(reply)}, tls_context=tls_material.server_context())
    error = await expect_failure(
        script,
        TlsError,
        tls=TlsMode.STARTTLS,
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
    )
    assert "STARTTLS" in str(error)
    assert reply[:3] in str(error)
    if klass == 5:
        assert not error.transient


async def test_temporary_starttls_refusal_is_transient(tls_material: TlsMaterial) -> None:
    script = SmtpScript(
        {"STARTTLS": say("454 4.7.0 TLS not available due to temporary reason")},
        tls_context=tls_material.server_context(),
    )
    error = await expect_failure(
        script,
        TlsError,
        tls=TlsMode.STARTTLS,
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem),
    )
    assert error.transient


@pytest.mark.parametrize("step", ["EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "END"])
async def test_421_at_every_step_closes_the_connection(
    step: str, tls_material: TlsMaterial
) -> None:
    script_kwargs, client = step_kwargs(step, tls_material)
    script = SmtpScript(
        {step: raw(b"421 4.3.2 Service shutting down\r\n", then_continue=False)}, **script_kwargs
    )
    error = await expect_failure(script, SmtpReplyError, **client)
    assert isinstance(error, SmtpReplyError)
    assert error.code == 421
    assert error.transient


# ----------------------------------------------------------------- stalls and cancellation


async def test_server_that_stops_reading_the_content_times_out() -> None:
    # The server says 354 and then reads nothing: the client's write fills the
    # socket buffers and blocks. data_timeout bounds the write too; the message
    # was not handed over (no end of data went out), so it is not in doubt.
    release = anyio.Event()

    async def stall(session: Session, line: str) -> bool:
        await session.conn.reply("354 go ahead")
        await release.wait()
        # Drain without keeping anything, until the client closes.
        try:
            while True:
                await session.conn.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            session.conn.peer_closed = True
        return False

    # Every connection stalls (a send may be retried once before its content).
    script = SmtpScript({"DATA": stall}, extensions=("8BITMIME",))
    big = message_bytes(body=("z" * 998 + "\r\n") * 24_000)  # about 24 MiB
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server)
            try:
                with pytest.raises(SmtpTimeoutError) as info:
                    await transport.send_raw(envelope(), big)
                assert not isinstance(info.value, OutcomeUnknown)
                assert_no_pooled_connection(transport)
                release.set()
                await server.client_closed(0)
                await assert_next_send_uses_new_connection(transport, server, script)
            finally:
                release.set()
                await transport.aclose()


async def test_cancelled_send_never_leaves_a_desynchronised_connection() -> None:
    # The caller gives up (its own cancel scope) while the server sits on the
    # reply to RCPT; the late reply must not be read by the next send as the
    # reply to its own MAIL.
    late = anyio.Event()
    waiting = anyio.Event()

    async def slow_rcpt(session: Session, line: str) -> bool:
        waiting.set()
        await late.wait()
        session.rcpts.append(line)
        await session.conn.reply("250 2.1.5 Ok (late)")
        return True

    script = SmtpScript({"RCPT": once(slow_rcpt)})
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server, timeout=5.0)
            try:
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(transport.send_raw, envelope(), message_bytes("Cancelled"))
                        await waiting.wait()
                        scope.cancel()
                assert scope.cancelled_caught
                late.set()  # the reply nobody will read now goes out
                result = await transport.send_raw(
                    envelope("second@example.com"), message_bytes("Second")
                )
            finally:
                await transport.aclose()
    assert result.accepted == ("second@example.com",)
    assert [b"Subject: Second" in m.content for m in script.messages] == [True]
    assert script.messages[0].rcpts == ["RCPT TO:<second@example.com>"]
