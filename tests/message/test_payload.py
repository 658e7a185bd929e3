"""Message payloads for task queues: JSON-safe, lossless, versioned and bounded."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest

from lettre import Envelope, Message
from lettre.message.payload import (
    PAYLOAD_VERSION,
    PayloadError,
    PayloadTooLarge,
    message_from_payload,
    message_to_payload,
)
from lettre.message.stdlib import email_message_to_bytes, envelope_from_email_message
from lettre.signing import Signer


def through_json(payload: dict[str, object]) -> dict[str, object]:
    return json.loads(json.dumps(payload))  # type: ignore[no-any-return]


def rich_message() -> Message:
    return (
        Message.builder()
        .from_("Åsa Ek <asa@exämple.se>")
        .to("Bob <bob@example.com>")
        .cc("carol@example.com")
        .bcc("Archive <archive@example.com>")
        .reply_to("help@example.com")
        .subject("Faktura 2024 — ändrad")
        .text("Hej!\n.\nA line that starts with a dot.\n")
        .html("<p>Hej <b>då</b></p>")
        .attach(
            bytes(range(256)) * 40, filename="blob ü.bin", content_type="application/octet-stream"
        )
        .header("X-Order", "42")
        .build()
    )


def test_a_message_round_trips_byte_for_byte_through_json() -> None:
    message = rich_message()
    payload = through_json(message_to_payload(message))
    assert payload["lettre"] == PAYLOAD_VERSION
    again = message_from_payload(payload)
    assert again.as_bytes() == message.as_bytes()
    assert again.envelope == message.envelope
    assert again.message_id == message.message_id
    assert list(again.bcc) == list(message.bcc)
    assert again.subject == message.subject
    assert list(again.to) == list(message.to)
    assert again.date == message.date
    # The round trip of the round trip is the same payload.
    assert message_to_payload(again) == payload


def test_the_envelope_and_its_dsn_options_round_trip() -> None:
    message = rich_message()
    envelope = Envelope(
        "bounces@example.com",
        ["bob@example.com", "ärla@exämple.se"],
        notify=["FAILURE", "DELAY"],
        ret="HDRS",
        envid="order-42",
        orcpt=True,
    )
    again = message_from_payload(through_json(message_to_payload(message, envelope=envelope)))
    assert again.envelope == envelope
    assert again.as_bytes() == message.as_bytes()


def test_a_null_reverse_path_round_trips() -> None:
    envelope = Envelope(None, ["bob@example.com"], notify="NEVER")
    again = message_from_payload(
        through_json(message_to_payload(rich_message(), envelope=envelope))
    )
    assert again.envelope == envelope
    assert again.envelope.reverse_path is None


def test_a_signed_message_keeps_its_signed_bytes() -> None:
    class Stamp(Signer):
        def sign(self, data: bytes) -> bytes:
            return b"X-Stamp: yes\r\n" + data

    signed = rich_message().sign(Stamp())
    again = message_from_payload(through_json(message_to_payload(signed)))
    assert again.as_bytes() == signed.as_bytes()
    assert again.as_bytes().startswith(b"X-Stamp: yes\r\n")


def test_a_stdlib_message_becomes_the_bytes_and_envelope_a_transport_sends() -> None:
    mail = EmailMessage()
    mail["From"] = "Ada <ada@example.com>"
    mail["To"] = "bob@example.com"
    mail["Bcc"] = "hidden@example.com"
    mail["Subject"] = "Grüße"
    mail["Message-ID"] = "<1@example.com>"
    mail.set_content("Hallo\n")
    again = message_from_payload(through_json(message_to_payload(mail)))
    assert again.as_bytes() == email_message_to_bytes(mail)
    assert b"hidden@example.com" not in again.as_bytes()
    assert again.envelope == envelope_from_email_message(mail)
    assert again.message_id == "<1@example.com>"
    assert [str(m) for m in again.bcc] == ["hidden@example.com"]


def test_a_message_over_the_bound_is_refused_with_a_clear_error() -> None:
    message = Message.builder().from_("a@example.com").to("b@example.com").text("x" * 5000).build()
    with pytest.raises(PayloadTooLarge, match=r"more than the 1000 a payload may hold") as info:
        message_to_payload(message, max_size=1000)
    assert info.value.size == len(message.as_bytes())
    payload = message_to_payload(message)
    with pytest.raises(PayloadTooLarge):
        message_from_payload(payload, max_size=1000)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"lettre": 99}, "version 99 is not supported"),
        ({"data": "%%%"}, "not base64"),
        ({"data": 7}, "not a string"),
        ({"bcc": "x"}, "not a list of strings"),
        ({"envelope": []}, "not an object"),
    ],
)
def test_a_damaged_payload_is_refused(change: dict[str, object], match: str) -> None:
    payload = {**message_to_payload(rich_message()), **change}
    with pytest.raises(PayloadError, match=match):
        message_from_payload(payload)


def test_something_else_is_not_a_payload() -> None:
    with pytest.raises(PayloadError, match="not a lettre message payload"):
        message_from_payload({"data": ""})
    payload = message_to_payload(rich_message())
    del payload["envelope"]
    with pytest.raises(PayloadError, match="has no envelope"):
        message_from_payload(payload)
    with pytest.raises(TypeError):
        message_to_payload("not a message")  # type: ignore[arg-type]


def test_ready_bytes_make_a_payload_too() -> None:
    from lettre.message.payload import raw_to_payload

    data = b"From: a@example.com\r\nTo: b@example.com\r\nMessage-ID: <9@x>\r\n\r\nHi\r\n"
    envelope = Envelope("a@example.com", ["b@example.com", "c@example.com"], ret="FULL")
    again = message_from_payload(through_json(raw_to_payload(envelope, data, message_id="<9@x>")))
    assert again.as_bytes() == data
    assert again.envelope == envelope
    assert again.message_id == "<9@x>"
    with pytest.raises(PayloadTooLarge):
        raw_to_payload(envelope, data, max_size=10)


def test_without_parsing_the_headers_the_message_still_sends_the_same() -> None:
    message = rich_message()
    again = message_from_payload(through_json(message_to_payload(message)), parse_headers=False)
    assert again.as_bytes() == message.as_bytes()
    assert again.envelope == message.envelope
    assert again.message_id == message.message_id
    assert list(again.bcc) == list(message.bcc)
    assert again.subject is None
    assert list(again.to) == []


@pytest.mark.parametrize(
    ("envelope_change", "match"),
    [
        ({"forward_paths": "b@example.com"}, "^the payload's forward paths are not a list$"),
        ({"ret": None, "envid": None}, None),
    ],
)
def test_a_damaged_envelope_is_refused(
    envelope_change: dict[str, object], match: str | None
) -> None:
    payload = through_json(message_to_payload(rich_message()))
    envelope = payload["envelope"]
    assert isinstance(envelope, dict)
    payload["envelope"] = {**envelope, **envelope_change}
    if match is None:
        assert message_from_payload(payload).envelope.ret is None
    else:
        with pytest.raises(PayloadError, match=match):
            message_from_payload(payload)


@pytest.mark.parametrize(
    "key", ["reverse_path", "forward_paths", "notify", "ret", "envid", "orcpt"]
)
def test_an_envelope_without_a_field_is_refused(key: str) -> None:
    payload = through_json(message_to_payload(rich_message()))
    envelope = payload["envelope"]
    assert isinstance(envelope, dict)
    del envelope[key]
    with pytest.raises(PayloadError, match=f"^the payload's envelope has no '{key}'$"):
        message_from_payload(payload)


def test_a_message_id_that_is_not_a_string_is_refused() -> None:
    payload = {**message_to_payload(rich_message()), "message_id": 7}
    with pytest.raises(PayloadError, match=r"^the payload's message_id is not a string$"):
        message_from_payload(payload)
    payload["message_id"] = None
    assert message_from_payload(payload).message_id is None
