"""The parts a JSON API takes, read from a message's bytes; the transports' settings."""

from __future__ import annotations

import importlib.util
import pickle
from typing import Any

import pytest
from api_server import KEY, TOKEN

from lettre.envelope import Envelope
from lettre.message import Message
from lettre.transports.http import (
    HttpApiError,
    MailgunTransport,
    PostmarkTransport,
    ResendTransport,
    SendGridTransport,
)
from lettre.transports.http.base import parse_retry_after
from lettre.transports.http.content import ApiAddress, parse_message


def build(**changes: Any) -> Message:
    """A small message; ``changes`` replace or add builder calls (a tuple: several arguments)."""
    calls: dict[str, Any] = {"from_": "a@example.com", "to": "b@example.com", "subject": "s"}
    calls.update(changes)
    builder = Message.builder().text("t")
    for name, value in calls.items():
        arguments = value if isinstance(value, tuple) else (value,)
        builder = getattr(builder, name)(*arguments)
    return builder.build()


def test_an_envelope_that_leaves_out_a_to_address_is_refused() -> None:
    message = build(to=("b@example.com", "c@example.com"))
    envelope = Envelope("a@example.com", ["b@example.com"])
    with pytest.raises(HttpApiError) as caught:
        parse_message(envelope, message.as_bytes(), "Postmark")
    assert caught.value.code == "envelope_mismatch"
    assert "c@example.com" in str(caught.value)
    assert not caught.value.transient


def test_envelope_recipients_not_in_to_or_cc_are_bcc() -> None:
    message = build(cc="Cee <c@example.com>")
    envelope = Envelope("a@example.com", ["B@EXAMPLE.com", "c@example.com", "z@example.org"])
    parsed = parse_message(envelope, message.as_bytes(), "Resend")
    assert parsed.to == (ApiAddress("b@example.com"),)
    assert parsed.cc == (ApiAddress("c@example.com", "Cee"),)
    assert parsed.bcc == (ApiAddress("z@example.org"),)


def test_only_bcc_recipients_is_refused() -> None:
    message = Message.builder().from_("a@example.com").bcc("b@example.com").text("t").build()
    with pytest.raises(HttpApiError) as caught:
        parse_message(message.envelope, message.as_bytes(), "SendGrid")
    assert caught.value.code == "no_to_recipient"


def test_a_dkim_signature_in_the_bytes_is_refused() -> None:
    message = build()
    signed = b"DKIM-Signature: v=1; d=example.com; b=x\r\n" + message.as_bytes()
    with pytest.raises(HttpApiError) as caught:
        parse_message(message.envelope, signed, "Postmark")
    assert caught.value.code == "dkim_not_supported"


def test_dkim_signers_are_refused_on_json_apis_only() -> None:
    class Signer:
        def sign(self, data: bytes) -> bytes:
            return data

    for make in (
        lambda: PostmarkTransport(TOKEN, dkim=Signer()),
        lambda: SendGridTransport(KEY, dkim=Signer()),
        lambda: ResendTransport(KEY, dkim=Signer()),
    ):
        with pytest.raises(ValueError, match="cannot carry a DKIM signature"):
            make()
    MailgunTransport(KEY, "mg.example.com", dkim=Signer())


def test_non_ascii_subject_names_and_folded_headers() -> None:
    message = build(
        from_="Zoë «Z» Ünal <zoe@exämple.de>",
        subject="Ünïcödé " + "wörd " * 30,
        header=("X-Long", "value " * 30),
    )
    parsed = parse_message(message.envelope, message.as_bytes(), "Postmark")
    assert parsed.subject == ("Ünïcödé " + "wörd " * 30).strip()
    assert parsed.from_ == ApiAddress("zoe@xn--exmple-cua.de", "Zoë «Z» Ünal")
    assert dict(parsed.headers)["X-Long"] == ("value " * 30).strip()
    assert ApiAddress("x@example.com", "Doe, John").formatted == '"Doe, John" <x@example.com>'


def test_repeated_headers_are_refused_where_the_api_takes_a_mapping() -> None:
    message = build(header=("X-Tag", "one"))
    data = message.as_bytes().replace(b"X-Tag: one\r\n", b"X-Tag: one\r\nX-Tag: two\r\n")
    parsed = parse_message(message.envelope, data, "SendGrid")
    assert [v for n, v in parsed.headers if n == "X-Tag"] == ["one", "two"]
    with pytest.raises(HttpApiError, match="more than once"):
        parsed.headers_as_dict("SendGrid")


def test_settings_and_repr() -> None:
    transport = SendGridTransport(KEY, region="eu")
    assert transport.base_url == "https://api.eu.sendgrid.com"
    assert KEY not in repr(transport)
    mailgun = MailgunTransport(KEY, "mg.example.com", region="eu")
    assert mailgun.base_url == "https://api.eu.mailgun.net"
    assert KEY not in repr(mailgun)
    assert "mg.example.com" in repr(mailgun)
    assert MailgunTransport(KEY, "mg.example.com").base_url == "https://api.mailgun.net"
    assert PostmarkTransport(TOKEN).base_url == "https://api.postmarkapp.com"
    assert ResendTransport(KEY, base_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"
    with pytest.raises(ValueError, match="region"):
        SendGridTransport(KEY, region="ap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="base_url"):
        ResendTransport(KEY, base_url="ftp://example.com")
    with pytest.raises(ValueError, match="credentials"):
        ResendTransport(KEY, base_url="https://user:pw@example.com")
    with pytest.raises(ValueError, match="API key"):
        ResendTransport(" ")
    with pytest.raises(ValueError, match="timeout"):
        ResendTransport(KEY, timeout=0)


def test_for_new_process_keeps_settings_and_hooks_but_no_client() -> None:
    from lettre.hooks import Hook

    hook = Hook()
    transport = PostmarkTransport(TOKEN, message_stream="s", hooks=[hook])
    transport._clients[object()] = object()  # type: ignore[assignment]
    fresh = transport.for_new_process()
    assert fresh is not transport
    assert fresh._clients == {}
    assert fresh.hooks == (hook,)
    assert fresh._message_stream == "s"
    assert fresh.transport_name == "postmark"
    assert fresh._server == ("api.postmarkapp.com", 443)


def test_without_httpx_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "httpx" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"lettre\[http\]"):
        ResendTransport(KEY)


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412460.0) == 20.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0


def test_the_error_keeps_its_attributes_through_pickling() -> None:
    error = HttpApiError(
        "Resend is limiting the rate of requests",
        service="Resend",
        status=429,
        code="rate_limit_exceeded",
        retry_after=2.0,
        transient=True,
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is HttpApiError
    assert str(copy) == str(error)
    assert (copy.service, copy.status, copy.code, copy.retry_after, copy.transient) == (
        "Resend",
        429,
        "rate_limit_exceeded",
        2.0,
        True,
    )
    assert not copy.outcome_unknown
    unanswered = HttpApiError("no answer", service="Mailgun", transient=True, outcome_unknown=True)
    assert pickle.loads(pickle.dumps(unanswered)).outcome_unknown
