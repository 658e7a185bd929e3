"""Settings, TLS parameters, credentials, mechanism choice and URLs: no network."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import anyio
import pytest

from lettre.errors import TlsError
from lettre.protocol.sasl import MECHANISMS
from lettre.smtp.auth import (
    DEFAULT_MECHANISMS_INSECURE,
    DEFAULT_MECHANISMS_TLS,
    DEFAULT_TOKEN_MECHANISMS,
    AuthMechanism,
    Credentials,
    choose_mechanisms,
)
from lettre.smtp.settings import (
    SmtpSettings,
    address_literal,
    default_hello_name,
    is_valid_hello_domain,
)
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.smtp.url import parse_smtp_url, settings_from_url
from lettre.transports.smtp import SmtpTransport
from servers import TlsMaterial

# ------------------------------------------------------------------ TlsMode


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("none", TlsMode.NONE),
        ("OPPORTUNISTIC", TlsMode.OPPORTUNISTIC),
        ("starttls", TlsMode.STARTTLS),
        ("required", TlsMode.STARTTLS),
        ("implicit", TlsMode.IMPLICIT),
        ("wrapper", TlsMode.IMPLICIT),
        ("smtps", TlsMode.IMPLICIT),
    ],
)
def test_tls_mode_parse(text: str, mode: TlsMode) -> None:
    assert TlsMode.parse(text) is mode
    assert TlsMode.parse(mode) is mode


def test_tls_mode_parse_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown TLS mode"):
        TlsMode.parse("maybe")


def test_tls_mode_default_ports() -> None:
    assert TlsMode.IMPLICIT.default_port == 465
    assert TlsMode.STARTTLS.default_port == 587
    assert TlsMode.NONE.default_port == 25
    assert TlsMode.OPPORTUNISTIC.default_port == 25


# ------------------------------------------------------------------ TlsParameters


def test_default_context_is_secure() -> None:
    context = TlsParameters().create_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_context_with_extra_ca_and_versions(tls_material: TlsMaterial, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(tls_material.ca_pem)
    params = TlsParameters(
        ca_file=ca_file,
        use_system_trust=False,
        min_version=ssl.TLSVersion.TLSv1_3,
        max_version=ssl.TLSVersion.TLSv1_3,
    )
    context = params.create_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.maximum_version == ssl.TLSVersion.TLSv1_3
    assert len(context.get_ca_certs()) == 1


def test_client_certificate_is_loaded(tls_material: TlsMaterial, tmp_path: Path) -> None:
    cert = tls_material.ca.issue_cert("client.lettre.test")
    pem = tmp_path / "client.pem"
    pem.write_bytes(
        b"".join(blob.bytes() for blob in cert.cert_chain_pems) + cert.private_key_pem.bytes()
    )
    TlsParameters(client_cert=pem).create_context()


def test_dangerous_switches() -> None:
    context = TlsParameters(dangerously_skip_verification=True).create_context()
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname
    context = TlsParameters(dangerously_skip_hostname_check=True).create_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.check_hostname


def test_bad_ca_is_a_tls_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(TlsError) as info:
        TlsParameters(ca_file=missing).create_context()
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(TlsError) as info:
        TlsParameters(ca_data="not a certificate").create_context()
    assert isinstance(info.value.__cause__, (ssl.SSLError, ValueError))


def test_tls_parameters_validation() -> None:
    with pytest.raises(ValueError, match="client_key needs client_cert"):
        TlsParameters(client_key="key.pem")
    with pytest.raises(ValueError, match="lower than"):
        TlsParameters(min_version=ssl.TLSVersion.TLSv1_3, max_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ValueError, match="nothing would be trusted"):
        TlsParameters(use_system_trust=False)
    with pytest.raises(TypeError):
        TlsParameters(ca_data=123)  # type: ignore[arg-type]


def test_key_password_not_in_repr() -> None:
    params = TlsParameters(client_cert="c.pem", client_key_password="hunter2")
    assert "hunter2" not in repr(params)


# ------------------------------------------------------------------ credentials


def test_credentials_hide_the_password() -> None:
    creds = Credentials("alice", "s3cr3t-pass")
    assert "s3cr3t-pass" not in repr(creds)
    assert "s3cr3t-pass" not in str(creds)
    assert str(creds) == "alice"
    with pytest.raises(ValueError, match="empty"):
        Credentials("", "x")
    with pytest.raises(TypeError):
        Credentials("alice", b"bytes")  # type: ignore[arg-type]


def test_mechanism_parse() -> None:
    assert AuthMechanism.parse("cram_md5") is AuthMechanism.CRAM_MD5
    assert AuthMechanism.parse("xoauth2") is AuthMechanism.XOAUTH2
    assert AuthMechanism.parse("scram-sha-256") is AuthMechanism.SCRAM_SHA_256
    assert AuthMechanism.parse("SCRAM_SHA_256") is AuthMechanism.SCRAM_SHA_256
    assert AuthMechanism.parse(" oauthbearer ") is AuthMechanism.OAUTHBEARER
    with pytest.raises(ValueError, match="unsupported AUTH mechanism"):
        AuthMechanism.parse("GSSAPI")


def test_mechanisms_are_the_registry() -> None:
    # One member per registered class, and each member finds its class.
    assert {m.value for m in AuthMechanism} == set(MECHANISMS)
    for mechanism in AuthMechanism:
        assert mechanism.mechanism_class is MECHANISMS[mechanism.value]


def test_default_orders() -> None:
    m = AuthMechanism
    assert DEFAULT_TOKEN_MECHANISMS == (m.XOAUTH2, m.OAUTHBEARER)
    assert DEFAULT_MECHANISMS_TLS == (m.SCRAM_SHA_256, m.PLAIN, m.LOGIN, m.CRAM_MD5)
    # Without TLS, the mechanisms that keep the password off the wire first.
    assert DEFAULT_MECHANISMS_INSECURE == (m.SCRAM_SHA_256, m.CRAM_MD5, m.PLAIN, m.LOGIN)


def test_mechanism_preference() -> None:
    offered = ["LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256"]
    tls = choose_mechanisms(offered, encrypted=True, has_password=True, has_token_provider=False)
    assert tls == list(DEFAULT_MECHANISMS_TLS)
    plain = choose_mechanisms(offered, encrypted=False, has_password=True, has_token_provider=False)
    assert plain == list(DEFAULT_MECHANISMS_INSECURE)
    oauth = choose_mechanisms(offered, encrypted=True, has_password=False, has_token_provider=True)
    assert oauth == [AuthMechanism.XOAUTH2, AuthMechanism.OAUTHBEARER]
    both = choose_mechanisms(offered, encrypted=True, has_password=True, has_token_provider=True)
    assert both == [*DEFAULT_TOKEN_MECHANISMS, *DEFAULT_MECHANISMS_TLS]
    only_bearer = choose_mechanisms(
        ["PLAIN", "OAUTHBEARER"], encrypted=True, has_password=False, has_token_provider=True
    )
    assert only_bearer == [AuthMechanism.OAUTHBEARER]
    # Today's servers without SCRAM get what they got before.
    old = choose_mechanisms(
        ["LOGIN", "PLAIN", "CRAM-MD5"], encrypted=True, has_password=True, has_token_provider=False
    )
    assert old == [AuthMechanism.PLAIN, AuthMechanism.LOGIN, AuthMechanism.CRAM_MD5]
    chosen = choose_mechanisms(
        ["PLAIN", "LOGIN"],
        encrypted=True,
        has_password=True,
        has_token_provider=False,
        preference=[AuthMechanism.CRAM_MD5, AuthMechanism.LOGIN],
    )
    assert chosen == [AuthMechanism.LOGIN]
    assert (
        choose_mechanisms(["GSSAPI"], encrypted=True, has_password=True, has_token_provider=False)
        == []
    )


# ------------------------------------------------------------------ settings


def test_settings_defaults() -> None:
    settings = SmtpSettings("smtp.example.com")
    assert settings.tls is TlsMode.STARTTLS
    assert settings.effective_port == 587
    assert settings.timeout == 30.0
    assert settings.data_timeout == 600.0
    assert settings.effective_connect_timeout == 30.0
    assert settings.server_name == "smtp.example.com"
    assert SmtpSettings("[::1]", tls=TlsMode.NONE).host == "::1"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"port": 0}, ValueError),
        ({"port": 70000}, ValueError),
        ({"port": "25"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"deadline": float("nan")}, ValueError),
        ({"data_timeout": "10"}, TypeError),
        ({"hello_name": "bad name"}, ValueError),
        ({"hello_name": "localhost"}, ValueError),
        ({"local_address": "not-an-ip"}, ValueError),
        ({"tls": "sometimes"}, ValueError),
        ({"auth_mechanisms": ()}, ValueError),
        ({"credentials": Credentials("alice")}, ValueError),
    ],
)
def test_settings_validation(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        SmtpSettings("smtp.example.com", **kwargs)  # type: ignore[arg-type]


def test_token_provider_needs_a_user_name() -> None:
    async def token() -> str:
        return "t"

    with pytest.raises(ValueError, match="user name"):
        SmtpSettings("smtp.example.com", token_provider=token)
    SmtpSettings("smtp.example.com", credentials=Credentials("alice"), token_provider=token)


def test_hello_names() -> None:
    assert is_valid_hello_domain("client.example.com")
    assert not is_valid_hello_domain("localhost")
    assert not is_valid_hello_domain("-bad.example.com")
    assert not is_valid_hello_domain("exämple.com")
    assert address_literal("192.0.2.1") == "[192.0.2.1]"
    assert address_literal("2001:db8::1") == "[IPv6:2001:db8::1]"
    assert address_literal("::ffff:192.0.2.1") == "[192.0.2.1]"
    SmtpSettings("smtp.example.com", hello_name="[192.0.2.1]")
    SmtpSettings("smtp.example.com", hello_name="[IPv6:2001:db8::1]")


def test_default_hello_name_is_valid() -> None:
    async def main() -> str:
        return await default_hello_name("192.0.2.7")

    name = anyio.run(main)
    assert is_valid_hello_domain(name) or name == "[192.0.2.7]"


# ------------------------------------------------------------------ URLs


def test_url_with_credentials_and_parameters() -> None:
    settings = settings_from_url(
        "smtp://bob%40example.com:p%40ss%3Aword@mail.example.com:2525"
        "?tls=opportunistic&timeout=5&connect_timeout=2.5&auth=plain,login"
        "&allow_insecure_auth=yes&hello_name=client.example.com&require_all_recipients=1"
    )
    assert settings.host == "mail.example.com"
    assert settings.port == 2525
    assert settings.tls is TlsMode.OPPORTUNISTIC
    assert settings.credentials == Credentials("bob@example.com", "p@ss:word")
    assert settings.timeout == 5.0
    assert settings.connect_timeout == 2.5
    assert settings.auth_mechanisms == (AuthMechanism.PLAIN, AuthMechanism.LOGIN)
    assert settings.allow_insecure_auth
    assert settings.require_all_recipients
    assert settings.hello_name == "client.example.com"
    assert "p@ss:word" not in repr(settings)


def test_url_names_the_new_mechanisms() -> None:
    settings = settings_from_url("smtp://bob:pw@mail.example.com?auth=scram-sha-256,oauthbearer")
    assert settings.auth_mechanisms == (AuthMechanism.SCRAM_SHA_256, AuthMechanism.OAUTHBEARER)
    transport = SmtpTransport("mail.example.com", auth_mechanisms=["SCRAM_SHA_256"])
    assert transport.settings.auth_mechanisms == (AuthMechanism.SCRAM_SHA_256,)


def test_url_defaults() -> None:
    assert settings_from_url("smtp://mail.example.com").tls is TlsMode.STARTTLS
    assert settings_from_url("smtp://mail.example.com").effective_port == 587
    smtps = settings_from_url("smtps://mail.example.com")
    assert smtps.tls is TlsMode.IMPLICIT
    assert smtps.effective_port == 465
    assert settings_from_url("smtp://mail.example.com?tls=none").effective_port == 25
    assert settings_from_url("smtp://[::1]:25?tls=none").host == "::1"


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "smtp://",
        "smtp://mail.example.com/path",
        "smtp://mail.example.com?tls=sometimes",
        "smtp://mail.example.com?timeout=soon",
        "smtp://mail.example.com?timeout=-1",
        "smtp://mail.example.com?verify=false",
        "smtp://mail.example.com?timeout=1&timeout=2",
        "smtps://mail.example.com?tls=none",
        "smtp://mail.example.com?allow_insecure_auth=perhaps",
        "smtp://mail.example.com:99999",
        "smtp://mail.example.com?auth=GSSAPI",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_url(url)


@pytest.mark.parametrize("password", ["hunter2", "hun#ter2", "hun/ter2", "hun?ter2"])
def test_bad_url_error_hides_the_password(password: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_smtp_url(f"smtp://bob:{password}@mail.example.com:notaport")
    assert "ter2" not in str(info.value)


# ------------------------------------------------------------------ transport constructors


def test_transport_shortcuts() -> None:
    relay = SmtpTransport.relay("smtp.example.com")
    assert relay.settings.tls is TlsMode.IMPLICIT
    assert relay.settings.effective_port == 465
    starttls = SmtpTransport.starttls_relay("smtp.example.com")
    assert starttls.settings.tls is TlsMode.STARTTLS
    assert starttls.settings.effective_port == 587
    local = SmtpTransport.local()
    assert local.settings.tls is TlsMode.NONE
    assert local.settings.host == "localhost"
    assert local.settings.effective_port == 25
    assert local.ssl_context is None
    assert SmtpTransport.local(2525, host="127.0.0.1").settings.effective_port == 2525


def test_transport_from_url_hides_the_password() -> None:
    transport = SmtpTransport.from_url("smtps://alice:top%20secret@smtp.example.com")
    assert transport.settings.credentials == Credentials("alice", "top secret")
    assert "top secret" not in repr(transport)
    assert "alice" in repr(transport)
    overridden = SmtpTransport.from_url(
        "smtp://smtp.example.com?tls=none", timeout=3, auth_mechanisms=["plain"]
    )
    assert overridden.settings.timeout == 3.0
    assert overridden.settings.auth_mechanisms == (AuthMechanism.PLAIN,)


def test_transport_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="port"):
        SmtpTransport("smtp.example.com", 0)
    with pytest.raises(TlsError):
        SmtpTransport(
            "smtp.example.com", tls_parameters=TlsParameters(ca_file="/nonexistent/ca.pem")
        )


# ------------------------------------------------------------------ host validation

# Every way to make SMTP settings from a host: each must apply the same checks.
HOST_CONSTRUCTORS = {
    "SmtpSettings": lambda host: SmtpSettings(host, tls=TlsMode.NONE),
    "SmtpTransport": lambda host: SmtpTransport(host, tls=TlsMode.NONE),
    "relay": SmtpTransport.relay,
    "starttls_relay": SmtpTransport.starttls_relay,
    "local": lambda host: SmtpTransport.local(host=host),
    "from_url": lambda host: SmtpTransport.from_url("smtp://ok.example?tls=none", host=host),
    "from_settings": lambda host: SmtpTransport.from_settings(SmtpSettings(host, tls=TlsMode.NONE)),
}


def _settings_of(made: SmtpSettings | SmtpTransport) -> SmtpSettings:
    return made if isinstance(made, SmtpSettings) else made.settings


@pytest.mark.parametrize("constructor", list(HOST_CONSTRUCTORS))
@pytest.mark.parametrize(
    ("host", "name", "port"),
    [
        ("127.0.0.1:2525", "127.0.0.1", 2525),
        ("localhost:1025", "localhost", 1025),
        ("[::1]:2525", "::1", 2525),
        ("[2001:db8::1]:587", "2001:db8::1", 587),
    ],
)
def test_a_host_with_a_port_is_refused_with_the_call_to_make(
    constructor: str, host: str, name: str, port: int
) -> None:
    with pytest.raises(ValueError, match="includes a port") as info:
        HOST_CONSTRUCTORS[constructor](host)
    message = str(info.value)
    assert repr(host) in message
    # The calls the message suggests are real, and connect where the caller meant.
    suggested = re.findall(r"SmtpTransport(?:\.from_url)?\([^)]*\)", message)
    assert len(suggested) == 2
    for call in suggested:
        transport = eval(call, {"SmtpTransport": SmtpTransport})
        assert (transport.settings.host, transport.settings.effective_port) == (name, port)


@pytest.mark.parametrize("constructor", list(HOST_CONSTRUCTORS))
@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("smtp://mail.example.com:587", "is a URL, not a host name: use SmtpTransport.from_url("),
        ("smtps://mail.example.com", "is a URL"),
        ("alice@mail.example.com", "holds a user name: pass the host name alone and credentials="),
        ("mail.example.com/", "invalid host 'mail.example.com/'"),
        ("mail.example.com:smtp", "invalid host 'mail.example.com:smtp'"),
        ("zz::1", "invalid host 'zz::1'"),
        ("[::1", "invalid host '[::1'"),
        ("[::1]x", "invalid host '[::1]x'"),
        ("mail example.com", "no spaces"),
        ("mail.example.com\r\nRCPT", "no spaces or control characters"),
        ("   ", "host must be a host name or an IP address"),
    ],
)
def test_what_is_not_a_host_is_refused_at_construction(
    constructor: str, host: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        HOST_CONSTRUCTORS[constructor](host)


@pytest.mark.parametrize(
    "host",
    ["smtp://alice:s3cret@mail.example.com:587", "alice:s3cret@mail.example.com"],
)
def test_a_host_error_never_shows_a_password(host: str) -> None:
    with pytest.raises(ValueError) as info:
        SmtpTransport(host)
    assert "s3cret" not in str(info.value)
    assert "alice" not in str(info.value)
    assert "mail.example.com" in str(info.value)


@pytest.mark.parametrize("constructor", list(HOST_CONSTRUCTORS))
@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("2001:db8::25", "2001:db8::25"),
        ("[2001:DB8::25]", "2001:DB8::25"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("127.0.0.1", "127.0.0.1"),
        (" smtp.example.com ", "smtp.example.com"),
        ("bücher.example", "bücher.example"),
        ("mail_relay", "mail_relay"),
        ("localhost", "localhost"),
    ],
)
def test_hosts_and_ip_literals_are_accepted(constructor: str, host: str, stored: str) -> None:
    assert _settings_of(HOST_CONSTRUCTORS[constructor](host)).host == stored


def test_a_host_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="host must be a str, not NoneType"):
        SmtpTransport(None)  # type: ignore[arg-type]


def test_every_setting_is_a_transport_argument_with_the_same_default() -> None:
    import dataclasses
    import inspect

    from lettre.smtp.settings import SmtpSettings

    parameters = inspect.signature(SmtpTransport.__init__).parameters
    taken = {
        name: p for name, p in parameters.items() if name not in ("self", "dkim", "pool", "hooks")
    }
    settings = {f.name: f for f in dataclasses.fields(SmtpSettings)}
    assert list(taken) == list(settings)
    for name, setting in settings.items():
        if setting.default is not dataclasses.MISSING:
            assert taken[name].default == setting.default, name
    documented = SmtpTransport.__doc__ or ""
    assert [name for name in settings if f"    {name}:" not in documented] == []


def test_every_url_parameter_is_a_setting_and_documented() -> None:
    import dataclasses

    import lettre.smtp.url as url_module
    from lettre.smtp.settings import SmtpSettings

    names = {f.name for f in dataclasses.fields(SmtpSettings)}
    for parameter, (setting, _) in url_module._PARAMS.items():
        assert setting in names
        assert f"``{parameter}``" in (url_module.__doc__ or ""), parameter
