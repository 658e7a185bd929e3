"""SASL mechanisms for SMTP AUTH as pure challenge/response machines.

One class per mechanism, each in its own module, all derived from
:class:`Mechanism`: a class declares its name, the secret it needs (a
password or a token), whether that secret goes over the wire, its default
rank and its steps. :data:`MECHANISMS` maps the names to the classes; the
SMTP layer chooses and drives mechanisms through it alone.

A mechanism never does I/O. The caller sends
``Auth(mechanism.name, mechanism.initial_response())``; each time the server
answers 334 it sends ``AuthResponse(mechanism.respond(decode_challenge(reply)))``,
until the server answers 235 (then ``mechanism.check_success()``) or an
error. Credentials are never part of a repr or an error message.
"""

from __future__ import annotations

from lettre.protocol.sasl.base import Mechanism, Needs, TokenMechanism, decode_challenge
from lettre.protocol.sasl.cram_md5 import CramMd5
from lettre.protocol.sasl.login import Login
from lettre.protocol.sasl.oauthbearer import OAuthBearer
from lettre.protocol.sasl.plain import Plain
from lettre.protocol.sasl.registry import MECHANISMS, mechanism_class
from lettre.protocol.sasl.saslprep import saslprep
from lettre.protocol.sasl.scram import Scram, ScramSha256
from lettre.protocol.sasl.xoauth2 import XOAuth2

__all__ = [
    "MECHANISMS",
    "CramMd5",
    "Login",
    "Mechanism",
    "Needs",
    "OAuthBearer",
    "Plain",
    "Scram",
    "ScramSha256",
    "TokenMechanism",
    "XOAuth2",
    "decode_challenge",
    "mechanism_class",
    "saslprep",
]
