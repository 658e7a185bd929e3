"""The registry: every SASL mechanism lettre implements, by name.

Adding a mechanism is one :class:`~lettre.protocol.sasl.base.Mechanism`
subclass in its own module and one line in :data:`_CLASSES` (plus its member
of the SMTP layer's ``AuthMechanism``, which a test keeps in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lettre.errors import LocalProtocolError
from lettre.protocol.sasl.base import Mechanism
from lettre.protocol.sasl.cram_md5 import CramMd5
from lettre.protocol.sasl.login import Login
from lettre.protocol.sasl.oauthbearer import OAuthBearer
from lettre.protocol.sasl.plain import Plain
from lettre.protocol.sasl.scram import ScramSha256
from lettre.protocol.sasl.xoauth2 import XOAuth2

__all__ = ["MECHANISMS", "mechanism_class"]

_CLASSES: tuple[type[Mechanism], ...] = (
    ScramSha256,
    Plain,
    Login,
    CramMd5,
    XOAuth2,
    OAuthBearer,
)


def _build(classes: tuple[type[Mechanism], ...]) -> Mapping[str, type[Mechanism]]:
    registry: dict[str, type[Mechanism]] = {}
    for cls in classes:
        name = cls.name
        if not name or name != name.upper() or name in registry:
            raise AssertionError(f"{cls.__name__}: a missing, lower-case or duplicate name")
        if cls.needs not in ("password", "token"):
            raise AssertionError(f"{cls.__name__}: needs must be 'password' or 'token'")
        registry[name] = cls
    return MappingProxyType(registry)


MECHANISMS: Mapping[str, type[Mechanism]] = _build(_CLASSES)
"""Mechanism name (upper-case, as in the EHLO reply) -> its class; read-only."""


def mechanism_class(name: str) -> type[Mechanism]:
    """Return the class implementing the mechanism called ``name`` (any case).

    Args:
        name: a SASL mechanism name, such as ``"SCRAM-SHA-256"``.

    Raises:
        LocalProtocolError: when lettre does not implement that mechanism.
    """
    cls = MECHANISMS.get(name.upper()) if isinstance(name, str) else None
    if cls is None:
        choices = ", ".join(MECHANISMS)
        raise LocalProtocolError(f"no SASL mechanism {name!r}; lettre implements {choices}")
    return cls
