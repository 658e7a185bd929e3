"""XOAUTH2 (Google's and Microsoft's OAuth 2.0 mechanism, before RFC 7628)."""

from __future__ import annotations

from lettre.protocol.sasl.base import TokenMechanism, utf8

__all__ = ["XOAuth2"]


class XOAuth2(TokenMechanism):
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

    __slots__ = ("_message",)

    name = "XOAUTH2"
    rank = 10

    def __init__(self, username: str, token: str) -> None:
        super().__init__()
        user = utf8("username", username, "\x01")
        secret = utf8("token", token, "\x01")
        self._message = b"user=" + user + b"\x01auth=Bearer " + secret + b"\x01\x01"

    def initial_response(self) -> bytes:
        """Return the XOAUTH2 message carrying the token."""
        return self._message
