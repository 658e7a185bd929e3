"""What each transport sends: the documented request of each API, on asyncio, uvloop and trio."""

from __future__ import annotations

import base64
import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from api_server import JSON_SERVICES, KEY, SERVICES, TOKEN, ApiServer, Recorded, make_transport

from lettre.envelope import Envelope
from lettre.message import Message

pytestmark = pytest.mark.anyio

PDF = b"%PDF-1.4\x00\xff binary \x01\x02"
PNG = b"\x89PNG\r\n\x1a\n-inline-image-"


def rich_message() -> Message:
    return (
        Message.builder()
        .from_("Åsa Ek <asa@exämple.se>")
        .to("Bob Smith <bob@example.com>", "carol@example.com")
        .cc("Dave <dave@example.net>")
        .bcc("hidden@example.org")
        .reply_to("Support <support@example.com>")
        .subject("Grüße · 世界")
        .text("Hello ünïcode\n")
        .html('<p>Hello <img src="cid:logo"></p>\n')
        .attach(PDF, "résumé.pdf", "application/pdf")
        .inline(PNG, "logo", "image/png")
        .header("X-Campaign", "spring")
        .build()
    )


def decoded(attachment_content: str) -> bytes:
    return base64.b64decode(attachment_content, validate=True)


def check_postmark(request: Recorded, message: Message) -> None:
    assert request.headers["x-postmark-server-token"] == TOKEN
    assert request.headers["accept"] == "application/json"
    body = request.json()
    assert body["From"] == "Åsa Ek <asa@xn--exmple-cua.se>"
    assert body["To"] == "Bob Smith <bob@example.com>, carol@example.com"
    assert body["Cc"] == "Dave <dave@example.net>"
    assert body["Bcc"] == "hidden@example.org"
    assert body["ReplyTo"] == "Support <support@example.com>"
    assert body["Subject"] == "Grüße · 世界"
    assert body["TextBody"] == "Hello ünïcode\r\n"
    assert body["HtmlBody"].startswith("<p>Hello")
    headers = {h["Name"]: h["Value"] for h in body["Headers"]}
    assert headers == {"Message-ID": message.message_id, "X-Campaign": "spring"}
    attachments = {a["Name"]: a for a in body["Attachments"]}
    assert decoded(attachments["résumé.pdf"]["Content"]) == PDF
    assert attachments["résumé.pdf"]["ContentType"] == "application/pdf"
    assert "ContentID" not in attachments["résumé.pdf"]
    assert decoded(attachments["logo.png"]["Content"]) == PNG
    assert attachments["logo.png"]["ContentID"] == "cid:logo"


def check_sendgrid(request: Recorded, message: Message) -> None:
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json()
    (personalization,) = body["personalizations"]
    assert personalization["to"] == [
        {"email": "bob@example.com", "name": "Bob Smith"},
        {"email": "carol@example.com"},
    ]
    assert personalization["cc"] == [{"email": "dave@example.net", "name": "Dave"}]
    assert personalization["bcc"] == [{"email": "hidden@example.org"}]
    assert body["from"] == {"email": "asa@xn--exmple-cua.se", "name": "Åsa Ek"}
    assert body["reply_to"] == {"email": "support@example.com", "name": "Support"}
    assert body["subject"] == "Grüße · 世界"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"] == "Hello ünïcode\r\n"
    assert body["headers"] == {"Message-ID": message.message_id, "X-Campaign": "spring"}
    attachments = {a["filename"]: a for a in body["attachments"]}
    assert decoded(attachments["résumé.pdf"]["content"]) == PDF
    assert attachments["résumé.pdf"]["type"] == "application/pdf"
    assert attachments["résumé.pdf"]["disposition"] == "attachment"
    assert attachments["logo.png"]["disposition"] == "inline"
    assert attachments["logo.png"]["content_id"] == "logo"


def check_resend(request: Recorded, message: Message) -> None:
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json()
    assert body["from"] == "Åsa Ek <asa@xn--exmple-cua.se>"
    assert body["to"] == ["Bob Smith <bob@example.com>", "carol@example.com"]
    assert body["cc"] == ["Dave <dave@example.net>"]
    assert body["bcc"] == ["hidden@example.org"]
    assert body["reply_to"] == ["Support <support@example.com>"]
    assert body["subject"] == "Grüße · 世界"
    assert body["text"] == "Hello ünïcode\r\n"
    assert body["html"].startswith("<p>Hello")
    assert body["headers"] == {"Message-ID": message.message_id, "X-Campaign": "spring"}
    attachments = {a["filename"]: a for a in body["attachments"]}
    assert decoded(attachments["résumé.pdf"]["content"]) == PDF
    assert attachments["résumé.pdf"]["content_type"] == "application/pdf"
    assert attachments["logo.png"]["content_id"] == "logo"


def check_mailgun(request: Recorded, message: Message) -> None:
    expected = base64.b64encode(f"api:{KEY}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.path == "/v3/mg.example.com/messages.mime"
    fields = request.form_fields()
    recipients = [content.decode() for name, content, _, _ in fields if name == "to"]
    assert recipients == [
        "bob@example.com",
        "carol@example.com",
        "dave@example.net",
        "hidden@example.org",
    ]
    (mime,) = [
        (content, filename, ctype) for name, content, filename, ctype in fields if name == "message"
    ]
    assert mime[0] == message.as_bytes()  # the bytes, unchanged
    assert mime[1] is not None  # sent as a file upload, as Mailgun asks
    assert b"hidden@example.org" not in mime[0]


CHECKS: dict[str, Any] = {
    "postmark": check_postmark,
    "sendgrid": check_sendgrid,
    "resend": check_resend,
    "mailgun": check_mailgun,
}
PATHS = {
    "postmark": "/email",
    "sendgrid": "/v3/mail/send",
    "resend": "/emails",
    "mailgun": "/v3/mg.example.com/messages.mime",
}


@pytest.mark.parametrize("service", SERVICES)
async def test_send_makes_the_documented_request(api: ApiServer, service: str) -> None:
    message = rich_message()
    async with make_transport(service, api.url) as transport:
        result = await transport.send(message)
    request = api.last
    assert (request.method, request.path) == ("POST", PATHS[service])
    CHECKS[service](request, message)
    assert result.all_accepted
    assert result.accepted == (
        "bob@example.com",
        "carol@example.com",
        "dave@example.net",
        "hidden@example.org",
    )
    assert result.message_id == message.message_id
    assert result.transport_id
    if service == "sendgrid":
        assert result.transport_id.startswith("sg-")
    if service == "mailgun":
        assert result.transport_id.endswith("@mg.example.com")
        assert "<" not in result.transport_id


@pytest.mark.parametrize("service", JSON_SERVICES)
async def test_bcc_reaches_the_api_as_bcc_and_never_as_a_header(
    api: ApiServer, service: str
) -> None:
    message = (
        Message.builder()
        .from_("a@example.com")
        .to("b@example.com")
        .bcc("secret@example.org")
        .subject("s")
        .text("t")
        .build()
    )
    transport = make_transport(service, api.url)
    try:
        await transport.send(message)
    finally:
        await transport.aclose()
    body = api.last.json()
    bcc = {
        "postmark": lambda b: b["Bcc"],
        "sendgrid": lambda b: b["personalizations"][0]["bcc"][0]["email"],
        "resend": lambda b: b["bcc"][0],
    }[service](body)
    assert bcc == "secret@example.org"
    headers = body.get("Headers") or body.get("headers") or {}
    names = [h["Name"] for h in headers] if isinstance(headers, list) else list(headers)
    assert "bcc" not in [n.lower() for n in names]
    assert "secret" not in str(headers)


@pytest.mark.parametrize("service", SERVICES)
async def test_send_raw_of_a_stdlib_message(api: ApiServer, service: str) -> None:
    stdlib = EmailMessage()
    stdlib["From"] = "Zoë <zoe@example.com>"
    stdlib["To"] = "ann@example.com"
    stdlib["Subject"] = "Ça marche"
    stdlib["Message-ID"] = "<stdlib-1@example.com>"
    stdlib.set_content("plain body ✓")
    stdlib.add_alternative("<b>html body ✓</b>", subtype="html")
    stdlib.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    data = stdlib.as_bytes(policy=email.policy.default.clone(linesep="\r\n"))
    envelope = Envelope("zoe@example.com", ["ann@example.com", "archive@example.org"])
    async with make_transport(service, api.url) as transport:
        result = await transport.send_raw(envelope, data)
    assert result.accepted == ("ann@example.com", "archive@example.org")
    assert result.message_id is None
    request = api.last
    if service == "mailgun":
        fields = request.form_fields()
        assert [c for n, c, _, _ in fields if n == "message"] == [data]
        return
    body = request.json()
    if service == "postmark":
        assert (body["From"], body["To"], body["Bcc"]) == (
            "Zoë <zoe@example.com>",
            "ann@example.com",
            "archive@example.org",
        )
        assert body["Subject"] == "Ça marche"
        assert body["TextBody"].strip() == "plain body ✓"
        assert body["HtmlBody"].strip() == "<b>html body ✓</b>"
        assert {"Name": "Message-ID", "Value": "<stdlib-1@example.com>"} in body["Headers"]
        (attachment,) = body["Attachments"]
        assert (attachment["Name"], attachment["ContentType"]) == ("data.csv", "text/csv")
        assert decoded(attachment["Content"]) == b"a,b\n1,2\n"
    elif service == "sendgrid":
        assert body["personalizations"][0]["bcc"] == [{"email": "archive@example.org"}]
        assert body["headers"]["Message-ID"] == "<stdlib-1@example.com>"
        assert body["attachments"][0]["filename"] == "data.csv"
    else:
        assert body["bcc"] == ["archive@example.org"]
        assert body["headers"]["Message-ID"] == "<stdlib-1@example.com>"
        assert body["attachments"][0]["content_type"] == "text/csv"


@pytest.mark.parametrize("service", ["postmark", "mailgun"])
async def test_send_of_a_stdlib_email_message(api: ApiServer, service: str) -> None:
    stdlib = EmailMessage()
    stdlib["From"] = "a@example.com"
    stdlib["To"] = "b@example.com"
    stdlib["Bcc"] = "c@example.com"
    stdlib["Subject"] = "hi"
    stdlib.set_content("body")
    async with make_transport(service, api.url) as transport:
        result = await transport.send(stdlib)
    assert result.accepted == ("b@example.com", "c@example.com")
    request = api.last
    if service == "postmark":
        assert request.json()["Bcc"] == "c@example.com"
    else:
        sent = next(c for n, c, _, _ in request.form_fields() if n == "message")
        parsed = BytesParser(policy=email.policy.default).parsebytes(sent)
        assert "Bcc" not in parsed
        assert [c.decode() for n, c, _, _ in request.form_fields() if n == "to"] == [
            "b@example.com",
            "c@example.com",
        ]


async def test_mailgun_keeps_a_dkim_signature(api: ApiServer) -> None:
    class Stamp:
        """A signer that prepends a header, as a DKIM signer does."""

        def sign(self, data: bytes) -> bytes:
            return b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; b=abc\r\n" + data

    message = Message.builder().from_("a@example.com").to("b@example.com").text("x").build()
    async with make_transport("mailgun", api.url, dkim=Stamp()) as transport:
        await transport.send(message)
    sent = next(c for n, c, _, _ in api.last.form_fields() if n == "message")
    assert (
        sent == b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; b=abc\r\n" + message.as_bytes()
    )


async def test_postmark_message_stream_and_one_client_per_loop(api: ApiServer) -> None:
    from lettre.transports.http import PostmarkTransport

    transport = PostmarkTransport(
        TOKEN, message_stream="broadcast", base_url=api.url, trust_env=False
    )
    message = Message.builder().from_("a@example.com").to("b@example.com").text("x").build()
    async with transport:
        await transport.send(message)
        first = transport._client_here()
        await transport.send(message)
        assert transport._client_here() is first  # connections are kept for the loop
    assert transport._clients == {}
    assert api.last.json()["MessageStream"] == "broadcast"
    # Closed, it sends again with a new client.
    await transport.send(message)
    assert len(api.requests) == 3
    await transport.aclose()
