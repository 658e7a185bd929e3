"""SesTransport against a real moto server, on asyncio and on trio."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ses_support import CREDENTIALS, REGION, SENDER, Moto

import lettre.transports.ses as ses_module
from lettre.envelope import Envelope
from lettre.errors import SesError
from lettre.transports.ses import AwsCredentials, SesTransport

pytestmark = pytest.mark.anyio


def raw(to: str = "rcpt@example.com", subject: str = "Hello") -> bytes:
    return (
        f"From: Sender <{SENDER}>\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <1@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "Hello there.\r\n"
    ).encode("ascii")


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the kind of every client the transport creates."""
    kinds: list[str] = []
    real = ses_module._open_client

    async def counting(settings: Any) -> Any:
        client = await real(settings)
        kinds.append(type(client).__name__)
        return client

    monkeypatch.setattr(ses_module, "_open_client", counting)
    return kinds


async def test_sends_the_exact_bytes(moto: Moto, anyio_backend: Any) -> None:
    data = raw()
    envelope = Envelope(SENDER, ["rcpt@example.com", "other@example.org"])
    result = await moto.transport().send_raw(envelope, data)

    [stored] = moto.raw_messages()
    assert stored["raw_data"].encode("utf-8") == data
    assert stored["source"] == SENDER
    assert stored["id"] == result.transport_id
    assert set(stored["destinations"]) >= {"rcpt@example.com", "other@example.org"}
    assert result.accepted == ("rcpt@example.com", "other@example.org")
    assert result.all_accepted
    assert result.message_id is None
    assert result.reply is None


async def test_backend_follows_the_event_loop(
    moto: Moto, anyio_backend: Any, opened: list[str]
) -> None:
    await moto.transport().send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
    expected = "_AioClient" if anyio_backend[0] == "asyncio" else "_ThreadClient"
    assert opened == [expected]


async def test_bcc_recipients_come_from_the_envelope(moto: Moto, anyio_backend: Any) -> None:
    data = raw(to="visible@example.com")
    envelope = Envelope(SENDER, ["visible@example.com", "hidden@example.net"])
    result = await moto.transport().send_raw(envelope, data)

    [stored] = moto.raw_messages()
    assert "hidden@example.net" in stored["destinations"]
    assert b"hidden" not in stored["raw_data"].encode("utf-8")
    assert b"\r\nbcc:" not in stored["raw_data"].encode("utf-8").lower()
    assert "hidden@example.net" in result.accepted


async def test_unverified_sender_is_a_permanent_error(moto: Moto, anyio_backend: Any) -> None:
    envelope = Envelope("stranger@example.net", ["rcpt@example.com"])
    with pytest.raises(SesError) as caught:
        await moto.transport().send_raw(envelope, raw())
    assert caught.value.code == "MessageRejected"
    assert caught.value.transient is False
    assert isinstance(caught.value.__cause__, ClientError)
    assert "stranger@example.net" in str(caught.value)
    assert moto.raw_messages() == []


async def test_verified_domain_identity(moto: Moto, anyio_backend: Any) -> None:
    moto.verify("example.org")
    envelope = Envelope("anyone@example.org", ["rcpt@example.com"])
    result = await moto.transport().send_raw(envelope, raw())
    [stored] = moto.raw_messages()
    assert stored["source"] == "anyone@example.org"
    assert result.transport_id == stored["id"]


async def test_many_recipients_are_split_across_calls(moto: Moto, anyio_backend: Any) -> None:
    recipients = [f"user{i}@example.com" for i in range(120)]
    data = raw(to="undisclosed-recipients:;")
    result = await moto.transport().send_raw(Envelope(SENDER, recipients), data)

    stored = moto.raw_messages()
    assert [len(m["destinations"]) for m in stored] == [50, 50, 20]
    assert [d for m in stored for d in m["destinations"]] == recipients
    assert all(m["raw_data"].encode("utf-8") == data for m in stored)
    assert result.accepted == tuple(recipients)
    assert result.transport_id == ",".join(m["id"] for m in stored)


async def test_smaller_split_size(moto: Moto, anyio_backend: Any) -> None:
    recipients = [f"user{i}@example.com" for i in range(7)]
    transport = moto.transport(max_recipients_per_call=3)
    assert transport.max_recipients_per_call == 3
    result = await transport.send_raw(Envelope(SENDER, recipients), raw(to="undisclosed:;"))
    stored = moto.raw_messages()
    assert [m["destinations"] for m in stored] == [recipients[0:3], recipients[3:6], recipients[6:]]
    assert len(result.transport_id.split(",")) == 3  # type: ignore[union-attr]


async def test_too_many_recipients_raise_when_not_splitting(
    moto: Moto, anyio_backend: Any, opened: list[str]
) -> None:
    recipients = [f"user{i}@example.com" for i in range(51)]
    transport = moto.transport(split_recipients=False)
    with pytest.raises(SesError) as caught:
        await transport.send_raw(Envelope(SENDER, recipients), raw(to="undisclosed:;"))
    assert caught.value.code == "TooManyRecipients"
    assert caught.value.transient is False
    assert opened == []  # refused before any client was made
    assert moto.raw_messages() == []
    # exactly the limit is fine
    await transport.send_raw(Envelope(SENDER, recipients[:50]), raw(to="undisclosed:;"))
    assert len(moto.raw_messages()) == 1


async def test_a_later_call_failing_reports_its_recipients_refused(
    moto: Moto, anyio_backend: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # moto refuses an address with "@" in its quoted local part; lettre accepts it.
    recipients = ["a1@example.com", "a2@example.com", '"b@1"@example.com', "c1@example.com"]
    transport = moto.transport(max_recipients_per_call=2)
    result = await transport.send_raw(Envelope(SENDER, recipients), raw(to="undisclosed:;"))

    [stored] = moto.raw_messages()
    assert stored["destinations"] == recipients[:2]
    assert result.accepted == ("a1@example.com", "a2@example.com")
    assert [r.recipient for r in result.refused] == recipients[2:]
    for refused in result.refused:
        assert isinstance(refused.error, SesError)
        assert refused.error.code == "InvalidParameterValue"
    assert all(r.error is None for r in result.recipients if r.accepted)
    assert result.transport_id == stored["id"]
    assert "call 2 of 2 failed (code InvalidParameterValue" in caplog.text
    assert "2 of 4 recipients were accepted" in caplog.text
    assert "b@1" not in caplog.text  # no addresses in logs


async def test_first_call_failing_raises(moto: Moto, anyio_backend: Any) -> None:
    transport = moto.transport(max_recipients_per_call=2)
    envelope = Envelope(SENDER, ['"b@1"@example.com', "a1@example.com", "a2@example.com"])
    with pytest.raises(SesError) as caught:
        await transport.send_raw(envelope, raw(to="undisclosed:;"))
    assert caught.value.code == "InvalidParameterValue"
    assert caught.value.transient is False
    assert moto.raw_messages() == []


@pytest.mark.parametrize(
    ("sender", "recipient"),
    [(SENDER, "jörg@example.com"), ("jörg@example.com", "rcpt@example.com")],
)
async def test_smtputf8_local_parts_are_refused_before_any_call(
    moto: Moto, anyio_backend: Any, opened: list[str], sender: str, recipient: str
) -> None:
    with pytest.raises(SesError) as caught:
        await moto.transport().send_raw(Envelope(sender, [recipient]), raw())
    assert caught.value.code == "SmtpUtf8NotSupported"
    assert caught.value.transient is False
    assert "jörg@example.com" in str(caught.value)
    assert opened == []
    assert moto.raw_messages() == []


async def test_idn_domains_go_as_a_labels(moto: Moto, anyio_backend: Any) -> None:
    moto.verify("xn--bcher-kva.example")
    envelope = Envelope("info@bücher.example", ["user@exämple.se"])
    result = await moto.transport().send_raw(envelope, raw())
    [stored] = moto.raw_messages()
    assert stored["source"] == "info@xn--bcher-kva.example"
    assert "user@xn--exmple-cua.se" in stored["destinations"]
    assert result.accepted == ("user@exämple.se",)


async def test_size_limit_counts_base64(moto: Moto, anyio_backend: Any, opened: list[str]) -> None:
    base = raw()
    padding = 300 - len(base)
    data = base + b"x" * (padding - 2) + b"\r\n"
    assert len(data) == 300  # 400 bytes once base64 encoded
    transport = moto.transport(max_message_size=399)
    assert transport.max_message_size == 399
    with pytest.raises(SesError) as caught:
        await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), data)
    assert caught.value.code == "MessageTooLarge"
    assert caught.value.transient is False
    assert "400" in str(caught.value)
    assert opened == []

    await moto.transport(max_message_size=400).send_raw(
        Envelope(SENDER, ["rcpt@example.com"]), data
    )
    assert len(moto.raw_messages()) == 1


async def test_default_size_limit_is_40_mib_after_base64(anyio_backend: Any) -> None:
    transport = SesTransport(region=REGION, credentials=CREDENTIALS)
    assert transport.max_message_size == 40 * 1024 * 1024
    too_big = b"x" * (30 * 1024 * 1024 + 3)  # 40 MiB + 4 bytes encoded
    with pytest.raises(SesError) as caught:
        await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), too_big)
    assert caught.value.code == "MessageTooLarge"


async def test_one_client_inside_async_with(
    moto: Moto, anyio_backend: Any, opened: list[str]
) -> None:
    transport = moto.transport()
    async with transport as entered:
        assert entered is transport
        assert len(opened) == 1
        for i in range(3):
            await transport.send_raw(Envelope(SENDER, [f"r{i}@example.com"]), raw())
        async with transport:  # nested use shares the client
            await transport.send_raw(Envelope(SENDER, ["n@example.com"]), raw())
        await transport.send_raw(Envelope(SENDER, ["after@example.com"]), raw())
    assert len(opened) == 1
    assert len(moto.raw_messages()) == 5

    # outside: one client per send, closed after it
    await transport.send_raw(Envelope(SENDER, ["x@example.com"]), raw())
    await transport.send_raw(Envelope(SENDER, ["y@example.com"]), raw())
    assert len(opened) == 3
    await transport.aclose()  # nothing to close: harmless


async def test_concurrent_sends_share_the_client(
    moto: Moto, anyio_backend: Any, opened: list[str]
) -> None:
    import anyio

    transport = moto.transport()
    results: list[str] = []

    async def one(i: int) -> None:
        result = await transport.send_raw(Envelope(SENDER, [f"c{i}@example.com"]), raw())
        assert result.transport_id is not None
        results.append(result.transport_id)

    async with transport, anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(one, i)
    assert len(opened) == 1
    assert sorted(results) == sorted(m["id"] for m in moto.raw_messages())
    assert len(set(results)) == 8


async def test_credentials_from_the_environment(moto: Moto, anyio_backend: Any) -> None:
    transport = SesTransport(endpoint_url=moto.url)  # region and keys from AWS_* variables
    result = await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
    assert result.transport_id == moto.raw_messages()[0]["id"]


async def test_credentials_from_a_profile(
    moto: Moto, anyio_backend: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    credentials_file = tmp_path / "aws-credentials"
    credentials_file.write_text(
        "[mail]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n"
    )
    config_file = tmp_path / "aws-config"
    config_file.write_text(f"[profile mail]\nregion = {REGION}\n")
    transport = SesTransport(profile="mail", endpoint_url=moto.url)
    assert "profile='mail'" in repr(transport)
    result = await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
    assert result.accepted == ("rcpt@example.com",)


async def test_no_credentials_is_a_permanent_error(
    moto: Moto, anyio_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    transport = SesTransport(endpoint_url=moto.url, region=REGION)
    with pytest.raises(SesError) as caught:
        await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
    assert caught.value.transient is False
    assert "credentials" in str(caught.value)


@pytest.mark.parametrize("inside_async_with", [False, True])
async def test_client_configuration_errors_are_ses_errors(
    anyio_backend: Any, monkeypatch: pytest.MonkeyPatch, inside_async_with: bool
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    transport = SesTransport(credentials=CREDENTIALS)  # no region anywhere

    async def use() -> None:
        if inside_async_with:
            async with transport:
                pass
        else:
            await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())

    with pytest.raises(SesError, match="region") as caught:
        await use()
    assert caught.value.transient is False
    assert caught.value.__cause__ is not None

    missing_profile = SesTransport(profile="no-such-profile", region=REGION)
    with pytest.raises(SesError, match="no-such-profile") as caught:
        await missing_profile.send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
    assert caught.value.transient is False


async def test_async_client_refused_off_asyncio(anyio_backend: Any) -> None:
    calls: list[dict[str, Any]] = []

    class AsyncClient:
        async def send_email(self, **kwargs: Any) -> dict[str, str]:
            calls.append(kwargs)
            return {"MessageId": "async-id"}

    transport = SesTransport(client=AsyncClient())
    envelope = Envelope(SENDER, ["rcpt@example.com"])
    if anyio_backend[0] == "asyncio":
        result = await transport.send_raw(envelope, raw())
        assert result.transport_id == "async-id"
        assert len(calls) == 1
    else:
        with pytest.raises(RuntimeError, match="asyncio"):
            await transport.send_raw(envelope, raw())
        assert calls == []


async def test_external_boto3_client_and_request_options(moto: Moto, anyio_backend: Any) -> None:
    client = moto.boto3_client()
    requests: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        requests.append(params)

    client.meta.events.register("provide-client-params.sesv2.SendEmail", capture)
    transport = SesTransport(
        client=client,
        configuration_set="transactional",
        tags={"campaign": "welcome-2024", "kind": "signup_mail"},
        feedback_forwarding_address="bounces@bücher.example",
    )
    assert "client=<external>" in repr(transport)
    async with transport:
        await transport.send_raw(Envelope(SENDER, ["rcpt@example.com", "b@example.org"]), raw())
    [request] = requests
    assert request == {
        "FromEmailAddress": SENDER,
        "Destination": {"ToAddresses": ["rcpt@example.com", "b@example.org"]},
        "Content": {"Raw": {"Data": raw()}},
        "ConfigurationSetName": "transactional",
        "EmailTags": [
            {"Name": "campaign", "Value": "welcome-2024"},
            {"Name": "kind", "Value": "signup_mail"},
        ],
        "FeedbackForwardingEmailAddress": "bounces@xn--bcher-kva.example",
    }
    # the transport did not close a client it did not create
    client.send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["again@example.com"]},
        Content={"Raw": {"Data": raw()}},
    )
    assert len(moto.raw_messages()) == 2


async def test_null_reverse_path_leaves_the_sender_to_the_from_header(
    moto: Moto, anyio_backend: Any
) -> None:
    client = moto.boto3_client()
    requests: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sesv2.SendEmail",
        lambda params, **_: requests.append(params),
    )
    await SesTransport(client=client).send_raw(Envelope(None, ["rcpt@example.com"]), raw())
    assert "FromEmailAddress" not in requests[0]
    [stored] = moto.raw_messages()
    assert stored["source"] == SENDER  # moto, like SES, took it from the From header


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_external_aiobotocore_client(moto: Moto, anyio_backend: Any) -> None:
    from aiobotocore.session import get_session

    session = get_session()
    async with session.create_client(
        "sesv2",
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id=CREDENTIALS.access_key_id,
        aws_secret_access_key=CREDENTIALS.secret_access_key,
    ) as client:
        transport = SesTransport(client=client)
        async with transport:
            result = await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
        # still open after the transport closed
        again = await client.send_email(
            FromEmailAddress=SENDER,
            Destination={"ToAddresses": ["x@example.com"]},
            Content={"Raw": {"Data": raw()}},
        )
    assert [m["id"] for m in moto.raw_messages()] == [result.transport_id, again["MessageId"]]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_falls_back_to_threads_without_aiobotocore(
    moto: Moto, anyio_backend: Any, opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "aiobotocore", None)
    result = await moto.transport().send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
    assert opened == ["_ThreadClient"]
    assert result.transport_id == moto.raw_messages()[0]["id"]


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(ImportError, match=r"lettre\[ses\]"):
        SesTransport(region=REGION)


def test_import_stays_light() -> None:
    code = (
        "import sys, lettre, lettre.transports.ses\n"
        "heavy = {'botocore', 'boto3', 'aiobotocore', 'aiohttp'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_repr_never_shows_secrets() -> None:
    credentials = AwsCredentials("AKIDEXAMPLE", "very-secret-key", "session-token-value")
    transport = SesTransport(region="eu-west-1", credentials=credentials)
    for text in (repr(credentials), str(credentials), repr(transport)):
        assert "very-secret-key" not in text
        assert "session-token-value" not in text
    assert "AKIDEXAMPLE" in repr(transport)
    assert "eu-west-1" in repr(transport)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_recipients_per_call": 0},
        {"max_message_size": 0},
        {"connect_timeout": 0},
        {"read_timeout": -1},
        {"max_attempts": 0},
        {"max_pool_connections": 0},
        {"configuration_set": ""},
        {"tags": {"bad name": "x"}},
        {"tags": {"ok": "a" * 257}},
        {"tags": {"ok": ""}},
        {"feedback_forwarding_address": "jörg@example.com"},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SesTransport(region=REGION, **kwargs)


def test_bad_credentials_and_client_are_refused() -> None:
    with pytest.raises(ValueError):
        AwsCredentials("", "secret")
    with pytest.raises(ValueError):
        AwsCredentials("AKID", "secret", "")
    with pytest.raises(TypeError):
        SesTransport(credentials=("AKID", "secret"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SesTransport(client=object())


async def test_data_must_be_bytes(anyio_backend: Any) -> None:
    transport = SesTransport(region=REGION, credentials=CREDENTIALS)
    with pytest.raises(TypeError):
        await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), "text")  # type: ignore[arg-type]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_send_from_another_event_loop_uses_a_client_of_its_own(
    moto: Moto, anyio_backend: Any, opened: list[str]
) -> None:
    import threading

    import anyio

    transport = moto.transport()
    outcome: list[object] = []

    def other_loop() -> None:
        async def send() -> None:
            result = await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
            outcome.append(result.accepted)

        try:
            anyio.run(send, backend="trio")
        except BaseException as exc:
            outcome.append(exc)

    async with transport:
        # The shared client belongs to this loop; a trio run in another
        # thread must not use it.
        thread = threading.Thread(target=other_loop)
        thread.start()
        await anyio.to_thread.run_sync(thread.join, 30)
        assert not thread.is_alive()
        await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), raw())
    assert outcome == [("rcpt@example.com",)]
    assert opened == ["_AioClient", "_ThreadClient"]
    assert len(moto.raw_messages()) == 2
