"""OAUTHBEARER (RFC 7628): an OAuth 2.0 bearer token, the standard way."""

from __future__ import annotations

from lettre.errors import LocalProtocolError
from lettre.protocol.sasl.base import Mechanism, TokenMechanism, saslname, utf8

__all__ = ["OAuthBearer"]


class OAuthBearer(TokenMechanism):
    """OAUTHBEARER (RFC 7628): a GS2 header, then key/value pairs with the token.

    The client's one message is ``n,a=<user>,`` followed by ``host=``,
    ``port=`` (when known) and ``auth=Bearer <token>``, each ended by
    ``\\x01``, and a last ``\\x01``. It goes with the AUTH command. A refused
    token gets a 334 whose challenge is a JSON error description (kept in
    :attr:`error`); it is acknowledged with a single ``\\x01`` and the server
    then replies 535.

    Args:
        username: the identity the token was issued for (sent as the GS2
            authorization identity, ``a=``).
        token: the OAuth 2.0 access token.
        host: the host name the client connected to, sent as ``host=``.
        port: the port the client connected to, sent as ``port=``.

    Raises:
        LocalProtocolError: when a value is not a str (the port an int), or
            contains a character the message cannot carry.
    """

    __slots__ = ("_message",)

    name = "OAUTHBEARER"
    rank = 20
    failure_ack = b"\x01"

    def __init__(
        self,
        username: str,
        token: str,
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__()
        user = utf8("username", username, "\x01")
        secret = utf8("token", token, "\x01")
        header = b"n,a=" + saslname(user.decode("utf-8")).encode("utf-8") + b","
        pairs: list[bytes] = []
        if host is not None:
            pairs.append(b"host=" + utf8("host", host, "\x01\r\n"))
        if port is not None:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise LocalProtocolError("port must be an int between 1 and 65535")
            pairs.append(b"port=%d" % port)
        pairs.append(b"auth=Bearer " + secret)
        self._message = header + b"\x01" + b"".join(pair + b"\x01" for pair in pairs) + b"\x01"

    @classmethod
    def create(
        cls,
        username: str,
        secret: str,
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> Mechanism:
        """Build the machine for one AUTH exchange, with the server's host and port.

        Args:
            username: the user name.
            secret: the OAuth 2.0 access token.
            host: the host name the client connected to.
            port: the port the client connected to.

        Raises:
            LocalProtocolError: when a value cannot be sent.
        """
        return cls(username, secret, host=host, port=port)

    def initial_response(self) -> bytes:
        """Return the OAUTHBEARER message carrying the token."""
        return self._message
