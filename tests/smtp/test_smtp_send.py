"""Mail transactions against aiosmtpd: content, SIZE, 8BITMIME, SMTPUTF8, refusals, 421."""

from __future__ import annotations

import pytest
from smtp_support import connected, envelope, message_bytes

from lettre.envelope import Envelope
from lettre.errors import (
    DataRefused,
    ExtensionNotSupported,
    MessageTooLarge,
    RecipientsRefused,
    SenderRefused,
    SmtpReplyError,
)
from lettre.smtp.client import TransactionStage, queue_id_from_reply
from servers import MiniSmtp, RecordingHandler, ServerFactory, scripted_server

pytestmark = pytest.mark.anyio


async def test_send_and_reuse(smtpd: ServerFactory) -> None:
    server = smtpd()
    client = await connected(server)
    try:
        assert client.messages_sent == 0
        first = await client.send(envelope("a@example.com", "b@example.com"), message_bytes("One"))
        second = await client.send(envelope(), message_bytes("Two"))
        assert client.is_usable
        assert client.messages_sent == 2
        assert client.messages_accepted == 2
        assert client.last_used >= client.created_at
    finally:
        await client.aclose()
    assert not client.is_usable
    assert first.accepted == ("a@example.com", "b@example.com")
    assert first.all_accepted
    assert first.reply is not None
    assert first.reply.code == 250
    assert first.transport_id == "LT0001"
    assert second.transport_id == "LT0002"
    assert [m.rcpt_tos for m in server.messages] == [
        ["a@example.com", "b@example.com"],
        ["rcpt@example.com"],
    ]


async def test_content_arrives_intact(smtpd: ServerFactory) -> None:
    server = smtpd()
    body = ".leading dot\r\n..two dots\r\n.\r\nlast line without CRLF"
    data = message_bytes(body=body)
    client = await connected(server)
    try:
        await client.send(envelope(), data)
    finally:
        await client.aclose()
    # Dot-stuffing is undone by the server; a final CRLF is added.
    assert server.messages[0].content == data + b"\r\n"


async def test_bare_line_feeds_are_normalised(smtpd: ServerFactory) -> None:
    server = smtpd()
    client = await connected(server)
    try:
        await client.send(envelope(), b"Subject: lf\n\nline one\nline two\n")
    finally:
        await client.aclose()
    assert server.messages[0].content == b"Subject: lf\r\n\r\nline one\r\nline two\r\n"


async def test_size_is_announced_and_checked(smtpd: ServerFactory) -> None:
    server = smtpd(size_limit=1000)
    client = await connected(server)
    try:
        small = message_bytes()
        await client.send(envelope(), small)
        with pytest.raises(MessageTooLarge, match="1000"):
            await client.send(envelope(), message_bytes(body="x" * 2000 + "\r\n"))
        assert client.is_usable
        assert client.messages_sent == 1  # the large one never started
    finally:
        await client.aclose()
    assert server.messages[0].mail_options == [f"SIZE={len(small)}"]
    assert len(server.messages) == 1
    assert server.handler.commands == ["MAIL sender@example.com", "RCPT rcpt@example.com"]


async def test_eight_bit_content_uses_8bitmime(smtpd: ServerFactory) -> None:
    server = smtpd()
    data = message_bytes(body="Grüße aus Köln\r\n").replace(b"Hello", b"Hall\xc3\xb6")
    client = await connected(server)
    try:
        await client.send(envelope(), data)
    finally:
        await client.aclose()
    assert "BODY=8BITMIME" in server.messages[0].mail_options
    assert server.messages[0].content == data


async def test_eight_bit_content_without_8bitmime() -> None:
    mini = MiniSmtp(extensions=["PIPELINING"])
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            with pytest.raises(ExtensionNotSupported, match="8BITMIME"):
                await client.send(envelope(), message_bytes(body="Grüße\r\n"))
            assert client.is_usable
            # ASCII goes through.
            await client.send(envelope(), message_bytes())
        finally:
            await client.aclose()
    assert len(mini.transactions) == 1


async def test_smtputf8_addresses(smtpd: ServerFactory) -> None:
    server = smtpd(smtputf8=True)
    client = await connected(server)
    try:
        env = Envelope("jörg@exämple.de", ["用户@例子.广告", "ascii@example.com"])
        result = await client.send(env, message_bytes())
    finally:
        await client.aclose()
    message = server.messages[0]
    assert message.smtp_utf8
    assert message.mail_from == "jörg@exämple.de"
    assert message.rcpt_tos == ["用户@例子.广告", "ascii@example.com"]
    assert result.accepted == ("用户@例子.广告", "ascii@example.com")


@pytest.mark.parametrize("server_smtputf8", [True, False])
async def test_utf8_header_fields_use_smtputf8_when_offered(
    smtpd: ServerFactory, server_smtputf8: bool
) -> None:
    # An ASCII envelope, but a From header with a non-ASCII local part (RFC 6532).
    server = smtpd(smtputf8=server_smtputf8)
    data = message_bytes().replace(
        b"From: Sender <sender@example.com>", "From: Jörg <jörg@example.de>".encode()
    )
    client = await connected(server)
    try:
        await client.send(envelope(), data)
    finally:
        await client.aclose()
    message = server.messages[0]
    # Offered: the message goes as an internationalised one; not offered: as
    # 8-bit content, as before.
    assert message.smtp_utf8 is server_smtputf8
    assert "BODY=8BITMIME" in message.mail_options


async def test_8bit_body_alone_does_not_use_smtputf8(smtpd: ServerFactory) -> None:
    server = smtpd(smtputf8=True)
    client = await connected(server)
    try:
        await client.send(envelope(), message_bytes(body="Grüße\r\n"))
    finally:
        await client.aclose()
    message = server.messages[0]
    assert not message.smtp_utf8
    assert "BODY=8BITMIME" in message.mail_options


async def test_non_ascii_domain_falls_back_to_a_labels(smtpd: ServerFactory) -> None:
    server = smtpd(smtputf8=False)
    client = await connected(server)
    try:
        env = Envelope("sender@exämple.de", ["rcpt@bücher.example"])
        result = await client.send(env, message_bytes())
    finally:
        await client.aclose()
    message = server.messages[0]
    assert not message.smtp_utf8
    assert message.mail_from == "sender@xn--exmple-cua.de"
    assert message.rcpt_tos == ["rcpt@xn--bcher-kva.example"]
    # The result names the recipient as the envelope did.
    assert result.accepted == ("rcpt@bücher.example",)


async def test_non_ascii_local_part_needs_smtputf8(smtpd: ServerFactory) -> None:
    server = smtpd(smtputf8=False)
    client = await connected(server)
    try:
        with pytest.raises(ExtensionNotSupported, match="SMTPUTF8"):
            await client.send(Envelope("sender@example.com", ["jörg@example.de"]), message_bytes())
        assert client.is_usable
    finally:
        await client.aclose()
    assert server.messages == []
    assert server.handler.commands == []


async def test_null_reverse_path(smtpd: ServerFactory) -> None:
    server = smtpd()
    client = await connected(server)
    try:
        await client.send(Envelope(None, ["rcpt@example.com"]), message_bytes())
    finally:
        await client.aclose()
    # aiosmtpd reports the null reverse path as "<>".
    assert server.messages[0].mail_from == "<>"


async def test_some_recipients_refused(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse=["nobody@example.com"]))
    client = await connected(server)
    try:
        result = await client.send(
            envelope("a@example.com", "nobody@example.com", "b@example.com"), message_bytes()
        )
    finally:
        await client.aclose()
    assert result.accepted == ("a@example.com", "b@example.com")
    assert not result.all_accepted
    (refused,) = result.refused
    assert refused.recipient == "nobody@example.com"
    assert refused.reply is not None
    assert refused.reply.code == 550
    assert refused.reply.enhanced_status == "5.1.1"
    assert server.messages[0].rcpt_tos == ["a@example.com", "b@example.com"]


async def test_every_recipient_refused_then_the_connection_is_reused(
    smtpd: ServerFactory,
) -> None:
    server = smtpd(handler=RecordingHandler(refuse=["x@example.com", "y@example.com"]))
    client = await connected(server)
    try:
        with pytest.raises(RecipientsRefused) as info:
            await client.send(envelope("x@example.com", "y@example.com"), message_bytes())
        assert client.last_transaction is not None
        assert client.last_transaction.stage is TransactionStage.FAILED
        assert not client.last_transaction.content_sent
        assert client.is_usable
        result = await client.send(envelope("z@example.com"), message_bytes())
        assert result.all_accepted
    finally:
        await client.aclose()
    error = info.value
    assert error.code == 550
    assert error.command == "RCPT"
    assert not error.transient
    assert [r.recipient for r in error.results] == ["x@example.com", "y@example.com"]
    assert all(not r.accepted for r in error.results)
    assert "x@example.com" in str(error)
    assert [m.rcpt_tos for m in server.messages] == [["z@example.com"]]


async def test_require_all_recipients(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(refuse=["nobody@example.com"]))
    client = await connected(server, require_all_recipients=True)
    try:
        with pytest.raises(RecipientsRefused) as info:
            await client.send(envelope("a@example.com", "nobody@example.com"), message_bytes())
        assert client.is_usable
    finally:
        await client.aclose()
    assert server.messages == []
    assert [r.accepted for r in info.value.results] == [True, False]
    assert "require_all_recipients" in str(info.value)


async def test_temporary_refusal_is_transient(smtpd: ServerFactory) -> None:
    handler = RecordingHandler(
        refuse=["busy@example.com"], refuse_reply="450 4.2.1 Mailbox busy, try later"
    )
    server = smtpd(handler=handler)
    client = await connected(server)
    try:
        with pytest.raises(RecipientsRefused) as info:
            await client.send(envelope("busy@example.com"), message_bytes())
    finally:
        await client.aclose()
    assert info.value.transient
    assert info.value.code == 450


async def test_sender_refused(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(mail_reply="553 5.7.1 Sender not allowed"))
    client = await connected(server)
    try:
        with pytest.raises(SenderRefused) as info:
            await client.send(envelope(), message_bytes())
        assert client.is_usable
    finally:
        await client.aclose()
    assert info.value.code == 553
    assert info.value.command == "MAIL"
    assert info.value.enhanced_status == "5.7.1"
    assert "Sender not allowed" in info.value.text


async def test_data_refused(smtpd: ServerFactory) -> None:
    handler = RecordingHandler(data_reply="554 5.7.1 Spam detected")
    server = smtpd(handler=handler)
    client = await connected(server)
    try:
        with pytest.raises(DataRefused) as info:
            await client.send(envelope(), message_bytes())
        assert client.last_transaction is not None
        assert client.last_transaction.content_sent
        assert client.is_usable
    finally:
        await client.aclose()
    assert info.value.code == 554
    assert info.value.command == "DATA"


async def test_421_closes_the_connection() -> None:
    mini = MiniSmtp(extensions=["8BITMIME"], replies={"MAIL": "421 4.3.2 Shutting down"})
    async with scripted_server(mini) as server:
        client = await connected(server)
        with pytest.raises(SenderRefused) as info:
            await client.send(envelope(), message_bytes())
        assert info.value.code == 421
        assert info.value.transient
        assert not client.is_usable
        assert not client.is_connected
        await client.aclose()


async def test_421_greeting() -> None:
    mini = MiniSmtp(greeting="421 4.3.2 Too busy, try later")
    async with scripted_server(mini) as server:
        with pytest.raises(Exception) as info:
            await connected(server)
    from lettre.errors import SmtpConnectError

    assert isinstance(info.value, SmtpConnectError)
    assert info.value.transient
    assert "421" in str(info.value)


async def test_554_greeting_is_permanent() -> None:
    from lettre.errors import SmtpConnectError

    mini = MiniSmtp(greeting="554 5.7.1 No SMTP service here")
    async with scripted_server(mini) as server:
        with pytest.raises(SmtpConnectError) as info:
            await connected(server)
    assert not info.value.transient


async def test_helo_fallback() -> None:
    mini = MiniSmtp(replies={"EHLO": "502 5.5.2 Command not recognized"})
    async with scripted_server(mini) as server:
        client = await connected(server)
        try:
            assert client.capabilities is not None
            assert not client.capabilities.pipelining
            await client.send(envelope(), message_bytes())
        finally:
            await client.aclose()
    assert mini.verbs()[:3] == ["EHLO", "HELO", "MAIL"]


async def test_rset_and_noop(smtpd: ServerFactory) -> None:
    server = smtpd()
    client = await connected(server)
    try:
        reply = await client.noop()
        assert reply.code == 250
        await client.rset()
        assert await client.check()
    finally:
        await client.aclose()
    assert not await client.check()


async def test_quit_then_unusable(smtpd: ServerFactory) -> None:
    server = smtpd()
    client = await connected(server)
    await client.quit()
    assert not client.is_usable
    from lettre.errors import ServerDisconnected

    with pytest.raises(ServerDisconnected):
        await client.send(envelope(), message_bytes())
    await client.aclose()  # harmless after quit


def test_queue_ids() -> None:
    from lettre.protocol.replies import Reply

    assert queue_id_from_reply(Reply(250, "2.0.0", ("Ok: queued as 4Xyz1234AB",))) == "4Xyz1234AB"
    assert queue_id_from_reply(Reply(250, None, ("OK id=1rABCD-0001AB-CD",))) == "1rABCD-0001AB-CD"
    assert queue_id_from_reply(Reply(250, None, ("OK",))) is None


async def test_bad_arguments(smtpd: ServerFactory) -> None:
    server = smtpd()
    client = await connected(server)
    try:
        with pytest.raises(TypeError):
            await client.send("rcpt@example.com", b"x")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await client.send(envelope(), "text")  # type: ignore[arg-type]
        assert client.is_usable
    finally:
        await client.aclose()


async def test_errors_name_command_and_reply(smtpd: ServerFactory) -> None:
    server = smtpd(handler=RecordingHandler(mail_reply="451 4.3.0 Local error"))
    client = await connected(server)
    try:
        with pytest.raises(SmtpReplyError) as info:
            await client.send(envelope(), message_bytes())
    finally:
        await client.aclose()
    message = str(info.value)
    assert "451" in message
    assert "MAIL" in message
    assert "Local error" in message
