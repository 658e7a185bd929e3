"""PLAIN (RFC 4616)."""

from __future__ import annotations

from lettre.errors import RemoteProtocolError
from lettre.protocol.sasl.base import Mechanism, utf8

__all__ = ["Plain"]


class Plain(Mechanism):
    """PLAIN (RFC 4616): ``authzid NUL username NUL password`` in one message.

    The message goes with the AUTH command. If the server still sends an
    (empty) challenge, the same message answers it, once. The password goes
    over the wire: TLS only.

    Args:
        username: the authentication identity.
        password: the password.
        authzid: the authorization identity, usually empty.

    Raises:
        LocalProtocolError: when a value is not a str or contains NUL.
    """

    __slots__ = ("_message",)

    name = "PLAIN"
    rank = 20
    max_challenges = 1

    def __init__(self, username: str, password: str, authzid: str = "") -> None:
        super().__init__()
        parts = (
            utf8("authzid", authzid, "\0"),
            utf8("username", username, "\0"),
            utf8("password", password, "\0"),
        )
        self._message = b"\0".join(parts)

    def initial_response(self) -> bytes:
        """Return the whole PLAIN message."""
        return self._message

    def _respond(self, number: int, challenge: bytes) -> bytes:
        if challenge:
            raise RemoteProtocolError("PLAIN: the server sent a non-empty challenge")
        return self._message
