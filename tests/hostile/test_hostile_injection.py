"""Injection: no input can add a header, an SMTP command, a sendmail option or a second message.

- CR, LF, NUL, U+2028 (and friends) in every builder field, the EHLO name, the
  DSN parameters and the credentials are refused with a typed error, or end
  up encoded so that they cannot start a line.
- Envelope addresses cannot carry a second command.
- Sendmail senders and recipients cannot be read as options.
- No message body can end DATA early or smuggle a second message: every
  end-of-data look-alike goes through DATA (real aiosmtpd) and BDAT (a
  scripted CHUNKING server that decodes the BDAT stream) and arrives intact,
  as one message, CRLF-normalised.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import pytest
from hostile_support import GUARD, ServerFactory, envelope, message_bytes, transport_for
from scripted import SmtpScript, hostile_server

from lettre.address import Address, Mailbox, Mailboxes
from lettre.envelope import Envelope
from lettre.errors import AddressError, LocalProtocolError, MessageError
from lettre.message import Attachment, ContentType, Message, SinglePart
from lettre.protocol.commands import Ehlo, Helo, Mail, Rcpt
from lettre.smtp.auth import Credentials
from lettre.smtp.settings import SmtpSettings
from lettre.transports.sendmail import SendmailTransport
from lettre.transports.smtp import SmtpTransport

SEPARATORS = {
    "CR": "\r",
    "LF": "\n",
    "CRLF": "\r\n",
    "CRLF-WSP": "\r\n ",
    "CRLFCRLF": "\r\n\r\n",
    "NUL": "\x00",
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "NEL": "\x85",
    "VT": "\x0b",
    "FF": "\x0c",
}
SEP_IDS = list(SEPARATORS)
INJECTED_HEADER = "X-Injected: yes"
CHUNKING = ("8BITMIME", "CHUNKING", "PIPELINING", "ENHANCEDSTATUSCODES")


def base_builder() -> Any:
    return (
        Message.builder()
        .from_("Sender <sender@example.com>")
        .to("Rcpt <rcpt@example.com>")
        .subject("Hello")
        .text("Hello there.\n")
    )


# Every builder entry point that ends up in a header, given a hostile text.
FIELDS: dict[str, Callable[[str], Any]] = {
    "subject": lambda v: base_builder().subject(f"Hi{v}"),
    "header value": lambda v: base_builder().header("X-Custom", f"value{v}"),
    "header name": lambda v: base_builder().header(f"X-Custom{v}", "value"),
    "from display name": lambda v: base_builder().from_(Mailbox("a@example.com", f"Al{v}")),
    "to display name": lambda v: base_builder().to(Mailbox("b@example.com", f"Bo{v}")),
    "cc display name (text)": lambda v: base_builder().cc(f'"Ca{v}" <c@example.com>'),
    "reply-to display name": lambda v: base_builder().reply_to(Mailbox("r@example.com", f"R{v}")),
    "sender display name": lambda v: base_builder().sender(Mailbox("s@example.com", f"S{v}")),
    "bcc address": lambda v: base_builder().bcc(f"hidden{v}@example.com"),
    "to address": lambda v: base_builder().to(f"b{v}@example.com"),
    "to domain": lambda v: base_builder().to(f"b@example.com{v}"),
    "address header": lambda v: base_builder().header(
        "X-Addresses", Mailboxes([Mailbox("x@example.com", f"X{v}")])
    ),
    "attachment filename": lambda v: base_builder().attach(b"data", f"report{v}.pdf"),
    "attachment object filename": lambda v: base_builder().attach(
        Attachment(b"data", f"report{v}.txt")
    ),
    "attachment content type": lambda v: base_builder().attach(
        b"data", "a.bin", f"application/octet-stream; name=x{v}"
    ),
    "content type parameter": lambda v: base_builder().attach(
        SinglePart(b"data", ContentType("text/plain", {"charset": f"utf-8{v}"}))
    ),
    "inline content id": lambda v: (
        base_builder().html('<img src="cid:logo">').inline(b"\x89PNG", f"logo{v}", "image/png")
    ),
    "message id": lambda v: base_builder().message_id(f"<id{v}@example.com>"),
    "message id domain": lambda v: base_builder().message_id(domain=f"example.com{v}"),
    "in-reply-to": lambda v: base_builder().in_reply_to(f"<parent{v}@example.com>"),
    "references": lambda v: base_builder().references(f"<ref{v}@example.com>"),
    "user agent": lambda v: base_builder().user_agent(f"lettre{v}"),
    "list-unsubscribe": lambda v: base_builder().list_unsubscribe(f"https://example.com/u{v}"),
}


def assert_harmless(data: bytes, payload: str) -> None:
    """The serialised message has no injected header and no stray line breaks."""
    assert b"\x00" not in data
    assert "\u2028".encode() not in data
    assert "\u2029".encode() not in data
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", data) is None, "bare CR or LF"
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert not line.lower().startswith(b"x-injected"), line
    parsed = message_from_bytes(data, policy=policy.SMTP)
    assert "X-Injected" not in parsed
    assert not parsed.defects, parsed.defects


@pytest.mark.parametrize("sep", SEP_IDS)
@pytest.mark.parametrize("field", list(FIELDS))
def test_builder_fields_refuse_or_neutralise_line_breaks(field: str, sep: str) -> None:
    payload = SEPARATORS[sep] + INJECTED_HEADER
    # Refused with a typed error (both are ValueErrors too), or made harmless.
    try:
        message = FIELDS[field](payload).build()
    except (AddressError, MessageError):
        return
    assert_harmless(message.as_bytes(), payload)


@pytest.mark.parametrize("sep", SEP_IDS)
def test_address_parsing_refuses_line_breaks(sep: str) -> None:
    payload = SEPARATORS[sep]
    for text in (
        f"a{payload}b@example.com",
        f"ab@exa{payload}mple.com",
        f'"a{payload}b"@example.com',
        f"ab@example.com{payload}",
        f"ab@[127.0.0.1{payload}]",
    ):
        with pytest.raises(AddressError):
            Address(text)
    for text in (f"Name{payload} <ab@example.com>", f'"Na{payload}me" <ab@example.com>'):
        with pytest.raises(AddressError):
            Mailbox.parse(text)
    with pytest.raises(AddressError):
        Mailboxes.parse(f"a@example.com,{payload}b@example.com")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("hi\r\n\r\nFake body", id="CRLFCRLF"),
        pytest.param("hi\x00there", id="NUL"),
        pytest.param("hi\nX-Injected: yes", id="LF-header"),
        pytest.param("hi\rX-Injected: yes", id="CR-header"),
        pytest.param("hi\u2028X-Injected: yes", id="U+2028"),
        pytest.param("hi\r\n X-folded: yes", id="fold"),
    ],
)
def test_stdlib_messages_cannot_break_the_header_block(value: str) -> None:
    # A compat32 EmailMessage accepts line breaks in header values; lettre
    # serialises stdlib messages for sending, so it must refuse or neutralise.
    from lettre.message.stdlib import email_message_to_bytes

    message = EmailMessage(policy=policy.compat32)
    message["Subject"] = value
    message["From"] = "sender@example.com"
    message["To"] = "rcpt@example.com"
    message.set_payload("body")
    try:
        data = email_message_to_bytes(message)
    except MessageError:
        return
    assert_harmless(data, value)
    parsed = message_from_bytes(data, policy=policy.default)
    assert parsed["From"] == "sender@example.com"
    assert parsed["To"] == "rcpt@example.com"


# --------------------------------------------------------------------------- SMTP arguments


SMUGGLING_ADDRESSES = [
    "a@example.com>\r\nRCPT TO:<evil@example.net",
    "a@example.com> NOTIFY=SUCCESS",
    "a@example.com>\nDATA",
    "<a@example.com>",
    "a@example.com\r",
    "a@example.com\x00",
    "a@example.com SIZE=1",
    "a@[127.0.0.1]>\r\nRSET",
    "\r\nQUIT\r\n@example.com",
]


@pytest.mark.parametrize("text", SMUGGLING_ADDRESSES)
def test_envelope_addresses_cannot_smuggle_commands(text: str) -> None:
    with pytest.raises(AddressError):
        Envelope(text, ["b@example.com"])
    with pytest.raises(AddressError):
        Envelope("a@example.com", ["b@example.com", text])


@pytest.mark.parametrize("text", SMUGGLING_ADDRESSES)
def test_protocol_commands_refuse_smuggled_paths(text: str) -> None:
    with pytest.raises(LocalProtocolError):
        Mail(text)
    with pytest.raises(LocalProtocolError):
        Rcpt(text)


@pytest.mark.parametrize("sep", SEP_IDS)
def test_ehlo_name_refuses_line_breaks(sep: str) -> None:
    name = f"client.example.com{SEPARATORS[sep]}MAIL FROM:<x@example.com>"
    with pytest.raises(ValueError):
        SmtpSettings("smtp.example.com", hello_name=name)
    with pytest.raises(ValueError):
        SmtpTransport("smtp.example.com", hello_name=name)
    with pytest.raises(LocalProtocolError):
        Ehlo(name)
    with pytest.raises(LocalProtocolError):
        Helo(name)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fqdn", ["evil.example.com\r\nRSET", "bad name.example.com", "localhost", "-x.example.com"]
)
async def test_a_strange_machine_name_never_reaches_ehlo(
    fqdn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without hello_name the EHLO name comes from the machine's name, which
    # is not ours to trust: anything that is not a valid domain gives way to
    # the connection's address literal.
    from lettre.smtp import settings as settings_module

    monkeypatch.setattr(settings_module, "_fqdn_cache", [fqdn])
    script = SmtpScript()
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = SmtpTransport(
                server.host, server.port, tls="none", timeout=5.0, data_timeout=5.0
            )
            async with transport:
                await transport.send_raw(envelope(), message_bytes())
    assert script.lines(0)[0] == "EHLO [127.0.0.1]"
    assert "RSET" not in script.verbs()


@pytest.mark.parametrize("sep", SEP_IDS)
def test_dsn_parameters_refuse_line_breaks(sep: str) -> None:
    bad = SEPARATORS[sep] + "RCPT TO:<evil@example.net>"
    with pytest.raises(MessageError):
        Envelope("a@example.com", ["b@example.com"], envid=f"id{bad}")
    with pytest.raises(MessageError):
        Envelope("a@example.com", ["b@example.com"], ret=f"FULL{bad}")
    with pytest.raises(MessageError):
        Envelope("a@example.com", ["b@example.com"], notify=[f"SUCCESS{bad}"])
    with pytest.raises(LocalProtocolError):
        Mail("a@example.com", envid=f"id{bad}")
    with pytest.raises(LocalProtocolError):
        Mail("a@example.com", ret=f"FULL{bad}")
    with pytest.raises(LocalProtocolError):
        Rcpt("b@example.com", notify=frozenset({f"SUCCESS{bad}"}))
    try:
        rcpt = Rcpt("b@example.com", orcpt=f"b@example.com{bad}")
    except LocalProtocolError:
        return
    # Not refused: then xtext-encoded (RFC 6533), on one line.
    line = rcpt.to_bytes()
    assert line.count(b"\r") == 1
    assert line.count(b"\n") == 1
    assert line.endswith(b"\r\n")
    assert "\u2028".encode() not in line
    assert "\u2029".encode() not in line


def test_quoted_local_part_with_spaces_stays_one_command() -> None:
    # Spaces and angle brackets are legal inside a quoted local part; they
    # must stay inside the path, on one line.
    address = Address('"a> RCPT TO:<evil"@example.com')
    line = Mail(str(address)).to_bytes()
    assert line.count(b"\r\n") == 1
    assert line.startswith(b'MAIL FROM:<"a> RCPT TO:<evil"@example.com>')


@pytest.mark.anyio
@pytest.mark.parametrize("sep", SEP_IDS)
@pytest.mark.parametrize("where", ["username", "password"])
async def test_credentials_cannot_inject_commands(where: str, sep: str) -> None:
    payload = SEPARATORS[sep] + "RSET"
    user, password = ("alice" + payload, "pw") if where == "username" else ("alice", "pw" + payload)
    try:
        credentials = Credentials(user, password)
    except ValueError:
        return  # refused outright
    for mechanism in ("PLAIN", "LOGIN"):
        script = SmtpScript()
        with anyio.fail_after(GUARD):
            async with hostile_server(script) as server:
                transport = transport_for(
                    server,
                    credentials=credentials,
                    allow_insecure_auth=True,
                    auth_mechanisms=[mechanism],
                )
                async with transport:
                    refused = False
                    try:
                        await transport.send_raw(envelope(), message_bytes())
                    except (LocalProtocolError, ValueError):
                        # Refused before anything was sent (PLAIN cannot carry NUL).
                        refused = True
                if refused:
                    assert "AUTH" not in script.verbs(0), mechanism
        # Whatever happened, the server never saw an injected command.
        assert "RSET" not in script.verbs(), (mechanism, script.lines())
        for line in script.lines():
            assert "\x00" not in line
            assert "\u2028" not in line


@pytest.mark.parametrize("sep", SEP_IDS)
def test_dkim_parameters_refuse_line_breaks(sep: str) -> None:
    # The DKIM-Signature header is built from these: none may add a header.
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lettre.dkim import DkimSigner

    key = Ed25519PrivateKey.generate()
    bad = SEPARATORS[sep] + INJECTED_HEADER
    for kwargs in (
        {"domain": f"example.com{bad}"},
        {"selector": f"s1{bad}"},
        {"identity": f"user{bad}@example.com"},
        {"identity": f"user@example.com{bad}"},
        {"signed_headers": ["From", f"Subject{bad}"]},
        {"oversigned_headers": [f"To{bad}"]},
    ):
        arguments: dict[str, Any] = {"domain": "example.com", "selector": "s1", **kwargs}
        with pytest.raises(MessageError):
            DkimSigner(private_key=key, **arguments)
    # A working signer's header holds no injected line either.
    signer = DkimSigner("example.com", "s1", key)
    signed = signer.sign(message_bytes())
    assert_harmless(signed, bad)
    assert signed.endswith(message_bytes())


# --------------------------------------------------------------------------- sendmail

RECORDER = """\
#!/usr/bin/env python3
import json, os, sys
data = sys.stdin.buffer.read()
with open(os.environ["LETTRE_RECORD"], "a", encoding="utf-8") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "stdin": data.decode("latin-1")}) + "\\n")
"""


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A sendmail stand-in that appends its argv and stdin to a JSON-lines file."""
    program = tmp_path / "sendmail"
    program.write_text(textwrap.dedent(RECORDER), encoding="utf-8")
    program.chmod(0o755)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("LETTRE_RECORD", str(record))
    return program, record


def runs(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]


OPTION_LIKE = [
    "-oQ/tmp/@example.com",
    "-X/tmp/log@example.com",
    "-t@example.com",
    "-C/etc/evil.cf@example.com",
    "--help@example.com",
    "-f@example.com",
    '"-oQ/tmp"@example.com',
]


@pytest.mark.anyio
@pytest.mark.parametrize("address", OPTION_LIKE)
async def test_sendmail_sender_that_looks_like_an_option_is_refused(
    address: str, recorder: tuple[Path, Path]
) -> None:
    program, record = recorder
    transport = SendmailTransport(program, timeout=10)
    env = Envelope(address, ["rcpt@example.com"])
    with pytest.raises(AddressError):
        transport.command_line(env)
    with anyio.fail_after(GUARD), pytest.raises(AddressError):
        await transport.send_raw(env, message_bytes())
    assert runs(record) == []  # nothing was run


@pytest.mark.anyio
@pytest.mark.parametrize("address", OPTION_LIKE)
async def test_sendmail_recipient_that_looks_like_an_option_is_refused_or_after_separator(
    address: str, recorder: tuple[Path, Path]
) -> None:
    program, record = recorder
    transport = SendmailTransport(program, timeout=10)
    env = Envelope("sender@example.com", ["rcpt@example.com", address])
    try:
        with anyio.fail_after(GUARD):
            await transport.send_raw(env, message_bytes())
    except AddressError:
        assert runs(record) == []
        return
    (run,) = runs(record)
    argv = run["argv"]
    # Every recipient comes after "--": no program reads it as an option.
    assert argv[argv.index("--") + 1 :] == ["rcpt@example.com", str(env.forward_paths[1])]
    assert argv[: argv.index("--")] == ["-i", "-f", "sender@example.com"]


@pytest.mark.anyio
async def test_sendmail_argv_is_exact_and_unshelled(recorder: tuple[Path, Path]) -> None:
    program, record = recorder
    transport = SendmailTransport(program, timeout=10)
    tricky = ['"a b;$(touch pwned)"@example.com', "x`id`@example.com", "o'brien@example.com"]
    env = Envelope('"s p"@example.com', tricky)
    with anyio.fail_after(GUARD):
        await transport.send_raw(env, message_bytes())
    (run,) = runs(record)
    assert run["argv"] == ["-i", "-f", '"s p"@example.com', "--", *map(str, env.forward_paths)]
    assert not (Path(os.getcwd()) / "pwned").exists()


# --------------------------------------------------------------------------- end of data


def crlf_normalised(data: bytes) -> bytes:
    """``data`` with every CR, LF and CRLF turned into CRLF, ending with CRLF."""
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return text if text.endswith(b"\r\n") else text + b"\r\n"


SMUGGLED = b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSmuggled\r\n"
END_OF_DATA_BODIES: dict[str, bytes] = {
    "LF.LF": b"one\n.\n" + SMUGGLED + b"two\r\n",
    "CR.CR": b"one\r.\r" + SMUGGLED + b"two\r\n",
    "CRLF.LF": b"one\r\n.\n" + SMUGGLED + b"two\r\n",
    "LF.CRLF": b"one\n.\r\n" + SMUGGLED + b"two\r\n",
    "CRLF.CRLF": b"one\r\n.\r\n" + SMUGGLED + b"two\r\n",
    "CR.LF": b"one\r.\n" + SMUGGLED + b"two\r\n",
    "CRLF.CR": b"one\r\n.\r" + SMUGGLED + b"two\r\n",
    "LF.CR": b"one\n.\r" + SMUGGLED + b"two\r\n",
    "CR.CRLF": b"one\r.\r\n" + SMUGGLED + b"two\r\n",
    "CRCRLF.CRLF": b"one\r\r\n.\r\n" + SMUGGLED,
    "dot at start": b".\r\n" + SMUGGLED,
    "only a dot": b".",
    "only dot CRLF": b".\r\n",
    "dot dot": b"..\r\n..\r\n",
    "ends with CRLF.": b"one\r\n.",
    "ends with LF.": b"one\n.",
    "ends with CR.": b"one\r.",
    "ends with CRLF.CR": b"one\r\n.\r",
    "ends with bare CR": b"one\r",
    "ends with CRLF.CRLF": b"one\r\n.\r\n",
    "dots everywhere": b".\n.\r.\r\n..\n...\r\n.x\r\n",
    "empty": b"",
}


def raw_message(body: bytes) -> bytes:
    return b"From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: dots\r\n\r\n" + body


@pytest.mark.anyio
async def test_end_of_data_variants_through_data(smtpd: ServerFactory) -> None:
    server = smtpd()
    transport = transport_for(server, timeout=5.0, data_timeout=5.0)
    with anyio.fail_after(GUARD):
        async with transport:
            for body in END_OF_DATA_BODIES.values():
                await transport.send_raw(envelope(), raw_message(body))
    # One message per send, nothing smuggled, content intact.
    assert len(server.messages) == len(END_OF_DATA_BODIES)
    for (name, body), received in zip(END_OF_DATA_BODIES.items(), server.messages, strict=True):
        assert received.content == crlf_normalised(raw_message(body)), name
        assert received.mail_from == "sender@example.com", name
        assert received.rcpt_tos == ["rcpt@example.com"], name
    commands = server.handler.commands
    assert commands.count("MAIL sender@example.com") == len(END_OF_DATA_BODIES)
    assert not any("evil@example.net" in c or "victim@example.org" in c for c in commands)


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["DATA", "BDAT"])
async def test_end_of_data_variants_through_a_scripted_server(via: str) -> None:
    # The scripted server records every line, so a smuggled command would show.
    script = SmtpScript(extensions=CHUNKING if via == "BDAT" else ("8BITMIME",))
    with anyio.fail_after(GUARD):
        async with hostile_server(script) as server:
            transport = transport_for(server, timeout=5.0, data_timeout=5.0)
            async with transport:
                for body in END_OF_DATA_BODIES.values():
                    await transport.send_raw(envelope(), raw_message(body))
    assert len(server.connections) == 1
    assert len(script.messages) == len(END_OF_DATA_BODIES)
    for (name, body), received in zip(END_OF_DATA_BODIES.items(), script.messages, strict=True):
        assert received.via == via, name
        assert received.content == crlf_normalised(raw_message(body)), name
        assert received.mail == "MAIL FROM:<sender@example.com>" + received.mail[30:], name
        assert received.rcpts == ["RCPT TO:<rcpt@example.com>"], name
    assert set(script.verbs()) <= {"EHLO", "MAIL", "RCPT", "DATA", "BDAT", "QUIT"}
    assert not any("evil@example.net" in line for line in script.lines())


@pytest.mark.anyio
async def test_built_message_bodies_with_end_of_data_look_alikes(smtpd: ServerFactory) -> None:
    texts = [
        "one\n.\nMAIL FROM:<evil@example.net>\ntwo\n",
        "one\r\n.\r\nRCPT TO:<victim@example.org>\r\n",
        ".",
        ".\n.\n",
        "a\r.\rb",
    ]
    server = smtpd()
    transport = transport_for(server, timeout=5.0, data_timeout=5.0)
    with anyio.fail_after(GUARD):
        async with transport:
            for text in texts:
                message = (
                    Message.builder()
                    .from_("sender@example.com")
                    .to("rcpt@example.com")
                    .subject("dots")
                    .text(text)
                    .build()
                )
                await transport.send(message)
                html = Message.builder().from_("sender@example.com").to("rcpt@example.com")
                await transport.send(html.subject("dots").html(text).build())
    assert len(server.messages) == 2 * len(texts)
    for index, text in enumerate(texts):
        for received in server.messages[2 * index : 2 * index + 2]:
            parsed = received.parsed()
            assert isinstance(parsed, EmailMessage)
            content = parsed.get_content()
            expected = text.replace("\r\n", "\n").replace("\r", "\n")
            assert content.replace("\r\n", "\n").rstrip("\n") == expected.rstrip("\n")
    assert not any("evil" in c or "victim" in c for c in server.handler.commands)
