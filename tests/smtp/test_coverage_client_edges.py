"""SmtpClient used out of order, and servers that refuse RSET and NOOP.

Calls before connect() or after it (twice), a token provider that returns no
token or never returns before the deadline, RSET and NOOP answered with an
error: each is a typed error naming what to do, and the client's state after
it is the one the user expects.
"""

from __future__ import annotations

import anyio
import pytest
from smtp_support import HELLO, settings_for

from lettre.errors import LocalProtocolError, SmtpReplyError, SmtpTimeoutError
from lettre.smtp.auth import Credentials
from lettre.smtp.client import SmtpClient
from lettre.smtp.settings import SmtpSettings
from servers import MiniSmtp, scripted_server

GUARD = 20


def test_settings_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(TypeError, match="settings must be an SmtpSettings"):
        SmtpClient({"host": "mail.example.com"})  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_client_never_connected() -> None:
    client = SmtpClient(SmtpSettings("mail.example.com", 25, tls="none"))
    assert client.greeting is None
    assert client.hello_name is None
    with pytest.raises(LocalProtocolError, match=r"not connected; call connect\(\) first"):
        await client.rset()
    with pytest.raises(LocalProtocolError, match="not connected"):
        client.driver  # noqa: B018
    # Closing what was never opened does nothing, and says nothing.
    await client.abort()
    client.abandon()
    await client.aclose()
    assert not client.is_connected


@pytest.mark.anyio
async def test_connecting_twice_is_refused_and_keeps_the_connection() -> None:
    mini = MiniSmtp()
    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server:
            client = SmtpClient(settings_for(server))
            await client.connect()
            with pytest.raises(LocalProtocolError, match="already connected; use a new one"):
                await client.connect()
            assert client.is_usable
            assert client.hello_name == HELLO
            greeting = client.greeting
            assert greeting is not None
            assert greeting.code == 220
            await client.aclose()
    assert mini.verbs() == ["EHLO", "QUIT"]


@pytest.mark.anyio
@pytest.mark.parametrize("verb", ["RSET", "NOOP"])
async def test_rset_and_noop_refused_are_reply_errors(verb: str) -> None:
    mini = MiniSmtp(replies={verb: "502 5.5.1 not here"})
    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server:
            client = SmtpClient(settings_for(server))
            await client.connect()
            call = client.rset if verb == "RSET" else client.noop
            with pytest.raises(SmtpReplyError, match="not here") as caught:
                await call()
            assert caught.value.code == 502
            assert client.is_usable  # a refusal, not a broken connection
            await client.aclose()


@pytest.mark.anyio
async def test_check_with_noop_refused_closes_the_connection() -> None:
    mini = MiniSmtp(replies={"NOOP": "421 4.3.2 shutting down"})
    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server:
            client = SmtpClient(settings_for(server))
            await client.connect()
            assert await client.check() is False
            assert not client.is_usable
            await mini.connections[0].done.wait()
    assert mini.verbs() == ["EHLO", "NOOP"]


def _token_settings(server: object, provider: object) -> SmtpSettings:
    return settings_for(
        server,  # type: ignore[arg-type]
        credentials=Credentials("alice@example.com"),
        token_provider=provider,
        allow_insecure_auth=True,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("token", ["", None, b"token"])
async def test_a_token_provider_returning_no_token_is_a_type_error(token: object) -> None:
    mini = MiniSmtp(extensions=["PIPELINING", "AUTH XOAUTH2 OAUTHBEARER"])

    async def provider() -> object:
        return token

    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server:
            client = SmtpClient(_token_settings(server, provider))
            with pytest.raises(TypeError, match="the token provider must return a non-empty str"):
                await client.connect()
            await client.abort()
    assert "AUTH" not in mini.verbs()


@pytest.mark.anyio
async def test_a_token_provider_past_the_deadline_times_out_naming_it() -> None:
    mini = MiniSmtp(extensions=["PIPELINING", "AUTH XOAUTH2"])
    called = anyio.Event()

    async def provider() -> str:
        called.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server:
            client = SmtpClient(_token_settings(server, provider))
            with pytest.raises(
                SmtpTimeoutError,
                match=r"deadline passed while waiting for the token provider \(127\.0\.0\.1:\d+\)",
            ):
                await client.connect(deadline=anyio.current_time() + 0.5)
            assert called.is_set()
            await client.abort()
    assert "AUTH" not in mini.verbs()


@pytest.mark.anyio
async def test_abandoning_a_connection_twice_shuts_it_down_once() -> None:
    # On uvloop too, whose transport sockets refuse shutdown().
    mini = MiniSmtp()
    with anyio.fail_after(GUARD):
        async with scripted_server(mini) as server:
            client = SmtpClient(settings_for(server))
            await client.connect()
            client.abandon()
            client.abandon()  # already shut down: nothing more happens
            assert not client.is_usable
            await mini.connections[0].done.wait()
            await client.aclose()
    assert mini.verbs() == ["EHLO"]  # no QUIT: the event loop may be gone
