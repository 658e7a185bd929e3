"""DANE for SMTP (RFC 7672) with a real DNS server setting the AD bit and real exchangers."""

from __future__ import annotations

import hashlib

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from direct_support import MxServers, PolicyServer
from dns_server import DnsServer

from lettre import Message
from lettre.dns import dane
from lettre.dns.dane import TlsaRecord, match_certificate, subject_public_key_info
from lettre.dns.mta_sts import MemoryPolicyCache, MtaSts
from lettre.dns.resolver import Resolver
from lettre.errors import DeliveryError, TlsPolicyError
from lettre.smtp.tls import TlsParameters
from lettre.transports.mx import ChannelSecurity, MxTransport
from servers import TlsMaterial

pytestmark = pytest.mark.anyio

MX_RECORDS = """
a.test. 300 IN MX 10 mx1.a.test.
a.test. 300 IN MX 20 mx2.a.test.
mx1.a.test. 300 IN A 127.0.0.2
mx2.a.test. 300 IN A 127.0.0.3
"""


def _tlsa(usage: int, selector: int, mtype: int, certificate: bytes) -> str:
    selected = certificate if selector == 0 else subject_public_key_info(certificate)
    if mtype == 1:
        selected = hashlib.sha256(selected).digest()
    elif mtype == 2:
        selected = hashlib.sha512(selected).digest()
    return f"{usage} {selector} {mtype} {selected.hex()}"


def _other_certificate() -> bytes:
    import ssl

    pem = trustme.CA().issue_cert("mx1.a.test").cert_chain_pems[0].bytes().decode("ascii")
    return ssl.PEM_cert_to_DER_cert(pem)


def _transport(
    dns_server: DnsServer,
    mx_servers: MxServers,
    *,
    validating: bool = True,
    mta_sts: MtaSts | bool = False,
) -> MxTransport:
    resolver = Resolver(["127.0.0.1"], port=dns_server.port, timeout=2.0, validating=validating)
    return MxTransport(
        hello_name="sender.lettre.test",
        resolver=resolver,
        port=mx_servers.port,
        timeout=5.0,
        tls_parameters=TlsParameters(ca_data=mx_servers.tls_material.ca_pem),
        mta_sts=mta_sts,
    )


def _message() -> Message:
    return (
        Message.builder()
        .from_("a@sender.lettre.test")
        .to("bob@a.test")
        .subject("s")
        .text("t\n")
        .build()
    )


@pytest.mark.parametrize(
    ("selector", "mtype"),
    [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)],
    ids=["cert-full", "cert-sha256", "cert-sha512", "spki-full", "spki-sha256", "spki-sha512"],
)
async def test_dane_ee_match(
    dns_server: DnsServer, mx_servers: MxServers, selector: int, mtype: int
) -> None:
    # DANE-EE checks neither the name nor the issuer.
    handler = mx_servers.start("127.0.0.2", cert_names=("someone-else.test",))
    record = _tlsa(3, selector, mtype, mx_servers.certificates["127.0.0.2"])
    dns_server.add(MX_RECORDS + f"_{mx_servers.port}._tcp.mx1.a.test. 300 IN TLSA {record}")
    dns_server.authentic(everything=True)
    async with _transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message())
    delivery = result.deliveries[0]
    assert delivery.security is ChannelSecurity.DANE
    assert delivery.policy == "dane"
    assert handler.messages[0].tls


async def test_dane_mismatch_fails_over(dns_server: DnsServer, mx_servers: MxServers) -> None:
    first = mx_servers.start("127.0.0.2")
    second = mx_servers.start("127.0.0.3")
    record = _tlsa(3, 1, 1, _other_certificate())
    dns_server.add(MX_RECORDS + f"_{mx_servers.port}._tcp.mx1.a.test. 300 IN TLSA {record}")
    dns_server.authentic(everything=True)
    async with _transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message())
    assert first.messages == []
    assert len(second.messages) == 1
    delivery = result.deliveries[0]
    assert delivery.exchanger == "mx2.a.test"
    assert delivery.security is ChannelSecurity.OPPORTUNISTIC  # mx2 has no TLSA records
    assert "matches none of its TLSA records" in delivery.failures[0]


async def test_dane_mismatch_everywhere_is_not_delivered(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    handler = mx_servers.start("127.0.0.2")
    record = _tlsa(3, 0, 1, _other_certificate())
    dns_server.add(
        "a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2\n"
        f"_{mx_servers.port}._tcp.mx1.a.test. 300 IN TLSA {record}"
    )
    dns_server.authentic(everything=True)
    async with _transport(dns_server, mx_servers) as transport:
        with pytest.raises(DeliveryError) as info:
            await transport.send(_message())
    assert info.value.transient
    assert isinstance(info.value.result.recipients[0].error, TlsPolicyError)
    assert handler.messages == []


async def test_dane_requires_starttls(dns_server: DnsServer, mx_servers: MxServers) -> None:
    handler = mx_servers.start("127.0.0.2", starttls=False)
    record = "3 1 1 " + "00" * 32
    dns_server.add(
        "a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2\n"
        f"_{mx_servers.port}._tcp.mx1.a.test. 300 IN TLSA {record}"
    )
    dns_server.authentic(everything=True)
    async with _transport(dns_server, mx_servers) as transport:
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            await transport.send(_message())
    assert handler.messages == []


@pytest.mark.parametrize("validating", [True, False], ids=["no-ad", "not-validating"])
async def test_tlsa_records_without_trust_are_ignored(
    dns_server: DnsServer, mx_servers: MxServers, validating: bool
) -> None:
    handler = mx_servers.start("127.0.0.2")
    record = _tlsa(3, 1, 1, _other_certificate())
    tlsa_name = f"_{mx_servers.port}._tcp.mx1.a.test"
    dns_server.add(MX_RECORDS + f"{tlsa_name}. 300 IN TLSA {record}")
    if validating:
        # Everything is authentic but the TLSA answer: insecure, ignored.
        dns_server.authentic("a.test", "mx1.a.test", "mx2.a.test")
    else:
        dns_server.authentic(everything=True)  # but the resolver is not trusted
    async with _transport(dns_server, mx_servers, validating=validating) as transport:
        result = await transport.send(_message())
    assert len(handler.messages) == 1
    assert result.deliveries[0].security is ChannelSecurity.OPPORTUNISTIC
    assert result.deliveries[0].policy is None
    if not validating:
        assert dns_server.asked(tlsa_name) == []


async def test_tlsa_of_an_insecure_mx_is_not_looked_up(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    mx_servers.start("127.0.0.2")
    tlsa_name = f"_{mx_servers.port}._tcp.mx1.a.test"
    dns_server.add(MX_RECORDS + f"{tlsa_name}. 300 IN TLSA 3 1 1 {'00' * 32}")
    dns_server.authentic("mx1.a.test", "mx2.a.test", tlsa_name)  # not the MX answer
    async with _transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message())
    assert result.deliveries[0].security is ChannelSecurity.OPPORTUNISTIC
    assert dns_server.asked(tlsa_name) == []


@pytest.mark.parametrize(("selector", "mtype"), [(0, 1), (1, 1), (0, 2), (0, 0)])
async def test_dane_ta_match(
    dns_server: DnsServer, mx_servers: MxServers, selector: int, mtype: int
) -> None:
    intermediate = mx_servers.tls_material.ca.create_child_ca()
    handler = mx_servers.start("127.0.0.2", cert_names=("mx1.a.test",), issuer=intermediate)
    chain = mx_servers.chains["127.0.0.2"]
    assert len(chain) == 2
    record = _tlsa(2, selector, mtype, chain[1])
    dns_server.add(
        "a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2\n"
        f"_{mx_servers.port}._tcp.mx1.a.test. 300 IN TLSA {record}"
    )
    dns_server.authentic(everything=True)
    async with _transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message())
    assert handler.messages[0].tls
    assert result.deliveries[0].security is ChannelSecurity.DANE
    assert result.deliveries[0].policy_failures == ()


@pytest.mark.parametrize("problem", ["name", "anchor"])
async def test_dane_ta_mismatch(dns_server: DnsServer, mx_servers: MxServers, problem: str) -> None:
    intermediate = mx_servers.tls_material.ca.create_child_ca()
    names = ("someone-else.test",) if problem == "name" else ("mx1.a.test",)
    handler = mx_servers.start("127.0.0.2", cert_names=names, issuer=intermediate)
    anchor = mx_servers.chains["127.0.0.2"][1] if problem == "name" else _other_certificate()
    record = _tlsa(2, 1, 1, anchor)
    dns_server.add(
        "a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2\n"
        f"_{mx_servers.port}._tcp.mx1.a.test. 300 IN TLSA {record}"
    )
    dns_server.authentic(everything=True)
    async with _transport(dns_server, mx_servers) as transport:
        with pytest.raises(DeliveryError, match="matches none of its TLSA records"):
            await transport.send(_message())
    assert handler.messages == []


async def test_dane_ta_records_are_reported_unusable_without_the_chain(
    dns_server: DnsServer, mx_servers: MxServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where Python does not expose the chain (or cryptography is missing).
    monkeypatch.setattr(dane, "dane_ta_available", lambda: False)
    handler = mx_servers.start("127.0.0.2")
    record = _tlsa(2, 0, 1, _other_certificate())
    dns_server.add(
        "a.test. 300 IN MX 10 mx1.a.test.\nmx1.a.test. 300 IN A 127.0.0.2\n"
        f"_{mx_servers.port}._tcp.mx1.a.test. 300 IN TLSA {record}"
    )
    dns_server.authentic(everything=True)
    async with _transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message())
    delivery = result.deliveries[0]
    assert handler.messages[0].tls  # TLS still mandatory
    assert delivery.policy == "dane"
    assert delivery.security is ChannelSecurity.OPPORTUNISTIC  # not authenticated
    assert "TLSA 2 0 1" in delivery.policy_failures[0]
    assert "not usable" in delivery.policy_failures[0]


async def test_tlsa_servfail_skips_the_exchanger(
    dns_server: DnsServer, mx_servers: MxServers
) -> None:
    first = mx_servers.start("127.0.0.2")
    second = mx_servers.start("127.0.0.3")
    dns_server.add(MX_RECORDS)
    dns_server.servfail(f"_{mx_servers.port}._tcp.mx1.a.test")
    dns_server.authentic(everything=True)
    async with _transport(dns_server, mx_servers) as transport:
        result = await transport.send(_message())
    assert first.messages == []
    assert len(second.messages) == 1
    assert "SERVFAIL" in result.deliveries[0].failures[0]


async def test_dane_takes_precedence_over_mta_sts(
    dns_server: DnsServer,
    mx_servers: MxServers,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    # The MTA-STS policy names another host; mx1's TLSA records still let it in.
    handler = mx_servers.start("127.0.0.2", cert_names=("someone-else.test",))
    record = _tlsa(3, 1, 1, mx_servers.certificates["127.0.0.2"])
    dns_server.add(
        MX_RECORDS
        + f"_{mx_servers.port}._tcp.mx1.a.test. 300 IN TLSA {record}\n"
        + '_mta-sts.a.test. 300 IN TXT "v=STSv1; id=1;"\n'
        + "mta-sts.a.test. 300 IN A 127.0.0.10"
    )
    dns_server.authentic(everything=True)
    policy_server.policy("a.test", "version: STSv1\nmode: enforce\nmx: other.a.test\nmax_age: 60\n")
    mta_sts = MtaSts(
        tls_parameters=TlsParameters(ca_data=tls_material.ca_pem, use_system_trust=False),
        port=policy_server.port,
        cache=MemoryPolicyCache(),
    )
    async with _transport(dns_server, mx_servers, mta_sts=mta_sts) as transport:
        result = await transport.send(_message())
    assert len(handler.messages) == 1
    assert result.deliveries[0].security is ChannelSecurity.DANE


def test_match_certificate_and_spki(tls_material: TlsMaterial) -> None:
    import ssl

    pem = tls_material.cert.cert_chain_pems[0].bytes().decode("ascii")
    der = ssl.PEM_cert_to_DER_cert(pem)
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert subject_public_key_info(der) == spki
    good = TlsaRecord(3, 1, 1, hashlib.sha256(spki).digest())
    assert match_certificate([good], der) is good
    assert match_certificate([TlsaRecord(3, 1, 1, b"\0" * 32)], der) is None
    assert match_certificate([TlsaRecord(2, 1, 1, hashlib.sha256(spki).digest())], der) is None
    with pytest.raises(ValueError, match="not a DER certificate"):
        subject_public_key_info(b"\x02\x01\x00")
    with pytest.raises(ValueError, match="truncated DER"):
        subject_public_key_info(der[:40])
