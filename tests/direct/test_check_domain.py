"""check_sender_domain and ``python -m lettre check-domain`` against a real DNS server."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from dns_server import DnsServer

from lettre.__main__ import main
from lettre.dkim import DkimSigner
from lettre.dns import Severity, check_sender_domain
from lettre.dns.resolver import Resolver

pytestmark = pytest.mark.anyio


def _txt(text: str) -> str:
    """``text`` as the quoted strings of one TXT record (255 characters each)."""
    return " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))


def _signer(domain: str = "s.test") -> tuple[DkimSigner, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DkimSigner(domain=domain, selector="sel", private_key=pem), pem


def _good_domain(dns_server: DnsServer, signer: DkimSigner) -> None:
    dns_server.add(
        textwrap.dedent(
            f"""
            s.test. 300 IN TXT "v=spf1 mx include:_spf.provider.test -all"
            _spf.provider.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 a -all"
            _dmarc.s.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:d@s.test"
            sel._domainkey.s.test. 300 IN TXT {_txt(signer.dns_record())}
            s.test. 300 IN MX 10 mx.s.test.
            mx.s.test. 300 IN A 127.0.0.2
            _smtp._tls.s.test. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls@s.test"
            """
        )
    )


async def test_a_well_configured_domain(dns_server: DnsServer, resolver: Resolver) -> None:
    signer, _ = _signer()
    _good_domain(dns_server, signer)
    report = await check_sender_domain("s.test", dkim=signer, resolver=resolver)
    assert report.ok
    by_check = {f.check: f for f in report.findings}
    assert [f.check for f in report.findings] == [
        "SPF",
        "DMARC",
        "DKIM",
        "MX",
        "MTA-STS",
        "TLS-RPT",
    ]
    assert by_check["SPF"].severity is Severity.OK
    assert "(3 of 10 lookups)" in by_check["SPF"].message
    assert by_check["DMARC"].message.endswith("(policy reject)")
    assert by_check["DKIM"].severity is Severity.OK
    assert by_check["MX"].message == "bounces go to mx.s.test"
    assert by_check["MTA-STS"].severity is Severity.INFO
    assert by_check["TLS-RPT"].severity is Severity.OK


async def test_a_broken_domain(dns_server: DnsServer, resolver: Resolver) -> None:
    signer, _ = _signer()
    other, _ = _signer()
    includes = " ".join(f"include:i{n}.test" for n in range(11))
    dns_server.add(
        textwrap.dedent(
            f"""
            s.test. 300 IN TXT "v=spf1 {includes} -all"
            _dmarc.s.test. 300 IN TXT "v=DMARC1; rua=mailto:d@s.test"
            sel._domainkey.s.test. 300 IN TXT {_txt(other.dns_record())}
            s.test. 300 IN MX 0 .
            """
        )
        + "\n".join(f'i{n}.test. 300 IN TXT "v=spf1 ip4:192.0.2.{n} -all"' for n in range(11))
    )
    report = await check_sender_domain("s.test", dkim=signer, resolver=resolver)
    assert not report.ok
    by_check = {f.check: f for f in report.findings}
    assert by_check["SPF"].severity is Severity.ERROR
    assert "more than 10 DNS lookups" in by_check["SPF"].message
    assert by_check["DMARC"].severity is Severity.ERROR
    assert "no valid p= tag" in by_check["DMARC"].message
    assert by_check["DKIM"].severity is Severity.ERROR
    assert "is not the signer's" in by_check["DKIM"].message
    assert by_check["MX"].severity is Severity.ERROR
    assert "null MX" in by_check["MX"].message


async def test_missing_records(dns_server: DnsServer, resolver: Resolver) -> None:
    signer, _ = _signer()
    dns_server.add("s.test. 300 IN A 127.0.0.2\n" + 's.test. 300 IN TXT "v=spf1 +all"')
    report = await check_sender_domain("s.test", dkim=signer, resolver=resolver)
    by_check = {f.check: f for f in report.findings}
    assert by_check["SPF"].severity is Severity.WARNING  # +all
    assert by_check["DMARC"].severity is Severity.WARNING
    assert by_check["DKIM"].severity is Severity.ERROR
    assert "no DKIM key at sel._domainkey.s.test" in by_check["DKIM"].message
    assert by_check["MX"].severity is Severity.INFO  # implicit MX
    assert not report.ok


async def test_spf_problems(dns_server: DnsServer, resolver: Resolver) -> None:
    dns_server.add(
        's.test. 300 IN TXT "v=spf1 -all"\ns.test. 300 IN TXT "v=spf1 mx -all"\n'
        'u.test. 300 IN TXT "v=spf1 ipv4:192.0.2.1 -all"\n'
        'l.test. 300 IN TXT "v=spf1 include:l.test -all"'
    )
    for domain, text in [
        ("s.test", "2 SPF records"),
        ("u.test", "unknown term 'ipv4:192.0.2.1'"),
        ("l.test", "include loop"),
    ]:
        report = await check_sender_domain(domain, resolver=resolver)
        spf = report.findings[0]
        assert spf.severity is Severity.ERROR, spf
        assert text in spf.message


def test_cli_check_domain(
    dns_server: DnsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signer, pem = _signer()
    _good_domain(dns_server, signer)
    key = tmp_path / "dkim.pem"
    key.write_bytes(pem)
    args = ["--nameserver", "127.0.0.1", "--dns-port", str(dns_server.port)]
    status = main(
        ["check-domain", "s.test", "--dkim-selector", "sel", "--dkim-key", str(key), *args]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0] == "s.test:"
    assert len(lines) == 7
    assert lines[3].split()[:2] == ["OK", "DKIM"]
    # Another key: the DKIM check fails, and so does the command.
    _, other_pem = _signer()
    key.write_bytes(other_pem)
    status = main(
        ["check-domain", "s.test", "--dkim-selector", "sel", "--dkim-key", str(key), *args]
    )
    assert status == 1
    assert "ERROR   DKIM" in capsys.readouterr().out


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-domain", "s.test", "--dkim-selector", "sel"]) == 2
    assert "--dkim-key and --dkim-selector go together" in capsys.readouterr().err
    assert main(["check-domain", "s.test", "--nameserver", "ns.example"]) == 2
    assert "'ns.example' is not an IP address" in capsys.readouterr().err
