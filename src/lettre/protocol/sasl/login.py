"""LOGIN (draft-murchison-sasl-login)."""

from __future__ import annotations

from lettre.protocol.sasl.base import Mechanism, utf8

__all__ = ["Login"]


class Login(Mechanism):
    """LOGIN (draft-murchison-sasl-login): the user name, then the password.

    No initial response; the first challenge (``Username:``) is answered with
    the user name and the second (``Password:``) with the password, whatever
    their text, as the servers that offer LOGIN expect. The password goes
    over the wire: TLS only.

    Args:
        username: the user name.
        password: the password.

    Raises:
        LocalProtocolError: when a value is not a str.
    """

    __slots__ = ("_password", "_username")

    name = "LOGIN"
    rank = 30
    max_challenges = 2

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self._username = utf8("username", username, "")
        self._password = utf8("password", password, "")

    def _respond(self, number: int, challenge: bytes) -> bytes:
        return self._username if number == 1 else self._password
