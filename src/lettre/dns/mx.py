"""Where mail for a domain goes: MX selection by RFC 5321 section 5 and RFC 7505.

:func:`resolve_mx` looks up a domain's MX records and the addresses of its
exchangers, and returns them in the order to try:

- by preference, lowest first; exchangers of equal preference in random
  order (so that load spreads as the domain intends);
- no MX records: the domain itself is the one exchanger ("implicit MX");
- a null MX (one record, ``0 .``, RFC 7505): the domain takes no mail, which
  is a permanent refusal, made without connecting anywhere;
- exchangers whose name has no address are skipped; CNAME chains are
  followed by the resolver;
- NXDOMAIN is permanent, SERVFAIL and timeouts transient.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

import anyio

from lettre.dns.resolver import Resolver, to_a_label
from lettre.errors import DnsError, NoMailExchanger

__all__ = ["DEFAULT_MAX_EXCHANGERS", "Exchanger", "MxRoute", "resolve_mx"]

DEFAULT_MAX_EXCHANGERS = 5
"""How many exchangers of a domain are tried, at most, for one delivery."""


@dataclass(frozen=True, slots=True)
class Exchanger:
    """One mail exchanger of a domain.

    Attributes:
        name: its host name (A-labels, no trailing dot); the name its
            certificate is checked against.
        preference: the MX preference (0 for an implicit MX).
        addresses: its IP addresses, IPv4 first, in the order to try.
        authentic: whether a validating resolver vouched for the addresses
            (DNSSEC), as DANE requires.
    """

    name: str
    preference: int
    addresses: tuple[str, ...]
    authentic: bool = False


@dataclass(frozen=True, slots=True)
class MxRoute:
    """The exchangers of one domain, in the order to try.

    Attributes:
        domain: the domain (A-labels).
        exchangers: the exchangers that have addresses, best first.
        implicit: True when the domain has no MX and is its own exchanger.
        mx_names: the names of every MX record, best first (including those
            without addresses), as MTA-STS matching needs them.
        authentic: whether a validating resolver vouched for the MX records
            (DNSSEC), as DANE requires.
    """

    domain: str
    exchangers: tuple[Exchanger, ...]
    implicit: bool
    mx_names: tuple[str, ...]
    authentic: bool = False


def _literal(domain: str) -> str | None:
    """The IP address of a domain literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``)."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    inner = domain[1:-1]
    if inner[:5].lower() == "ipv6:":
        inner = inner[5:]
    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        return None


async def _addresses(
    resolver: Resolver, name: str
) -> tuple[tuple[str, ...], DnsError | None, bool]:
    """The A then AAAA addresses of ``name``, the transient error met, and their authenticity."""
    found: list[str] = []
    error: DnsError | None = None
    authentic = True
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.lookup(name, rdtype)
        except DnsError as exc:
            if not exc.transient:
                raise
            error = exc
            authentic = False
            continue
        authentic = authentic and answer.authentic
        for record in answer.records:
            address = str(record.address)
            if address not in found:
                found.append(address)
    return tuple(found), error, authentic


async def resolve_mx(
    domain: str,
    resolver: Resolver,
    *,
    max_exchangers: int = DEFAULT_MAX_EXCHANGERS,
    rng: random.Random | None = None,
) -> MxRoute:
    """The exchangers to deliver ``domain``'s mail to, in the order to try.

    Args:
        domain: the recipient domain (U-labels are looked up as A-labels), or
            a domain literal such as ``[192.0.2.1]``.
        resolver: the resolver to ask.
        max_exchangers: how many exchangers (with addresses) to return at most.
        rng: the random source that orders exchangers of equal preference.

    Returns:
        The route; never empty.

    Raises:
        NoMailExchanger: null MX, or no exchanger with an address (permanent).
        DnsError: the domain does not exist (permanent), or a lookup failed
            (transient).
    """
    if max_exchangers < 1:
        raise ValueError(f"max_exchangers must be at least 1, not {max_exchangers}")
    literal = _literal(domain)
    if literal is not None:
        return MxRoute(domain, (Exchanger(literal, 0, (literal,)),), True, ())
    name = to_a_label(domain)
    answer = await resolver.lookup(name, "MX")
    if not answer.exists:
        raise DnsError(
            f"the domain {name!r} does not exist (NXDOMAIN): check the recipient's address",
            name=name,
            rdtype="MX",
            transient=False,
        )
    records = [
        (int(r.preference), r.exchange.to_text().rstrip(".").lower()) for r in answer.records
    ]
    real = [(pref, target) for pref, target in records if target]
    if records and not real:
        raise NoMailExchanger(
            f"the domain {name!r} accepts no mail: it publishes a null MX (RFC 7505)",
            name=name,
            rdtype="MX",
            transient=False,
        )
    implicit = not real
    if implicit:
        candidates = [(0, name)]
    else:
        # A null MX next to real ones is a misconfiguration; the real ones win.
        shuffle = rng if rng is not None else random.SystemRandom()
        by_pref: dict[int, list[str]] = {}
        for pref, target in real:
            names = by_pref.setdefault(pref, [])
            if target not in names:
                names.append(target)
        candidates = []
        seen: set[str] = set()
        for pref in sorted(by_pref):
            group = [n for n in by_pref[pref] if n not in seen]
            shuffle.shuffle(group)
            seen.update(group)
            candidates.extend((pref, n) for n in group)
    mx_names = tuple(n for _, n in candidates) if not implicit else ()

    # Look the exchangers' addresses up together; keep the order.
    wanted = candidates[: max_exchangers * 2]
    found: list[tuple[tuple[str, ...], DnsError | None, bool] | None] = [None] * len(wanted)

    async def one(index: int, host: str) -> None:
        try:
            found[index] = await _addresses(resolver, host)
        except DnsError as exc:  # a permanent error: an unusable name
            found[index] = ((), exc, False)

    async with anyio.create_task_group() as tasks:
        for index, (_, host) in enumerate(wanted):
            tasks.start_soon(one, index, host)

    exchangers: list[Exchanger] = []
    errors: list[DnsError] = []
    for (pref, host), result in zip(wanted, found, strict=True):
        addresses, error, authentic = result if result is not None else ((), None, False)
        if addresses:
            exchangers.append(Exchanger(host, pref, addresses, authentic))
        elif error is not None:
            errors.append(error)
    exchangers = exchangers[:max_exchangers]
    if not exchangers:
        transient = [e for e in errors if e.transient]
        if transient:
            raise DnsError(
                f"the addresses of {name!r}'s exchangers could not be looked up: {transient[0]}",
                name=transient[0].name,
                rdtype=transient[0].rdtype,
                transient=True,
            ) from transient[0]
        hosts = ", ".join(repr(h) for _, h in wanted)
        what = (
            "has no MX and no address"
            if implicit
            else f"has no exchanger with an address ({hosts})"
        )
        raise NoMailExchanger(
            f"the domain {name!r} {what}: mail cannot be delivered to it",
            name=name,
            rdtype="A" if implicit else "MX",
            transient=False,
        )
    return MxRoute(name, tuple(exchangers), implicit, mx_names, answer.authentic)
