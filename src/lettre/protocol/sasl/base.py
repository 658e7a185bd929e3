"""The base class of the SASL mechanisms, and what they share.

A mechanism never does I/O. The caller sends
``Auth(mechanism.name, mechanism.initial_response())``; each time the server
answers 334 it sends ``AuthResponse(mechanism.respond(decode_challenge(reply)))``,
until the server answers 235 (success) or an error. After a 235 it calls
:meth:`Mechanism.check_success`, which fails when the mechanism expected the
server to prove itself and it did not. Each mechanism accepts a bounded number
of challenges: one more is a :class:`RemoteProtocolError`, so a server cannot
keep the exchange going forever.

Credentials are never part of a repr or an error message.
"""

from __future__ import annotations

import abc
import base64
import binascii
from typing import ClassVar, Literal

from lettre.errors import LocalProtocolError, RemoteProtocolError
from lettre.protocol.replies import Reply

__all__ = [
    "Mechanism",
    "Needs",
    "TokenMechanism",
    "decode_challenge",
]

Needs = Literal["password", "token"]
"""Which secret a mechanism is built with: a password, or an OAuth 2.0 token."""


def decode_challenge(reply: Reply) -> bytes:
    """Decode the base64 challenge carried by a 334 reply.

    Args:
        reply: the server's 334 reply.

    Returns:
        The raw challenge (``b""`` for an empty one).

    Raises:
        RemoteProtocolError: when the reply is not a single-line 334 reply or
            its text is not valid base64.
    """
    if reply.code != 334:
        raise RemoteProtocolError(f"expected a 334 challenge, got {reply.code}")
    if len(reply.lines) != 1:
        raise RemoteProtocolError("a 334 challenge must be a single line")
    text = reply.lines[0].strip()
    if text == "=":
        return b""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise RemoteProtocolError("the 334 challenge is not valid base64") from exc


def utf8(what: str, value: object, forbidden: str) -> bytes:
    """Check that ``value`` is a str without the ``forbidden`` characters; encode it.

    The error names ``what`` but never shows the value, which may be a secret.
    """
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a str, not {type(value).__name__}")
    for char in forbidden:
        if char in value:
            raise LocalProtocolError(f"{what} contains a character this mechanism cannot send")
    return value.encode("utf-8")


def saslname(value: str) -> str:
    """Escape a user name for a GS2 header or SCRAM: ``=`` as ``=3D``, ``,`` as ``=2C``."""
    return value.replace("=", "=3D").replace(",", "=2C")


class Mechanism(abc.ABC):
    """Base class of the SASL mechanisms: one subclass per mechanism.

    A subclass declares what the rest of lettre needs to know about it as
    class attributes, and implements its steps: :meth:`initial_response`,
    :meth:`_respond` for each challenge and, when the server has to prove
    something, :meth:`check_success`. Registering the class in
    :data:`lettre.protocol.sasl.MECHANISMS` makes it available.

    Attributes:
        name: the mechanism name for the AUTH command (upper-case).
        needs: ``"password"`` or ``"token"``: the secret it is built with.
        sends_secret: True when the secret itself goes over the wire (PLAIN,
            LOGIN, XOAUTH2, OAUTHBEARER): such a mechanism is used only
            inside TLS, unless ``allow_insecure_auth`` says otherwise.
        rank: the default preference among mechanisms needing the same
            secret, lower first.
        refresh_attempts: how many times the exchange is repeated with a
            fresh secret after a 535 reply (token mechanisms ask the token
            provider again once: a 535 usually means the token expired).
        max_challenges: how many 334 challenges the mechanism answers.
        error: the error description the server sent during the exchange
            (an OAuth JSON document, a SCRAM ``e=`` value), if any.
    """

    __slots__ = ("_challenges", "error")

    name: ClassVar[str] = ""
    needs: ClassVar[Needs] = "password"
    sends_secret: ClassVar[bool] = True
    rank: ClassVar[int] = 100
    refresh_attempts: ClassVar[int] = 0
    max_challenges: ClassVar[int] = 0

    def __init__(self) -> None:
        self._challenges = 0
        self.error: str | None = None

    @classmethod
    def create(
        cls,
        username: str,
        secret: str,
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> Mechanism:
        """Build the machine for one AUTH exchange.

        This is how the SMTP client makes any mechanism; a mechanism that
        uses the server's host or port (OAUTHBEARER) overrides it.

        Args:
            username: the user name.
            secret: the password or the token, as :attr:`needs` says.
            host: the host name the client connected to.
            port: the port the client connected to.

        Raises:
            LocalProtocolError: when a value cannot be sent with this mechanism.
        """
        return cls(username, secret)  # type: ignore[call-arg]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<credentials hidden>)"

    def initial_response(self) -> bytes | None:
        """Return the response sent on the AUTH line, or None to wait for a challenge."""
        return None

    def respond(self, challenge: bytes) -> bytes:
        """Answer one decoded 334 challenge.

        Args:
            challenge: the raw challenge (see :func:`decode_challenge`).

        Returns:
            The raw response, sent as ``AuthResponse(response)``.

        Raises:
            RemoteProtocolError: when the server sent more challenges than
                the mechanism allows, or a challenge it cannot answer (the
                caller then cancels the exchange).
        """
        if self._challenges >= self.max_challenges:
            raise RemoteProtocolError(
                f"{self.name}: the server sent more than {self.max_challenges} challenge(s)"
            )
        self._challenges += 1
        return self._respond(self._challenges, challenge)

    def check_success(self) -> None:
        """Check that a 235 reply ends a complete exchange.

        The default accepts it. A mechanism in which the server proves that
        it knows the password (SCRAM) fails here when that proof was missing.

        Raises:
            RemoteProtocolError: when the server claimed success too early.
        """
        return

    @abc.abstractmethod
    def _respond(self, number: int, challenge: bytes) -> bytes:
        """Answer challenge ``number`` (1 for the first)."""


class TokenMechanism(Mechanism):
    """Base class of the OAuth 2.0 bearer token mechanisms (XOAUTH2, OAUTHBEARER).

    They are built with a token from the token provider, and repeated once
    with a fresh token after a 535 reply. A refused token is answered by a 334
    whose challenge is a JSON error description, kept in :attr:`error`; the
    client acknowledges it with :attr:`failure_ack` and the server then
    replies 535.

    Attributes:
        failure_ack: the response that acknowledges the server's JSON error.
    """

    __slots__ = ()

    needs = "token"
    refresh_attempts = 1
    max_challenges = 1
    failure_ack: ClassVar[bytes] = b""

    def _respond(self, number: int, challenge: bytes) -> bytes:
        self.error = challenge.decode("utf-8", "replace")
        return self.failure_ack
