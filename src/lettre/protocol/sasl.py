"""SASL mechanisms for SMTP AUTH as pure challenge/response machines.

A mechanism never does I/O. The caller sends
``Auth(mechanism.name, mechanism.initial_response())``; each time the server
answers 334 it sends ``AuthResponse(mechanism.respond(decode_challenge(reply)))``,
until the server answers 235 (success) or an error. Each mechanism accepts a
bounded number of challenges: one more is a :class:`RemoteProtocolError`, so a
server cannot keep the exchange going forever.

Credentials are never part of a repr or an error message.
"""

from __future__ import annotations

import abc
import base64
import binascii
import hashlib
import hmac

from lettre.errors import LocalProtocolError, RemoteProtocolError
from lettre.protocol.replies import Reply

__all__ = [
    "CramMd5",
    "Login",
    "Mechanism",
    "Plain",
    "XOAuth2",
    "decode_challenge",
]


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


def _utf8(what: str, value: object, forbidden: str) -> bytes:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a str, not {type(value).__name__}")
    for char in forbidden:
        if char in value:
            raise LocalProtocolError(f"{what} contains a character this mechanism cannot send")
    return value.encode("utf-8")


class Mechanism(abc.ABC):
    """Base class of the SASL mechanisms.

    Attributes:
        name: the mechanism name for the AUTH command (upper-case).
        max_challenges: how many 334 challenges the mechanism answers.
    """

    __slots__ = ("_challenges",)

    name: str = ""
    max_challenges: int = 0

    def __init__(self) -> None:
        self._challenges = 0

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
                the mechanism allows, or a challenge it cannot answer.
        """
        if self._challenges >= self.max_challenges:
            raise RemoteProtocolError(
                f"{self.name}: the server sent more than {self.max_challenges} challenge(s)"
            )
        self._challenges += 1
        return self._respond(self._challenges, challenge)

    @abc.abstractmethod
    def _respond(self, number: int, challenge: bytes) -> bytes:
        """Answer challenge ``number`` (1 for the first)."""


class Plain(Mechanism):
    """PLAIN (RFC 4616): ``authzid NUL username NUL password`` in one message.

    The message goes with the AUTH command. If the server still sends an
    (empty) challenge, the same message answers it, once.

    Args:
        username: the authentication identity.
        password: the password.
        authzid: the authorization identity, usually empty.

    Raises:
        LocalProtocolError: when a value is not a str or contains NUL.
    """

    __slots__ = ("_message",)

    name = "PLAIN"
    max_challenges = 1

    def __init__(self, username: str, password: str, authzid: str = "") -> None:
        super().__init__()
        parts = (
            _utf8("authzid", authzid, "\0"),
            _utf8("username", username, "\0"),
            _utf8("password", password, "\0"),
        )
        self._message = b"\0".join(parts)

    def initial_response(self) -> bytes:
        """Return the whole PLAIN message."""
        return self._message

    def _respond(self, number: int, challenge: bytes) -> bytes:
        if challenge:
            raise RemoteProtocolError("PLAIN: the server sent a non-empty challenge")
        return self._message


class Login(Mechanism):
    """LOGIN (draft-murchison-sasl-login): the user name, then the password.

    No initial response; the first challenge (``Username:``) is answered with
    the user name and the second (``Password:``) with the password, whatever
    their text, as the servers that offer LOGIN expect.

    Args:
        username: the user name.
        password: the password.

    Raises:
        LocalProtocolError: when a value is not a str.
    """

    __slots__ = ("_password", "_username")

    name = "LOGIN"
    max_challenges = 2

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self._username = _utf8("username", username, "")
        self._password = _utf8("password", password, "")

    def _respond(self, number: int, challenge: bytes) -> bytes:
        return self._username if number == 1 else self._password


class CramMd5(Mechanism):
    """CRAM-MD5 (RFC 2195): the user name and an HMAC-MD5 of the challenge.

    Args:
        username: the user name.
        password: the shared secret.

    Raises:
        LocalProtocolError: when a value is not a str.
    """

    __slots__ = ("_password", "_username")

    name = "CRAM-MD5"
    max_challenges = 1

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self._username = _utf8("username", username, "")
        self._password = _utf8("password", password, "")

    def _respond(self, number: int, challenge: bytes) -> bytes:
        if not challenge:
            raise RemoteProtocolError("CRAM-MD5: the server sent an empty challenge")
        digest = hmac.new(self._password, challenge, hashlib.md5).hexdigest()
        return self._username + b" " + digest.encode("ascii")


class XOAuth2(Mechanism):
    """XOAUTH2 (Google's and Microsoft's OAuth 2.0 bearer token mechanism).

    The token goes with the AUTH command. When the token is refused, the
    server sends a 334 whose challenge is a JSON error description; it is
    answered with an empty response and the server then replies 535. The
    JSON text is kept in :attr:`error`.

    Args:
        username: the mailbox the token was issued for.
        token: the OAuth 2.0 access token.

    Raises:
        LocalProtocolError: when a value is not a str or contains ``\\x01``.
    """

    __slots__ = ("_message", "error")

    name = "XOAUTH2"
    max_challenges = 1

    def __init__(self, username: str, token: str) -> None:
        super().__init__()
        user = _utf8("username", username, "\x01")
        secret = _utf8("token", token, "\x01")
        self._message = b"user=" + user + b"\x01auth=Bearer " + secret + b"\x01\x01"
        #: The server's error description (decoded JSON text), if it sent one.
        self.error: str | None = None

    def initial_response(self) -> bytes:
        """Return the XOAUTH2 message carrying the token."""
        return self._message

    def _respond(self, number: int, challenge: bytes) -> bytes:
        self.error = challenge.decode("utf-8", "replace")
        return b""
