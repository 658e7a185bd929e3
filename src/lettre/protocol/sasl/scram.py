"""SCRAM (RFC 5802) and SCRAM-SHA-256 (RFC 7677).

The client and the server prove to each other that they know the password,
and the password never crosses the wire: the client sends a proof derived
from it, and the server answers with a signature only someone who knows the
password (or the verifier stored from it) can compute. lettre checks that
signature; a server that fails the check is refused.

No channel binding (``SCRAM-SHA-256-PLUS`` is not offered): the GS2 header
is ``n,,``, so the channel binding attribute is ``c=biws``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import ClassVar

from lettre.errors import LocalProtocolError, RemoteProtocolError
from lettre.protocol.sasl.base import Mechanism, saslname
from lettre.protocol.sasl.saslprep import saslprep

__all__ = [
    "MAX_ITERATIONS",
    "MIN_ITERATIONS",
    "Scram",
    "ScramSha256",
]

MIN_ITERATIONS = 4096
"""The smallest iteration count accepted (RFC 7677 section 4 asks servers for 4096).

A lower count would make the proof the client sends cheap to attack offline.
"""

MAX_ITERATIONS = 600_000
"""The largest iteration count accepted, so a server cannot make the client burn CPU.

600,000 is OWASP's recommendation for PBKDF2-HMAC-SHA256 (2023); it costs
about a quarter of a second, once per password and salt in a process.
"""

_GS2_HEADER = b"n,,"
_CHANNEL_BINDING = b"c=" + base64.b64encode(_GS2_HEADER)  # b"c=biws"
_MAX_DIGITS = 10


# Salted passwords already computed, keyed by a digest of their inputs (never
# the password itself), so that a pool's new connections to the same server
# do not pay for PBKDF2 again (RFC 5802 section 5.1 allows a client to cache
# it). Bounded: emptied when full.
_SALTED: dict[bytes, bytes] = {}
_SALTED_MAX = 32


def _salted_password(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    # Hi() of RFC 5802 is PBKDF2 with HMAC.
    key = hashlib.sha256(
        b"%s %d %d %s%s" % (hash_name.encode(), iterations, len(salt), salt, password)
    ).digest()
    salted = _SALTED.get(key)
    if salted is None:
        salted = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
        if len(_SALTED) >= _SALTED_MAX:
            _SALTED.clear()
        _SALTED[key] = salted
    return salted


def _attributes(message: bytes, what: str) -> list[tuple[str, str]]:
    """Split a SCRAM message into (attribute, value) pairs, in order."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"the SCRAM {what} is not UTF-8") from exc
    pairs: list[tuple[str, str]] = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isascii() or not part[0].isalpha():
            raise RemoteProtocolError(f"the SCRAM {what} is malformed")
        pairs.append((part[0], part[2:]))
    return pairs


def _printable(value: str) -> bool:
    return bool(value) and all("\x21" <= char <= "\x7e" and char != "," for char in value)


class Scram(Mechanism):
    """The SCRAM family (RFC 5802); a subclass names the hash.

    The exchange: the client sends ``n,,n=<user>,r=<nonce>``; the server
    answers with its nonce, a salt and an iteration count; the client sends
    its proof; the server answers with its signature ``v=...``, which the
    client checks before it answers with an empty response and the server
    replies 235. A 235 without a checked signature is refused too.

    The user name and the password are prepared with SASLprep (RFC 4013).

    Args:
        username: the user name.
        password: the password.
        nonce: the client nonce (printable ASCII without a comma); a random
            one by default. Pass one only to reproduce a known exchange.
        min_iterations: the smallest iteration count accepted.
        max_iterations: the largest iteration count accepted.

    Raises:
        LocalProtocolError: when a value is not a str, the user name is empty
            or a value contains a character SASLprep prohibits.

    Attributes:
        hash_name: the :mod:`hashlib` name of the hash.
    """

    __slots__ = (
        "_client_first_bare",
        "_max_iterations",
        "_min_iterations",
        "_nonce",
        "_password",
        "_server_signature",
        "_verified",
    )

    hash_name: ClassVar[str] = ""
    sends_secret = False
    max_challenges = 2

    def __init__(
        self,
        username: str,
        password: str,
        *,
        nonce: str | None = None,
        min_iterations: int = MIN_ITERATIONS,
        max_iterations: int = MAX_ITERATIONS,
    ) -> None:
        super().__init__()
        if not self.hash_name:
            raise TypeError("Scram is a family: use a subclass such as ScramSha256")
        user = saslprep(username, what="the user name")
        if not user:
            raise LocalProtocolError(f"{self.name}: the user name is empty after SASLprep")
        self._password = saslprep(password, what="the password").encode("utf-8")
        if nonce is None:
            nonce = secrets.token_urlsafe(24)
        elif not (isinstance(nonce, str) and _printable(nonce)):
            raise LocalProtocolError("the nonce must be printable ASCII without a comma")
        self._nonce = nonce
        self._min_iterations = min_iterations
        self._max_iterations = max_iterations
        self._client_first_bare = f"n={saslname(user)},r={nonce}".encode()
        self._server_signature = b""
        self._verified = False

    def initial_response(self) -> bytes:
        """Return the client-first message."""
        return _GS2_HEADER + self._client_first_bare

    def _respond(self, number: int, challenge: bytes) -> bytes:
        if number == 1:
            return self._client_final(challenge)
        return self._server_final(challenge)

    def _client_final(self, server_first: bytes) -> bytes:
        name = self.name
        attributes = _attributes(server_first, "server-first message")
        if attributes[0][0] == "m":
            raise RemoteProtocolError(f"{name}: the server requires an extension lettre lacks")
        if [key for key, _ in attributes[:3]] != ["r", "s", "i"]:
            raise RemoteProtocolError(f"{name}: the server-first message is malformed")
        nonce, salt_text, count = (value for _, value in attributes[:3])
        if not (_printable(nonce) and nonce.startswith(self._nonce) and nonce != self._nonce):
            raise RemoteProtocolError(
                f"{name}: the server's nonce does not extend the client's (a replayed "
                "or forged exchange)"
            )
        try:
            salt = base64.b64decode(salt_text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error) as exc:
            raise RemoteProtocolError(f"{name}: the server's salt is not valid base64") from exc
        if not salt:
            raise RemoteProtocolError(f"{name}: the server's salt is empty")
        if not (count.isascii() and count.isdigit() and len(count) <= _MAX_DIGITS):
            raise RemoteProtocolError(f"{name}: the server's iteration count is not a number")
        iterations = int(count)
        if iterations < self._min_iterations:
            raise RemoteProtocolError(
                f"{name}: the server asks for {iterations} iterations, fewer than the "
                f"{self._min_iterations} that keep the proof expensive to attack"
            )
        if iterations > self._max_iterations:
            raise RemoteProtocolError(
                f"{name}: the server asks for {iterations} iterations, more than the "
                f"{self._max_iterations} lettre computes"
            )

        without_proof = _CHANNEL_BINDING + b",r=" + nonce.encode("ascii")
        auth_message = b",".join((self._client_first_bare, server_first, without_proof))
        digest = self.hash_name
        salted = _salted_password(digest, self._password, salt, iterations)
        self._password = b""
        client_key = hmac.digest(salted, b"Client Key", digest)
        stored_key = hashlib.new(digest, client_key).digest()
        signature = hmac.digest(stored_key, auth_message, digest)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", digest)
        self._server_signature = hmac.digest(server_key, auth_message, digest)
        return without_proof + b",p=" + base64.b64encode(proof)

    def _server_final(self, server_final: bytes) -> bytes:
        name = self.name
        key, value = _attributes(server_final, "server-final message")[0]
        if key == "e":
            # The server refuses; it says why, then replies 535 to the empty response.
            self.error = value
            return b""
        if key != "v":
            raise RemoteProtocolError(f"{name}: the server-final message is malformed")
        try:
            signature = base64.b64decode(value.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error) as exc:
            raise RemoteProtocolError(f"{name}: the server's signature is not base64") from exc
        if not hmac.compare_digest(signature, self._server_signature):
            raise RemoteProtocolError(
                f"{name}: the server's signature is wrong, so it does not know the "
                "password: it is not the server it claims to be, or it is broken. "
                "The exchange was cancelled; check the server's address and its SCRAM "
                "set-up, or choose another mechanism with auth_mechanisms="
            )
        self._verified = True
        return b""

    def check_success(self) -> None:
        """Refuse a 235 that came before the server's signature was checked.

        Raises:
            RemoteProtocolError: when the server did not prove that it knows
                the password.
        """
        if not self._verified:
            raise RemoteProtocolError(
                f"{self.name}: the server accepted the credentials without proving "
                "that it knows the password (no server signature); the connection "
                "is not used"
            )


class ScramSha256(Scram):
    """SCRAM-SHA-256 (RFC 7677): SCRAM with SHA-256.

    The strongest password mechanism here: the password never goes over the
    wire and the server proves that it knows it. Preferred over PLAIN inside
    TLS, and usable (with ``allow_insecure_auth``) without TLS.
    """

    __slots__ = ()

    name = "SCRAM-SHA-256"
    hash_name = "sha256"
    rank = 10
