"""A Django email backend on lettre: ``EMAIL_BACKEND = "lettre.django.EmailBackend"``.

It replaces ``django.core.mail.backends.smtp.EmailBackend`` and reads the same
settings, so ``send_mail``, ``send_mass_mail``, ``mail_admins``,
``EmailMessage`` and ``EmailMultiAlternatives`` work unchanged, and the
server receives the same message bytes (Django still builds them). What
changes is underneath: every backend of a process with the same settings
shares one :class:`~lettre.BlockingTransport`, so every thread sends through
one SMTP connection pool (pipelined, reused between requests instead of a
connection per ``send_mail``), the outcome of every recipient is logged on
the ``lettre.django`` logger, and failures raise lettre's typed errors.

Django's settings read: ``EMAIL_HOST``, ``EMAIL_PORT``, ``EMAIL_HOST_USER``,
``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS``, ``EMAIL_USE_SSL``,
``EMAIL_TIMEOUT``, ``EMAIL_SSL_CERTFILE``, ``EMAIL_SSL_KEYFILE``. lettre's
own, where Django has none:

- ``LETTRE_EMAIL_URL``: an ``smtp://`` or ``smtps://`` URL used instead of
  the host, port, user, password and TLS settings above;
- ``LETTRE_EMAIL_POOL``: a :class:`~lettre.PoolConfig`, or a dict of its
  arguments;
- ``LETTRE_EMAIL_DKIM``: a signer (:class:`~lettre.DkimSigner`) or a list of
  them;
- ``LETTRE_EMAIL_OPTIONS``: a dict of other :class:`~lettre.SmtpTransport`
  arguments (``tls_parameters``, ``hello_name``, ``allow_insecure_auth``...).
"""

from __future__ import annotations

import email.message
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

from lettre.address import Address, Mailbox
from lettre.envelope import Envelope
from lettre.errors import LettreError
from lettre.results import RecipientResult
from lettre.signing import Signer
from lettre.smtp.pool import PoolConfig
from lettre.smtp.tls import TlsMode, TlsParameters
from lettre.sync import BlockingTransport
from lettre.transports.smtp import SmtpTransport

__all__ = ["CeleryEmailBackend", "EmailBackend", "close_transports"]

_logger = logging.getLogger("lettre.django")


@dataclass(frozen=True)
class _Config:
    """Everything that makes a transport: backends with equal configs share one."""

    host: str
    port: int
    username: str
    password: str
    use_tls: bool
    use_ssl: bool
    timeout: float | None
    ssl_certfile: str | None
    ssl_keyfile: str | None
    url: str | None
    pool: object
    options: object

    def key(self) -> tuple[object, ...]:
        return (
            self.host,
            self.port,
            self.username,
            self.password,
            self.use_tls,
            self.use_ssl,
            self.timeout,
            self.ssl_certfile,
            self.ssl_keyfile,
            self.url,
            _frozen(self.pool),
            _frozen(self.options),
        )


def _frozen(value: object) -> object:
    """A hashable stand-in for a setting: dicts and lists by content, other values as they are.

    What cannot be hashed counts by identity; the registry's entry keeps the
    object alive, so an identity is never reused for another.
    """
    if isinstance(value, Mapping):
        return ("dict", tuple(sorted((str(k), _frozen(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_frozen(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


# One BlockingTransport per configuration and process, shared by every backend.
_transports: dict[tuple[object, ...], tuple[BlockingTransport, _Config]] = {}
_transports_lock = threading.Lock()


def _reset_lock_in_child() -> None:
    global _transports_lock
    _transports_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def close_transports(timeout: float = 10.0) -> None:
    """Close every transport the backends of this process share (SMTP: QUIT).

    The next send opens new ones. Call it when the settings change for good
    (tests do, with each test server), or to close connections on shutdown
    before the interpreter's exit would.

    Args:
        timeout: seconds each transport may take to close.
    """
    with _transports_lock:
        entries = list(_transports.values())
        _transports.clear()
    for transport, _config in entries:
        transport.close(timeout)


def _shared_transport(config: _Config) -> BlockingTransport:
    key = config.key()
    with _transports_lock:
        entry = _transports.get(key)
        if entry is None or entry[0].closed:
            entry = (BlockingTransport(_smtp_transport(config)), config)
            _transports[key] = entry
        return entry[0]


def _smtp_transport(config: _Config) -> SmtpTransport:
    options: dict[str, Any] = dict(_mapping(config.options, "LETTRE_EMAIL_OPTIONS"))
    pool = config.pool
    if isinstance(pool, Mapping):
        pool = PoolConfig(**pool)
    elif pool is not None and not isinstance(pool, PoolConfig):
        raise TypeError(
            f"LETTRE_EMAIL_POOL must be a PoolConfig or a dict, not {type(pool).__name__}"
        )
    if config.ssl_certfile or config.ssl_keyfile:
        base = options.get("tls_parameters") or TlsParameters()
        options["tls_parameters"] = replace(
            base,
            client_cert=config.ssl_certfile or config.ssl_keyfile,
            client_key=config.ssl_keyfile,
        )
    if config.timeout is not None:
        options.setdefault("timeout", config.timeout)
        options.setdefault("data_timeout", config.timeout)
    if config.url is not None:
        return SmtpTransport.from_url(config.url, pool=pool, **options)
    if config.username and config.password:
        from lettre.smtp.auth import Credentials

        options.setdefault("credentials", Credentials(config.username, config.password))
    tls = (
        TlsMode.IMPLICIT if config.use_ssl else TlsMode.STARTTLS if config.use_tls else TlsMode.NONE
    )
    return SmtpTransport(config.host, config.port, tls=tls, pool=pool, **options)


def _mapping(value: object, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, not {type(value).__name__}")
    return value


def _signers(value: object) -> tuple[Signer, ...]:
    if value is None:
        return ()
    if isinstance(value, Signer):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(s, Signer) for s in value):
        return tuple(value)
    raise TypeError(
        f"LETTRE_EMAIL_DKIM must be a signer (DkimSigner) or a list of them, not {value!r}"
    )


def _refusal(result: RecipientResult) -> str:
    """``"bob@example.com (550 5.1.1 No such user)"``: a refused recipient, for the log."""
    reply = result.reply
    if reply is None:
        return f"{result.recipient} ({result.error})" if result.error else result.recipient
    status = f" {reply.enhanced_status}" if reply.enhanced_status else ""
    return f"{result.recipient} ({reply.code}{status} {reply.text})"


def _address(value: object) -> Address:
    """The address of a Django address item: ``"Name <a@b>"``, ``"a@b"`` or ``(name, addr)``."""
    if isinstance(value, tuple) and len(value) == 2:
        return Mailbox(str(value[1]), str(value[0]) or None).address
    return Mailbox.parse(str(value)).address


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]
    """A Django email backend that sends through lettre's pooled SMTP transport.

    A drop-in replacement for ``django.core.mail.backends.smtp.EmailBackend``:
    the same arguments (each defaults to the Django setting of the same
    name), the same ``send_messages()``, ``open()``, ``close()`` and
    ``with`` block, and the same message bytes on the wire. Backends of one
    process with the same settings share one :class:`~lettre.BlockingTransport`
    (its connection pool and its loop thread); ``open()`` and ``close()``
    attach to it and let go of it, and never close its connections, which
    stay open for the next send (see :func:`close_transports`).

    Without ``EMAIL_USE_TLS`` or ``EMAIL_USE_SSL`` the connection is plain
    SMTP, as with Django, but lettre does not send a password over it unless
    ``LETTRE_EMAIL_OPTIONS = {"allow_insecure_auth": True}``.

    Args:
        host: ``EMAIL_HOST``.
        port: ``EMAIL_PORT``.
        username: ``EMAIL_HOST_USER``.
        password: ``EMAIL_HOST_PASSWORD``.
        use_tls: ``EMAIL_USE_TLS``: STARTTLS, required.
        fail_silently: return instead of raising when a send fails (lettre
            errors only; a programming error still raises).
        use_ssl: ``EMAIL_USE_SSL``: TLS from the first byte (port 465).
        timeout: ``EMAIL_TIMEOUT``: seconds to wait for each reply.
        ssl_keyfile: ``EMAIL_SSL_KEYFILE``: the client certificate's key.
        ssl_certfile: ``EMAIL_SSL_CERTFILE``: the client certificate.
        url: ``LETTRE_EMAIL_URL``: an ``smtp://`` or ``smtps://`` URL used
            instead of the host, port, user, password and TLS settings.
        pool: ``LETTRE_EMAIL_POOL``: a PoolConfig or a dict of its arguments.
        dkim: ``LETTRE_EMAIL_DKIM``: a signer or a list of signers.
        options: ``LETTRE_EMAIL_OPTIONS``: other SmtpTransport arguments.
        kwargs: passed on to Django's ``BaseEmailBackend``.

    Raises:
        ValueError: both ``use_tls`` and ``use_ssl``.
        TypeError: a lettre setting of the wrong type.

    Attributes:
        connection: the shared :class:`~lettre.BlockingTransport` while the
            backend is open (between ``open()`` and ``close()``), else None.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        fail_silently: bool = False,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        *,
        url: str | None = None,
        pool: PoolConfig | Mapping[str, Any] | None = None,
        dkim: Signer | Sequence[Signer] | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        use_tls = bool(settings.EMAIL_USE_TLS if use_tls is None else use_tls)
        use_ssl = bool(settings.EMAIL_USE_SSL if use_ssl is None else use_ssl)
        if use_tls and use_ssl:
            raise ValueError(
                "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive: set only one of them "
                "to True (EMAIL_USE_SSL for TLS from the first byte, port 465; EMAIL_USE_TLS "
                "for STARTTLS, port 587)"
            )
        self._config = _Config(
            host=host or settings.EMAIL_HOST,
            port=int(port or settings.EMAIL_PORT),
            username=settings.EMAIL_HOST_USER if username is None else username,
            password=settings.EMAIL_HOST_PASSWORD if password is None else password,
            use_tls=use_tls,
            use_ssl=use_ssl,
            timeout=settings.EMAIL_TIMEOUT if timeout is None else timeout,
            ssl_certfile=settings.EMAIL_SSL_CERTFILE if ssl_certfile is None else ssl_certfile,
            ssl_keyfile=settings.EMAIL_SSL_KEYFILE if ssl_keyfile is None else ssl_keyfile,
            url=getattr(settings, "LETTRE_EMAIL_URL", None) if url is None else url,
            pool=getattr(settings, "LETTRE_EMAIL_POOL", None) if pool is None else pool,
            options=getattr(settings, "LETTRE_EMAIL_OPTIONS", None) if options is None else options,
        )
        self._signers = _signers(
            getattr(settings, "LETTRE_EMAIL_DKIM", None) if dkim is None else dkim
        )
        _mapping(self._config.options, "LETTRE_EMAIL_OPTIONS")
        self.connection: BlockingTransport | None = None

    def open(self) -> bool | None:
        """Attach to the process's shared transport for these settings.

        No connection is made here: the pool opens one at the first send
        and keeps it for the next ones.

        Returns:
            True when the backend attached now, False when it already was,
            None when making the transport failed and ``fail_silently`` is set.

        Raises:
            LettreError: the transport cannot be made (a TLS file that cannot
                be loaded...), unless ``fail_silently``.
            ValueError: an invalid ``LETTRE_EMAIL_URL``.
        """
        if self.connection is not None:
            return False
        try:
            self.connection = _shared_transport(self._config)
        except LettreError:
            if not self.fail_silently:
                raise
            return None
        return True

    def close(self) -> None:
        """Let go of the shared transport (its connections stay open for the next send)."""
        self.connection = None

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        """Send Django ``EmailMessage`` objects; return how many were sent.

        The messages of one call are sent concurrently through the pool. A
        message without recipients is skipped, as with Django. A message
        whose every recipient is refused, or whose send failed, is not
        counted; refused recipients of a message that went to the others are
        logged (WARNING) and the message counts as sent.

        Args:
            email_messages: ``django.core.mail.EmailMessage`` objects
                (``EmailMultiAlternatives`` included).

        Returns:
            The number of messages sent.

        Raises:
            TransportError: the first failure, unless ``fail_silently``; the
                other messages of the call were still sent.
            AddressError: an address is invalid (before anything is sent).
        """
        if not email_messages:
            return 0
        prepared = [self._prepare(message) for message in email_messages]
        todo = [item for item in prepared if item is not None]
        if not todo:
            return 0
        new = self.open()
        connection = self.connection
        if connection is None or new is None:
            return 0
        try:
            outcomes = connection._send_raw_many([(envelope, data) for envelope, data, _ in todo])
        except LettreError as exc:
            # The blocking call itself failed (closed, timed out, its loop
            # thread gone): no message of the call was sent.
            _logger.warning("%d message(s) were not sent: %s", len(todo), exc)
            if self.fail_silently:
                return 0
            raise
        finally:
            if new:
                self.close()
        sent = 0
        failure: Exception | None = None
        for (envelope, _data, message_id), outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, Exception):
                _logger.warning(
                    "message %s to %d recipient(s) was not sent: %s",
                    message_id,
                    len(envelope.forward_paths),
                    outcome,
                )
                if failure is None:
                    failure = outcome
                continue
            sent += 1
            refused = outcome.refused
            if refused:
                _logger.warning(
                    "message %s sent to %d recipient(s); refused: %s",
                    message_id,
                    len(outcome.accepted),
                    "; ".join(_refusal(r) for r in refused),
                )
            else:
                _logger.debug(
                    "message %s sent to %s (%s)",
                    message_id,
                    ", ".join(outcome.accepted),
                    outcome.transport_id or "no queue id",
                )
        if failure is not None and not (self.fail_silently and isinstance(failure, LettreError)):
            raise failure
        return sent

    def _prepare(self, email_message: Any) -> tuple[Envelope, bytes, str | None] | None:
        """The envelope, the bytes (signed) and the Message-ID of a Django message."""
        recipients = email_message.recipients()
        if not recipients:
            return None
        envelope = Envelope(_address(email_message.from_email), [_address(r) for r in recipients])
        mime = email_message.message()
        if isinstance(mime, email.message.EmailMessage):  # Django 6 builds a stdlib message
            data: bytes = mime.as_bytes(policy=mime.policy.clone(linesep="\r\n"))
        else:  # Django 4.2 to 5.2: its SafeMIME classes, as its SMTP backend sends them
            data = mime.as_bytes(linesep="\r\n")
        for signer in self._signers:
            data = signer.sign(data)
        message_id = mime.get("Message-ID")
        return envelope, data, str(message_id) if message_id is not None else None


class CeleryEmailBackend(EmailBackend):
    """A Django email backend that queues each message for a Celery worker to send.

    ``EMAIL_BACKEND = "lettre.django.CeleryEmailBackend"``: ``send_mail()``
    and the rest return as soon as the message is queued; a worker running
    the ``lettre.send_message`` task (:mod:`lettre.celery`, the ``celery``
    extra) sends it through its process's pooled transport, with retries
    and without sending twice. Django builds the message and
    ``LETTRE_EMAIL_DKIM`` signs it here, as with :class:`EmailBackend`; the
    workers' ``lettre_email_*`` settings say where it goes.

    Settings, besides those of :class:`EmailBackend`:

    - ``LETTRE_CELERY_APP``: the Celery app (or its ``"module:name"``);
      default: Celery's current app;
    - ``LETTRE_CELERY_OPTIONS``: ``apply_async`` options for every message
      (``{"queue": "mail"}``...).

    Args:
        fail_silently: return instead of raising when a message cannot be
            queued (lettre errors only).
        app: ``LETTRE_CELERY_APP``.
        queue_options: ``LETTRE_CELERY_OPTIONS``.
        kwargs: the arguments of :class:`EmailBackend`.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        app: Any = None,
        queue_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self._app = getattr(settings, "LETTRE_CELERY_APP", None) if app is None else app
        self._queue_options = dict(
            _mapping(
                getattr(settings, "LETTRE_CELERY_OPTIONS", None)
                if queue_options is None
                else queue_options,
                "LETTRE_CELERY_OPTIONS",
            )
        )

    def open(self) -> bool | None:
        """Nothing to open: messages go to the broker (returns False)."""
        return False

    def close(self) -> None:
        """Nothing to close."""

    def _celery_app(self) -> Any:
        app = self._app
        if app is None:
            from celery import current_app

            return current_app
        if isinstance(app, str):
            import importlib

            module, _, name = app.partition(":")
            return getattr(importlib.import_module(module), name)
        return app

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        """Queue Django ``EmailMessage`` objects; return how many were queued.

        A message without recipients is skipped, as with Django.

        Raises:
            AddressError: an address is invalid (before anything is queued).
            PayloadTooLarge: a message is too large for a payload, unless
                ``fail_silently``.
            Exception: the broker could not be reached (Celery's, kombu's
                ``OperationalError``), unless ``fail_silently``.
        """
        from lettre.celery import TASK_NAME
        from lettre.message.payload import raw_to_payload

        if not email_messages:
            return 0
        prepared = [self._prepare(message) for message in email_messages]
        app = self._celery_app()
        queued = 0
        for item in prepared:
            if item is None:
                continue
            envelope, data, message_id = item
            try:
                payload = raw_to_payload(envelope, data, message_id=message_id)
                app.send_task(TASK_NAME, args=(payload,), **self._queue_options)
            except Exception:
                _logger.warning("message %s could not be queued", message_id, exc_info=True)
                if not self.fail_silently:
                    raise
                continue
            queued += 1
        return queued
