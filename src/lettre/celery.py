"""lettre on Celery: queue messages, send them from worker processes, once.

``queue_message(message)`` turns a message into a JSON-safe payload
(:mod:`lettre.message.payload`) and queues the :data:`send_message` task,
which any Celery app knows (it is a shared task). A worker process sends
through one transport of its own, made on first use after the fork and
closed when the process shuts down, so every task the process runs shares
its connection pool.

The task is acknowledged late (after it ran) and rejected, so redelivered,
when its worker process dies. A message the server accepted is recorded in
Redis under a key made of its Message-ID and envelope, and that record is
checked before every send: a redelivered task whose message went already
returns the first delivery's result instead of sending again. The one
window no client can close is a crash after the server accepted the message
and before the record was written: that message is sent again on
redelivery.

Settings (the Celery app's configuration, lower case; all optional but a way
to make the transport):

- ``lettre_email_url``: an ``smtp://`` or ``smtps://`` URL
  (:meth:`~lettre.SmtpTransport.from_url`);
- ``lettre_email_pool``: a :class:`~lettre.PoolConfig` or a dict of its
  arguments;
- ``lettre_email_dkim``: a signer or a list of signers;
- ``lettre_email_options``: a dict of other SmtpTransport arguments;
- ``lettre_transport_factory``: instead of the above, a function (or its
  ``"module:name"``) that returns a transport; called once per process;
- ``lettre_dedup_url``: the Redis URL for the delivery records (default:
  ``broker_url`` when it is a Redis URL); ``lettre_dedup = False`` turns
  de-duplication off;
- ``lettre_dedup_ttl``: seconds a record is kept (default 7 days);
- ``lettre_claim_ttl``: seconds a send holds its claim on a message
  (default 900, longer than any send can take);
- ``lettre_max_retries`` (default 8), ``lettre_retry_backoff`` (first delay,
  default 10 seconds, doubled each time), ``lettre_retry_backoff_max``
  (default 3600), ``lettre_retry_jitter`` (default True);
- ``lettre_retry_outcome_unknown``: retry after
  :class:`~lettre.OutcomeUnknown` (default False: a retry may deliver
  twice);
- ``lettre_max_payload_size``: the largest message, in octets (default
  :data:`~lettre.message.payload.DEFAULT_MAX_PAYLOAD_SIZE`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import random
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any, Final

import redis
from celery import Task, shared_task, signals
from celery.result import AsyncResult

from lettre.envelope import Envelope
from lettre.errors import LettreError, OutcomeUnknown, TransportError
from lettre.message.message import Message
from lettre.message.payload import (
    DEFAULT_MAX_PAYLOAD_SIZE,
    message_from_payload,
    message_to_payload,
)
from lettre.results import RecipientResult, Reply, SendResult
from lettre.signing import Signer
from lettre.smtp.pool import PoolConfig
from lettre.sync import BlockingTransport
from lettre.transports.base import Transport
from lettre.transports.smtp import SmtpTransport

__all__ = [
    "TASK_NAME",
    "DeliveryFailed",
    "close_process_transport",
    "queue_message",
    "send_message",
]

TASK_NAME: Final = "lettre.send_message"
"""The name the send task is registered under in every Celery app."""

_logger = logging.getLogger("lettre.celery")

_SENT_PREFIX: Final = "lettre:sent:"
_CLAIM_PREFIX: Final = "lettre:claim:"

# Deletes the claim only if it is still ours: a claim that expired and was
# taken by another delivery stays.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class DeliveryFailed(LettreError):
    """The send task gave up: a permanent failure, or transient ones past the retry limit.

    The task's result is this error; its message names the failure
    (``"permanent: 550 5.1.1 No such user"``, ``"gave up after 8 retries:
    ..."``).
    """


# ---------------------------------------------------------------- one transport per process

_lock = threading.Lock()
_transport: BlockingTransport | None = None
_records: redis.Redis | None = None
_owner_pid = 0


def _setting(conf: Mapping[str, Any], name: str, default: Any) -> Any:
    value = conf.get(name)
    return default if value is None else value


def _make_transport(conf: Mapping[str, Any]) -> Transport:
    factory = conf.get("lettre_transport_factory")
    if factory is not None:
        if isinstance(factory, str):
            module, _, attribute = factory.partition(":")
            factory = getattr(importlib.import_module(module), attribute)
        made = factory()
        return made  # type: ignore[no-any-return]
    url = conf.get("lettre_email_url")
    if not url:
        raise LettreError(
            "the Celery app has no lettre_email_url and no lettre_transport_factory: "
            "set one of them in its configuration"
        )
    pool = conf.get("lettre_email_pool")
    if isinstance(pool, Mapping):
        pool = PoolConfig(**pool)
    dkim = conf.get("lettre_email_dkim")
    signers: Sequence[Signer] | None = [dkim] if isinstance(dkim, Signer) else dkim
    options = dict(conf.get("lettre_email_options") or {})
    return SmtpTransport.from_url(url, dkim=signers, pool=pool, **options)


def _adopt_process() -> None:
    """With the lock held: forget what a parent process made (never used or closed here)."""
    global _transport, _records, _owner_pid
    if _owner_pid != os.getpid():
        _transport = _records = None
        _owner_pid = os.getpid()


def _process_transport(conf: Mapping[str, Any]) -> BlockingTransport:
    global _transport
    with _lock:
        _adopt_process()
        if _transport is None or _transport.closed:
            _transport = BlockingTransport(lambda: _make_transport(conf))
        return _transport


def _dedup_client(conf: Mapping[str, Any]) -> redis.Redis | None:
    global _records
    if conf.get("lettre_dedup") is False:
        return None
    with _lock:
        _adopt_process()
        if _records is not None:
            return _records
        url = conf.get("lettre_dedup_url")
        if url is None:
            broker = str(conf.get("broker_url") or "")
            url = broker if broker.startswith(("redis://", "rediss://", "unix://")) else None
        if url is None:
            return None
        _records = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        return _records


def close_process_transport(timeout: float = 10.0) -> None:
    """Close this process's transport (SMTP: QUIT) and its Redis connection.

    Called when a worker process shuts down; the next task of a process that
    goes on opens new ones.

    Args:
        timeout: seconds the transport may take to close.
    """
    global _transport, _records
    with _lock:
        transport, records, mine = _transport, _records, _owner_pid == os.getpid()
        _transport = _records = None
    if not mine:
        return  # the parent's, inherited by a fork: never touched here
    if transport is not None:
        transport.close(timeout)
    if records is not None:
        records.close()


def _new_lock_in_child() -> None:
    # A thread of the parent may have held the lock at the fork.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def _on_process_init(**_kwargs: Any) -> None:
    # A fresh worker process: forget what the parent had; make ours on first use.
    with _lock:
        _adopt_process()


def _on_process_shutdown(**_kwargs: Any) -> None:
    close_process_transport()


def _on_worker_shutdown(**_kwargs: Any) -> None:
    close_process_transport()  # the solo and thread pools send from the main process


signals.worker_process_init.connect(_on_process_init, weak=False)
signals.worker_process_shutdown.connect(_on_process_shutdown, weak=False)
signals.worker_shutdown.connect(_on_worker_shutdown, weak=False)


# ---------------------------------------------------------------- results


def _reply_json(reply: Reply | None) -> dict[str, Any] | None:
    if reply is None:
        return None
    return {"code": reply.code, "enhanced_status": reply.enhanced_status, "text": reply.text}


def _refusal_json(result: RecipientResult) -> dict[str, Any]:
    return {
        "recipient": result.recipient,
        "reply": _reply_json(result.reply),
        "error": None if result.error is None else str(result.error),
    }


def _result_json(result: SendResult) -> dict[str, Any]:
    return {
        "status": "sent",
        "message_id": result.message_id,
        "transport_id": result.transport_id,
        "accepted": list(result.accepted),
        "refused": [_refusal_json(r) for r in result.refused],
        "reply": _reply_json(result.reply),
    }


def _key(message: Message) -> str | None:
    if message.message_id is None:
        return None
    envelope = message.envelope
    parts = [message.message_id, str(envelope.reverse_path or "")]
    parts += [str(a) for a in envelope.forward_paths]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _backoff(conf: Mapping[str, Any], failures: int) -> float:
    base = float(_setting(conf, "lettre_retry_backoff", 10.0))
    cap = float(_setting(conf, "lettre_retry_backoff_max", 3600.0))
    delay: float = min(cap, base * 2**failures)
    if _setting(conf, "lettre_retry_jitter", True):
        delay = delay / 2 + random.uniform(0, delay / 2)
    return delay


# ---------------------------------------------------------------- the task


def _send_message(self: Task, payload: dict[str, Any], failures: int = 0) -> dict[str, Any]:
    """Send a queued message through this worker process's transport, once.

    Args:
        payload: what :func:`~lettre.message.payload.message_to_payload`
            made (``queue_message`` makes it).
        failures: transient failures so far (set by the task's retries).

    Returns:
        ``{"status": "sent", "message_id", "transport_id", "accepted":
        [...], "refused": [{"recipient", "reply", "error"}], "reply"}``, or
        the same with ``"status": "duplicate"`` (the first delivery's
        result) when the message had been sent before.

    Raises:
        DeliveryFailed: a permanent failure, a transient one after
            ``lettre_max_retries`` retries, or an outcome that is unknown.
    """
    conf: Mapping[str, Any] = self.app.conf
    message = message_from_payload(
        payload,
        max_size=int(_setting(conf, "lettre_max_payload_size", DEFAULT_MAX_PAYLOAD_SIZE)),
        parse_headers=False,  # the bytes, the envelope and the Message-ID are all it needs
    )
    max_retries = int(_setting(conf, "lettre_max_retries", 8))
    # This run's claim token: a redelivered copy of the task has the same id.
    token = f"{self.request.id}:{uuid.uuid4().hex}"

    def retry(error: BaseException, countdown: float, next_failures: int) -> Exception:
        if next_failures > max_retries:
            return DeliveryFailed(f"gave up after {max_retries} retries: {error}")
        _logger.info(
            "message %s: %s; retry %d in %.2f s",
            message.message_id,
            error,
            next_failures,
            countdown,
        )
        return self.retry(  # type: ignore[no-any-return]
            args=(payload,), kwargs={"failures": next_failures}, countdown=countdown, exc=error
        )

    records = _dedup_client(conf)
    key = _key(message) if records is not None else None
    if records is not None and key is not None:
        try:
            done = records.get(_SENT_PREFIX + key)
            if done is not None:
                return {**json.loads(done), "status": "duplicate"}
            claimed = records.set(
                _CLAIM_PREFIX + key,
                token,
                nx=True,
                ex=int(_setting(conf, "lettre_claim_ttl", 900)),
            )
            if not claimed:
                # Another delivery of this message is sending it now, or one
                # died holding its claim: look again when the claim ends.
                wait = max(int(records.pttl(_CLAIM_PREFIX + key)), 50) / 1000
                raise self.retry(
                    args=(payload,), kwargs={"failures": failures}, countdown=wait + 0.05
                )
        except redis.RedisError as exc:
            raise retry(exc, _backoff(conf, failures), failures + 1) from None

    def release() -> None:
        if records is not None and key is not None:
            try:
                records.eval(_RELEASE, 1, _CLAIM_PREFIX + key, token)
            except redis.RedisError:
                _logger.warning("message %s: could not release its claim", message.message_id)

    try:
        result = _process_transport(conf).send(message)
    except OutcomeUnknown as exc:
        release()
        if _setting(conf, "lettre_retry_outcome_unknown", False):
            raise retry(exc, _backoff(conf, failures), failures + 1) from None
        raise DeliveryFailed(
            f"outcome unknown, not retried (it may have been delivered): {exc}"
        ) from None
    except TransportError as exc:
        release()
        if exc.transient:
            raise retry(exc, _backoff(conf, failures), failures + 1) from None
        raise DeliveryFailed(f"permanent: {exc}") from None
    except BaseException:
        release()
        raise
    outcome = _result_json(result)
    if records is not None and key is not None:
        try:
            with records.pipeline() as pipe:
                pipe.set(
                    _SENT_PREFIX + key,
                    json.dumps(outcome),
                    ex=int(_setting(conf, "lettre_dedup_ttl", 7 * 24 * 3600)),
                )
                pipe.delete(_CLAIM_PREFIX + key)
                pipe.execute()
        except redis.RedisError as exc:
            # Sent, not recorded: a redelivery of this task would send again.
            _logger.error(  # noqa: TRY400 - the error is the message; no traceback
                "message %s was sent but not recorded: %s", message.message_id, exc
            )
    return outcome


send_message: Any = shared_task(
    bind=True,
    name=TASK_NAME,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)(_send_message)
"""The Celery task ``lettre.send_message(payload)``: send a queued message, once.

A shared task (every Celery app has it once ``lettre.celery`` is imported),
acknowledged late and rejected (so delivered again) when its worker process
dies. It sends through the worker process's own transport, made from the
app's ``lettre_*`` settings at the process's first task; checks Redis for a
record of the message before sending and writes one after the server
accepted it; retries transient failures with exponential backoff and
jitter, up to ``lettre_max_retries``.

Its argument is a payload (:func:`~lettre.message.payload.message_to_payload`;
:func:`queue_message` makes it). Its result is ``{"status": "sent",
"message_id", "transport_id", "accepted": [...], "refused": [{"recipient",
"reply", "error"}], "reply"}``, or the first delivery's result with
``"status": "duplicate"`` when the message had been sent before. It fails
with :class:`DeliveryFailed` on a permanent failure, after the last retry,
or when the outcome is unknown (unless ``lettre_retry_outcome_unknown``).
"""


def queue_message(
    message: Message | EmailMessage,
    *,
    app: Any = None,
    envelope: Envelope | None = None,
    max_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
    **options: Any,
) -> AsyncResult:
    """Queue a message for a worker to send; return the task's ``AsyncResult``.

    Args:
        message: a lettre Message or a stdlib ``EmailMessage``.
        app: the Celery app to queue with (default: the current app).
        envelope: the envelope to send with, instead of the message's own.
        max_size: the largest message accepted, in octets.
        options: ``apply_async`` options (``queue=``, ``countdown=``...).

    Raises:
        PayloadTooLarge: the message is larger than ``max_size``.
    """
    payload = message_to_payload(message, envelope=envelope, max_size=max_size)
    if app is not None:
        queued: AsyncResult = app.send_task(TASK_NAME, args=(payload,), **options)
        return queued
    task: Callable[..., AsyncResult] = send_message.apply_async
    return task((payload,), **options)
