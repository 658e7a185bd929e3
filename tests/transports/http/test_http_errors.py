"""How each transport reports the service's refusals and failures, on asyncio, uvloop and trio."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from api_server import KEY, SERVICES, TOKEN, ApiServer, make_transport

from lettre.errors import TransportError
from lettre.message import Message
from lettre.transports.http import HttpApiError

pytestmark = pytest.mark.anyio

SERVICE_NAMES = {
    "postmark": "Postmark",
    "sendgrid": "SendGrid",
    "mailgun": "Mailgun",
    "resend": "Resend",
}
WRONG_KEY = "wrong-key-4f1d9a7c2e"


def message() -> Message:
    return (
        Message.builder().from_("a@example.com").to("b@example.com").subject("s").text("t").build()
    )


def no_secret(error: BaseException, *secrets: str) -> None:
    texts = [str(error), repr(error), repr(error.__cause__), str(error.__cause__)]
    for secret in secrets:
        assert all(secret not in text for text in texts)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_wrong_key_is_a_permanent_error_without_the_key(
    api: ApiServer, service: str
) -> None:
    async with make_transport(service, api.url, key=WRONG_KEY) as transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
        assert WRONG_KEY not in repr(transport)
    error = caught.value
    assert isinstance(error, TransportError)
    assert error.status == (403 if service == "resend" else 401)
    assert error.service == SERVICE_NAMES[service]
    assert not error.transient
    assert error.retry_after is None
    assert "API key" in str(error)
    no_secret(error, WRONG_KEY)
    expected = {
        "postmark": "Server Token you provided",
        "sendgrid": "authorization grant is invalid",
        "mailgun": "Forbidden",
        "resend": "API key is invalid",
    }[service]
    assert expected in str(error)
    if service == "postmark":
        assert error.code == "10"
    if service == "resend":
        assert error.code == "invalid_api_key"


REFUSALS = {
    "postmark": (422, {"ErrorCode": 300, "Message": "Invalid 'From' address: 'nobody'."}),
    "sendgrid": (
        400,
        {"errors": [{"field": "from.email", "message": "does not contain a valid address"}]},
    ),
    "mailgun": (
        400,
        {"message": "from parameter is not a valid address. please check documentation"},
    ),
    "resend": (
        422,
        {"statusCode": 422, "message": "Invalid `from` field.", "name": "validation_error"},
    ),
}


@pytest.mark.parametrize("service", SERVICES)
async def test_a_validation_error_quotes_the_service(api: ApiServer, service: str) -> None:
    status, body = REFUSALS[service]
    api.answer_next(status, body)
    async with make_transport(service, api.url) as transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
    error = caught.value
    assert (error.status, error.transient) == (status, False)
    quoted = {
        "postmark": "Invalid 'From' address: 'nobody'.",
        "sendgrid": "from.email: does not contain a valid address",
        "mailgun": "from parameter is not a valid address",
        "resend": "Invalid `from` field.",
    }[service]
    assert quoted in str(error)
    assert error.code == {"postmark": "300", "resend": "validation_error"}.get(service)


@pytest.mark.parametrize("service", SERVICES)
async def test_429_is_transient_with_retry_after(api: ApiServer, service: str) -> None:
    api.answer_next(429, {"message": "Too many requests"}, headers={"Retry-After": "7"})
    async with make_transport(service, api.url) as transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
        # Nothing is retried inside: one request was made.
        assert len(api.requests) == 1
        # The next send goes through.
        result = await transport.send(message())
    assert result.accepted == ("b@example.com",)
    error = caught.value
    assert (error.status, error.transient, error.retry_after) == (429, True, 7.0)
    assert "retry after 7 s" in str(error)


@pytest.mark.parametrize("service", ["postmark", "mailgun"])
async def test_5xx_is_transient(api: ApiServer, service: str) -> None:
    api.answer_next(500, b"<html>Internal Server Error</html>", {"Content-Type": "text/html"})
    api.answer_next(503, {"message": "maintenance"}, headers={"Retry-After": "120"})
    async with make_transport(service, api.url) as transport:
        with pytest.raises(HttpApiError) as first:
            await transport.send(message())
        with pytest.raises(HttpApiError) as second:
            await transport.send(message())
    assert (first.value.status, first.value.transient, first.value.retry_after) == (500, True, None)
    assert "Internal Server Error" in str(first.value)
    assert (second.value.status, second.value.transient) == (503, True)
    assert second.value.retry_after == 120.0


async def test_a_refused_connection_is_transient_and_chained() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    async with make_transport("resend", f"http://127.0.0.1:{port}") as transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
    error = caught.value
    assert error.transient
    assert not error.outcome_unknown  # nothing was sent
    assert error.status is None
    assert "cannot reach Resend" in str(error)
    assert error.__cause__ is not None
    no_secret(error, KEY)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    transport = make_transport("postmark", f"http://127.0.0.1:{silent_port}", timeout=0.2)
    async with transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
    error = caught.value
    assert error.transient
    assert error.outcome_unknown  # the request went out; no answer came
    assert "may or may not have been accepted" in str(error)
    assert error.__cause__ is not None
    no_secret(error, TOKEN)


async def test_the_deadline_bounds_the_whole_request(silent_port: int) -> None:
    transport = make_transport(
        "sendgrid", f"http://127.0.0.1:{silent_port}", timeout=30.0, deadline=0.2
    )
    async with transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
    assert caught.value.transient
    assert caught.value.outcome_unknown
    assert "deadline of 0.2 s" in str(caught.value)


@pytest.mark.parametrize("service", ["postmark", "resend"])
async def test_a_large_error_answer_is_read_only_up_to_the_bound(
    api: ApiServer, service: str
) -> None:
    chunk = b"x" * 65536
    api.answer_next(400, chunk, {"Content-Type": "text/plain"}, repeat=512)  # 32 MiB
    async with make_transport(service, api.url, max_response_size=4096) as transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
    error = caught.value
    assert (error.status, error.transient) == (400, False)
    assert len(str(error)) < 1000  # quoted, and cut short
    # The client stopped reading: the server could not hand over the whole body
    # (it would have, had the client read it all before returning).
    assert api.bytes_sent < 512 * 65536


async def test_a_large_success_answer_still_accounts_for_the_message(api: ApiServer) -> None:
    api.answer_next(200, b"{" + b" " * 65536, {"Content-Type": "application/json"}, repeat=256)
    async with make_transport("resend", api.url, max_response_size=1024) as transport:
        result = await transport.send(message())
    # The service took the message; its id was past the bound.
    assert result.accepted == ("b@example.com",)
    assert result.transport_id is None
    assert api.bytes_sent < 256 * 65536


async def test_a_redirect_is_not_followed(api: ApiServer) -> None:
    api.answer_next(301, b"", {"Location": "http://elsewhere.example/email"})
    async with make_transport("postmark", api.url) as transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
    assert caught.value.status == 301
    assert not caught.value.transient
    assert "elsewhere.example" in str(caught.value)
    assert len(api.requests) == 1


async def test_a_postmark_200_with_an_error_code_is_an_error(api: ApiServer) -> None:
    api.answer_next(200, {"ErrorCode": 406, "Message": "You tried to send to inactive recipients."})
    async with make_transport("postmark", api.url) as transport:
        with pytest.raises(HttpApiError) as caught:
            await transport.send(message())
    assert caught.value.code == "406"
    assert "inactive recipients" in str(caught.value)
    assert not caught.value.transient
