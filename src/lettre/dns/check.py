"""What receivers will find when they check mail from a sender domain.

:func:`check_sender_domain` looks up what a receiving MTA looks up and
reports one :class:`Finding` per fact: SPF (RFC 7208: present, one record,
known terms, at most 10 DNS lookups), DMARC (RFC 7489: present, policy),
the DKIM public key at the signer's selector and whether it is the signer's
key, the domain's MX (bounces must be deliverable, and a null MX makes
receivers refuse the sender), MTA-STS (RFC 8461) and TLS reporting
(RFC 8460). ``python -m lettre check-domain DOMAIN`` prints the report.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lettre.dns.mta_sts import MtaSts
from lettre.dns.mx import resolve_mx
from lettre.dns.resolver import Resolver, to_a_label
from lettre.errors import DnsError, NoMailExchanger

if TYPE_CHECKING:
    from lettre.dkim import DkimSigner

__all__ = ["DomainReport", "Finding", "Severity", "check_sender_domain"]

#: RFC 7208 4.6.4: at most 10 terms that cause DNS lookups.
SPF_LOOKUP_LIMIT = 10
_SPF_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
_SPF_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_SPF_MODIFIERS = ("redirect", "exp")


class Severity(enum.Enum):
    """How much a finding matters.

    Attributes:
        OK: as it should be.
        INFO: worth knowing; nothing fails because of it.
        WARNING: mail may be treated worse (spam folder, no reports).
        ERROR: mail will fail checks or be refused.
    """

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Finding:
    """One fact about the domain.

    Attributes:
        check: what was checked: ``"SPF"``, ``"DMARC"``, ``"DKIM"``, ``"MX"``,
            ``"MTA-STS"`` or ``"TLS-RPT"``.
        severity: how much it matters.
        message: the fact, quoting what was found, and what to do.
    """

    check: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.severity.value.upper():7} {self.check:8} {self.message}"


@dataclass(frozen=True, slots=True)
class DomainReport:
    """Every finding about one sender domain.

    Attributes:
        domain: the domain checked (A-labels).
        findings: one per fact, in the order SPF, DMARC, DKIM, MX, MTA-STS,
            TLS-RPT.
    """

    domain: str
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """True when no finding is an error (mail from the domain should pass)."""
        return all(f.severity is not Severity.ERROR for f in self.findings)

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self.findings)


async def _txt(resolver: Resolver, name: str) -> list[str] | None:
    """The TXT strings at ``name`` (each record's strings joined); None when the name is absent."""
    answer = await resolver.lookup(name, "TXT")
    if not answer.exists:
        return None
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.records]


async def _spf_record(resolver: Resolver, domain: str) -> list[str]:
    texts = await _txt(resolver, domain) or []
    return [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


async def _spf_lookups(resolver: Resolver, domain: str, seen: set[str], problems: list[str]) -> int:
    """The DNS-querying terms of ``domain``'s SPF record, includes counted recursively."""
    if domain in seen:
        problems.append(f"include loop at {domain!r}")
        return SPF_LOOKUP_LIMIT + 1
    seen.add(domain)
    try:
        records = await _spf_record(resolver, domain)
    except DnsError as exc:
        problems.append(f"{domain!r}: {exc}")
        return 0
    if len(records) != 1:
        problems.append(f"{domain!r} has {len(records)} SPF records (one needed)")
        return 0
    count = 0
    for term in records[0].split()[1:]:
        name = term.lstrip("+-~?")
        key = name.split(":", 1)[0].split("=", 1)[0].split("/", 1)[0].lower()
        if key not in _SPF_MECHANISMS and key not in _SPF_MODIFIERS:
            problems.append(f"unknown term {term!r} in the SPF record of {domain!r}")
            continue
        if key not in _SPF_LOOKUP_TERMS:
            continue
        count += 1
        if key in ("include", "redirect") and len(seen) < 2 * SPF_LOOKUP_LIMIT:
            separator = ":" if key == "include" else "="
            target = name.split(separator, 1)[1] if separator in name else ""
            if "%" in target or not target:
                continue  # macros are expanded per message
            count += await _spf_lookups(resolver, target.lower().rstrip("."), seen, problems)
        if count > SPF_LOOKUP_LIMIT:
            break
    return count


async def _check_spf(resolver: Resolver, domain: str) -> Finding:
    try:
        records = await _spf_record(resolver, domain)
    except DnsError as exc:
        return Finding("SPF", Severity.ERROR, f"the TXT lookup failed: {exc}")
    if not records:
        return Finding(
            "SPF",
            Severity.WARNING,
            f"no SPF record at {domain}: publish a TXT record such as "
            f"'v=spf1 mx -all' naming the addresses that send its mail",
        )
    if len(records) > 1:
        return Finding(
            "SPF",
            Severity.ERROR,
            f"{len(records)} SPF records at {domain} (SPF permerror): merge them into one",
        )
    problems: list[str] = []
    lookups = await _spf_lookups(resolver, domain, set(), problems)
    record = records[0]
    if problems:
        return Finding("SPF", Severity.ERROR, f"{record!r}: {'; '.join(problems)}")
    if lookups > SPF_LOOKUP_LIMIT:
        return Finding(
            "SPF",
            Severity.ERROR,
            f"{record!r} needs more than {SPF_LOOKUP_LIMIT} DNS lookups (SPF permerror): "
            "flatten some includes into ip4:/ip6: terms",
        )
    terms = [t.lower() for t in record.split()]
    if "+all" in terms or "all" in terms:
        return Finding(
            "SPF", Severity.WARNING, f"{record!r} allows every sender ('+all'): end with -all"
        )
    return Finding("SPF", Severity.OK, f"{record!r} ({lookups} of {SPF_LOOKUP_LIMIT} lookups)")


async def _check_dmarc(resolver: Resolver, domain: str) -> Finding:
    name = f"_dmarc.{domain}"
    try:
        texts = await _txt(resolver, name) or []
    except DnsError as exc:
        return Finding("DMARC", Severity.ERROR, f"the TXT lookup of {name} failed: {exc}")
    records = [t for t in texts if t.replace(" ", "").lower().startswith("v=dmarc1")]
    if not records:
        return Finding(
            "DMARC",
            Severity.WARNING,
            f"no DMARC record at {name}: publish one such as "
            "'v=DMARC1; p=none; rua=mailto:dmarc@" + domain + "' (large receivers require it)",
        )
    if len(records) > 1:
        return Finding("DMARC", Severity.ERROR, f"{len(records)} DMARC records at {name}: keep one")
    tags = {}
    for part in records[0].split(";"):
        key, eq, value = part.strip().partition("=")
        if eq:
            tags[key.strip().lower()] = value.strip().lower()
    policy = tags.get("p")
    if policy not in ("none", "quarantine", "reject"):
        return Finding(
            "DMARC",
            Severity.ERROR,
            f"{records[0]!r} has no valid p= tag (none, quarantine or reject)",
        )
    severity = Severity.INFO if policy == "none" else Severity.OK
    return Finding("DMARC", severity, f"{records[0]!r} (policy {policy})")


def _dkim_tags(text: str) -> dict[str, str]:
    tags = {}
    for part in text.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


async def _check_dkim(resolver: Resolver, domain: str, signer: DkimSigner | None) -> Finding:
    if signer is None:
        return Finding("DKIM", Severity.INFO, "no signer given: the DKIM key was not checked")
    name = signer.dns_name
    if signer.domain != domain:
        return Finding(
            "DKIM",
            Severity.WARNING,
            f"the signer signs for {signer.domain!r}, not {domain!r}: DMARC needs the "
            "signing domain to align with the From domain",
        )
    try:
        texts = await _txt(resolver, name) or []
    except DnsError as exc:
        return Finding("DKIM", Severity.ERROR, f"the TXT lookup of {name} failed: {exc}")
    keys = [t for t in texts if "p=" in t]
    expected = _dkim_tags(signer.dns_record())
    if not keys:
        return Finding(
            "DKIM",
            Severity.ERROR,
            f"no DKIM key at {name}: signatures will fail; publish {signer.dns_record()!r}",
        )
    for text in keys:
        tags = _dkim_tags(text)
        if tags.get("p") == expected["p"] and tags.get("k", "rsa") == expected["k"]:
            return Finding("DKIM", Severity.OK, f"the key at {name} matches the signer's")
    if all(not _dkim_tags(t).get("p") for t in keys):
        return Finding("DKIM", Severity.ERROR, f"the key at {name} is revoked (empty p=)")
    return Finding(
        "DKIM",
        Severity.ERROR,
        f"the key at {name} is not the signer's: signatures will fail; publish "
        f"{signer.dns_record()!r}",
    )


async def _check_mx(resolver: Resolver, domain: str) -> Finding:
    try:
        route = await resolve_mx(domain, resolver)
    except NoMailExchanger as exc:
        return Finding(
            "MX",
            Severity.ERROR,
            f"{exc}: bounces cannot come back, and receivers refuse senders whose domain "
            "takes no mail",
        )
    except DnsError as exc:
        severity = Severity.WARNING if exc.transient else Severity.ERROR
        return Finding("MX", severity, str(exc))
    names = ", ".join(e.name for e in route.exchangers)
    if route.implicit:
        return Finding(
            "MX", Severity.INFO, f"no MX records; mail goes to the domain's address ({names})"
        )
    return Finding("MX", Severity.OK, f"bounces go to {names}")


async def _check_mta_sts(resolver: Resolver, domain: str, mta_sts: MtaSts) -> Finding:
    try:
        texts = await _txt(resolver, f"_mta-sts.{domain}") or []
    except DnsError as exc:
        return Finding("MTA-STS", Severity.WARNING, f"the TXT lookup failed: {exc}")
    if not any(t.startswith("v=STSv1") for t in texts):
        return Finding(
            "MTA-STS",
            Severity.INFO,
            "no MTA-STS policy (mail to the domain may go over unauthenticated TLS)",
        )
    policy = await mta_sts.policy(domain, resolver)
    if policy is None:
        return Finding(
            "MTA-STS",
            Severity.WARNING,
            f"_mta-sts.{domain} is published but no valid policy could be fetched from "
            f"https://mta-sts.{domain}/.well-known/mta-sts.txt",
        )
    return Finding(
        "MTA-STS",
        Severity.OK,
        f"mode {policy.mode}, mx {', '.join(policy.mx) or '-'}, max_age {policy.max_age}",
    )


async def _check_tls_rpt(resolver: Resolver, domain: str) -> Finding:
    name = f"_smtp._tls.{domain}"
    try:
        texts = await _txt(resolver, name) or []
    except DnsError as exc:
        return Finding("TLS-RPT", Severity.WARNING, f"the TXT lookup of {name} failed: {exc}")
    records = [t for t in texts if t.replace(" ", "").startswith("v=TLSRPTv1")]
    if not records:
        return Finding("TLS-RPT", Severity.INFO, f"no TLS reporting record at {name}")
    if "rua=" not in records[0]:
        return Finding("TLS-RPT", Severity.WARNING, f"{records[0]!r} has no rua= destination")
    return Finding("TLS-RPT", Severity.OK, repr(records[0]))


async def check_sender_domain(
    domain: str,
    *,
    dkim: DkimSigner | None = None,
    resolver: Resolver | None = None,
    mta_sts: MtaSts | None = None,
) -> DomainReport:
    """Check what receivers will look up about mail from ``domain``.

    Args:
        domain: the domain of the From (and envelope sender) addresses.
        dkim: the signer the mail is signed with; its public key is compared
            with the one published at its selector.
        resolver: the resolver to ask (default: the system's).
        mta_sts: fetches the domain's MTA-STS policy when one is announced
            (default: a new :class:`~lettre.dns.mta_sts.MtaSts`).

    Returns:
        One finding per check; :attr:`DomainReport.ok` is False when
        something will make mail fail.

    Raises:
        DnsError: ``domain`` is not a valid domain name.
    """
    name = to_a_label(domain)
    resolver = resolver if resolver is not None else Resolver()
    mta_sts = mta_sts if mta_sts is not None else MtaSts()
    findings = (
        await _check_spf(resolver, name),
        await _check_dmarc(resolver, name),
        await _check_dkim(resolver, name, dkim),
        await _check_mx(resolver, name),
        await _check_mta_sts(resolver, name, mta_sts),
        await _check_tls_rpt(resolver, name),
    )
    return DomainReport(name, findings)
