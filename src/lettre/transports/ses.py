"""Amazon SES transport: raw messages through the SES API v2 ``SendEmail`` call.

The message bytes are the ones lettre's serializer produced (signed, if the
transport signs); SES receives them as ``Content.Raw``. The envelope supplies
``FromEmailAddress`` and ``Destination``, so Bcc recipients get the message
although no Bcc header is in the bytes.

The HTTP client depends on the event loop: on asyncio the calls go through
aiobotocore; on trio (where aiobotocore cannot run) a boto3 client is called in
a worker thread. Both are in the ``ses`` extra (``pip install 'lettre[ses]'``)
and are imported only when the first client is made, so ``import lettre``
stays light.
"""

from __future__ import annotations

import abc
import copy
import importlib.util
import inspect
import logging
import re
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from lettre._loops import current_loop, running_on_asyncio
from lettre.address import Address
from lettre.errors import AddressError, SesError
from lettre.hooks import Hook
from lettre.transports.base import BaseTransport, RecipientResult, SendResult, Signer

if TYPE_CHECKING:
    from typing_extensions import Self

    from lettre.envelope import Envelope

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_RECIPIENTS_PER_CALL",
    "AwsCredentials",
    "SesTransport",
    "ses_error_from_exception",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_RECIPIENTS_PER_CALL = 50
"""SES accepts at most 50 recipients (To, Cc and Bcc together) per message."""

DEFAULT_MAX_MESSAGE_SIZE = 40 * 1024 * 1024
"""The SES API v2 limit on a message, counted after base64 encoding (40 MB)."""

_EXTRA_HINT = "install the 'ses' extra: pip install 'lettre[ses]'"
_SERVICE = "sesv2"
_CLOSE_TIMEOUT = 10.0
_TAG_TEXT = re.compile(r"[A-Za-z0-9_-]{1,256}\Z")

# Codes after which trying again later may succeed.
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)

# Codes that say the same request will fail again until something changes
# (the sender, the account, the configuration or the message itself).
_PERMANENT_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerified",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "AccountSendingPausedException",
        "SendingPausedException",
        "ConfigurationSetSendingPausedException",
        "ConfigurationSetDoesNotExist",
        "NotFoundException",
        "BadRequestException",
        "InvalidParameterValue",
        "ValidationError",
        "ValidationException",
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)

# Transient, but on the scale of hours: a daily sending quota was reached.
_QUOTA_CODES = frozenset({"LimitExceededException"})


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """Explicit AWS credentials for :class:`SesTransport`.

    The repr shows the access key id but never the secret key or the session
    token.

    Attributes:
        access_key_id: the access key id ("AKIA...", or "ASIA..." with a token).
        secret_access_key: the secret access key.
        session_token: the session token of temporary credentials, if any.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("access_key_id", "secret_access_key"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"AwsCredentials.{name} must be a non-empty string")
        if self.session_token is not None and (
            not isinstance(self.session_token, str) or not self.session_token
        ):
            raise ValueError("AwsCredentials.session_token must be a non-empty string or None")

    def __repr__(self) -> str:
        token = ", session_token='***'" if self.session_token is not None else ""
        return (
            f"AwsCredentials(access_key_id={self.access_key_id!r}, secret_access_key='***'{token})"
        )


@dataclass(frozen=True, slots=True)
class _Settings:
    """How clients are made (only for the clients the transport creates)."""

    region: str | None
    endpoint_url: str | None
    credentials: AwsCredentials | None
    profile: str | None
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    max_pool_connections: int

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "region_name": self.region,
            "endpoint_url": self.endpoint_url,
        }
        if self.credentials is not None:
            kwargs["aws_access_key_id"] = self.credentials.access_key_id
            kwargs["aws_secret_access_key"] = self.credentials.secret_access_key
            kwargs["aws_session_token"] = self.credentials.session_token
        return kwargs

    def config_kwargs(self) -> dict[str, Any]:
        return {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "retries": {"total_max_attempts": self.max_attempts, "mode": "standard"},
            "max_pool_connections": self.max_pool_connections,
        }


@dataclass(frozen=True, slots=True)
class _Options:
    """What every SendEmail request of one transport carries besides the message."""

    configuration_set: str | None
    tags: tuple[tuple[str, str], ...]
    feedback_forwarding_address: str | None


# ---------------------------------------------------------------------------
# Request building and error mapping: shared by both backends.


def _encoded_size(size: int) -> int:
    """The length of ``size`` bytes once base64 encoded (as SES counts them)."""
    return 4 * ((size + 2) // 3)


def _ascii_address(address: Address, role: str) -> str:
    if address.needs_smtputf8:
        raise SesError(
            f"the {role} {address} has a non-ASCII local part, which needs SMTPUTF8; "
            "Amazon SES does not support SMTPUTF8",
            code="SmtpUtf8NotSupported",
            transient=False,
        )
    try:
        return address.to_ascii()
    except AddressError as exc:
        raise SesError(
            f"the {role} {address} cannot be written in ASCII: {exc}",
            code="SmtpUtf8NotSupported",
            transient=False,
        ) from exc


def _build_request(
    sender: str | None, recipients: Sequence[str], data: bytes, options: _Options
) -> dict[str, Any]:
    """The keyword arguments of one SESv2 ``SendEmail`` call."""
    request: dict[str, Any] = {
        "Destination": {"ToAddresses": list(recipients)},
        "Content": {"Raw": {"Data": data}},
    }
    if sender is not None:
        request["FromEmailAddress"] = sender
    if options.configuration_set is not None:
        request["ConfigurationSetName"] = options.configuration_set
    if options.tags:
        request["EmailTags"] = [{"Name": name, "Value": value} for name, value in options.tags]
    if options.feedback_forwarding_address is not None:
        request["FeedbackForwardingEmailAddress"] = options.feedback_forwarding_address
    return request


def _botocore_exceptions() -> Any:
    """The ``botocore.exceptions`` module, or None when botocore is missing."""
    try:
        import botocore.exceptions
    except ImportError:
        return None
    return botocore.exceptions


def _aws_exception_types() -> tuple[type[BaseException], ...]:
    """The exception types a call can raise that :func:`ses_error_from_exception` maps."""
    exceptions = _botocore_exceptions()
    if exceptions is None:
        return (OSError,)
    return (exceptions.ClientError, exceptions.BotoCoreError, OSError)


def _is_transient(code: str | None, status: int | None) -> bool:
    if code in _TRANSIENT_CODES:
        return True
    if code in _PERMANENT_CODES:
        return False
    return status is not None and (status == 429 or status >= 500)


def _from_client_error(exc: BaseException) -> SesError:
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        response = {}
    error = response.get("Error")
    if not isinstance(error, Mapping):
        error = {}
    metadata = response.get("ResponseMetadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    code = str(error.get("Code") or "") or None
    text = str(error.get("Message") or "").strip()
    raw_status = metadata.get("HTTPStatusCode")
    status = raw_status if isinstance(raw_status, int) else None
    operation = getattr(exc, "operation_name", None) or "SendEmail"
    transient = _is_transient(code, status)
    label = code or (f"HTTP {status}" if status is not None else "unknown error")
    message = f"SES {operation} failed ({label})"
    if text:
        message += f": {text}"
    if code in _QUOTA_CODES or "quota" in text.lower():
        message += " [a sending quota was reached: retry after it resets, not within seconds]"
    return SesError(message, code=code, transient=transient)


def ses_error_from_exception(exc: BaseException) -> SesError:
    """Convert an exception raised by an SES call into a :class:`~lettre.errors.SesError`.

    AWS error replies (botocore ``ClientError``) keep their error code in
    ``SesError.code``. Throttling, ``LimitExceededException`` (a sending
    quota: retry later, after the quota resets), HTTP 429 and HTTP 5xx are
    transient; rejections, unverified identities, paused sending, missing
    resources and bad requests are permanent, as is any other 4xx.
    Connection trouble and timeouts are transient (``code`` is None); a
    timeout while waiting for the answer means SES may have accepted the
    message. Missing credentials or region and invalid parameters are
    permanent. An :class:`SesError` is returned unchanged.

    The caller chains the result (``raise ses_error_from_exception(exc) from exc``).

    Args:
        exc: the exception the call raised.

    Returns:
        The corresponding :class:`SesError`.
    """
    if isinstance(exc, SesError):
        return exc
    exceptions = _botocore_exceptions()
    if exceptions is not None:
        if isinstance(exc, exceptions.ClientError):
            return _from_client_error(exc)
        if isinstance(exc, (exceptions.NoCredentialsError, exceptions.PartialCredentialsError)):
            return SesError(f"no usable AWS credentials: {exc}", transient=False)
        if isinstance(exc, exceptions.NoRegionError):
            return SesError(
                "no AWS region: pass region= or configure one (AWS_REGION, the config file)",
                transient=False,
            )
        if isinstance(exc, exceptions.ParamValidationError):
            return SesError(f"invalid SES request: {exc}", transient=False)
        if isinstance(exc, exceptions.SSLError):
            return SesError(f"TLS with the SES endpoint failed: {exc}", transient=False)
        if isinstance(exc, exceptions.CredentialRetrievalError):
            return SesError(f"AWS credentials could not be retrieved: {exc}", transient=True)
        if isinstance(exc, (exceptions.ReadTimeoutError, exceptions.ConnectionClosedError)):
            return SesError(
                f"SES did not answer ({exc}); the message may or may not have been accepted",
                transient=True,
                outcome_unknown=True,
            )
        if isinstance(exc, (exceptions.ConnectionError, exceptions.HTTPClientError)):
            return SesError(f"cannot reach SES: {exc}", transient=True)
        if isinstance(exc, exceptions.BotoCoreError):
            return SesError(f"SES call failed: {exc}", transient=False)
    if isinstance(exc, OSError):
        return SesError(f"cannot reach SES: {exc}", transient=True)
    return SesError(f"SES call failed: {type(exc).__name__}: {exc}", transient=False)


# ---------------------------------------------------------------------------
# The two backends: they differ only in how the call is made.


def _missing_extra(what: str) -> ImportError:
    return ImportError(f"SesTransport needs {what}; {_EXTRA_HINT}")


def _message_id(response: Any) -> str | None:
    if isinstance(response, Mapping):
        value = response.get("MessageId")
        if isinstance(value, str) and value:
            return value
    return None


class _Client(abc.ABC):
    """A typed wrapper around one SESv2 client."""

    @abc.abstractmethod
    async def send_email(self, request: Mapping[str, Any]) -> str | None:
        """Make one SendEmail call; return the MessageId."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the client if this wrapper owns it."""


class _AioClient(_Client):
    """An aiobotocore client, called directly on asyncio."""

    def __init__(self, client: Any, context: Any | None) -> None:
        self._client = client
        self._context = context  # the creator context when we own the client

    @classmethod
    async def open(cls, settings: _Settings) -> _AioClient:
        try:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import AioSession
        except ImportError as exc:
            raise _missing_extra("aiobotocore on asyncio") from exc
        session = AioSession(profile=settings.profile)
        context = session.create_client(
            _SERVICE, config=AioConfig(**settings.config_kwargs()), **settings.client_kwargs()
        )
        client = await context.__aenter__()
        return cls(client, context)

    async def send_email(self, request: Mapping[str, Any]) -> str | None:
        if not running_on_asyncio():
            raise RuntimeError("an aiobotocore SES client can only be used on asyncio")
        return _message_id(await self._client.send_email(**request))

    async def aclose(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                await context.__aexit__(None, None, None)


class _ThreadClient(_Client):
    """A boto3 (botocore) client, called in a worker thread."""

    def __init__(self, client: Any, owned: bool) -> None:
        self._client = client
        self._owned = owned

    @classmethod
    async def open(cls, settings: _Settings) -> _ThreadClient:
        try:
            import boto3.session
            from botocore.config import Config
        except ImportError as exc:
            raise _missing_extra("boto3 when not on asyncio") from exc

        def create() -> Any:
            session = boto3.session.Session(profile_name=settings.profile)
            return session.client(
                _SERVICE, config=Config(**settings.config_kwargs()), **settings.client_kwargs()
            )

        return cls(await anyio.to_thread.run_sync(create), owned=True)

    async def send_email(self, request: Mapping[str, Any]) -> str | None:
        def call() -> Any:
            return self._client.send_email(**request)

        return _message_id(await anyio.to_thread.run_sync(call))

    async def aclose(self) -> None:
        if self._owned:
            self._owned = False
            with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                await anyio.to_thread.run_sync(self._client.close)


def _wrap_external(client: Any) -> _Client:
    send_email = getattr(client, "send_email", None)
    if send_email is None or not callable(send_email):
        raise TypeError("client must be an SESv2 client (aiobotocore or boto3) with send_email")
    # aiobotocore's methods are plain functions that return coroutines, so ask
    # its base class first (a user holding such a client has imported it).
    aio = sys.modules.get("aiobotocore.client")
    base = getattr(aio, "AioBaseClient", None) if aio is not None else None
    if (isinstance(base, type) and isinstance(client, base)) or inspect.iscoroutinefunction(
        send_email
    ):
        return _AioClient(client, None)
    return _ThreadClient(client, owned=False)


async def _open_client(settings: _Settings) -> _Client:
    """Make a client for the current event loop; configuration errors become SesError."""
    if importlib.util.find_spec("botocore") is None:
        raise _missing_extra("botocore")
    use_aio = running_on_asyncio() and importlib.util.find_spec("aiobotocore") is not None
    try:
        if use_aio:
            return await _AioClient.open(settings)
        return await _ThreadClient.open(settings)
    except _aws_exception_types() as exc:
        raise ses_error_from_exception(exc) from exc


# ---------------------------------------------------------------------------


class SesTransport(BaseTransport):
    """Send messages through Amazon SES (API v2 ``SendEmail`` with raw content).

    Credentials, region and endpoint come from the usual AWS chain
    (environment, shared config and credentials files, container and instance
    roles) unless given here. Inside ``async with transport:`` one client is
    made on entry and shared by every send until exit (or :meth:`aclose`);
    outside, each send makes a client and closes it when done. A ``client``
    passed in is used as is and never closed.

    Before any call, the transport checks SES's limits: more envelope
    recipients than ``max_recipients_per_call`` are split across several
    calls with the same bytes (or refused, when ``split_recipients`` is
    False); a message larger than ``max_message_size`` once base64 encoded
    and addresses that would need SMTPUTF8 raise :class:`~lettre.errors.SesError`.
    Non-ASCII domains are sent as A-labels.

    Args:
        region: the AWS region ("eu-west-1"); None uses the configured one.
        endpoint_url: another endpoint (a VPC endpoint, a local emulator).
        credentials: explicit credentials; None uses the AWS chain.
        profile: the shared-config profile to read settings from.
        client: an existing SESv2 client: an aiobotocore client (used on
            asyncio) or a boto3 client (called in a worker thread). The other
            client settings are then ignored.
        configuration_set: the SES configuration set of every message.
        tags: message tags (name -> value; ASCII letters, digits, ``_`` and
            ``-``, at most 256 characters each) for event publishing.
        feedback_forwarding_address: where SES sends bounce and complaint
            notifications (instead of the envelope's sender).
        max_recipients_per_call: recipients per ``SendEmail`` call (SES: 50).
        split_recipients: split larger envelopes across calls (True) or raise
            ``SesError(code="TooManyRecipients")`` (False).
        max_message_size: the largest message, in bytes after base64
            encoding (SES API v2: 40 MB).
        connect_timeout: seconds to connect to the endpoint, per attempt.
        read_timeout: seconds to wait for an answer, per attempt.
        max_attempts: attempts per call, retries included (botocore's
            standard retry mode retries throttling and 5xx with backoff).
        max_pool_connections: HTTP connections kept by a created client.
        dkim: one signer or several; each signs the bytes that are sent.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send
            (see :mod:`lettre.hooks`).

    Raises:
        ImportError: the ``ses`` extra (botocore) is not installed.
        ValueError: a setting is out of range or malformed.
    """

    transport_name = "ses"

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials: AwsCredentials | None = None,
        profile: str | None = None,
        client: Any | None = None,
        configuration_set: str | None = None,
        tags: Mapping[str, str] | None = None,
        feedback_forwarding_address: Address | str | None = None,
        max_recipients_per_call: int = DEFAULT_MAX_RECIPIENTS_PER_CALL,
        split_recipients: bool = True,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        max_pool_connections: int = 10,
        dkim: Signer | Sequence[Signer] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        super().__init__(dkim=dkim, hooks=hooks)
        if client is None and importlib.util.find_spec("botocore") is None:
            raise _missing_extra("botocore")
        if credentials is not None and not isinstance(credentials, AwsCredentials):
            raise TypeError("credentials must be an AwsCredentials")
        if isinstance(max_recipients_per_call, bool) or max_recipients_per_call < 1:
            raise ValueError("max_recipients_per_call must be a positive integer")
        if isinstance(max_message_size, bool) or max_message_size < 1:
            raise ValueError("max_message_size must be a positive integer")
        if not connect_timeout > 0 or not read_timeout > 0:
            raise ValueError("connect_timeout and read_timeout must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_pool_connections < 1:
            raise ValueError("max_pool_connections must be at least 1")
        if configuration_set is not None and not configuration_set:
            raise ValueError("configuration_set must be a non-empty name or None")
        tag_items: list[tuple[str, str]] = []
        for name, value in (tags or {}).items():
            if not _TAG_TEXT.match(name) or not _TAG_TEXT.match(value):
                raise ValueError(
                    f"invalid SES message tag {name!r}={value!r}: names and values take "
                    "1 to 256 ASCII letters, digits, '_' and '-'"
                )
            tag_items.append((name, value))
        feedback: str | None = None
        if feedback_forwarding_address is not None:
            address = Address.coerce(feedback_forwarding_address)
            if address.needs_smtputf8:
                raise ValueError("feedback_forwarding_address must have an ASCII local part")
            feedback = address.to_ascii()

        self._settings = _Settings(
            region=region,
            endpoint_url=endpoint_url,
            credentials=credentials,
            profile=profile,
            connect_timeout=float(connect_timeout),
            read_timeout=float(read_timeout),
            max_attempts=max_attempts,
            max_pool_connections=max_pool_connections,
        )
        self._options = _Options(
            configuration_set=configuration_set,
            tags=tuple(tag_items),
            feedback_forwarding_address=feedback,
        )
        self._max_recipients = max_recipients_per_call
        self._split = split_recipients
        self._max_size = max_message_size
        self._external: _Client | None = _wrap_external(client) if client is not None else None
        self._shared: _Client | None = None
        self._shared_loop: object = None  # the event loop the shared client belongs to
        self._depth = 0

    def __repr__(self) -> str:
        settings = self._settings
        parts = [
            f"region={settings.region!r}",
            f"endpoint_url={settings.endpoint_url!r}",
            f"credentials={settings.credentials!r}",
        ]
        if settings.profile is not None:
            parts.append(f"profile={settings.profile!r}")
        if self._external is not None:
            parts.append("client=<external>")
        if self._options.configuration_set is not None:
            parts.append(f"configuration_set={self._options.configuration_set!r}")
        return f"SesTransport({', '.join(parts)})"

    @property
    def max_recipients_per_call(self) -> int:
        """The most recipients one ``SendEmail`` call carries."""
        return self._max_recipients

    @property
    def max_message_size(self) -> int:
        """The largest message accepted, in bytes after base64 encoding."""
        return self._max_size

    async def __aenter__(self) -> Self:
        if self._depth == 0 and self._external is None and self._shared is None:
            self._shared = await _open_client(self._settings)
            self._shared_loop = current_loop()
        self._depth += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth = max(0, self._depth - 1)
        if self._depth == 0:
            await self.aclose()

    def for_new_process(self) -> Self:
        """A copy of this transport without its client, for a forked child.

        Raises:
            SesError: the transport was given a client (``client=``), which
                cannot be used in another process; make the transport (and
                its client) in the child instead.
        """
        if self._external is not None:
            raise SesError(
                "this SesTransport was made with client=..., which cannot be used in "
                "another process; make the transport (and its client) in that process (give "
                "BlockingTransport a function that makes the transport)",
                code="ClientNotCopyable",
                transient=False,
            )
        fresh = copy.copy(self)
        fresh._shared = None
        fresh._shared_loop = None
        fresh._depth = 0
        return fresh

    async def aclose(self) -> None:
        """Close the client the transport created (a client passed in stays open)."""
        self._depth = 0
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.aclose()

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[_Client]:
        reused = self._external
        if reused is None and self._shared is not None and self._shared_loop is current_loop():
            # The shared client's connections belong to the loop that opened it;
            # a send from another event loop makes a client of its own.
            reused = self._shared
        if reused is not None:
            yield reused
            return
        client = await _open_client(self._settings)
        try:
            yield client
        finally:
            await client.aclose()

    def _plan(self, envelope: Envelope, data: bytes) -> tuple[str | None, list[list[str]]]:
        """Check SES's limits; return the sender and the recipients of each call."""
        sender = (
            _ascii_address(envelope.reverse_path, "sender")
            if envelope.reverse_path is not None
            else None
        )
        recipients = [_ascii_address(a, "recipient") for a in envelope.forward_paths]
        if not recipients:
            raise SesError("the envelope has no recipients", code="NoRecipients", transient=False)
        encoded = _encoded_size(len(data))
        if encoded > self._max_size:
            raise SesError(
                f"the message is {len(data)} bytes, {encoded} once base64 encoded; "
                f"SES accepts at most {self._max_size}",
                code="MessageTooLarge",
                transient=False,
            )
        limit = self._max_recipients
        if len(recipients) > limit and not self._split:
            raise SesError(
                f"{len(recipients)} recipients, but one SES call takes at most {limit} "
                "(split_recipients is off)",
                code="TooManyRecipients",
                transient=False,
            )
        chunks = [recipients[i : i + limit] for i in range(0, len(recipients), limit)]
        return sender, chunks

    async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        """Send serialised message bytes to the envelope's recipients through SES.

        Args:
            envelope: the sender (``FromEmailAddress``, an SES-verified
                identity; the null reverse path leaves SES to use the From
                header) and the recipients (``Destination``).
            data: the message bytes, sent unchanged as ``Content.Raw``.

        Returns:
            A :class:`SendResult` whose ``transport_id`` is the SES MessageId
            (the MessageIds of every call, comma-separated, when the
            recipients were split). If a call after the first fails, its
            recipients and those of the calls not made are reported refused.

        Raises:
            SesError: a limit was exceeded (nothing was sent) or the first
                call failed; ``code`` holds the AWS error code and
                ``transient`` says whether retrying later may succeed.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        payload = bytes(data)
        sender, chunks = self._plan(envelope, payload)
        originals = [str(a) for a in envelope.forward_paths]
        handled = _aws_exception_types()
        message_ids: list[str] = []
        sent = 0  # recipients covered by the calls that succeeded, in envelope order
        failure: SesError | None = None
        async with self._client() as client:
            for index, chunk in enumerate(chunks):
                request = _build_request(sender, chunk, payload, self._options)
                try:
                    message_id = await client.send_email(request)
                except handled as exc:
                    error = ses_error_from_exception(exc)
                    if index == 0:
                        raise error from exc
                    # The AWS message may name addresses: log the code only.
                    logger.warning(
                        "SES call %d of %d failed (code %s, transient %s); "
                        "%d of %d recipients were accepted, the others are reported refused",
                        index + 1,
                        len(chunks),
                        error.code,
                        error.transient,
                        sent,
                        len(originals),
                    )
                    failure = error
                    break
                if message_id is not None:
                    message_ids.append(message_id)
                sent += len(chunk)
        results = tuple(
            RecipientResult(recipient=recipient, accepted=True)
            if position < sent
            else RecipientResult(recipient=recipient, accepted=False, error=failure)
            for position, recipient in enumerate(originals)
        )
        return SendResult(
            recipients=results,
            transport_id=",".join(message_ids) if message_ids else None,
        )
