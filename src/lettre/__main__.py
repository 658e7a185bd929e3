"""The ``python -m lettre`` command line: ``demo``, ``send`` and ``check-domain``.

``demo`` starts a local SMTP server (aiosmtpd) with STARTTLS and AUTH, sends a
multipart message to it through :class:`~lettre.transports.smtp.SmtpTransport`
and shows the conversation and what the server received.

``send`` sends one message, swaks-style::

    python -m lettre send --url smtp://user@smtp.example.com:587 \\
        --from me@example.com --to you@example.com --subject Hi --text "Hello"

``check-domain DOMAIN`` reports what receivers will look up about mail
from DOMAIN (SPF, DMARC, the DKIM key, MX, MTA-STS, TLS-RPT), one line per
finding; it needs the ``direct`` extra and exits with 1 when something will
make mail fail.

They run on asyncio by default; ``--backend uvloop`` or ``--backend trio``
picks another event loop.

The password may come from the ``LETTRE_SMTP_PASSWORD`` environment variable
instead of the URL. Exit status: 0 sent to every recipient, 3 sent but some
recipients were refused, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import email.parser
import email.policy
import ipaddress
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message as StdlibMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar
from urllib.parse import urlsplit

import anyio

from lettre import __version__
from lettre.errors import AddressError, LettreError
from lettre.smtp.auth import Credentials
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.smtp.url import parse_smtp_url

if TYPE_CHECKING:
    import ssl

    from lettre.address import Mailbox
    from lettre.message import Message
    from lettre.smtp.settings import SmtpSettings
    from lettre.transports.base import SendResult

__all__ = ["main"]

PASSWORD_ENV = "LETTRE_SMTP_PASSWORD"  # noqa: S105 - the name of a variable
URL_ENV = "LETTRE_SMTP_URL"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

_DEMO_USER = "demo"
_DEMO_PASSWORD = "lettre-demo-password"  # noqa: S105 - a throwaway local demo account
_DEMO_HOSTNAME = "mx.demo.lettre.test"

BACKENDS = ("asyncio", "uvloop", "trio")
"""The event loops ``--backend`` offers."""

_T = TypeVar("_T")


class _UsageError(Exception):
    """A problem with the command line (exit status 2)."""


# --------------------------------------------------------------------------- event loops


def _check_backend(backend: str) -> None:
    """Fail with a usage error, before anything starts, when ``backend`` is not installed."""
    if backend == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise _UsageError(
                "--backend uvloop needs uvloop (not available on Windows): "
                "pip install 'lettre[uvloop]'"
            ) from None
    elif backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            raise _UsageError("--backend trio needs trio: pip install 'lettre[trio]'") from None


def _run_on(backend: str, func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    """``anyio.run(func, *args)`` on asyncio, asyncio with uvloop, or trio.

    The caller has checked the backend (:func:`_check_backend`) before starting anything.
    """
    if backend == "uvloop":
        return anyio.run(func, *args, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(func, *args, backend=backend)


def _event_loop_name() -> str:
    """The event loop running the caller: ``asyncio``, ``uvloop`` or ``trio``."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return type(loop).__module__.partition(".")[0]


# --------------------------------------------------------------------------- transcript


class _Transcript(logging.Handler):
    """Collects the ``lettre.smtp`` DEBUG records while a command runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock_lines = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_lines:
            self.lines.append(record.getMessage())


class _capture_transcript:
    """Attach a :class:`_Transcript` to ``lettre.smtp`` at DEBUG for a ``with`` block."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.transcript = _Transcript()
        self._stream = stream
        self._logger = logging.getLogger("lettre.smtp")
        self._level = self._logger.level
        self._echo: logging.Handler | None = None

    def __enter__(self) -> _Transcript:
        self._logger.addHandler(self.transcript)
        if self._stream is not None:
            self._echo = logging.StreamHandler(self._stream)
            self._echo.setFormatter(logging.Formatter("  %(message)s"))
            self._logger.addHandler(self._echo)
        self._logger.setLevel(logging.DEBUG)
        return self.transcript

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self.transcript)
        if self._echo is not None:
            self._logger.removeHandler(self._echo)
        self._logger.setLevel(self._level)


# --------------------------------------------------------------------------- demo


@dataclass
class _Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]
    login: str | None
    tls: bool


@dataclass
class _DemoHandler:
    received: list[_Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        auth = session.auth_data
        login = getattr(auth, "login", None)
        transport = server.transport
        tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        self.received.append(
            _Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                mail_options=list(envelope.mail_options),
                login=login.decode() if isinstance(login, bytes) else login,
                tls=tls,
            )
        )
        return f"250 2.0.0 Ok: queued as DEMO{len(self.received):04d}"


@dataclass
class _Certificates:
    ca_pem: str
    server_context: ssl.SSLContext
    made_with: str


def _make_certificates() -> _Certificates:
    """A CA and a certificate for 127.0.0.1, with trustme or else cryptography."""
    import ssl

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        import trustme
    except ImportError:
        pass
    else:
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
        return _Certificates(ca.cert_pem.bytes().decode("ascii"), server_context, "trustme")
    try:
        ca_pem, chain_pem, key_pem = _certificates_with_cryptography()
    except ImportError as exc:
        raise _UsageError(
            "the demo needs trustme (or cryptography) to make a certificate: "
            "pip install 'lettre[demo]'"
        ) from exc
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cert_file = Path(tmp) / "cert.pem"
        key_file = Path(tmp) / "key.pem"
        cert_file.write_bytes(chain_pem)
        key_file.write_bytes(key_pem)
        server_context.load_cert_chain(cert_file, key_file)
    return _Certificates(ca_pem.decode("ascii"), server_context, "cryptography")


def _certificates_with_cryptography() -> tuple[bytes, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lettre demo CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        ca_cert.public_bytes(pem),
        cert.public_bytes(pem) + ca_cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


class _DemoServer:
    """aiosmtpd on 127.0.0.1 and a port the OS picks, STARTTLS required, AUTH after TLS."""

    def __init__(self, handler: _DemoHandler, tls_context: ssl.SSLContext) -> None:
        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
        except ImportError as exc:
            raise _UsageError(
                "the demo needs aiosmtpd for its local server: pip install 'lettre[demo]'"
            ) from exc

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> Any:
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login == _DEMO_USER.encode()
                and auth_data.password == _DEMO_PASSWORD.encode()
            )
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        class PortZeroController(Controller):
            def factory(self) -> SMTP:
                return SMTP(
                    self.handler,
                    hostname=_DEMO_HOSTNAME,
                    ident="lettre demo server (aiosmtpd)",
                    tls_context=tls_context,
                    require_starttls=True,
                    auth_require_tls=True,
                    auth_required=True,
                    authenticator=authenticator,
                    enable_SMTPUTF8=True,
                )

            def _trigger_server(self) -> None:
                server = self.server
                assert isinstance(server, asyncio.Server)
                self.port = server.sockets[0].getsockname()[1]
                super()._trigger_server()  # type: ignore[no-untyped-call]

        self._controller = PortZeroController(handler, hostname="127.0.0.1", port=0)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def __enter__(self) -> _DemoServer:
        # aiosmtpd logs every session (and a deprecation notice of its own) at INFO/WARNING.
        self._server_log = logging.getLogger("mail.log")
        self._server_log_level = self._server_log.level
        self._server_log.setLevel(logging.ERROR)
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._controller.stop()
        finally:
            self._server_log.setLevel(self._server_log_level)


def _demo_message() -> Message:
    from lettre.message import Message

    csv = b"city,temperature\nLund,4\nKiruna,-12\n"
    return (
        Message.builder()
        .from_("lettre demo <demo@lettre.example>")
        .to("Åsa Ek <asa@lettre.example>", "bo@lettre.example")
        .bcc("archive@lettre.example")
        .subject("Hello from lettre ✉")
        .text("Hello!\n\nThis message came through STARTTLS and AUTH PLAIN.\n")
        .html("<p>Hello!</p><p>This message came through <b>STARTTLS</b> and AUTH.</p>")
        .attach(csv, "weather.csv", "text/csv")
        .build()
    )


def _describe_part(part: StdlibMessage, depth: int, out: Callable[[str], None]) -> None:
    indent = "  " * depth
    ctype = part.get_content_type()
    if part.is_multipart():
        out(f"{indent}{ctype}")
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, StdlibMessage):
                    _describe_part(sub, depth + 1, out)
        return
    raw = part.get_payload(decode=True)
    size = len(raw) if isinstance(raw, bytes) else 0
    filename = part.get_filename()
    encoding = part.get("Content-Transfer-Encoding", "7bit")
    what = f' attachment "{filename}"' if filename else ""
    out(f"{indent}{ctype}{what} ({size} bytes, {encoding})")


def _print_received(received: _Received, out: Callable[[str], None]) -> None:
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(received.content)
    out(f"  MAIL FROM: <{received.mail_from}>  {' '.join(received.mail_options)}".rstrip())
    for rcpt in received.rcpt_tos:
        out(f"  RCPT TO:   <{rcpt}>")
    out(f"  authenticated as {received.login!r}, over TLS: {'yes' if received.tls else 'no'}")
    out(f"  {len(received.content)} bytes; headers:")
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        value = parsed.get(name)
        if value is not None:
            out(f"    {name}: {value}")
    out(f"    (Bcc in the message: {'yes' if parsed.get('Bcc') is not None else 'no'})")
    out("  structure:")
    _describe_part(parsed, 2, out)


async def _demo_send(
    port: int, ca_pem: str, message: Message, out: Callable[[str], None]
) -> SendResult:
    from lettre.transports.smtp import SmtpTransport

    out(f"sending a multipart message on {_event_loop_name()} ...")
    out("")
    out("Conversation (C: client, S: server; AUTH data redacted, content not shown):")

    transport = SmtpTransport(
        "127.0.0.1",
        port,
        tls=TlsMode.STARTTLS,
        tls_parameters=TlsParameters(ca_data=ca_pem),
        credentials=Credentials(_DEMO_USER, _DEMO_PASSWORD),
        hello_name="client.demo.lettre.test",
        timeout=10.0,
        deadline=60.0,
    )
    async with transport:
        return await transport.send(message)


def _run_demo(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    _check_backend(args.backend)
    handler = _DemoHandler()
    certificates = _make_certificates()
    message = _demo_message()
    with _DemoServer(handler, certificates.server_context) as server:
        out(
            f"lettre {__version__} demo: aiosmtpd on 127.0.0.1:{server.port} "
            f"(STARTTLS required, AUTH after TLS; certificate made with {certificates.made_with})"
        )
        with _capture_transcript() as transcript:
            result = _run_on(
                args.backend, _demo_send, server.port, certificates.ca_pem, message, out
            )
        for line in transcript.lines:
            out(f"  {line}")
    out("")
    out("Result:")
    out(f"  message id: {result.message_id}")
    out(f"  queue id:   {result.transport_id}")
    for outcome in result.recipients:
        status = "accepted" if outcome.accepted else "REFUSED"
        reply = f"{outcome.reply.code} {outcome.reply.text}" if outcome.reply else ""
        out(f"  {status}: {outcome.recipient} ({reply})")
    out("")
    if len(handler.received) != 1:
        out(f"The server received {len(handler.received)} messages; expected 1.")
        return EXIT_FAILED
    out("The server received:")
    _print_received(handler.received[0], out)
    return EXIT_OK if result.all_accepted else EXIT_PARTIAL


# --------------------------------------------------------------------------- send


def _resolve_url(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    url = args.url or os.environ.get(URL_ENV)
    if not url:
        raise _UsageError(f"--url is required (or set {URL_ENV})")
    try:
        kwargs = parse_smtp_url(url)
    except (ValueError, TypeError) as exc:
        raise _UsageError(f"{'--url' if args.url else URL_ENV}: {exc}") from None
    credentials = kwargs.get("credentials")
    if isinstance(credentials, Credentials) and credentials.password is None:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise _UsageError(
                f"the URL names user {credentials.username!r} but no password: "
                f"put it in the URL or in {PASSWORD_ENV}"
            )
        kwargs["credentials"] = Credentials(credentials.username, password)
    params: dict[str, Any] = {}
    if args.ca_file:
        params["ca_file"] = args.ca_file
    if args.insecure_skip_verify:
        params["dangerously_skip_verification"] = True
    if params:
        kwargs["tls_parameters"] = TlsParameters(**params)
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout
    if args.hello_name:
        kwargs["hello_name"] = args.hello_name
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname}"
    if parts.port:
        shown += f":{parts.port}"
    return shown, kwargs


def _mailboxes_option(option: str, values: Sequence[str]) -> list[Mailbox]:
    """Parse the mailboxes an option was given; errors name the option."""
    from lettre.address import Mailboxes

    result: list[Mailbox] = []
    for value in values:
        try:
            result.extend(Mailboxes.parse(value))
        except AddressError as exc:
            raise _UsageError(f"{option}: {exc}") from None
    return result


def _option(option: str, step: Callable[..., _T], *args: Any) -> _T:
    """Run one builder step; a ValueError or TypeError becomes a usage error naming the option."""
    try:
        return step(*args)
    except (ValueError, TypeError) as exc:
        raise _UsageError(f"{option}: {exc}") from None


def _build_cli_message(args: argparse.Namespace) -> Message:
    from lettre.message import Message

    builder = Message.builder()
    builder.from_(_mailboxes_option("--from", [args.from_]))
    builder.to(_mailboxes_option("--to", args.to))
    if args.cc:
        builder.cc(_mailboxes_option("--cc", args.cc))
    if args.bcc:
        builder.bcc(_mailboxes_option("--bcc", args.bcc))
    if args.reply_to:
        builder.reply_to(_mailboxes_option("--reply-to", [args.reply_to]))
    _option("--subject", builder.subject, args.subject)
    text = args.text
    if args.text_file:
        try:
            text = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _UsageError(f"--text-file: cannot read {args.text_file}: {exc}") from None
    if text is None and args.html is None:
        text = "This is a test message sent with lettre.\n"
    if text is not None:
        _option("--text", builder.text, text)
    if args.html is not None:
        _option("--html", builder.html, args.html)
    for header in args.header or ():
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise _UsageError(f"--header needs 'Name: value', not {header!r}")
        _option("--header", builder.header, name.strip(), value.strip())
    for path in args.attach or ():
        file = Path(path)
        if not file.is_file():
            raise _UsageError(f"--attach: no such file: {path}")
        _option("--attach", builder.attach, file)
    return builder.build()


async def _send_one(
    settings: SmtpSettings, message: Message, shown: str, out: Callable[[str], None]
) -> SendResult:
    from lettre.transports.smtp import SmtpTransport

    out(f"sending to {shown} ({settings.tls.value}) on {_event_loop_name()} ...")
    async with SmtpTransport.from_settings(settings) as transport:
        return await transport.send(message)


def _run_send(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    from lettre.smtp.settings import SmtpSettings

    _check_backend(args.backend)
    shown, kwargs = _resolve_url(args)
    try:
        settings = SmtpSettings(**kwargs)
    except (ValueError, TypeError) as exc:
        raise _UsageError(str(exc)) from None
    try:
        message = _build_cli_message(args)
    except (ValueError, OSError) as exc:
        raise _UsageError(str(exc)) from None
    echo = sys.stderr if args.verbose else None
    with _capture_transcript(echo):
        result = _run_on(args.backend, _send_one, settings, message, shown, out)
    accepted = result.accepted
    out(f"sent {result.message_id or '(no Message-ID)'}")
    if result.reply is not None:
        out(f"server reply: {result.reply.code} {result.reply.text}")
    if result.transport_id:
        out(f"queue id: {result.transport_id}")
    out(f"accepted ({len(accepted)}): {', '.join(accepted)}")
    for refused in result.refused:
        reply = f"{refused.reply.code} {refused.reply.text}" if refused.reply else "refused"
        out(f"refused: {refused.recipient}: {reply}")
    return EXIT_OK if result.all_accepted else EXIT_PARTIAL


# --------------------------------------------------------------------------- main


def _run_check_domain(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    _check_backend(args.backend)
    try:
        from lettre.dns.check import check_sender_domain
        from lettre.dns.resolver import Resolver
    except ImportError as exc:
        raise _UsageError(
            f"check-domain needs the direct extra: pip install 'lettre[direct]' ({exc})"
        ) from exc
    signer = None
    if args.dkim_key is not None or args.dkim_selector is not None:
        if args.dkim_key is None or args.dkim_selector is None:
            raise _UsageError("--dkim-key and --dkim-selector go together")
        from lettre.dkim import DkimSigner

        try:
            key = Path(args.dkim_key).read_bytes()
        except OSError as exc:
            raise _UsageError(f"cannot read --dkim-key {args.dkim_key!r}: {exc.strerror}") from exc
        signer = DkimSigner(domain=args.domain, selector=args.dkim_selector, private_key=key)
    try:
        resolver = Resolver(args.nameserver, port=args.dns_port)
    except ValueError as exc:
        raise _UsageError(str(exc)) from exc

    async def check() -> Any:
        return await check_sender_domain(args.domain, dkim=signer, resolver=resolver)

    report = _run_on(args.backend, check)
    out(f"{report.domain}:")
    for finding in report.findings:
        out(f"  {finding}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lettre",
        description="lettre: an asyncio-native email client. Commands: demo, send, check-domain.",
    )
    parser.add_argument("--version", action="version", version=f"lettre {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="send a message to a local demo server (STARTTLS + AUTH) and show the conversation",
    )
    demo.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="the event loop (default asyncio)"
    )

    send = commands.add_parser("send", help="send one message")
    send.add_argument(
        "--url",
        help=f"smtp[s]://user[:password]@host[:port][?tls=...] (default ${URL_ENV}); "
        f"the password may come from ${PASSWORD_ENV}",
    )
    send.add_argument("--from", dest="from_", required=True, metavar="MAILBOX")
    send.add_argument("--to", action="append", required=True, metavar="MAILBOX")
    send.add_argument("--cc", action="append", metavar="MAILBOX")
    send.add_argument("--bcc", action="append", metavar="MAILBOX")
    send.add_argument("--reply-to", metavar="MAILBOX")
    send.add_argument("--subject", default="Test message from lettre")
    body = send.add_mutually_exclusive_group()
    body.add_argument("--text", help="the plain-text body")
    body.add_argument("--text-file", metavar="FILE", help="read the plain-text body from FILE")
    send.add_argument("--html", help="an HTML body (alternative to the text)")
    send.add_argument("--attach", action="append", metavar="FILE")
    send.add_argument("--header", action="append", metavar="'NAME: VALUE'")
    send.add_argument("--ca-file", metavar="PEM", help="trust this CA as well")
    send.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        help="DANGEROUS: accept any server certificate (for tests only)",
    )
    send.add_argument("--hello-name", metavar="NAME", help="the EHLO name")
    send.add_argument("--timeout", type=float, metavar="SECONDS")
    send.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="the event loop (default asyncio)"
    )
    send.add_argument(
        "-v", "--verbose", action="store_true", help="print the SMTP conversation to stderr"
    )

    check = commands.add_parser(
        "check-domain", help="report what receivers will look up about a sender domain"
    )
    check.add_argument("domain", metavar="DOMAIN")
    check.add_argument("--dkim-selector", metavar="SELECTOR", help="the DKIM selector to check")
    check.add_argument(
        "--dkim-key", metavar="PEM", help="the DKIM private key, to compare with the DNS key"
    )
    check.add_argument(
        "--nameserver",
        action="append",
        metavar="IP",
        help="ask this name server (repeatable; default: the system's)",
    )
    check.add_argument("--dns-port", type=int, default=53, metavar="PORT")
    check.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="the event loop (default asyncio)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 failure, 2 bad usage, 3 some recipients
        refused.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE

    def out(line: str) -> None:
        print(line, flush=True)

    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "demo":
            return _run_demo(args, out)
        if args.command == "check-domain":
            return _run_check_domain(args, out)
        return _run_send(args, out)
    except _UsageError as exc:
        print(f"lettre: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LettreError as exc:
        print(f"lettre: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
