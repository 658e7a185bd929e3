"""CRAM-MD5 (RFC 2195)."""

from __future__ import annotations

import hashlib
import hmac

from lettre.errors import RemoteProtocolError
from lettre.protocol.sasl.base import Mechanism, utf8

__all__ = ["CramMd5"]


class CramMd5(Mechanism):
    """CRAM-MD5 (RFC 2195): the user name and an HMAC-MD5 of the challenge.

    The password itself is not sent, but someone who records the exchange
    can test guesses against it offline, and servers must keep a password
    equivalent: it comes last among the password mechanisms over TLS.

    Args:
        username: the user name.
        password: the shared secret.

    Raises:
        LocalProtocolError: when a value is not a str.
    """

    __slots__ = ("_password", "_username")

    name = "CRAM-MD5"
    sends_secret = False
    rank = 40
    max_challenges = 1

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self._username = utf8("username", username, "")
        self._password = utf8("password", password, "")

    def _respond(self, number: int, challenge: bytes) -> bytes:
        if not challenge:
            raise RemoteProtocolError("CRAM-MD5: the server sent an empty challenge")
        digest = hmac.new(self._password, challenge, hashlib.md5).hexdigest()
        return self._username + b" " + digest.encode("ascii")
