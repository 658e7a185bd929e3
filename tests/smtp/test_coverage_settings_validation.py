"""Invalid settings, URLs and TLS parameters: each refused with a message that says what is wrong.

The checks the other settings tests leave out: a wrong type where a str or
a TlsParameters is expected, an empty URL user name or parameter, the EHLO
name when the machine's name is (or is not) a domain.
"""

from __future__ import annotations

import ssl

import pytest

from lettre.errors import TlsError
from lettre.smtp import settings as settings_module
from lettre.smtp.auth import AuthMechanism, Credentials
from lettre.smtp.settings import SmtpSettings, default_hello_name
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.smtp.url import parse_smtp_url, settings_from_url

# --- URLs -----------------------------------------------------------------


def test_url_that_is_not_a_str_is_refused() -> None:
    with pytest.raises(TypeError, match="an SMTP URL must be a str"):
        parse_smtp_url(b"smtp://mail.example.com")  # type: ignore[arg-type]


def test_url_with_empty_user_name_is_refused_without_the_password() -> None:
    with pytest.raises(ValueError, match="empty user name") as caught:
        parse_smtp_url("smtp://:s3cret@mail.example.com:587")
    assert "s3cret" not in str(caught.value)


def test_url_with_empty_hello_name_is_refused() -> None:
    with pytest.raises(ValueError, match="parameter 'hello_name' is empty"):
        parse_smtp_url("smtp://mail.example.com?hello_name=")


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_url_auth_parameter_naming_no_mechanism_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="parameter 'auth' names no mechanism"):
        parse_smtp_url(f"smtp://mail.example.com?auth={value}")


@pytest.mark.parametrize("value", ["maybe", "2", ""])
def test_url_boolean_parameter_that_is_neither_true_nor_false_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="'allow_insecure_auth' must be true or false"):
        settings_from_url(f"smtp://mail.example.com?allow_insecure_auth={value}")


def test_url_boolean_parameter_false_is_kept() -> None:
    settings = settings_from_url("smtp://mail.example.com?require_all_recipients=off")
    assert settings.require_all_recipients is False


# --- SmtpSettings -----------------------------------------------------------


def test_tls_parameters_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(TypeError, match="tls_parameters must be a TlsParameters"):
        SmtpSettings("mail.example.com", tls_parameters={"ca_file": "x"})  # type: ignore[arg-type]


def test_credentials_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(TypeError, match=r"credentials must be a Credentials\(username, password\)"):
        SmtpSettings("mail.example.com", credentials=("user", "pw"))  # type: ignore[arg-type]


def test_token_provider_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="token_provider must be an async callable"):
        SmtpSettings(
            "mail.example.com",
            credentials=Credentials("user"),
            token_provider="not-a-function",  # type: ignore[arg-type]
        )


def test_hello_name_that_is_not_a_str_is_refused() -> None:
    with pytest.raises(TypeError, match="hello_name must be a str"):
        SmtpSettings("mail.example.com", hello_name=b"client.example.com")  # type: ignore[arg-type]


@pytest.mark.parametrize("literal", ["[300.1.2.3]", "[IPv6:nothing]", "[client]"])
def test_hello_name_that_is_a_bad_address_literal_is_refused(literal: str) -> None:
    with pytest.raises(ValueError, match="invalid hello_name"):
        SmtpSettings("mail.example.com", hello_name=literal)


def test_auth_mechanisms_given_as_one_string_are_split() -> None:
    settings = SmtpSettings(
        "mail.example.com",
        credentials=Credentials("user", "pw"),
        auth_mechanisms="plain, login",
    )
    assert settings.auth_mechanisms == (AuthMechanism.PLAIN, AuthMechanism.LOGIN)


def test_timeout_none_for_a_required_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        SmtpSettings("mail.example.com", timeout=None)  # type: ignore[arg-type]


# --- EHLO name --------------------------------------------------------------


@pytest.mark.anyio
async def test_hello_name_is_the_machine_name_when_it_is_a_domain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings_module, "_fqdn_cache", ["host.example.com."])
    assert await default_hello_name("192.0.2.7") == "host.example.com"


@pytest.mark.anyio
async def test_hello_name_falls_back_to_loopback_when_the_local_address_is_not_an_ip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Unix socket's local "address" is a path, not an IP address.
    monkeypatch.setattr(settings_module, "_fqdn_cache", ["localhost"])
    assert await default_hello_name("/run/lmtp.sock") == "[127.0.0.1]"
    assert await default_hello_name("2001:db8::5") == "[IPv6:2001:db8::5]"


# --- TLS modes and parameters -------------------------------------------------


def test_tls_mode_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="a TLS mode must be a TlsMode or a str, not int"):
        TlsMode.parse(1)  # type: ignore[arg-type]


def test_auth_mechanism_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="an AUTH mechanism must be a str, not int"):
        AuthMechanism.parse(3)  # type: ignore[arg-type]


def test_credentials_user_name_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="username must be a str"):
        Credentials(b"user", "pw")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"min_version": "TLSv1_2"}, TypeError, "min_version must be an ssl.TLSVersion"),
        ({"max_version": 772}, TypeError, "max_version must be an ssl.TLSVersion"),
        (
            {"client_key_password": "pw"},
            ValueError,
            "client_key_password needs client_cert",
        ),
        ({"server_name": "  "}, ValueError, "server_name must be a non-empty host name"),
        ({"server_name": 5}, ValueError, "server_name must be a non-empty host name"),
        (
            {
                "min_version": ssl.TLSVersion.MAXIMUM_SUPPORTED,
                "max_version": ssl.TLSVersion.TLSv1_3,
            },
            ValueError,
            "max_version is lower than min_version",
        ),
        (
            {
                "min_version": ssl.TLSVersion.TLSv1_2,
                "max_version": ssl.TLSVersion.MINIMUM_SUPPORTED,
            },
            ValueError,
            "max_version is lower than min_version",
        ),
    ],
)
def test_invalid_tls_parameters_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TlsParameters(**kwargs)  # type: ignore[arg-type]


def test_tls_version_sentinels_in_order_are_accepted() -> None:
    params = TlsParameters(
        min_version=ssl.TLSVersion.MINIMUM_SUPPORTED,
        max_version=ssl.TLSVersion.MAXIMUM_SUPPORTED,
    )
    assert params.max_version is ssl.TLSVersion.MAXIMUM_SUPPORTED


def test_empty_ca_data_fails_to_build_the_context_with_the_reason() -> None:
    # ssl raises a ValueError (not an OSError) for empty CA data.
    with pytest.raises(
        TlsError, match="cannot build the TLS context: loading ca_data: Empty certificate data"
    ):
        TlsParameters(ca_data="").create_context()


def test_a_missing_ca_file_gives_the_os_reason() -> None:
    with pytest.raises(
        TlsError,
        match=r"cannot build the TLS context: loading ca_file '/nonexistent/ca\.pem': "
        r"No such file or directory",
    ):
        TlsParameters(ca_file="/nonexistent/ca.pem").create_context()
