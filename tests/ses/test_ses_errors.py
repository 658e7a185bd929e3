"""How AWS errors become SesError: the mapping itself, and end to end against
a real HTTP server that answers like a throttling, failing or hanging SES."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)
from ses_support import CREDENTIALS, REGION, SENDER

from lettre.envelope import Envelope
from lettre.errors import SesError, TransportError
from lettre.transports.ses import SesTransport, ses_error_from_exception

DATA = b"From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: x\r\n\r\nbody\r\n"
HANG_LIMIT = 30.0  # the hanging server gives up after this, whatever happens


def client_error(code: str | None, status: int, message: str = "m") -> ClientError:
    error: dict[str, Any] = {"Message": message}
    if code is not None:
        error["Code"] = code
    return ClientError(
        {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SendEmail",
    )


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("Throttling", 400, True),
        ("ThrottlingException", 400, True),
        ("TooManyRequestsException", 429, True),
        ("LimitExceededException", 400, True),
        ("InternalFailure", 500, True),
        ("ServiceUnavailable", 503, True),
        (None, 502, True),
        ("SomethingNew", 500, True),
        ("SomethingNew", 429, True),
        ("MessageRejected", 400, False),
        ("MailFromDomainNotVerifiedException", 400, False),
        ("AccountSuspendedException", 400, False),
        ("AccountSendingPausedException", 400, False),
        ("SendingPausedException", 400, False),
        ("NotFoundException", 404, False),
        ("BadRequestException", 400, False),
        ("AccessDeniedException", 403, False),
        ("SomethingNew", 400, False),
    ],
)
def test_client_errors(code: str | None, status: int, transient: bool) -> None:
    exc = client_error(code, status, "details from AWS")
    error = ses_error_from_exception(exc)
    assert isinstance(error, SesError)
    assert isinstance(error, TransportError)
    assert error.code == code
    assert error.transient is transient
    assert "details from AWS" in str(error)
    assert "SendEmail" in str(error)


def test_quota_errors_say_to_wait_for_the_reset() -> None:
    quota = ses_error_from_exception(client_error("LimitExceededException", 400))
    assert "quota" in str(quota)
    daily = ses_error_from_exception(
        client_error("Throttling", 400, "Daily message quota exceeded.")
    )
    assert daily.transient is True
    assert "retry after it resets" in str(daily)
    rate = ses_error_from_exception(
        client_error("Throttling", 400, "Maximum sending rate exceeded.")
    )
    assert "retry after it resets" not in str(rate)


def test_botocore_errors() -> None:
    unreachable = ses_error_from_exception(EndpointConnectionError(endpoint_url="https://x"))
    assert unreachable.transient is True
    assert unreachable.code is None
    timeout = ses_error_from_exception(ReadTimeoutError(endpoint_url="https://x"))
    assert timeout.transient is True
    assert "may or may not" in str(timeout)
    closed = ses_error_from_exception(ConnectionClosedError(endpoint_url="https://x"))
    assert closed.transient is True
    assert ses_error_from_exception(NoCredentialsError()).transient is False
    assert ses_error_from_exception(NoRegionError()).transient is False
    assert ses_error_from_exception(ParamValidationError(report="bad")).transient is False
    assert ses_error_from_exception(ConnectionResetError("reset")).transient is True
    assert ses_error_from_exception(ValueError("odd")).transient is False
    already = SesError("x", code="Y", transient=True)
    assert ses_error_from_exception(already) is already


@dataclass
class Stub:
    """A loopback HTTP server that answers every request with one scripted reply."""

    url: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    mode: str = "answer"  # or "hang" or "close"
    requests: int = 0
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            state.requests += 1
            if state.mode == "hang":
                state.release.wait(HANG_LIMIT)
                return
            if state.mode == "close":
                self.close_connection = True
                return
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(HANG_LIMIT)


def transport_for(url: str, **kwargs: Any) -> SesTransport:
    kwargs.setdefault("max_attempts", 1)
    return SesTransport(region=REGION, endpoint_url=url, credentials=CREDENTIALS, **kwargs)


def aws_error(stub: Stub, status: int, code: str, message: str) -> None:
    stub.status = status
    stub.headers = {"x-amzn-ErrorType": code}
    stub.body = json.dumps({"message": message}).encode()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (429, "TooManyRequestsException", True),
        (400, "LimitExceededException", True),
        (400, "MessageRejected", False),
        (400, "MailFromDomainNotVerifiedException", False),
        (400, "SendingPausedException", False),
        (500, "InternalFailure", True),
    ],
)
async def test_aws_error_replies(
    stub: Stub, anyio_backend: Any, status: int, code: str, transient: bool
) -> None:
    aws_error(stub, status, code, "scripted reply")
    with pytest.raises(SesError) as caught:
        await transport_for(stub.url).send_raw(Envelope(SENDER, ["rcpt@example.com"]), DATA)
    assert caught.value.code == code
    assert caught.value.transient is transient
    assert "scripted reply" in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)
    assert stub.requests == 1


@pytest.mark.anyio
async def test_throttling_is_retried_by_botocore_then_transient(
    stub: Stub, anyio_backend: Any
) -> None:
    aws_error(stub, 429, "TooManyRequestsException", "slow down")
    transport = transport_for(stub.url, max_attempts=2)
    with pytest.raises(SesError) as caught:
        await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), DATA)
    assert caught.value.transient is True
    assert stub.requests == 2


@pytest.mark.anyio
async def test_bare_server_error_is_transient(stub: Stub, anyio_backend: Any) -> None:
    stub.status = 503
    stub.body = b""
    with pytest.raises(SesError) as caught:
        await transport_for(stub.url).send_raw(Envelope(SENDER, ["rcpt@example.com"]), DATA)
    assert caught.value.transient is True


@pytest.mark.anyio
async def test_hanging_server_times_out_as_outcome_unknown(stub: Stub, anyio_backend: Any) -> None:
    stub.mode = "hang"
    transport = transport_for(stub.url, read_timeout=0.5)
    with pytest.raises(SesError) as caught:
        await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), DATA)
    assert caught.value.transient is True
    assert caught.value.code is None
    assert "may or may not" in str(caught.value)


@pytest.mark.anyio
async def test_closed_connection_is_outcome_unknown(stub: Stub, anyio_backend: Any) -> None:
    stub.mode = "close"
    with pytest.raises(SesError) as caught:
        await transport_for(stub.url).send_raw(Envelope(SENDER, ["rcpt@example.com"]), DATA)
    assert caught.value.transient is True
    assert "may or may not" in str(caught.value)


@pytest.mark.anyio
async def test_refused_connection_is_transient(anyio_backend: Any) -> None:
    with socket.socket() as bound:  # bound but not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        transport = transport_for(f"http://127.0.0.1:{port}")
        with pytest.raises(SesError) as caught:
            await transport.send_raw(Envelope(SENDER, ["rcpt@example.com"]), DATA)
    assert caught.value.transient is True
    assert caught.value.code is None
    assert "cannot reach SES" in str(caught.value)
