"""Fixtures of the DKIM tests: keys (RSA-2048 generated once per session) and a DNS zone."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim_support import DnsZone, PrivateKeyObject


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """One RSA-2048 key for the whole session: generating it is slow."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(params=["rsa", "ed25519"])
def private_key(
    request: pytest.FixtureRequest,
    rsa_key: rsa.RSAPrivateKey,
    ed25519_key: ed25519.Ed25519PrivateKey,
) -> PrivateKeyObject:
    """Each test using this runs once with RSA-2048 and once with Ed25519."""
    return rsa_key if request.param == "rsa" else ed25519_key


@pytest.fixture
def zone() -> DnsZone:
    """An empty DNS zone; tests publish the keys they sign with."""
    return DnsZone()
