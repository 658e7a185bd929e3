"""Credentials and SASL mechanism choice for SMTP AUTH (RFC 4954).

The mechanisms themselves (the challenge and response machines) live in the
sans-IO core, :mod:`lettre.protocol.sasl`, one class each, found by name in
its registry; this module holds what the user configures and the rule that
picks mechanisms from what the server offers, using what each class declares
(the secret it needs, whether it sends it, its rank).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from lettre.protocol.sasl import MECHANISMS, Mechanism

__all__ = [
    "DEFAULT_MECHANISMS_INSECURE",
    "DEFAULT_MECHANISMS_TLS",
    "DEFAULT_TOKEN_MECHANISMS",
    "AuthMechanism",
    "Credentials",
    "TokenProvider",
    "choose_mechanisms",
]

TokenProvider = Callable[[], Awaitable[str]]
"""An async callable returning an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER).

It is called before each attempt with a token mechanism. When the server
answers 535 it is called once more and the attempt repeated, so a provider
that caches tokens should hand out a fresh one when the cached one may have
expired.
"""


class AuthMechanism(str, enum.Enum):
    """The SASL mechanisms lettre can use.

    Each member names a class of :data:`lettre.protocol.sasl.MECHANISMS`
    (see :attr:`mechanism_class`).

    Attributes:
        PLAIN: RFC 4616: username and password in one message (needs TLS).
        LOGIN: the older two-step username/password exchange (needs TLS).
        CRAM_MD5: RFC 2195: a challenge answered with an HMAC-MD5 of it; the
            password itself is not sent.
        XOAUTH2: an OAuth 2.0 bearer token (Google, Microsoft; needs TLS).
        OAUTHBEARER: RFC 7628: an OAuth 2.0 bearer token, the standard
            mechanism (needs TLS).
        SCRAM_SHA_256: RFC 7677: a salted challenge and response; the
            password is not sent and the server proves that it knows it.
    """

    PLAIN = "PLAIN"
    LOGIN = "LOGIN"
    CRAM_MD5 = "CRAM-MD5"
    XOAUTH2 = "XOAUTH2"
    OAUTHBEARER = "OAUTHBEARER"
    SCRAM_SHA_256 = "SCRAM-SHA-256"

    @property
    def mechanism_class(self) -> type[Mechanism]:
        """The sans-IO class implementing this mechanism."""
        return MECHANISMS[self.value]

    @classmethod
    def parse(cls, value: AuthMechanism | str) -> AuthMechanism:
        """Return the mechanism named by ``value`` (case-insensitive; ``_`` for ``-``).

        Args:
            value: an AuthMechanism, or a name such as ``"cram_md5"``.

        Raises:
            ValueError: when lettre does not implement that mechanism.
            TypeError: when ``value`` is neither an AuthMechanism nor a str.
        """
        if isinstance(value, AuthMechanism):
            return value
        if not isinstance(value, str):
            raise TypeError(f"an AUTH mechanism must be a str, not {type(value).__name__}")
        name = value.strip().upper().replace("_", "-")
        for mechanism in cls:
            if mechanism.value == name:
                return mechanism
        choices = ", ".join(m.value for m in cls)
        raise ValueError(f"unsupported AUTH mechanism {value!r}; expected one of {choices}")


def _ranked(needs: str, *, encrypted: bool) -> tuple[AuthMechanism, ...]:
    """The mechanisms needing ``needs``, best first, by what their classes declare."""
    members = [m for m in AuthMechanism if m.mechanism_class.needs == needs]
    if encrypted:
        return tuple(sorted(members, key=lambda m: m.mechanism_class.rank))
    # Without TLS, the mechanisms that keep the secret off the wire come first.
    return tuple(
        sorted(members, key=lambda m: (m.mechanism_class.sends_secret, m.mechanism_class.rank))
    )


DEFAULT_TOKEN_MECHANISMS: tuple[AuthMechanism, ...] = _ranked("token", encrypted=True)
"""The token mechanisms, first when a token provider is configured: XOAUTH2, OAUTHBEARER.

XOAUTH2 first: Google and Microsoft implement it, Microsoft only it, and it
is what lettre used before OAUTHBEARER; OAUTHBEARER (RFC 7628) serves the
servers that offer only the standard mechanism.
"""

DEFAULT_MECHANISMS_TLS: tuple[AuthMechanism, ...] = _ranked("password", encrypted=True)
"""The password mechanisms over an encrypted connection: SCRAM-SHA-256, PLAIN, LOGIN, CRAM-MD5.

SCRAM-SHA-256 first: it is the only one in which the server proves that it
knows the password, and the password never leaves the client, even inside
TLS (a TLS-terminating proxy or a certificate issued to the wrong party
learns nothing it can replay). It costs two more round trips than PLAIN and
one PBKDF2 computation per password and salt in a process. Then PLAIN (one
round trip), LOGIN, and CRAM-MD5 last, because it forces servers to keep
password equivalents and several implement it poorly.
"""

DEFAULT_MECHANISMS_INSECURE: tuple[AuthMechanism, ...] = _ranked("password", encrypted=False)
"""The preference over plain text (only with ``allow_insecure_auth=True``).

SCRAM-SHA-256 and CRAM-MD5 first: they do not put the password on the wire.
PLAIN and LOGIN follow, since ``allow_insecure_auth`` allows them.
"""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and a password for SMTP AUTH.

    The password never appears in ``repr()`` or ``str()``.

    Args:
        username: the login name (often the full email address).
        password: the password; may be None when only a token mechanism
            (XOAUTH2 or OAUTHBEARER, with a token provider) is used.

    Raises:
        TypeError: when the user name or password is not a str.
        ValueError: when the user name is empty.
    """

    username: str
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.username, str):
            raise TypeError("username must be a str")
        if not self.username:
            raise ValueError("username must not be empty")
        if self.password is not None and not isinstance(self.password, str):
            raise TypeError("password must be a str")

    def __str__(self) -> str:
        return self.username


def choose_mechanisms(
    offered: Iterable[str],
    *,
    encrypted: bool,
    has_password: bool,
    has_token_provider: bool,
    preference: Iterable[AuthMechanism] | None = None,
) -> list[AuthMechanism]:
    """List the mechanisms to use, best first, from what the server offers.

    The token mechanisms (:data:`DEFAULT_TOKEN_MECHANISMS`) come first when a
    token provider is configured; then the password mechanisms in
    :data:`DEFAULT_MECHANISMS_TLS` order over TLS, or
    :data:`DEFAULT_MECHANISMS_INSECURE` order without it. An explicit
    ``preference`` replaces that order. Either way a mechanism is skipped
    when its secret (a password, or a token provider) is not configured.

    Args:
        offered: the mechanism names from the server's EHLO reply.
        encrypted: whether the connection is encrypted.
        has_password: whether the credentials carry a password.
        has_token_provider: whether a token provider is configured.
        preference: the caller's own order, if any.

    Returns:
        The usable mechanisms the server offers, best first (maybe empty).
    """
    offered_names = {name.upper() for name in offered}
    if preference is not None:
        order = [AuthMechanism.parse(m) for m in preference]
    else:
        order = list(DEFAULT_TOKEN_MECHANISMS)
        order.extend(DEFAULT_MECHANISMS_TLS if encrypted else DEFAULT_MECHANISMS_INSECURE)
    usable = {"password": has_password, "token": has_token_provider}
    chosen: list[AuthMechanism] = []
    for mechanism in order:
        if mechanism.value not in offered_names or mechanism in chosen:
            continue
        if usable[mechanism.mechanism_class.needs]:
            chosen.append(mechanism)
    return chosen
