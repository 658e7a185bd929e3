"""DNS for direct delivery: the resolver, MX selection (``lettre[direct]``).

This package needs dnspython (the ``direct`` extra); nothing outside it and
:mod:`lettre.transports.mx` imports dnspython.
"""

from __future__ import annotations

from lettre.dns.mx import Exchanger, MxRoute, resolve_mx
from lettre.dns.resolver import Answer, Resolver

__all__ = ["Answer", "Exchanger", "MxRoute", "Resolver", "resolve_mx"]
