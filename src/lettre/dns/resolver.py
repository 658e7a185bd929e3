"""The DNS resolver direct delivery asks, and what it answers.

:class:`Resolver` wraps dnspython's async resolver (which runs on asyncio,
uvloop and trio). Every name lettre looks up for direct delivery goes
through the one resolver the transport was given: nothing else resolves
names behind its back (connections are made to the addresses it returns).

Whether DNSSEC answers can be trusted is an explicit choice: a resolver
constructed with ``validating=True`` is one the user knows validates DNSSEC
(a local unbound or knot-resolver, reached over loopback), so the AD bit of
its answers is believed. Otherwise the AD bit is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.asyncbackend
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from lettre._loops import running_on_asyncio
from lettre.errors import DnsError

__all__ = ["DEFAULT_DNS_TIMEOUT", "Answer", "Resolver"]

DEFAULT_DNS_TIMEOUT = 10.0
"""Seconds one lookup may take, retries and fallback to TCP included."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one DNS question.

    Attributes:
        name: the name asked about (A-labels, no trailing dot).
        rdtype: the record type asked for ("MX", "A"...).
        records: the records of that type (dnspython rdata objects), after
            any CNAME chain; empty when the name has none.
        exists: False when the name does not exist (NXDOMAIN).
        authentic: True when a validating resolver vouched for the answer
            (the AD bit, believed only with ``Resolver(validating=True)``).
        canonical_name: the name the records belong to, after CNAMEs.
    """

    name: str
    rdtype: str
    records: tuple[Any, ...]
    exists: bool
    authentic: bool
    canonical_name: str


def to_a_label(domain: str) -> str:
    """``domain`` as DNS looks it up: A-labels, lower case, no trailing dot.

    Raises:
        DnsError: the domain is not a valid DNS name (permanent).
    """
    from lettre.address import Address  # the same IDNA rules as addresses
    from lettre.errors import AddressError

    text = domain.strip().rstrip(".")
    if text.isascii():
        candidate = text.lower()
    else:
        try:
            candidate = Address(f"postmaster@{text}").ascii_domain
        except AddressError as exc:
            raise DnsError(
                f"{domain!r} is not a valid domain name: {exc}", name=domain, rdtype="-"
            ) from exc
    try:
        dns.name.from_text(candidate)
    except dns.exception.DNSException as exc:
        raise DnsError(
            f"{domain!r} is not a valid domain name ({exc})", name=domain, rdtype="-"
        ) from exc
    if not candidate or any(not label for label in candidate.split(".")):
        raise DnsError(f"{domain!r} is not a valid domain name", name=domain, rdtype="-")
    return candidate


class Resolver:
    """The resolver for direct delivery's DNS lookups.

    Args:
        nameservers: IP addresses of the name servers to ask (a recursive
            resolver); by default the system's (``/etc/resolv.conf``).
        port: the name servers' port (53).
        resolver: a configured ``dns.asyncresolver.Resolver`` to use instead
            of ``nameservers``/``port``.
        validating: the resolver validates DNSSEC and the path to it is
            trusted (a resolver on this host): its AD bit is believed, which
            DANE needs. Leave False for a resolver you do not control.
        timeout: seconds each lookup may take.

    Raises:
        ValueError: a name server is not an IP address, the port or timeout
            is out of range, or both ``resolver`` and ``nameservers`` are given.
    """

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        port: int = 53,
        resolver: dns.asyncresolver.Resolver | None = None,
        validating: bool = False,
        timeout: float = DEFAULT_DNS_TIMEOUT,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {port!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if resolver is not None and nameservers is not None:
            raise ValueError("pass either resolver= or nameservers=, not both")
        if isinstance(nameservers, str):
            nameservers = [nameservers]
        if resolver is None:
            if nameservers is not None:
                resolver = dns.asyncresolver.Resolver(configure=False)
                servers: list[dns.nameserver.Nameserver] = []
                for address in nameservers:
                    try:
                        ipaddress.ip_address(address)
                    except ValueError:
                        raise ValueError(
                            f"name server {address!r} is not an IP address: the resolver's "
                            "own address must not need a lookup"
                        ) from None
                    servers.append(dns.nameserver.Do53Nameserver(address, port))
                if not servers:
                    raise ValueError("nameservers must name at least one name server")
                resolver.nameservers = servers
            else:
                resolver = dns.asyncresolver.Resolver()
        elif not isinstance(resolver, dns.asyncresolver.Resolver):
            raise TypeError("resolver must be a dns.asyncresolver.Resolver")
        resolver.lifetime = float(timeout)
        resolver.timeout = min(float(timeout), 3.0)
        # EDNS with a payload size that avoids fragmentation (truncated
        # answers are asked again over TCP); AD asks a validating resolver to
        # say whether it validated (RFC 6840 5.7).
        resolver.use_edns(0, 0, 1232)
        if validating:
            resolver.flags = dns.flags.RD | dns.flags.AD
        self._resolver = resolver
        self.validating = bool(validating)
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        servers = ", ".join(str(ns) for ns in self._resolver.nameservers)
        return f"Resolver([{servers}], validating={self.validating})"

    async def lookup(self, name: str, rdtype: str) -> Answer:
        """Ask for the ``rdtype`` records of ``name``.

        Args:
            name: a domain name (U-labels are converted to A-labels).
            rdtype: the record type ("MX", "A", "AAAA", "TXT", "TLSA"...).

        Returns:
            The records (none when the name has none of that type, or does not
            exist: see :attr:`Answer.exists`).

        Raises:
            DnsError: the lookup failed: SERVFAIL, refused, no answer in time
                (transient); the name or the answer is malformed (permanent).
        """
        qname = to_a_label(name)
        # Said explicitly: dnspython's own detection may miss trio.
        backend = dns.asyncbackend.get_backend("asyncio" if running_on_asyncio() else "trio")
        try:
            answer = await self._resolver.resolve(
                qname + ".", rdtype, raise_on_no_answer=False, search=False, backend=backend
            )
        except dns.resolver.NXDOMAIN:
            return Answer(qname, rdtype, (), False, False, qname)
        except dns.resolver.LifetimeTimeout as exc:
            raise DnsError(
                f"the DNS lookup of {rdtype} {qname!r} timed out after {self.timeout:g} s: "
                "check that the name servers answer",
                name=qname,
                rdtype=rdtype,
                transient=True,
            ) from exc
        except dns.resolver.NoNameservers as exc:
            raise DnsError(
                f"no name server answered the lookup of {rdtype} {qname!r} (SERVFAIL or "
                "refused); try again later",
                name=qname,
                rdtype=rdtype,
                transient=True,
            ) from exc
        except dns.exception.DNSException as exc:
            raise DnsError(
                f"the DNS lookup of {rdtype} {qname!r} failed: {exc}",
                name=qname,
                rdtype=rdtype,
                transient=True,
            ) from exc
        if answer.response.flags & dns.flags.TC:
            # Truncated even over TCP: the records are not all there.
            raise DnsError(
                f"the answer to {rdtype} {qname!r} was truncated even over TCP (too large "
                "for a DNS message); try again later",
                name=qname,
                rdtype=rdtype,
                transient=True,
            )
        records = tuple(answer.rrset) if answer.rrset is not None else ()
        authentic = self.validating and bool(answer.response.flags & dns.flags.AD)
        canonical = answer.canonical_name.to_text().rstrip(".").lower()
        return Answer(qname, rdtype, records, True, authentic, canonical)
