"""check_sender_domain on the DNS answers the well-formed-domain tests do not give: failures,
missing and duplicate records, odd SPF terms, revoked DKIM keys, MTA-STS policies."""

from __future__ import annotations

import textwrap

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from direct_support import PolicyServer, mta_sts_for
from dns_server import DnsServer

from lettre.dkim import DkimSigner
from lettre.dns import Finding, Severity, check_sender_domain
from lettre.dns.resolver import Resolver
from servers import TlsMaterial

pytestmark = pytest.mark.anyio


def _signer(domain: str = "s.test") -> DkimSigner:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DkimSigner(domain=domain, selector="sel", private_key=pem)


def _by_check(findings: tuple[Finding, ...]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


async def test_every_lookup_failing(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.servfail(
        "s.test", "_dmarc.s.test", "sel._domainkey.s.test", "_mta-sts.s.test", "_smtp._tls.s.test"
    )
    report = await check_sender_domain("s.test", dkim=_signer(), resolver=resolver)
    found = _by_check(report.findings)
    assert found["SPF"].severity is Severity.ERROR
    assert found["SPF"].message.startswith("the TXT lookup failed: ")
    assert found["DMARC"].severity is Severity.ERROR
    assert found["DMARC"].message.startswith("the TXT lookup of _dmarc.s.test failed: ")
    assert found["DKIM"].severity is Severity.ERROR
    assert found["DKIM"].message.startswith("the TXT lookup of sel._domainkey.s.test failed: ")
    # A SERVFAIL may pass: the MX check warns rather than condemns.
    assert found["MX"].severity is Severity.WARNING
    assert "s.test" in found["MX"].message
    assert found["MTA-STS"].severity is Severity.WARNING
    assert found["MTA-STS"].message.startswith("the TXT lookup failed: ")
    assert found["TLS-RPT"].severity is Severity.WARNING
    assert found["TLS-RPT"].message.startswith("the TXT lookup of _smtp._tls.s.test failed: ")
    assert not report.ok
    # The report prints one line per finding, severity and check first.
    lines = str(report).splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("ERROR   SPF      the TXT lookup failed: ")
    assert lines[3].startswith("WARNING MX       ")


async def test_no_spf_record(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add('s.test. 300 IN TXT "google-site-verification=abc"\ns.test. 300 IN A 127.0.0.2')
    spf = (await check_sender_domain("s.test", resolver=resolver)).findings[0]
    assert spf.severity is Severity.WARNING
    assert spf.message.startswith("no SPF record at s.test: publish a TXT record such as")


async def test_spf_includes_that_fail_or_have_no_record(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    dns_server.add(
        textwrap.dedent(
            """
            f.test. 300 IN TXT "v=spf1 include:broken.test -all"
            n.test. 300 IN TXT "v=spf1 include:norecord.test -all"
            norecord.test. 300 IN TXT "some other text"
            """
        )
    )
    dns_server.servfail("broken.test")
    spf = (await check_sender_domain("f.test", resolver=resolver)).findings[0]
    assert spf.severity is Severity.ERROR
    assert spf.message.startswith("'v=spf1 include:broken.test -all': 'broken.test': ")
    spf = (await check_sender_domain("n.test", resolver=resolver)).findings[0]
    assert spf.severity is Severity.ERROR
    assert "'norecord.test' has 0 SPF records (one needed)" in spf.message
    # An include that is absent altogether counts the same way.
    dns_server.add('m.test. 300 IN TXT "v=spf1 include:absent.test -all"')
    spf = (await check_sender_domain("m.test", resolver=resolver)).findings[0]
    assert "'absent.test' has 0 SPF records (one needed)" in spf.message


async def test_spf_terms_whose_target_is_not_looked_up(
    dns_server: DnsServer, resolver: Resolver
) -> None:
    # A macro is expanded per message, and a bare include names nothing: each counts as one
    # lookup, and nothing more is asked.
    dns_server.add('s.test. 300 IN TXT "v=spf1 include:%{d}.spf.test include redirect=%{o} -all"')
    spf = (await check_sender_domain("s.test", resolver=resolver)).findings[0]
    assert spf.severity is Severity.OK, spf
    assert spf.message.endswith("(3 of 10 lookups)")
    assert not [q for q in dns_server.queries if "spf.test" in q.name or q.name == "%{o}."]


async def test_dmarc_duplicates_and_policy_none(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add(
        textwrap.dedent(
            """
            _dmarc.two.test. 300 IN TXT "v=DMARC1; p=none"
            _dmarc.two.test. 300 IN TXT "v=DMARC1; p=reject"
            _dmarc.none.test. 300 IN TXT "v=DMARC1; p=none; junk; rua=mailto:d@none.test"
            """
        )
    )
    dmarc = (await check_sender_domain("two.test", resolver=resolver)).findings[1]
    assert dmarc.severity is Severity.ERROR
    assert dmarc.message == "2 DMARC records at _dmarc.two.test: keep one"
    dmarc = (await check_sender_domain("none.test", resolver=resolver)).findings[1]
    assert dmarc.severity is Severity.INFO
    assert dmarc.message.endswith("(policy none)")


async def test_dkim_signer_of_another_domain(dns_server: DnsServer, resolver: Resolver) -> None:
    dkim = (
        await check_sender_domain("s.test", dkim=_signer("other.test"), resolver=resolver)
    ).findings[2]
    assert dkim.severity is Severity.WARNING
    assert dkim.message.startswith("the signer signs for 'other.test', not 's.test'")
    assert not dns_server.asked("sel._domainkey.other.test")
    assert not dns_server.asked("sel._domainkey.s.test")


async def test_dkim_revoked_key(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add('sel._domainkey.s.test. 300 IN TXT "v=DKIM1; k=ed25519; p="')
    dkim = (await check_sender_domain("s.test", dkim=_signer(), resolver=resolver)).findings[2]
    assert dkim.severity is Severity.ERROR
    assert dkim.message == "the key at sel._domainkey.s.test is revoked (empty p=)"


async def test_dkim_key_with_a_tag_without_value(dns_server: DnsServer, resolver: Resolver) -> None:
    signer = _signer()
    # The signer's own record, with a stray part that is no tag: still the signer's key.
    record = signer.dns_record().replace("v=DKIM1;", "v=DKIM1; stray;")
    assert "stray" in record
    dns_server.add(f'sel._domainkey.s.test. 300 IN TXT "{record}"')
    dkim = (await check_sender_domain("s.test", dkim=signer, resolver=resolver)).findings[2]
    assert dkim.severity is Severity.OK, dkim


async def test_tls_rpt_without_destination(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add('_smtp._tls.s.test. 300 IN TXT "v=TLSRPTv1;"')
    tls_rpt = (await check_sender_domain("s.test", resolver=resolver)).findings[5]
    assert tls_rpt.severity is Severity.WARNING
    assert tls_rpt.message == "'v=TLSRPTv1;' has no rua= destination"


async def test_mta_sts_policy_fetched(
    dns_server: DnsServer,
    resolver: Resolver,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(
        '_mta-sts.a.test. 300 IN TXT "v=STSv1; id=1;"\nmta-sts.a.test. 300 IN A 127.0.0.10'
    )
    policy_server.policy(
        "a.test", "version: STSv1\r\nmode: testing\r\nmx: mx1.a.test\r\nmax_age: 86400\r\n"
    )
    mta_sts = mta_sts_for(policy_server, tls_material)
    found = (await check_sender_domain("a.test", resolver=resolver, mta_sts=mta_sts)).findings[4]
    assert found.severity is Severity.OK
    assert found.message == "mode testing, mx mx1.a.test, max_age 86400"
    assert policy_server.fetches("a.test") == 1


async def test_mta_sts_published_but_no_policy(
    dns_server: DnsServer,
    resolver: Resolver,
    policy_server: PolicyServer,
    tls_material: TlsMaterial,
) -> None:
    dns_server.add(
        '_mta-sts.b.test. 300 IN TXT "v=STSv1; id=1;"\nmta-sts.b.test. 300 IN A 127.0.0.10'
    )
    mta_sts = mta_sts_for(policy_server, tls_material)  # the server has no policy for b.test: 404
    found = (await check_sender_domain("b.test", resolver=resolver, mta_sts=mta_sts)).findings[4]
    assert found.severity is Severity.WARNING
    assert found.message == (
        "_mta-sts.b.test is published but no valid policy could be fetched from "
        "https://mta-sts.b.test/.well-known/mta-sts.txt"
    )
    assert policy_server.fetches("b.test") == 1
