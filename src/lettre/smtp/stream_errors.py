"""How I/O failures at the socket become lettre's errors.

The byte streams under :class:`~lettre.smtp.stream.SmtpStream` (anyio's, and
the asyncio one in :mod:`lettre.smtp.asyncio_stream`) and the send path's
backends raise foreign exceptions (``OSError``, ``ssl.SSLError``, anyio's);
these helpers turn them into :mod:`lettre.errors` with a message that names
the peer and the reason, the same on every event loop library.
"""

from __future__ import annotations

import socket
import ssl

import anyio

from lettre.errors import ServerDisconnected, SmtpConnectError, SmtpError, TlsError

__all__ = ["describe_error"]

_NOT_TLS_PORT = (
    "; the port does not speak TLS from the first byte: use "
    "tls=TlsMode.STARTTLS (usually port 587) or tls=TlsMode.NONE"
)


def _handshake_error(exc: BaseException, peer: str, when: str) -> SmtpError:
    """The lettre error for a failed TLS handshake (any backend).

    ``when`` is "connecting" for implicit TLS, "after STARTTLS" otherwise.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        return TlsError(f"the certificate of {peer} was not accepted ({when}): {reason}")
    if isinstance(exc, ssl.SSLError):
        message = f"TLS handshake with {peer} failed ({when}): {describe_error(exc)}"
        if when == "connecting" and "WRONG_VERSION_NUMBER" in (exc.reason or str(exc)).upper():
            # The server's first bytes are not TLS: most likely a plaintext greeting.
            message += _NOT_TLS_PORT
        return TlsError(message)
    if isinstance(exc, (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError)):
        # The server dropped the handshake: a network blip, or a server that
        # refuses our TLS versions. The backends report it differently (asyncio
        # as a lost connection, anyio as an end of stream or a broken
        # resource), and cannot tell the two apart: the same transient error.
        detail = "" if isinstance(exc, anyio.EndOfStream) else f": {describe_error(exc)}"
        return TlsError(
            f"{peer} closed the connection during the TLS handshake ({when}){detail}; "
            "if it keeps doing so, it may not accept TLS 1.2 or newer",
            transient=True,
        )
    if isinstance(exc, ValueError):
        # ssl rejects some server names (for example an empty one) this way.
        return TlsError(f"cannot start TLS with {peer}: {exc}")
    return ServerDisconnected(
        f"the connection to {peer} broke during the TLS handshake ({when}): {describe_error(exc)}"
    )


def _lookup_error(host: str, peer: str, exc: socket.gaierror) -> SmtpConnectError:
    """The error for a host name that did not resolve.

    A name that does not exist (no such name, no address for it) will not
    exist on the next try either; every other failure of the resolver (for
    now, or of the resolver itself) is transient.
    """
    unknown = {getattr(socket, name, None) for name in ("EAI_NONAME", "EAI_NODATA")} - {None}
    if exc.errno not in unknown:
        return SmtpConnectError(
            f"cannot connect to {peer}: looking up {host!r} failed for now "
            f"({describe_error(exc)}); try again later"
        )
    return SmtpConnectError(
        f"cannot connect to {peer}: the name {host!r} does not resolve ({describe_error(exc)}); "
        "check the host name (give the port separately: SmtpTransport(host, port))",
        transient=False,
    )


def describe_error(exc: BaseException) -> str:
    """A short description of an I/O error for messages (the reason, not the class)."""
    cause: BaseException = exc
    while isinstance(cause, (anyio.BrokenResourceError, anyio.ClosedResourceError)):
        if cause.__cause__ is None:
            break
        cause = cause.__cause__
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__
