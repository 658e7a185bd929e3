"""MTA-STS (RFC 8461): a domain's published demand for verified TLS to its exchangers.

A domain announces a policy with a TXT record at ``_mta-sts.<domain>``
(``v=STSv1; id=...``) and serves it over HTTPS at
``https://mta-sts.<domain>/.well-known/mta-sts.txt``. The policy names the
exchangers allowed (``mx:`` patterns) and a mode: ``enforce`` (deliver only
to a matching exchanger over TLS with a certificate valid for its name),
``testing`` (deliver anyway, report failures) or ``none``.

:class:`MtaSts` finds a domain's policy: it asks for the TXT record through
the transport's resolver, uses a cached policy while the id is unchanged
and ``max_age`` has not passed, and otherwise fetches it with httpx, whose
connection goes to an address the same resolver returned (the name is kept
for SNI, the Host header and the certificate check), with the certificate
verified, no redirects followed, and the size and the time bounded.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from lettre.dns.resolver import Resolver, to_a_label
from lettre.errors import DnsError
from lettre.smtp.tls import TlsParameters

__all__ = [
    "MAX_POLICY_SIZE",
    "MemoryPolicyCache",
    "MtaSts",
    "MtaStsPolicy",
    "PolicyCache",
    "mx_matches",
    "parse_policy",
]

MAX_POLICY_SIZE = 64 * 1024
"""The largest policy accepted, in bytes (RFC 8461 3.3 says senders may stop at 64 KiB)."""

_MAX_AGE_LIMIT = 31_557_600  # one year, RFC 8461 3.2
_ID = re.compile(r"[A-Za-z0-9]{1,32}\Z")
_MODES = ("enforce", "testing", "none")


@dataclass(frozen=True, slots=True)
class MtaStsPolicy:
    """One domain's MTA-STS policy.

    Attributes:
        domain: the policy domain (A-labels).
        id: the ``id`` of the TXT record the policy was fetched for.
        mode: ``"enforce"``, ``"testing"`` or ``"none"``.
        mx: the ``mx`` patterns (``mail.example.com``, ``*.example.net``).
        max_age: seconds the policy may be cached.
        fetched_at: when it was fetched (``time.time()``).
    """

    domain: str
    id: str
    mode: str
    mx: tuple[str, ...]
    max_age: int
    fetched_at: float

    def expired(self, now: float | None = None) -> bool:
        """Whether ``max_age`` has passed since the policy was fetched."""
        return (time.time() if now is None else now) >= self.fetched_at + self.max_age

    def allows(self, exchanger: str) -> bool:
        """Whether ``exchanger`` matches one of the policy's ``mx`` patterns."""
        return any(mx_matches(pattern, exchanger) for pattern in self.mx)


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 4.1: ``host`` matches ``pattern``; ``*.`` stands for exactly one leftmost label."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return host == pattern


def parse_policy(text: str, *, domain: str, policy_id: str, fetched_at: float) -> MtaStsPolicy:
    """Parse the body of ``mta-sts.txt`` (RFC 8461 3.2).

    Raises:
        ValueError: the policy is malformed (quoting the offending line).
    """
    fields: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"MTA-STS policy line {raw!r} has no ':'")
        fields.setdefault(key.strip().lower(), []).append(value.strip())
    version = fields.get("version", [""])[0]
    if version != "STSv1":
        raise ValueError(f"MTA-STS policy version is {version!r}, not 'STSv1'")
    mode = fields.get("mode", [""])[0]
    if mode not in _MODES:
        raise ValueError(f"MTA-STS policy mode {mode!r} is not enforce, testing or none")
    age = fields.get("max_age", [""])[0]
    if not age.isdigit() or int(age) > _MAX_AGE_LIMIT:
        raise ValueError(f"MTA-STS policy max_age {age!r} is not 0 to {_MAX_AGE_LIMIT}")
    mx = tuple(m.lower().rstrip(".") for m in fields.get("mx", []) if m)
    if mode != "none" and not mx:
        raise ValueError(f"MTA-STS policy in mode {mode!r} names no mx")
    return MtaStsPolicy(domain, policy_id, mode, mx, int(age), fetched_at)


class PolicyCache(Protocol):
    """Where fetched policies are kept between messages (shareable between workers)."""

    async def get(self, domain: str) -> MtaStsPolicy | None:
        """The cached policy of ``domain`` (expired or not), or None."""
        ...

    async def set(self, policy: MtaStsPolicy) -> None:
        """Keep ``policy`` (replacing the domain's previous one)."""
        ...


class MemoryPolicyCache:
    """A :class:`PolicyCache` in this process's memory (the default)."""

    def __init__(self) -> None:
        self._policies: dict[str, MtaStsPolicy] = {}

    async def get(self, domain: str) -> MtaStsPolicy | None:
        """The cached policy of ``domain``, or None."""
        return self._policies.get(domain)

    async def set(self, policy: MtaStsPolicy) -> None:
        """Keep ``policy``."""
        self._policies[policy.domain] = policy


def _txt_id(strings: list[str]) -> str | None:
    """The ``id`` of the one valid ``v=STSv1`` TXT record, or None (RFC 8461 3.1)."""
    candidates = [s for s in strings if s.startswith("v=STSv1")]
    if len(candidates) != 1:
        return None
    fields = {}
    for part in candidates[0].split(";"):
        key, eq, value = part.strip().partition("=")
        if eq:
            fields[key.strip()] = value.strip()
    policy_id = fields.get("id", "")
    return policy_id if _ID.match(policy_id) else None


class MtaSts:
    """Finds recipient domains' MTA-STS policies.

    Args:
        tls_parameters: the trust store for the policy servers' certificates
            (default: the system's; always verified).
        cache: where policies are kept (default: in memory).
        timeout: seconds the policy fetch may take in all.
        port: the HTTPS port of the policy servers (443; for tests).
        clock: the wall clock (``time.time``) that dates and expires policies.
    """

    def __init__(
        self,
        *,
        tls_parameters: TlsParameters | None = None,
        cache: PolicyCache | None = None,
        timeout: float = 10.0,
        port: int = 443,
        clock: Callable[[], float] = time.time,
    ) -> None:
        params = tls_parameters if tls_parameters is not None else TlsParameters()
        if params.dangerously_skip_verification or params.dangerously_skip_hostname_check:
            raise ValueError("MTA-STS policies are only trusted from a verified HTTPS server")
        self._context: ssl.SSLContext = params.create_context()
        self._cache: PolicyCache = cache if cache is not None else MemoryPolicyCache()
        self._timeout = float(timeout)
        self._port = port
        self._clock = clock

    async def policy(self, domain: str, resolver: Resolver) -> MtaStsPolicy | None:
        """The policy that applies to ``domain`` now, or None.

        Never raises for the domain's trouble: a missing or broken policy
        means no policy (RFC 8461 5), except that a cached, unexpired policy
        still applies when the TXT lookup or the fetch fails.
        """
        name = to_a_label(domain)
        cached = await self._cache.get(name)
        now = self._clock()
        if cached is not None and cached.expired(now):
            cached = None
        try:
            answer = await resolver.lookup(f"_mta-sts.{name}", "TXT")
        except DnsError:
            return cached
        strings = [b"".join(r.strings).decode("utf-8", "replace") for r in answer.records]
        policy_id = _txt_id(strings)
        if policy_id is None:
            return cached
        if cached is not None and cached.id == policy_id:
            return cached
        try:
            text = await self._fetch(name, resolver)
            fresh = parse_policy(text, domain=name, policy_id=policy_id, fetched_at=now)
        except (ValueError, OSError, httpx.HTTPError, DnsError, ssl.SSLError):
            return cached
        await self._cache.set(fresh)
        return fresh

    async def _fetch(self, domain: str, resolver: Resolver) -> str:
        host = f"mta-sts.{domain}"
        addresses: list[str] = []
        for rdtype in ("A", "AAAA"):
            answer = await resolver.lookup(host, rdtype)
            addresses.extend(str(r.address) for r in answer.records)
        if not addresses:
            raise ValueError(f"{host} has no address")
        last: Exception | None = None
        async with httpx.AsyncClient(
            verify=self._context,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self._timeout),
        ) as client:
            for address in addresses[:2]:
                shown = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
                request = client.build_request(
                    "GET",
                    f"https://{shown}:{self._port}/.well-known/mta-sts.txt",
                    headers={"Host": host if self._port == 443 else f"{host}:{self._port}"},
                    extensions={"sni_hostname": host},
                )
                try:
                    return await self._read(client, request, host)
                except (OSError, httpx.TransportError) as exc:
                    last = exc
        raise ValueError(f"the MTA-STS policy of {domain!r} could not be fetched: {last}")

    async def _read(self, client: httpx.AsyncClient, request: httpx.Request, host: str) -> str:
        response = await client.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise ValueError(f"https://{host}/.well-known/mta-sts.txt: {response.status_code}")
            media = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "text/plain":
                raise ValueError(f"the policy's media type is {media!r}, not text/plain")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_POLICY_SIZE:
                    raise ValueError(f"the policy is larger than {MAX_POLICY_SIZE} bytes")
            return body.decode("utf-8")
        finally:
            await response.aclose()
