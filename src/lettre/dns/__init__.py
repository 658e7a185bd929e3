"""DNS for direct delivery: the resolver, MX selection, MTA-STS, DANE, the sender check.

This package needs the ``direct`` extra (dnspython, httpx); nothing outside
it and :mod:`lettre.transports.mx` imports them.
"""

from __future__ import annotations

from lettre.dns.check import DomainReport, Finding, Severity, check_sender_domain
from lettre.dns.mx import Exchanger, MxRoute, resolve_mx
from lettre.dns.resolver import Answer, Resolver

__all__ = [
    "Answer",
    "DomainReport",
    "Exchanger",
    "Finding",
    "MxRoute",
    "Resolver",
    "Severity",
    "check_sender_domain",
    "resolve_mx",
]
