"""A local stand-in for Postmark, SendGrid, Mailgun and Resend, on a loopback port.

A stdlib HTTP server in a thread. It records every request and answers the
way each service documents: it checks the path, the method, the
authentication scheme and the body's required fields, answers success with
a message id, and answers like the service when something is wrong (401 for
a bad key, 422 or 400 with the service's error body). A test can queue
answers of its own (429 with Retry-After, 500, a huge body...) that are
given to the next requests instead.

The fixtures ``api_server_session`` and ``api`` start it for the tests; the
conftest files of the tests that use it import them from here.
"""

from __future__ import annotations

import base64
import email.policy
import json
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TOKEN = "pm-server-token-0123456789"
KEY = "key-0123456789abcdef-secret"


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form_fields(self) -> list[tuple[str, bytes, str | None, str]]:
        """(name, content, filename, content type) of each multipart/form-data field."""
        content_type = self.headers["content-type"]
        assert content_type.startswith("multipart/form-data; boundary=")
        boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
        chunks = self.body.split(b"--" + boundary)
        assert chunks[0] == b""
        assert chunks[-1].strip() == b"--"
        fields = []
        for chunk in chunks[1:-1]:
            assert chunk.startswith(b"\r\n")
            assert chunk.endswith(b"\r\n")
            head, _, content = chunk[2:-2].partition(b"\r\n\r\n")
            part = BytesParser(policy=email.policy.default).parsebytes(head + b"\r\n\r\n")
            params = part["Content-Disposition"].params
            fields.append(
                (params["name"], content, params.get("filename"), part.get_content_type())
            )
        return fields


@dataclass
class Canned:
    """An answer queued by a test."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    repeat: int = 1  # how many times the body is sent (a large body without building it)


class ApiServer:
    """The server's state, shared with the handler threads."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.canned: deque[Canned] = deque()
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self.bytes_sent = 0

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.canned.clear()
            self.bytes_sent = 0

    def answer_next(
        self, status: int, body: Any = b"", headers: dict[str, str] | None = None, repeat: int = 1
    ) -> None:
        """Give the next request this answer (a dict or list body is sent as JSON)."""
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        with self.lock:
            self.canned.append(Canned(status, body, headers or {}, repeat))

    @property
    def last(self) -> Recorded:
        with self.lock:
            return self.requests[-1]

    # ------------------------------------------------------------------ the services

    def serve(self, request: Recorded) -> Canned:
        with self.lock:
            self.requests.append(request)
            if self.canned:
                return self.canned.popleft()
        if request.method != "POST":
            return _json(405, {"message": "method not allowed"})
        if request.path == "/email":
            return _postmark(request)
        if request.path == "/v3/mail/send":
            return _sendgrid(request)
        if request.path.startswith("/v3/") and request.path.endswith("/messages.mime"):
            return _mailgun(request)
        if request.path == "/emails":
            return _resend(request)
        return _json(404, {"message": "not found"})


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Canned:
    return Canned(
        status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def _postmark(request: Recorded) -> Canned:
    if request.headers.get("x-postmark-server-token") != TOKEN:
        return _json(
            401,
            {
                "ErrorCode": 10,
                "Message": "The Server Token you provided in the X-Postmark-Server-Token "
                "request header was invalid.",
            },
        )
    if not request.headers.get("content-type", "").startswith("application/json"):
        return _json(415, {"ErrorCode": 400, "Message": "expected JSON"})
    body = request.json()
    if not body.get("From") or not body.get("To"):
        return _json(422, {"ErrorCode": 300, "Message": "Invalid email request: no From or To"})
    if "TextBody" not in body and "HtmlBody" not in body:
        return _json(
            422, {"ErrorCode": 300, "Message": "Provide either email TextBody or HtmlBody or both."}
        )
    return _json(
        200,
        {
            "To": body["To"],
            "SubmittedAt": "2026-01-01T00:00:00.0000000Z",
            "MessageID": str(uuid.uuid4()),
            "ErrorCode": 0,
            "Message": "OK",
        },
    )


def _sendgrid(request: Recorded) -> Canned:
    if request.headers.get("authorization") != f"Bearer {KEY}":
        return _json(
            401,
            {
                "errors": [
                    {
                        "field": None,
                        "message": "The provided authorization grant is invalid, "
                        "expired, or revoked",
                    }
                ]
            },
        )
    body = request.json()
    errors = []
    personalizations = body.get("personalizations") or []
    if not personalizations or not personalizations[0].get("to"):
        errors.append({"field": "personalizations.0.to", "message": "The to array is required."})
    if not (body.get("from") or {}).get("email"):
        errors.append(
            {"field": "from.email", "message": "The from email does not contain a valid address."}
        )
    if errors:
        return _json(400, {"errors": errors})
    return Canned(202, b"", {"X-Message-Id": "sg-" + uuid.uuid4().hex})


def _mailgun(request: Recorded) -> Canned:
    expected = "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()
    if request.headers.get("authorization") != expected:
        return Canned(401, b"Forbidden", {"Content-Type": "text/plain"})
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _json(400, {"message": "expected multipart/form-data"})
    names = [name for name, *_ in request.form_fields()]
    if "to" not in names:
        return _json(400, {"message": "'to' parameter is missing"})
    if "message" not in names:
        return _json(400, {"message": "'message' parameter is missing"})
    domain = request.path.split("/")[2]
    return _json(200, {"id": f"<{uuid.uuid4().hex}@{domain}>", "message": "Queued. Thank you."})


def _resend(request: Recorded) -> Canned:
    auth = request.headers.get("authorization")
    if auth is None:
        return _json(
            401,
            {
                "statusCode": 401,
                "message": "Missing API key in the authorization header.",
                "name": "missing_api_key",
            },
        )
    if auth != f"Bearer {KEY}":
        return _json(
            403, {"statusCode": 403, "message": "API key is invalid", "name": "invalid_api_key"}
        )
    body = request.json()
    for name in ("from", "to", "subject"):
        if name not in body:
            return _json(
                422,
                {
                    "statusCode": 422,
                    "message": f"Missing `{name}` field.",
                    "name": "missing_required_field",
                },
            )
    return _json(200, {"id": str(uuid.uuid4())})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        recorded = Recorded(self.command, self.path, headers, body)
        answer = self.server.state.serve(recorded)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body) * answer.repeat))
        self.end_headers()
        try:
            for _ in range(answer.repeat):
                self.wfile.write(answer.body)
                with self.server.state.lock:
                    self.server.state.bytes_sent += len(answer.body)
        except OSError:  # the client stopped reading: what the size bound does
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ApiServer


def start() -> ApiServer:
    state = ApiServer()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = state
    state.httpd = httpd
    threading.Thread(target=httpd.serve_forever, name="api-server", daemon=True).start()
    return state


def stop(state: ApiServer) -> None:
    assert state.httpd is not None
    state.httpd.shutdown()
    state.httpd.server_close()


@pytest.fixture(scope="session")
def api_server_session() -> Iterator[ApiServer]:
    """The stand-in, started once for the session."""
    server = start()
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture
def api(api_server_session: ApiServer) -> ApiServer:
    """The stand-in, with no request recorded and no answer queued."""
    api_server_session.reset()
    return api_server_session


def make_transport(service: str, url: str, key: str | None = None, **options: Any) -> Any:
    """A transport of ``service`` that talks to the stand-in at ``url``."""
    from lettre.transports.http import (
        MailgunTransport,
        PostmarkTransport,
        ResendTransport,
        SendGridTransport,
    )

    if service == "postmark":
        return PostmarkTransport(key or TOKEN, base_url=url, trust_env=False, **options)
    if service == "sendgrid":
        return SendGridTransport(key or KEY, base_url=url, trust_env=False, **options)
    if service == "mailgun":
        return MailgunTransport(
            key or KEY, "mg.example.com", base_url=url, trust_env=False, **options
        )
    if service == "resend":
        return ResendTransport(key or KEY, base_url=url, trust_env=False, **options)
    raise AssertionError(service)


SERVICES = ["postmark", "sendgrid", "mailgun", "resend"]
JSON_SERVICES = ["postmark", "sendgrid", "resend"]
