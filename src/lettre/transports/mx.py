"""MxTransport: deliver straight to each recipient domain's mail exchangers.

Direct delivery is what an MTA does: for each recipient domain, look up its
MX records (:func:`lettre.dns.mx.resolve_mx`) and hand that domain's
recipients to the best exchanger that answers. One message with recipients
in three domains makes three SMTP transactions, run concurrently, and one
:class:`MxSendResult` that says, for every recipient, which exchanger took
it (or why none did) and how the channel was secured.

Needs the ``direct`` extra (dnspython).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING

import anyio

from lettre._loops import current_loop, loop_is_closed
from lettre.dns.dane import DaneRecords, match_chain, peer_chain, tlsa_lookup
from lettre.dns.mta_sts import MtaSts, MtaStsPolicy
from lettre.dns.mx import DEFAULT_MAX_EXCHANGERS, Exchanger, MxRoute, resolve_mx
from lettre.dns.resolver import Resolver
from lettre.envelope import Envelope
from lettre.errors import (
    DeliveryError,
    DnsError,
    OutcomeUnknown,
    RecipientsRefused,
    SenderRefused,
    ServerDisconnected,
    SmtpConnectError,
    SmtpError,
    SmtpReplyError,
    SmtpTimeoutError,
    TlsError,
    TlsPolicyError,
    TransportError,
)
from lettre.hooks import Hook
from lettre.results import RecipientResult, Reply, SendResult
from lettre.smtp.client import SmtpClient
from lettre.smtp.settings import DEFAULT_DATA_TIMEOUT, SmtpSettings
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.transports.base import BaseTransport, Signer

if TYPE_CHECKING:
    import ssl

    import dns.asyncresolver

    from lettre.address import Address
    from lettre.message.message import Message

__all__ = ["ChannelSecurity", "Delivery", "MxSendResult", "MxTransport"]

#: Seconds to wait for each reply from an exchanger (RFC 5321 allows minutes;
#: a direct sender has other exchangers to try).
DEFAULT_MX_TIMEOUT = 60.0
#: How many addresses of one exchanger are tried.
_ADDRESSES_PER_EXCHANGER = 2


class ChannelSecurity(enum.Enum):
    """How the connection that carried a domain's recipients was secured.

    Attributes:
        NONE: plain text (the exchanger offered no STARTTLS, or TLS is off).
        OPPORTUNISTIC: encrypted with STARTTLS, the certificate not checked
            (what MTAs do without a policy: RFC 7435 opportunistic security).
        VERIFIED: encrypted, the certificate verified against the trust store
            and the exchanger's name (``tls=TlsMode.STARTTLS``).
        MTA_STS: encrypted and verified because the domain's MTA-STS policy
            (mode ``enforce``) demands it, with the exchanger matching the
            policy.
        DANE: encrypted, and the certificate matched one of the exchanger's
            DNSSEC-validated TLSA records (RFC 7672).
    """

    NONE = "none"
    OPPORTUNISTIC = "opportunistic"
    VERIFIED = "verified"
    MTA_STS = "mta-sts"
    DANE = "dane"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one recipient domain's share of a message.

    Attributes:
        domain: the recipient domain (A-labels).
        recipients: the recipients of this domain, as in the envelope.
        exchanger: the exchanger that took the transaction, when one did.
        address: the IP address it was reached at.
        security: how that connection was secured (None when no exchanger
            took it).
        reply: the exchanger's final reply (to the end of data).
        error: why the domain's recipients were not delivered, when none was.
        failures: what went wrong with the exchangers tried before, one line
            each (``"mx1.example.net [192.0.2.1]: ..."``).
        policy: ``"dane"`` when the exchanger that took the message has
            validated TLSA records; otherwise the domain's MTA-STS policy
            mode that applied (``"enforce"``, ``"testing"``, ``"none"``), or
            None without a policy.
        policy_failures: how delivery fell short of a policy without being
            refused: in MTA-STS ``testing`` mode an exchanger not in its
            ``mx`` list or a certificate that does not verify; with DANE,
            TLSA records this code cannot use (DANE-TA).
    """

    domain: str
    recipients: tuple[str, ...]
    exchanger: str | None = None
    address: str | None = None
    security: ChannelSecurity | None = None
    reply: Reply | None = None
    error: Exception | None = None
    failures: tuple[str, ...] = ()
    policy: str | None = None
    policy_failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MxSendResult(SendResult):
    """A :class:`~lettre.SendResult` that also says where each domain's recipients went.

    ``recipients`` has every envelope recipient in envelope order; ``reply``
    and ``transport_id`` are those of the first domain delivered.

    Attributes:
        deliveries: one :class:`Delivery` per recipient domain, in the order
            the domains first appear in the envelope.
    """

    deliveries: tuple[Delivery, ...] = ()

    def delivery_of(self, recipient: str) -> Delivery | None:
        """The :class:`Delivery` that covers ``recipient`` (as in the envelope)."""
        for delivery in self.deliveries:
            if recipient in delivery.recipients:
                return delivery
        return None


class _Failover(Exception):
    """An attempt failed in a way that the next exchanger may not."""

    def __init__(self, error: SmtpError) -> None:
        super().__init__(str(error))
        self.error = error


class MxTransport(BaseTransport):
    """Deliver each message to its recipients' mail exchangers (no relay).

    Recipients are grouped by domain; each group goes to the first of its
    domain's exchangers (RFC 5321 section 5 order) that takes it. An
    exchanger that cannot be reached, times out, greets with 4xx or 421,
    fails the TLS handshake or answers MAIL with 4xx is skipped for the next
    one. A refusal of a recipient (5xx permanent, 4xx transient) is that
    recipient's outcome; nothing is tried elsewhere for it.

    TLS: by default STARTTLS when the exchanger offers it, with the
    certificate not verified (``ChannelSecurity.OPPORTUNISTIC``): exchangers'
    certificates are commonly self-signed or issued for another name, and
    an MTA without a policy for the domain accepts them rather than sending
    in plain text. ``tls=TlsMode.STARTTLS`` requires TLS with a certificate
    verified against the trust store and the exchanger's name
    (``tls_parameters``), for a closed set of domains you know;
    ``tls=TlsMode.NONE`` never encrypts.

    Connections are kept per exchanger address and reused for later
    messages (at most ``max_idle`` idle per address, for ``idle_timeout``
    seconds).

    Args:
        hello_name: the EHLO name: this host's fully qualified name, which
            should match its sending IP address's reverse DNS (required).
        resolver: the :class:`~lettre.dns.resolver.Resolver` for every lookup,
            or a ``dns.asyncresolver.Resolver``.
        nameservers: IP addresses of the name servers to use instead (with
            ``dns_port``); the system's when neither is given.
        dns_port: the port of ``nameservers``.
        port: the exchangers' SMTP port (25).
        tls: ``TlsMode.OPPORTUNISTIC`` (default), ``STARTTLS`` (required and
            verified) or ``NONE``.
        tls_parameters: trust store, client certificate and versions for TLS.
        max_exchangers: how many exchangers of a domain are tried at most.
        timeout: seconds to wait for each reply (and to connect).
        data_timeout: seconds to wait for the reply to the end of the data.
        local_address: the local IP address to send from.
        max_idle: idle connections kept per exchanger address.
        idle_timeout: seconds an idle connection is kept.
        mta_sts: honour recipient domains' MTA-STS policies (RFC 8461): True
            (default) with the system trust store and an in-memory cache, an
            :class:`~lettre.dns.mta_sts.MtaSts` to configure it, or False.
        dane: honour exchangers' TLSA records (RFC 7672) when the resolver
            is marked validating (``Resolver(validating=True)``); DANE takes
            precedence over MTA-STS.
        dkim: a signer (or several) that signs each message before it is sent.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send
            (see :mod:`lettre.hooks`).

    Raises:
        ValueError: ``hello_name`` is missing or invalid, or another setting
            is invalid.
        TlsError: the TLS parameters cannot be loaded.
    """

    transport_name = "mx"

    def __init__(
        self,
        *,
        hello_name: str | None = None,
        resolver: Resolver | dns.asyncresolver.Resolver | None = None,
        nameservers: Sequence[str] | None = None,
        dns_port: int = 53,
        port: int = 25,
        tls: TlsMode | str = TlsMode.OPPORTUNISTIC,
        tls_parameters: TlsParameters | None = None,
        max_exchangers: int = DEFAULT_MAX_EXCHANGERS,
        timeout: float = DEFAULT_MX_TIMEOUT,
        data_timeout: float = DEFAULT_DATA_TIMEOUT,
        local_address: str | None = None,
        max_idle: int = 2,
        idle_timeout: float = 30.0,
        mta_sts: MtaSts | bool = True,
        dane: bool = True,
        dkim: Signer | Sequence[Signer] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        super().__init__(dkim=dkim, hooks=hooks)
        if hello_name is None:
            raise ValueError(
                "MxTransport needs hello_name=: this host's fully qualified domain name "
                "(receivers check it against the sending address's reverse DNS), for "
                "example MxTransport(hello_name='mail.example.com')"
            )
        mode = TlsMode.parse(tls)
        if mode is TlsMode.IMPLICIT:
            raise ValueError("exchangers speak STARTTLS on port 25: tls must not be IMPLICIT")
        if isinstance(max_exchangers, bool) or not isinstance(max_exchangers, int):
            raise TypeError("max_exchangers must be an int")
        if max_exchangers < 1:
            raise ValueError(f"max_exchangers must be at least 1, not {max_exchangers}")
        if isinstance(resolver, Resolver):
            if nameservers is not None:
                raise ValueError("pass either resolver= or nameservers=, not both")
            self._resolver = resolver
        else:
            self._resolver = Resolver(nameservers, port=dns_port, resolver=resolver)
        # One definition of every SMTP setting: SmtpSettings checks them all.
        self._template = SmtpSettings(
            host="mx.invalid",
            port=port,
            tls=mode,
            tls_parameters=tls_parameters,
            hello_name=hello_name,
            timeout=timeout,
            data_timeout=data_timeout,
            local_address=local_address,
        )
        base = tls_parameters if tls_parameters is not None else TlsParameters()
        unverified = dataclasses.replace(base, dangerously_skip_verification=True)
        verified = base.create_context()
        self._contexts: dict[ChannelSecurity, ssl.SSLContext] = {
            ChannelSecurity.OPPORTUNISTIC: unverified.create_context(),
            ChannelSecurity.VERIFIED: verified,
            ChannelSecurity.MTA_STS: verified,
        }
        if mta_sts is True:
            mta_sts = MtaSts()
        elif mta_sts is not False and not isinstance(mta_sts, MtaSts):
            raise TypeError("mta_sts must be True, False or an MtaSts")
        self._mta_sts: MtaSts | None = mta_sts or None
        self._dane = bool(dane)
        self._contexts[ChannelSecurity.DANE] = self._contexts[ChannelSecurity.OPPORTUNISTIC]
        self._tls_parameters = base
        self._max_exchangers = max_exchangers
        self._max_idle = max_idle
        self._idle_timeout = float(idle_timeout)
        self._idle: dict[tuple[object, str, str, ChannelSecurity], list[SmtpClient]] = {}
        self._closed = False

    def __repr__(self) -> str:
        t = self._template
        return (
            f"MxTransport(hello_name={t.hello_name!r}, port={t.port}, tls={t.tls.value}, "
            f"resolver={self._resolver!r})"
        )

    @property
    def resolver(self) -> Resolver:
        """The resolver every lookup goes through."""
        return self._resolver

    # ------------------------------------------------------------------ sending

    async def send(
        self, message: Message | EmailMessage, *, envelope: Envelope | None = None
    ) -> MxSendResult:
        """Serialise ``message`` (signing it if configured) and deliver it.

        Args:
            message: a lettre :class:`~lettre.Message` or a stdlib
                :class:`email.message.EmailMessage`.
            envelope: overrides the envelope derived from the message's headers.

        Returns:
            Every recipient's outcome and every domain's delivery.

        Raises:
            DeliveryError: no recipient was accepted (see its ``result``).
            MessageError: the message cannot be serialised.
        """
        env, data, message_id = await self._prepare(message, envelope)
        return await self._observed(env, data, message_id, self._send_raw)

    async def send_raw(self, envelope: Envelope, data: bytes) -> MxSendResult:
        """Deliver serialised message bytes to the envelope's recipient domains.

        Args:
            envelope: the reverse path, the recipients and their DSN options.
            data: the message, CRLF line endings, sent as it is.

        Returns:
            Every recipient's outcome and every domain's delivery, when at
            least one recipient was accepted.

        Raises:
            DeliveryError: no recipient was accepted; ``transient`` when a
                later try may deliver to some of them.
        """
        return await self._observed(envelope, data, None, self._send_raw)

    async def _send_raw(self, envelope: Envelope, data: bytes) -> MxSendResult:
        """Deliver to the envelope's recipient domains: what :meth:`send_raw` runs (see there)."""
        if self._closed:
            raise TransportError(
                "the MX transport is closed; open it again with `async with transport:`"
            )
        groups: dict[str, list[Address]] = {}
        for address in envelope.forward_paths:
            groups.setdefault(address.ascii_domain.lower(), []).append(address)
        deliveries: dict[str, Delivery] = {}
        outcomes: dict[str, tuple[RecipientResult, ...]] = {}

        async def deliver(domain: str, recipients: list[Address]) -> None:
            delivery, results = await self._deliver_domain(domain, envelope, recipients, data)
            deliveries[domain] = delivery
            outcomes[domain] = results

        async with anyio.create_task_group() as group:
            for domain, recipients in groups.items():
                group.start_soon(deliver, domain, recipients)

        by_recipient: dict[str, RecipientResult] = {}
        for results in outcomes.values():
            for r in results:
                by_recipient[r.recipient] = r
        ordered = tuple(by_recipient[str(a)] for a in envelope.forward_paths)
        ordered_deliveries = tuple(deliveries[d] for d in groups)
        first = next((d for d in ordered_deliveries if d.error is None), None)
        result = MxSendResult(
            recipients=ordered,
            message_id=None,
            transport_id=_queue_id(first.reply) if first is not None else None,
            reply=first.reply if first is not None else None,
            deliveries=ordered_deliveries,
        )
        if not any(r.accepted for r in ordered):
            transient = any(_is_transient(r) for r in ordered)
            reasons = "; ".join(
                f"{d.domain}: {d.error if d.error is not None else 'every recipient refused'}"
                for d in ordered_deliveries
            )
            raise DeliveryError(
                f"no recipient was accepted ({reasons})", result=result, transient=transient
            )
        return result

    async def _deliver_domain(
        self, domain: str, envelope: Envelope, recipients: list[Address], data: bytes
    ) -> tuple[Delivery, tuple[RecipientResult, ...]]:
        names = tuple(str(a) for a in recipients)

        def refused(
            error: Exception, failures: tuple[str, ...] = ()
        ) -> tuple[Delivery, tuple[RecipientResult, ...]]:
            results = tuple(RecipientResult(n, False, None, error) for n in names)
            return Delivery(domain, names, error=error, failures=failures), results

        try:
            route = await resolve_mx(domain, self._resolver, max_exchangers=self._max_exchangers)
        except DnsError as exc:
            return refused(exc)
        sub = Envelope(
            envelope.reverse_path,
            recipients,
            notify=envelope.notify,
            ret=envelope.ret,
            envid=envelope.envid,
            orcpt=envelope.orcpt,
        )
        policy = None
        if self._mta_sts is not None and not route.domain.startswith("["):
            policy = await self._mta_sts.policy(route.domain, self._resolver)
        return await self._deliver_route(route, names, sub, data, policy)

    def _plan(self) -> ChannelSecurity:
        """The security of a connection made without a policy, from ``tls``."""
        mode = self._template.tls
        if mode is TlsMode.OPPORTUNISTIC:
            return ChannelSecurity.OPPORTUNISTIC
        if mode is TlsMode.STARTTLS:
            return ChannelSecurity.VERIFIED
        return ChannelSecurity.NONE

    async def _deliver_route(
        self,
        route: MxRoute,
        names: tuple[str, ...],
        envelope: Envelope,
        data: bytes,
        policy: MtaStsPolicy | None,
    ) -> tuple[Delivery, tuple[RecipientResult, ...]]:
        failures: list[str] = []
        policy_failures: list[str] = []
        last: SmtpError | None = None
        mode = policy.mode if policy is not None else None
        exchangers = list(route.exchangers)
        plan = self._plan()
        tlsa: dict[str, DaneRecords] = {}
        bogus: set[str] = set()
        if self._dane and self._resolver.validating and route.authentic:
            for exchanger in exchangers:
                if not exchanger.authentic:
                    continue
                try:
                    found = await tlsa_lookup(
                        self._resolver, exchanger.name, self._template.effective_port
                    )
                except DnsError as exc:
                    # Perhaps bogus records: this exchanger must not get the message.
                    failures.append(f"{exchanger.name}: {exc}")
                    last = TlsError(str(exc))
                    bogus.add(exchanger.name)
                    continue
                if found is not None:
                    tlsa[exchanger.name] = found
            exchangers = [e for e in exchangers if e.name not in bogus]
        if policy is not None and mode == "enforce":
            # DANE takes precedence over MTA-STS (RFC 8461 2).
            exchangers = [e for e in exchangers if e.name in tlsa or policy.allows(e.name)]
            plan = ChannelSecurity.MTA_STS
            if not exchangers:
                refusal = TlsPolicyError(
                    f"no exchanger of {route.domain!r} matches its MTA-STS policy "
                    f"(mode enforce, mx {', '.join(policy.mx)}; exchangers "
                    f"{', '.join(e.name for e in route.exchangers)}): not delivered"
                )
                results = tuple(RecipientResult(n, False, None, refusal) for n in names)
                return Delivery(route.domain, names, error=refusal, policy=mode), results
        for exchanger in exchangers:
            if mode == "testing" and policy is not None and not policy.allows(exchanger.name):
                policy_failures.append(f"{exchanger.name}: not in the policy's mx list")
            records = tlsa.get(exchanger.name)
            if records is not None:
                for record in records.unusable:
                    policy_failures.append(
                        f"{exchanger.name}: TLSA {record} is not usable here "
                        "(only DANE-EE records are matched)"
                    )
            for address in exchanger.addresses[:_ADDRESSES_PER_EXCHANGER]:
                where = f"{exchanger.name} [{address}]"
                try:
                    if records is not None:
                        result, security = await self._attempt(
                            exchanger, address, envelope, data, ChannelSecurity.DANE, records
                        )
                    elif mode == "testing" and plan is ChannelSecurity.OPPORTUNISTIC:
                        try:
                            result, security = await self._attempt(
                                exchanger, address, envelope, data, ChannelSecurity.VERIFIED
                            )
                        except _Failover as failover:
                            if not isinstance(failover.error, TlsError):
                                raise
                            policy_failures.append(f"{where}: {failover.error}")
                            result, security = await self._attempt(
                                exchanger, address, envelope, data, plan
                            )
                    else:
                        result, security = await self._attempt(
                            exchanger, address, envelope, data, plan
                        )
                except _Failover as failover:
                    last = failover.error
                    failures.append(f"{where}: {failover.error}")
                    continue
                except SmtpError as exc:
                    # Final for this domain: the exchanger answered for it.
                    delivery = Delivery(
                        route.domain,
                        names,
                        exchanger.name,
                        address,
                        None,
                        None,
                        exc,
                        tuple(failures),
                        mode,
                        tuple(policy_failures),
                    )
                    if isinstance(exc, RecipientsRefused):
                        return delivery, _named(exc.results, names, exc)
                    return delivery, tuple(RecipientResult(n, False, None, exc) for n in names)
                delivery = Delivery(
                    route.domain,
                    names,
                    exchanger.name,
                    address,
                    security,
                    result.reply,
                    None,
                    tuple(failures),
                    "dane" if records is not None else mode,
                    tuple(policy_failures),
                )
                return delivery, _named(result.recipients, names, None)
        assert last is not None  # a route has at least one exchanger with an address
        tried = len(failures)
        text = f"no exchanger of {route.domain!r} took the message ({tried} tried; last: {last})"
        if (tlsa or bogus) and all(e.name in tlsa for e in exchangers):
            error: TransportError = TlsPolicyError(
                f"{text}; the exchangers' DANE TLSA records require TLS with a matching certificate"
            )
        elif plan is ChannelSecurity.MTA_STS:
            error = TlsPolicyError(
                f"{text}; the domain's MTA-STS policy (enforce) requires TLS with a valid "
                "certificate"
            )
        else:
            error = TransportError(text, transient=True)
        error.__cause__ = last
        results = tuple(RecipientResult(n, False, None, error) for n in names)
        delivery = Delivery(
            route.domain,
            names,
            error=error,
            failures=tuple(failures),
            policy=mode,
            policy_failures=tuple(policy_failures),
        )
        return delivery, results

    async def _attempt(
        self,
        exchanger: Exchanger,
        address: str,
        envelope: Envelope,
        data: bytes,
        security: ChannelSecurity,
        tlsa: DaneRecords | None = None,
    ) -> tuple[SendResult, ChannelSecurity]:
        """One transaction with one exchanger address; ``_Failover`` when the next may do better."""
        key = (current_loop(), address, exchanger.name, security)
        client = await self._take_idle(key)
        if client is None:
            tls = {
                ChannelSecurity.NONE: TlsMode.NONE,
                ChannelSecurity.OPPORTUNISTIC: TlsMode.OPPORTUNISTIC,
            }.get(security, TlsMode.STARTTLS)
            settings = dataclasses.replace(
                self._template,
                host=address,
                tls=tls,
                tls_parameters=dataclasses.replace(
                    self._tls_parameters, server_name=exchanger.name
                ),
            )
            client = SmtpClient(
                settings, ssl_context=self._contexts.get(security), hooks=self._hooks
            )
            try:
                await client.connect()
                if tlsa is not None:
                    _check_dane(client, tlsa)
            except SmtpError as exc:
                await client.aclose()
                raise _Failover(exc) from exc
        try:
            result = await client.send(envelope, data)
        except OutcomeUnknown:
            await client.aclose()
            raise
        except (ServerDisconnected, SmtpTimeoutError, SmtpConnectError) as exc:
            await client.aclose()
            raise _Failover(exc) from exc
        except SenderRefused as exc:
            await self._give_back(key, client)
            if exc.transient:
                raise _Failover(exc) from exc
            raise
        except SmtpReplyError:
            await self._give_back(key, client)
            raise
        except BaseException:
            await client.aclose()
            raise
        encrypted = client.is_encrypted
        await self._give_back(key, client)
        if not encrypted:
            return result, ChannelSecurity.NONE
        if security is ChannelSecurity.DANE and (tlsa is None or not tlsa.usable):
            # Only unusable TLSA records: encrypted (mandatory), not authenticated.
            return result, ChannelSecurity.OPPORTUNISTIC
        return result, security

    # ------------------------------------------------------------------ connections

    async def _take_idle(self, key: tuple[object, str, str, ChannelSecurity]) -> SmtpClient | None:
        """An idle connection of this loop to the address, if one is still fresh."""
        idle = self._idle.get(key)
        now = anyio.current_time()
        while idle:
            client = idle.pop()
            if client.is_usable and now - client.last_used < self._idle_timeout:
                return client
            await client.abort()  # expired (or broken) while idle: no QUIT
        return None

    async def _give_back(
        self, key: tuple[object, str, str, ChannelSecurity], client: SmtpClient
    ) -> None:
        """Keep the connection for the next message, or close it (QUIT) if it is not kept."""
        idle = self._idle.setdefault(key, [])
        if client.is_usable and len(idle) < self._max_idle and not self._closed:
            idle.append(client)
        else:
            await client.aclose()

    def for_new_process(self) -> MxTransport:
        """A copy of this transport that shares no connection with it, for a forked child.

        The settings, signers, resolver configuration and MTA-STS cache object
        are shared; the idle connections are not.
        """
        fresh = copy.copy(self)
        fresh._idle = {}
        fresh._closed = False
        return fresh

    async def aclose(self) -> None:
        """Close the idle connections (QUIT); later sends fail until reopened."""
        self._closed = True
        await self._close_idle()

    async def _close_idle(self) -> None:
        here = current_loop()
        idle, self._idle = self._idle, {}
        with anyio.CancelScope(shield=True):
            for key, clients in idle.items():
                for client in clients:
                    # Another loop's connections cannot be awaited from here.
                    if key[0] is here and not loop_is_closed(here):
                        await client.aclose()
                    else:
                        client.abandon()

    async def __aenter__(self) -> MxTransport:
        self._closed = False
        return self


def _check_dane(client: SmtpClient, tlsa: DaneRecords) -> None:
    """Raise TlsError unless the connection's certificate matches a usable TLSA record.

    With no usable record, TLS is still mandatory (the connection is
    encrypted: STARTTLS was required) but the certificate is not checked.
    """
    usable = tlsa.usable
    if not usable:
        return
    chain = _peer_chain(client)
    if chain is None or match_chain(usable, chain, tlsa.host) is None:
        raise TlsError(
            f"the certificate of {tlsa.host} matches none of its TLSA records "
            f"({', '.join(str(r) for r in usable)}): DANE authentication failed"
        )


def _peer_chain(client: SmtpClient) -> list[bytes] | None:
    """The DER certificates the server presented, leaf first, or None."""
    stream = client.stream
    ssl_object = stream.ssl_object if stream is not None else None
    if ssl_object is None:
        return None
    leaf = ssl_object.getpeercert(binary_form=True)
    if not isinstance(leaf, bytes):
        return None
    chain = peer_chain(ssl_object)
    if not chain or chain[0] != leaf:
        return [leaf]
    return chain


def _named(
    results: Sequence[RecipientResult], names: tuple[str, ...], error: Exception | None
) -> tuple[RecipientResult, ...]:
    """The client's per-recipient results under the envelope's names, in order."""
    out: list[RecipientResult] = []
    for index, name in enumerate(names):
        if index < len(results):
            r = results[index]
            err = r.error if r.error is not None else (None if r.accepted else error)
            out.append(RecipientResult(name, r.accepted, r.reply, err))
        else:
            out.append(RecipientResult(name, False, None, error))
    return tuple(out)


def _queue_id(reply: Reply | None) -> str | None:
    if reply is None:
        return None
    from lettre.smtp.client import queue_id_from_reply

    return queue_id_from_reply(reply)


def _is_transient(result: RecipientResult) -> bool:
    if result.reply is not None:
        return result.reply.is_transient
    error = result.error
    return isinstance(error, TransportError) and error.transient
