"""Connection errors say what went wrong and what to do, and whether a retry can help.

- a TLS mode that does not match the port (implicit TLS against a plaintext
  port, STARTTLS or none against an implicit-TLS port) names the right mode;
- a host name that does not resolve is a permanent error, a resolver that
  fails for now a transient one.
"""

from __future__ import annotations

import socket

import pytest

from lettre import SmtpTransport, TlsMode
from lettre.errors import SmtpConnectError, SmtpTimeoutError, TlsError
from lettre.smtp.stream_errors import _lookup_error
from lettre.smtp.tls import TlsParameters
from servers import ServerFactory

SHORT = 0.5


@pytest.mark.anyio
async def test_implicit_tls_against_a_plaintext_port_says_to_use_starttls(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    server = smtpd(tls="none")
    transport = SmtpTransport(
        "127.0.0.1", server.port, tls=TlsMode.IMPLICIT, tls_parameters=tls_params, timeout=5
    )
    async with transport:
        with pytest.raises(TlsError) as caught:
            await transport.test_connection()
    message = str(caught.value)
    assert f"127.0.0.1:{server.port}" in message
    assert "does not speak TLS from the first byte" in message
    assert "TlsMode.STARTTLS" in message
    assert "TlsMode.NONE" in message


@pytest.mark.anyio
@pytest.mark.parametrize("mode", [TlsMode.STARTTLS, TlsMode.NONE])
async def test_plaintext_against_an_implicit_tls_port_says_to_use_implicit_tls(
    smtpd: ServerFactory, tls_params: TlsParameters, mode: TlsMode
) -> None:
    server = smtpd(tls="implicit")
    transport = SmtpTransport(
        "127.0.0.1", server.port, tls=mode, tls_parameters=tls_params, timeout=SHORT
    )
    async with transport:
        with pytest.raises(SmtpTimeoutError) as caught:
            await transport.test_connection()
    message = str(caught.value)
    assert "the greeting" in message
    assert "TlsMode.IMPLICIT" in message
    assert caught.value.transient


@pytest.mark.anyio
async def test_a_slow_greeting_over_implicit_tls_gives_no_tls_advice(
    smtpd: ServerFactory, tls_params: TlsParameters
) -> None:
    # The hint is for plaintext connections only: over TLS the port is right.
    from servers import ScriptedConnection, scripted_server

    async def script(conn: ScriptedConnection) -> None:
        await conn.wait_closed()

    async with scripted_server(script) as server:
        transport = SmtpTransport("127.0.0.1", server.port, tls=TlsMode.NONE, timeout=SHORT)
        async with transport:
            with pytest.raises(SmtpTimeoutError, match="greeting") as caught:
                await transport.test_connection()
        # Plaintext: the hint is there.
        assert "TlsMode.IMPLICIT" in str(caught.value)


@pytest.mark.anyio
async def test_a_name_that_does_not_resolve_is_reported_with_the_name() -> None:
    # .invalid never resolves (RFC 2606).
    transport = SmtpTransport("no-such-host.invalid", 2525, tls=TlsMode.NONE, timeout=5)
    async with transport:
        with pytest.raises(SmtpConnectError) as caught:
            await transport.test_connection()
    error = caught.value
    assert "'no-such-host.invalid'" in str(error)
    cause = error.__cause__
    assert isinstance(cause, socket.gaierror)
    # Only a name that does not exist is final.
    assert error.transient == (cause.errno not in (socket.EAI_NONAME, socket.EAI_NODATA))


@pytest.mark.parametrize("name", ["EAI_FAIL", "EAI_MEMORY", "EAI_SYSTEM", "EAI_AGAIN"])
def test_other_resolver_failures_are_transient(name: str) -> None:
    errno = getattr(socket, name, None)
    if errno is None:
        pytest.skip(f"{name} is not defined on this system")
    error = _lookup_error("mx.example", "mx.example:25", socket.gaierror(errno, "failure"))
    assert error.transient


def test_unknown_names_are_permanent_and_resolver_failures_transient() -> None:
    unknown = _lookup_error(
        "mx.example", "mx.example:25", socket.gaierror(socket.EAI_NONAME, "Name not known")
    )
    assert not unknown.transient
    assert "'mx.example' does not resolve" in str(unknown)
    assert "check the host name" in str(unknown)
    later = _lookup_error(
        "mx.example", "mx.example:25", socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
    )
    assert later.transient
    assert "try again later" in str(later)
