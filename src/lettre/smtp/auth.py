"""Credentials and SASL mechanism choice for SMTP AUTH (RFC 4954).

The mechanisms themselves (the challenge and response machines) live in the
sans-IO core, :mod:`lettre.protocol.sasl`; this module holds what the user
configures and the rule that picks a mechanism from what the server offers.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MECHANISMS_INSECURE",
    "DEFAULT_MECHANISMS_TLS",
    "AuthMechanism",
    "Credentials",
    "TokenProvider",
    "choose_mechanisms",
]

TokenProvider = Callable[[], Awaitable[str]]
"""An async callable returning an OAuth 2.0 access token for XOAUTH2.

It is called before each XOAUTH2 attempt. When the server answers 535 it is
called once more and the attempt repeated, so a provider that caches tokens
should hand out a fresh one when the cached one may have expired.
"""


class AuthMechanism(str, enum.Enum):
    """The SASL mechanisms lettre can use.

    Attributes:
        PLAIN: RFC 4616: username and password in one message (needs TLS).
        LOGIN: the older two-step username/password exchange (needs TLS).
        CRAM_MD5: RFC 2195: a challenge answered with an HMAC-MD5 of it; the
            password itself is not sent.
        XOAUTH2: an OAuth 2.0 bearer token (Google, Microsoft).
    """

    PLAIN = "PLAIN"
    LOGIN = "LOGIN"
    CRAM_MD5 = "CRAM-MD5"
    XOAUTH2 = "XOAUTH2"

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


DEFAULT_MECHANISMS_TLS: tuple[AuthMechanism, ...] = (
    AuthMechanism.PLAIN,
    AuthMechanism.LOGIN,
    AuthMechanism.CRAM_MD5,
)
"""The preference over an encrypted connection: PLAIN first.

Inside TLS, PLAIN is as safe as anything else here and takes one round trip;
CRAM-MD5 comes last because it forces servers to keep password equivalents
and several implement it poorly.
"""

DEFAULT_MECHANISMS_INSECURE: tuple[AuthMechanism, ...] = (
    AuthMechanism.CRAM_MD5,
    AuthMechanism.PLAIN,
    AuthMechanism.LOGIN,
)
"""The preference over plain text (only with ``allow_insecure_auth=True``).

CRAM-MD5 first: it is the only one that does not put the password on the wire.
"""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and a password for SMTP AUTH.

    The password never appears in ``repr()`` or ``str()``.

    Args:
        username: the login name (often the full email address).
        password: the password; may be None when only XOAUTH2 (with a token
            provider) is used.

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

    XOAUTH2 comes first when a token provider is configured; then the password
    mechanisms in :data:`DEFAULT_MECHANISMS_TLS` order over TLS, or
    :data:`DEFAULT_MECHANISMS_INSECURE` order without it. An explicit
    ``preference`` replaces that order (mechanisms that cannot be used for
    lack of a password or token provider are skipped).

    Args:
        offered: the mechanism names from the server's EHLO reply.
        encrypted: whether the connection is encrypted.
        has_password: whether the credentials carry a password.
        has_token_provider: whether an XOAUTH2 token provider is configured.
        preference: the caller's own order, if any.

    Returns:
        The usable mechanisms the server offers, best first (maybe empty).
    """
    offered_names = {name.upper() for name in offered}
    if preference is not None:
        order = [AuthMechanism.parse(m) for m in preference]
    else:
        order = [AuthMechanism.XOAUTH2]
        order.extend(DEFAULT_MECHANISMS_TLS if encrypted else DEFAULT_MECHANISMS_INSECURE)
    chosen: list[AuthMechanism] = []
    for mechanism in order:
        if mechanism.value not in offered_names or mechanism in chosen:
            continue
        usable = has_token_provider if mechanism is AuthMechanism.XOAUTH2 else has_password
        if usable:
            chosen.append(mechanism)
    return chosen
