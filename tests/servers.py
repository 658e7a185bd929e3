"""Reusable SMTP servers for tests.

Two kinds:

- :class:`AiosmtpdServer`: a real aiosmtpd server in its own thread (its own
  asyncio loop), on 127.0.0.1 and a free port, with optional STARTTLS or
  implicit TLS (trustme certificates, see :class:`TlsMaterial`) and AUTH
  (PLAIN and LOGIN from aiosmtpd, plus CRAM-MD5, XOAUTH2, and on request
  OAUTHBEARER and SCRAM-SHA-256, added here from their RFCs). It
  records every message it receives. Works from asyncio and trio tests alike,
  since it runs in a thread.
- :func:`scripted_server`: an anyio TCP listener in the test's own event loop
  that hands each connection to a coroutine (a "script"), recording every
  chunk of bytes received. :class:`MiniSmtp` is a small configurable SMTP
  server written as such a script; unlike aiosmtpd it offers PIPELINING,
  CHUNKING and DSN, batches its replies like Postfix (it answers once its
  input buffer is drained) and notes in which chunk each command arrived, so
  tests can check what went on the wire in one flight.

Every wait in these servers is bounded (``timeout`` seconds per connection).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import itertools
import json
import secrets
import ssl
import threading
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import anyio
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword
from anyio.abc import ByteStream, SocketAttribute, TaskStatus
from anyio.streams.tls import TLSStream

__all__ = [
    "AiosmtpdServer",
    "MiniSmtp",
    "MiniTransaction",
    "ReceivedMessage",
    "RecordingHandler",
    "Script",
    "ScriptedConnection",
    "ScriptedServer",
    "ServerFactory",
    "TlsMaterial",
    "scripted_server",
    "serve_tcp",
    "smtpd",
    "tls_material",
]

SERVER_NAME = "mx.lettre.test"
DEFAULT_USERS: Mapping[str, str] = {"alice": "wonderland", "bob@example.com": "b0b p@ss"}
DEFAULT_TOKENS: Mapping[str, str] = {"alice": "ya29.valid-token"}
#: The AUTH mechanisms aiosmtpd servers offer unless told otherwise.
DEFAULT_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2")
#: Every AUTH mechanism the test servers implement.
ALL_MECHANISMS = (*DEFAULT_MECHANISMS, "OAUTHBEARER", "SCRAM-SHA-256")


# --------------------------------------------------------------------------- TLS


@dataclass
class TlsMaterial:
    """A throwaway certificate authority and a server certificate made by trustme.

    Attributes:
        ca: the trustme CA.
        cert: the server certificate (for 127.0.0.1, ::1 and localhost by
            default).
        ca_pem: the CA certificate as PEM text, for ``TlsParameters(ca_data=...)``.
    """

    ca: trustme.CA
    cert: trustme.LeafCert
    ca_pem: str

    @classmethod
    def create(cls, *names: str) -> TlsMaterial:
        """Make a CA and a server certificate for ``names`` (default: loopback names)."""
        ca = trustme.CA()
        cert = ca.issue_cert(*(names or ("127.0.0.1", "::1", "localhost")))
        return cls(ca=ca, cert=cert, ca_pem=ca.cert_pem.bytes().decode("ascii"))

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context trusting the CA (for test clients other than lettre)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


# --------------------------------------------------------------------------- aiosmtpd


@dataclass
class ReceivedMessage:
    """One message an :class:`AiosmtpdServer` accepted.

    Attributes:
        mail_from: the reverse path ("" for the null path).
        rcpt_tos: the accepted forward paths.
        content: the message bytes as received (dot-unstuffed, CRLF).
        mail_options: the MAIL parameters (upper-cased by aiosmtpd).
        rcpt_options: the RCPT parameters.
        smtp_utf8: whether MAIL carried SMTPUTF8.
        login: the authenticated user name, if any.
        tls: whether the session was encrypted.
    """

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]
    rcpt_options: list[str]
    smtp_utf8: bool
    login: str | None
    tls: bool

    def parsed(self) -> EmailMessage:
        """The content parsed by the stdlib (SMTP policy)."""
        parsed = message_from_bytes(self.content, policy=policy.SMTP)
        assert isinstance(parsed, EmailMessage)
        return parsed


class RecordingHandler:
    """An aiosmtpd handler that records messages and can refuse recipients.

    Args:
        refuse: recipients (compared case-insensitively) to refuse.
        refuse_reply: the reply to a refused RCPT.
        mail_reply: a reply to send to every MAIL instead of accepting it.
        data_reply: the reply to the end of data; ``{n}`` becomes a counter.
    """

    def __init__(
        self,
        *,
        refuse: Iterable[str] = (),
        refuse_reply: str = "550 5.1.1 No such user here",
        mail_reply: str | None = None,
        data_reply: str = "250 2.0.0 Ok: queued as LT{n:04d}",
    ) -> None:
        self.refuse = {r.lower() for r in refuse}
        self.refuse_reply = refuse_reply
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.messages: list[ReceivedMessage] = []
        self.commands: list[str] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        self.commands.append(f"MAIL {address}")
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        self.commands.append(f"RCPT {address}")
        if address.lower() in self.refuse:
            return self.refuse_reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        auth = session.auth_data
        login = auth.login if isinstance(auth, LoginPassword) else None
        message = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            content=content,
            mail_options=list(envelope.mail_options),
            rcpt_options=list(envelope.rcpt_options),
            smtp_utf8=bool(envelope.smtp_utf8),
            login=login.decode() if isinstance(login, bytes) else login,
            tls=session.ssl is not None
            or (
                server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None
            ),
        )
        with self._lock:
            self.messages.append(message)
            number = next(self._counter)
        return self.data_reply.format(n=number)


def _sasl_unescape(name: str) -> str:
    """A saslname (RFC 5802, RFC 7628) back to the user name: ``=2C`` is ``,``, ``=3D`` is ``=``."""
    return name.replace("=2C", ",").replace("=3D", "=")


def _hmac256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


class _TestSmtp(SMTP):
    """aiosmtpd's SMTP plus CRAM-MD5, XOAUTH2, OAUTHBEARER and SCRAM-SHA-256.

    Per-server users and tokens. The SCRAM-SHA-256 server side (RFC 5802,
    RFC 7677) normalises stored passwords with NFKC only, not full SASLprep:
    enough for the test users.
    """

    users: Mapping[str, str] = DEFAULT_USERS
    tokens: Mapping[str, str] = DEFAULT_TOKENS
    token_attempts: list[str]
    auth_events: list[str]
    scram_bad_signature: bool = False
    scram_iterations: int = 4096

    async def auth_CRAM__MD5(self, _: object, args: list[str]) -> AuthResult:
        challenge = f"<{secrets.token_hex(8)}@{SERVER_NAME}>".encode()
        response = await self.challenge_auth(challenge)
        if response is MISSING:
            return AuthResult(success=False, handled=True)
        try:
            user, digest = response.decode().rsplit(" ", 1)
        except ValueError:
            return AuthResult(success=False, handled=False)
        password = self.users.get(user)
        if password is None:
            return AuthResult(success=False, handled=False)
        expected = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        if not hmac.compare_digest(expected, digest):
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))

    async def auth_XOAUTH2(self, _: object, args: list[str]) -> AuthResult:
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            response = await self.challenge_auth("")
            if response is MISSING:
                return AuthResult(success=False, handled=True)
            blob = response
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        user = fields.get("user", "")
        token = fields.get("auth", "").removeprefix("Bearer ")
        self.token_attempts.append(token)
        if self.tokens.get(user) == token:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        error = b'{"status":"401","schemes":"Bearer","scope":"https://mail.example/"}'
        # RFC-less but documented by Google and Microsoft: a 334 with the error,
        # answered by an empty line, then 535.
        await self.challenge_auth(error)
        return AuthResult(success=False, handled=False)

    async def _initial(self, args: list[str]) -> bytes | None:
        """The initial response, or the answer to an empty challenge; None once handled."""
        if len(args) > 1:
            if args[1] == "=":
                return b""
            try:
                return base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await self.push("501 5.5.2 Can't decode base64")
                return None
        response = await self.challenge_auth("")
        return None if response is MISSING else response

    async def auth_OAUTHBEARER(self, _: object, args: list[str]) -> AuthResult:
        # RFC 7628 section 3.1: gs2-header kvsep *kvpair kvsep.
        blob = await self._initial(args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        header, _, rest = blob.decode().partition("\x01")
        flag, _, authzid = header.rstrip(",").partition(",")
        pairs = rest.split("\x01")
        if flag != "n" or not header.endswith(",") or pairs[-2:] != ["", ""]:
            await self.push("501 5.5.2 Malformed OAUTHBEARER message")
            return AuthResult(success=False, handled=True)
        fields = dict(pair.split("=", 1) for pair in pairs[:-2])
        user = _sasl_unescape(authzid.removeprefix("a="))
        token = fields.get("auth", "").removeprefix("Bearer ")
        self.token_attempts.append(token)
        self.auth_events.append(
            f"OAUTHBEARER user={user} host={fields.get('host')} port={fields.get('port')}"
        )
        if self.tokens.get(user) == token:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # RFC 7628 section 3.2.2: the error as a challenge, a single 0x01 back, then 535.
        error = {"status": "invalid_token", "scope": "https://mail.example/"}
        ack = await self.challenge_auth(json.dumps(error))
        if ack is MISSING:
            return AuthResult(success=False, handled=True)
        if ack != b"\x01":
            await self.push("501 5.5.2 Expected a single 0x01 after the error")
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False)

    async def auth_SCRAM__SHA__256(self, _: object, args: list[str]) -> AuthResult:
        # RFC 5802 section 5, with SHA-256 (RFC 7677).
        first = await self._initial(args)
        if first is None:
            return AuthResult(success=False, handled=True)
        flag, authzid, bare = first.decode().split(",", 2)
        gs2_header = f"{flag},{authzid},"
        attributes = dict(part.split("=", 1) for part in bare.split(","))
        if flag not in ("n", "y") or "n" not in attributes or "r" not in attributes:
            await self.push("501 5.5.2 Malformed SCRAM client-first message")
            return AuthResult(success=False, handled=True)
        user = _sasl_unescape(attributes["n"])
        nonce = attributes["r"] + secrets.token_urlsafe(18)
        salt = secrets.token_bytes(16)
        server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={self.scram_iterations}"
        final = await self.challenge_auth(server_first)
        if final is MISSING:
            return AuthResult(success=False, handled=True)
        without_proof, _, proof_text = final.decode().rpartition(",p=")
        final_attributes = dict(part.split("=", 1) for part in without_proof.split(","))
        expected_binding = base64.b64encode(gs2_header.encode()).decode()
        if final_attributes.get("c") != expected_binding or final_attributes.get("r") != nonce:
            await self.push("501 5.5.2 Wrong channel binding or nonce")
            return AuthResult(success=False, handled=True)
        auth_message = f"{bare},{server_first},{without_proof}".encode()
        password = self.users.get(user)
        valid = False
        server_signature = b""
        if password is not None:
            normalized = unicodedata.normalize("NFKC", password).encode()
            salted = hashlib.pbkdf2_hmac("sha256", normalized, salt, self.scram_iterations)
            stored_key = hashlib.sha256(_hmac256(salted, b"Client Key")).digest()
            client_signature = _hmac256(stored_key, auth_message)
            proof = base64.b64decode(proof_text)
            client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=False))
            valid = len(proof) == 32 and hmac.compare_digest(
                hashlib.sha256(client_key).digest(), stored_key
            )
            server_signature = _hmac256(_hmac256(salted, b"Server Key"), auth_message)
        if not valid:
            self.auth_events.append("SCRAM-SHA-256 invalid-proof")
            if await self.challenge_auth("e=invalid-proof") is MISSING:
                return AuthResult(success=False, handled=True)
            return AuthResult(success=False, handled=False)
        if self.scram_bad_signature:
            server_signature = bytes([server_signature[0] ^ 1]) + server_signature[1:]
        # challenge_auth by hand, to note a cancel before the client sees the 501.
        await self.push(b"334 " + base64.b64encode(b"v=" + base64.b64encode(server_signature)))
        ack = (await self._reader.readline()).strip()
        if ack == b"*":
            self.auth_events.append("SCRAM-SHA-256 cancelled after the server signature")
            await self.push("501 5.7.0 Auth aborted")
            return AuthResult(success=False, handled=True)
        if ack != b"":
            await self.push("501 5.5.2 Expected an empty response")
            return AuthResult(success=False, handled=True)
        self.auth_events.append("SCRAM-SHA-256 success")
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))


class _PortZeroController(Controller):
    """A Controller that binds port 0 and learns the port the OS chose."""

    def __init__(self, *args: Any, smtp_factory: Callable[[], SMTP], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._smtp_factory = smtp_factory

    def factory(self) -> SMTP:
        return self._smtp_factory()

    def _trigger_server(self) -> None:
        server = self.server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class AiosmtpdServer:
    """A real aiosmtpd server on 127.0.0.1 and a free port, in its own thread.

    Use as a context manager (``with AiosmtpdServer(...) as server:``) or call
    :meth:`start` and :meth:`stop`.

    Args:
        tls: "none", "starttls" (STARTTLS offered) or "implicit" (TLS from the
            first byte).
        tls_material: the certificates; required unless ``tls`` is "none".
        auth: offer AUTH (after STARTTLS unless ``auth_require_tls`` is False).
        auth_require_tls: aiosmtpd's ``auth_require_tls``.
        auth_required: refuse MAIL until the client authenticated.
        require_starttls: refuse everything but EHLO/STARTTLS/QUIT before TLS.
        users: user name -> password accepted by PLAIN, LOGIN, CRAM-MD5 and
            SCRAM-SHA-256.
        tokens: user name -> token accepted by XOAUTH2 and OAUTHBEARER.
        mechanisms: the AUTH mechanisms offered when ``auth`` is True (default
            :data:`DEFAULT_MECHANISMS`; OAUTHBEARER and SCRAM-SHA-256 only
            when named here).
        scram_bad_signature: SCRAM-SHA-256 sends a wrong server signature.
        smtputf8: offer SMTPUTF8.
        size_limit: the SIZE limit advertised and enforced (None: no SIZE).
        handler: the aiosmtpd handler (default: a new :class:`RecordingHandler`).
    """

    def __init__(
        self,
        *,
        tls: str = "none",
        tls_material: TlsMaterial | None = None,
        auth: bool = False,
        auth_require_tls: bool = True,
        auth_required: bool = False,
        require_starttls: bool = False,
        users: Mapping[str, str] = DEFAULT_USERS,
        tokens: Mapping[str, str] = DEFAULT_TOKENS,
        mechanisms: Iterable[str] = DEFAULT_MECHANISMS,
        scram_bad_signature: bool = False,
        smtputf8: bool = True,
        size_limit: int | None = 33554432,
        handler: RecordingHandler | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "implicit"):
            raise ValueError(f"unknown tls {tls!r}")
        if tls != "none" and tls_material is None:
            raise ValueError("TLS needs tls_material")
        self.handler = handler if handler is not None else RecordingHandler()
        self.tls = tls
        self.tls_material = tls_material
        self.token_attempts: list[str] = []
        self.auth_events: list[str] = []
        """What the OAUTHBEARER and SCRAM-SHA-256 hooks saw, in order."""
        context = tls_material.server_context() if tls_material is not None else None
        users = dict(users)
        tokens = dict(tokens)

        def authenticator(
            server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            if isinstance(data, LoginPassword):
                login = data.login.decode()
                if users.get(login) == data.password.decode():
                    return AuthResult(success=True, auth_data=data)
            return AuthResult(success=False, handled=False)

        smtp_kwargs: dict[str, Any] = {
            "hostname": SERVER_NAME,
            "ident": "lettre test server",
            "enable_SMTPUTF8": smtputf8,
            "data_size_limit": size_limit,
            "auth_require_tls": auth_require_tls,
            "auth_required": auth_required,
            "authenticator": authenticator,
            "timeout": 30,
        }
        if tls == "starttls":
            smtp_kwargs["tls_context"] = context
            smtp_kwargs["require_starttls"] = require_starttls
        offered = set(mechanisms) if auth else set()
        unknown = offered - set(ALL_MECHANISMS)
        if unknown:
            raise ValueError(f"the test servers do not implement {sorted(unknown)}")
        smtp_kwargs["auth_exclude_mechanism"] = [m for m in ALL_MECHANISMS if m not in offered]
        handler_obj = self.handler
        attempts = self.token_attempts
        events = self.auth_events

        def make_smtp() -> SMTP:
            smtp = _TestSmtp(handler_obj, **smtp_kwargs)
            smtp.users = users
            smtp.tokens = tokens
            smtp.token_attempts = attempts
            smtp.auth_events = events
            smtp.scram_bad_signature = scram_bad_signature
            return smtp

        self._controller = _PortZeroController(
            self.handler,
            hostname="127.0.0.1",
            port=0,
            ssl_context=context if tls == "implicit" else None,
            smtp_factory=make_smtp,
        )
        self.host = "127.0.0.1"

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._controller.port)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """The messages received so far."""
        return self.handler.messages

    def start(self) -> AiosmtpdServer:
        """Start the server thread and wait until it answers."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server and join its thread."""
        self._controller.stop()

    def __enter__(self) -> AiosmtpdServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- scripted


class ScriptedConnection:
    """One client connection to a :class:`ScriptedServer`, seen from the server.

    Attributes:
        chunks: every chunk of bytes received, in order (one ``receive()`` each).
        sent: every piece of bytes sent to the client, in order.
        peer_closed: True once the client closed the connection.
        closed: an event set when the script saw the client close the connection.
        done: an event set once the script returned and the server closed the socket.
    """

    def __init__(self, stream: ByteStream, *, max_buffer: int = 16 * 1024 * 1024) -> None:
        self.stream: ByteStream = stream
        self.chunks: list[bytes] = []
        self.sent: list[bytes] = []
        self.peer_closed = False
        self.closed = anyio.Event()
        self.done = anyio.Event()
        self.tls_error: ssl.SSLError | None = None
        self._buffer = bytearray()
        self._max_buffer = max_buffer

    @property
    def received(self) -> bytes:
        """Everything received so far."""
        return b"".join(self.chunks)

    @property
    def buffered(self) -> int:
        """How many received bytes have not been read by the script yet."""
        return len(self._buffer)

    async def _fill(self) -> None:
        try:
            data = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            self.peer_closed = True
            self.closed.set()
            raise anyio.EndOfStream from None
        self.chunks.append(data)
        self._buffer += data
        if len(self._buffer) > self._max_buffer:
            raise AssertionError("the client sent more than the scripted server buffers")

    def has_line(self) -> bool:
        """Whether a complete line is already buffered."""
        return b"\r\n" in self._buffer

    async def readline(self) -> bytes:
        """Read one line, CRLF included (raises ``anyio.EndOfStream`` at EOF)."""
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 2])
                del self._buffer[: end + 2]
                return line
            await self._fill()

    async def read_exactly(self, size: int) -> bytes:
        """Read exactly ``size`` bytes."""
        while len(self._buffer) < size:
            await self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read_until(self, marker: bytes) -> bytes:
        """Read up to and including ``marker``."""
        while True:
            end = self._buffer.find(marker)
            if end >= 0:
                data = bytes(self._buffer[: end + len(marker)])
                del self._buffer[: end + len(marker)]
                return data
            await self._fill()

    async def send(self, data: bytes | str) -> None:
        """Send bytes (a str is encoded as UTF-8; CRLF is not added)."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        self.sent.append(raw)
        await self.stream.send(raw)

    async def reply(self, *lines: str) -> None:
        """Send one reply made of ``lines`` ("250 Ok" style), CRLF added."""
        await self.send("".join(line + "\r\n" for line in lines))

    async def wait_closed(self) -> None:
        """Read and record everything until the client closes the connection."""
        try:
            while True:
                await self._fill()
        except anyio.EndOfStream:
            return

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Perform the server side of a TLS handshake (after a 220 to STARTTLS)."""
        if self._buffer:
            raise AssertionError("the client sent bytes before the TLS handshake")
        try:
            self.stream = await TLSStream.wrap(
                self.stream, server_side=True, ssl_context=context, standard_compatible=False
            )
        except ssl.SSLError as exc:
            # The client gave up on the handshake: the session is over.
            self.tls_error = exc
            raise anyio.EndOfStream from exc


Script = Callable[[ScriptedConnection], Awaitable[None]]


@dataclass
class ScriptedServer:
    """A running :func:`scripted_server`.

    Attributes:
        host: "127.0.0.1".
        port: the port it listens on.
        connections: every connection accepted so far.
    """

    host: str
    port: int
    connections: list[ScriptedConnection] = field(default_factory=list)
    accepted: anyio.Event = field(default_factory=anyio.Event)
    _finished: int = 0

    @property
    def finished(self) -> int:
        """How many connections' scripts have returned."""
        return self._finished


@asynccontextmanager
async def serve_tcp(handle: Callable[[ByteStream], Awaitable[None]]) -> AsyncIterator[int]:
    """Call ``handle`` for each connection to 127.0.0.1 on a free port; yield the port.

    The listener runs in the calling test's event loop and stops (with every
    connection's handler) when the block ends.
    """
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(SocketAttribute.local_port))

    async def serve(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with listener, anyio.create_task_group() as tg:
            task_status.started()
            await listener.serve(handle, task_group=tg)

    async with anyio.create_task_group() as tg:
        await tg.start(serve)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def scripted_server(
    script: Script,
    *,
    timeout: float = 15.0,
    tls_context: ssl.SSLContext | None = None,
) -> AsyncIterator[ScriptedServer]:
    """Run ``script`` for each connection to a listener on 127.0.0.1 and a free port.

    The listener lives in the calling test's event loop (asyncio or trio).
    A script that raises fails the test, except when the client simply went
    away (``anyio.EndOfStream`` or a broken stream). Each script is cancelled
    after ``timeout`` seconds.

    Args:
        script: ``async def script(conn: ScriptedConnection) -> None``.
        timeout: the bound on each connection's script.
        tls_context: a server context: TLS from the first byte (implicit TLS).
    """
    server = ScriptedServer(host="127.0.0.1", port=0)

    async def handle(stream: ByteStream) -> None:
        conn: ScriptedConnection | None = None
        try:
            async with stream:
                with anyio.fail_after(timeout):
                    if tls_context is not None:
                        try:
                            stream = await TLSStream.wrap(
                                stream,
                                server_side=True,
                                ssl_context=tls_context,
                                standard_compatible=False,
                            )
                        except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream):
                            return
                    conn = ScriptedConnection(stream)
                    server.connections.append(conn)
                    server.accepted.set()
                    try:
                        await script(conn)
                    except (
                        anyio.EndOfStream,
                        anyio.BrokenResourceError,
                        anyio.ClosedResourceError,
                    ):
                        conn.peer_closed = True
        finally:
            server._finished += 1
            if conn is not None:
                conn.done.set()

    async with serve_tcp(handle) as port:
        server.port = port
        yield server


# --------------------------------------------------------------------------- MiniSmtp


@dataclass
class MiniTransaction:
    """One mail transaction a :class:`MiniSmtp` saw.

    Attributes:
        mail: the MAIL command line (without CRLF).
        rcpts: the RCPT command lines.
        accepted: the recipients (addresses) it accepted.
        content: the message content after dot-unstuffing (or the BDAT chunks
            joined); None when the transaction ended before content.
        raw_content: the content as on the wire (dot-stuffed for DATA).
        via: "DATA" or "BDAT".
        completed: whether the final reply was positive.
    """

    mail: str
    rcpts: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    content: bytes | None = None
    raw_content: bytes | None = None
    via: str | None = None
    completed: bool = False


@dataclass
class CommandRecord:
    """A command line MiniSmtp received.

    Attributes:
        line: the command line without CRLF (decoded as UTF-8).
        chunk: the index of the received chunk in which the line ended.
        replies_before: how many replies the server had sent before reading it.
    """

    line: str
    chunk: int
    replies_before: int

    @property
    def verb(self) -> str:
        """The command verb, upper-cased."""
        return self.line.split(" ", 1)[0].upper()


class MiniSmtp:
    """A small SMTP server script for :func:`scripted_server`.

    It offers PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8, DSN, SIZE and
    ENHANCEDSTATUSCODES by default (configurable), answers like a pipelining
    server (replies are flushed when its input buffer is drained), and records
    every command with the chunk it arrived in.

    Args:
        extensions: the EHLO keywords (with parameters) to advertise.
        greeting: the greeting line.
        refuse: recipient address -> the reply to its RCPT.
        replies: verb -> a reply replacing the normal one ("MAIL", "DATA",
            "EHLO", "RSET", "NOOP", "STARTTLS", "END" for the end of data, "BDAT"
            for the last BDAT).
        on_end_of_data: "reply" (default), "close" (drop the connection without
            answering) or "hang" (never answer).
        hang_on: a verb whose command is never answered (for timeouts).
        tls_context: a server context for STARTTLS (STARTTLS is then offered).
        data_reply: the final reply; ``{n}`` becomes a counter.
    """

    def __init__(
        self,
        *,
        extensions: Iterable[str] = (
            "PIPELINING",
            "CHUNKING",
            "8BITMIME",
            "SMTPUTF8",
            "DSN",
            "SIZE 10485760",
            "ENHANCEDSTATUSCODES",
        ),
        greeting: str = "220 mini.lettre.test ESMTP ready",
        refuse: Mapping[str, str] | None = None,
        replies: Mapping[str, str] | None = None,
        on_end_of_data: str = "reply",
        hang_on: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        data_reply: str = "250 2.0.0 Ok: queued as MINI{n}",
    ) -> None:
        self.extensions = list(extensions)
        self.greeting = greeting
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        self.replies = dict(replies or {})
        self.on_end_of_data = on_end_of_data
        self.hang_on = hang_on
        self.tls_context = tls_context
        self.data_reply = data_reply
        self.transactions: list[MiniTransaction] = []
        self.commands: list[CommandRecord] = []
        self.connections: list[ScriptedConnection] = []
        self._counter = itertools.count(1)

    def verbs(self) -> list[str]:
        """The verbs received, in order."""
        return [c.verb for c in self.commands]

    async def __call__(self, conn: ScriptedConnection) -> None:
        self.connections.append(conn)
        await _MiniSession(self, conn).run()


class _MiniSession:
    def __init__(self, server: MiniSmtp, conn: ScriptedConnection) -> None:
        self.server = server
        self.conn = conn
        self.pending: list[str] = []
        self.replies_sent = 0
        self.transaction: MiniTransaction | None = None
        self.tls = False
        self.bdat_parts: list[bytes] = []

    async def flush(self) -> None:
        if self.pending:
            data = "".join(self.pending)
            self.replies_sent += len(self.pending)
            self.pending.clear()
            await self.conn.send(data)

    def queue(self, reply: str) -> None:
        self.pending.append(reply if reply.endswith("\r\n") else reply + "\r\n")

    async def readline(self) -> bytes:
        if not self.conn.has_line():
            await self.flush()
        return await self.conn.readline()

    async def run(self) -> None:
        server = self.server
        await self.conn.send(server.greeting + "\r\n")
        while True:
            raw = await self.readline()
            line = raw[:-2].decode("utf-8", "surrogateescape")
            record = CommandRecord(line, len(self.conn.chunks) - 1, self.replies_sent)
            server.commands.append(record)
            verb = record.verb
            if server.hang_on is not None and verb == server.hang_on:
                await self.flush()
                await self.conn.wait_closed()
                return
            if verb in server.replies and verb not in ("BDAT",):
                reply = server.replies[verb]
                self.queue(reply)
                if reply.startswith("421"):
                    await self.flush()
                    return
                if verb == "DATA" and reply.startswith("354"):
                    await self.read_data()
                continue
            handler = getattr(self, f"do_{verb.lower()}", None)
            if handler is None:
                self.queue("502 5.5.2 Command not recognized")
                continue
            if await handler(line) is False:
                return

    async def do_ehlo(self, line: str) -> None:
        extensions = list(self.server.extensions)
        if self.server.tls_context is not None and not self.tls:
            extensions.append("STARTTLS")
        lines = ["mini.lettre.test greets you", *extensions]
        text = "".join(
            f"250{'-' if i < len(lines) - 1 else ' '}{item}\r\n" for i, item in enumerate(lines)
        )
        self.queue(text)

    async def do_helo(self, line: str) -> None:
        self.queue("250 mini.lettre.test")

    async def do_starttls(self, line: str) -> None:
        if self.server.tls_context is None or self.tls:
            self.queue("502 5.5.1 STARTTLS not available")
            return
        self.queue("220 2.0.0 Ready to start TLS")
        await self.flush()
        await self.conn.start_tls(self.server.tls_context)
        self.tls = True
        self.transaction = None

    async def do_noop(self, line: str) -> None:
        self.queue("250 2.0.0 Ok")

    async def do_rset(self, line: str) -> None:
        self.transaction = None
        self.bdat_parts = []
        self.queue("250 2.0.0 Ok")

    async def do_quit(self, line: str) -> bool:
        self.queue("221 2.0.0 Bye")
        await self.flush()
        return False

    async def do_mail(self, line: str) -> None:
        if self.transaction is not None:
            self.queue("503 5.5.1 Error: nested MAIL command")
            return
        self.transaction = MiniTransaction(mail=line)
        self.server.transactions.append(self.transaction)
        self.queue("250 2.1.0 Ok")

    async def do_rcpt(self, line: str) -> None:
        if self.transaction is None:
            self.queue("503 5.5.1 Error: need MAIL command")
            return
        self.transaction.rcpts.append(line)
        address = _path_of(line)
        refusal = self.server.refuse.get(address.lower())
        if refusal is not None:
            self.queue(refusal)
            return
        self.transaction.accepted.append(address)
        self.queue("250 2.1.5 Ok")

    async def do_data(self, line: str) -> None:
        if self.transaction is None or not self.transaction.accepted:
            self.queue("554 5.5.1 Error: no valid recipients")
            return
        self.queue("354 End data with <CR><LF>.<CR><LF>")
        await self.read_data()

    async def read_data(self) -> None:
        await self.flush()
        lines: list[bytes] = []
        while True:
            line = await self.conn.readline()
            if line == b".\r\n":
                break
            lines.append(line)
        raw = b"".join(lines)
        unstuffed = b"".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)
        await self.finish(raw_content=raw, content=unstuffed, via="DATA")

    async def do_bdat(self, line: str) -> None:
        parts = line.split()
        size = int(parts[1])
        last = len(parts) > 2 and parts[2].upper() == "LAST"
        chunk = await self.conn.read_exactly(size)
        if self.transaction is None or not self.transaction.accepted:
            self.queue("554 5.5.1 Error: no valid recipients")
            return
        self.bdat_parts.append(chunk)
        if not last:
            self.queue(f"250 2.0.0 {size} octets received")
            return
        content = b"".join(self.bdat_parts)
        self.bdat_parts = []
        await self.finish(raw_content=content, content=content, via="BDAT")

    async def finish(self, *, raw_content: bytes, content: bytes, via: str) -> None:
        transaction = self.transaction
        assert transaction is not None
        transaction.raw_content = raw_content
        transaction.content = content
        transaction.via = via
        self.transaction = None
        mode = self.server.on_end_of_data
        if mode == "close":
            await self.conn.stream.aclose()
            raise anyio.EndOfStream
        if mode == "hang":
            await self.flush()
            await self.conn.wait_closed()
            raise anyio.EndOfStream
        reply = self.server.replies.get("END" if via == "DATA" else "BDAT")
        if reply is None:
            reply = self.server.data_reply.format(n=next(self.server._counter))
        transaction.completed = reply.startswith("2")
        self.queue(reply)


def _path_of(line: str) -> str:
    start = line.find("<")
    end = line.find(">", start + 1)
    if start < 0 or end < 0:
        return ""
    return line[start + 1 : end]


# --------------------------------------------------------------------------- fixtures
#
# Import these into a conftest.py to use them: ``from servers import smtpd, tls_material``.

ServerFactory = Callable[..., AiosmtpdServer]


@pytest.fixture(scope="session")
def tls_material() -> TlsMaterial:
    """A CA and a server certificate for 127.0.0.1, ::1 and localhost (one per session)."""
    return TlsMaterial.create()


@pytest.fixture
def smtpd(tls_material: TlsMaterial) -> Iterator[ServerFactory]:
    """Start aiosmtpd servers: ``smtpd(tls="starttls", auth=True, ...)``; stopped afterwards.

    Keyword arguments are those of :class:`AiosmtpdServer`; ``tls_material``
    defaults to the session's.
    """
    started: list[AiosmtpdServer] = []

    def start(**kwargs: Any) -> AiosmtpdServer:
        if kwargs.get("tls", "none") != "none":
            kwargs.setdefault("tls_material", tls_material)
        server = AiosmtpdServer(**kwargs).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
