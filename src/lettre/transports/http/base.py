"""What the HTTP email API transports share: the client, the answers, the errors.

Each service (Postmark, SendGrid, Mailgun, Resend) is a subclass of
:class:`HttpApiTransport` that says how it authenticates, builds one request
from a message (:class:`ApiRequest`) and reads the service's answer. Everything
else is here, once: one ``httpx.AsyncClient`` per event loop (made at the first
send on that loop), the timeouts, the bound on how much of an answer is read,
and the mapping of HTTP answers and network failures to :class:`HttpApiError`.

httpx is imported when the first client is made (the ``http`` extra:
``pip install 'lettre[http]'``), so importing this module costs nothing.
"""

from __future__ import annotations

import abc
import copy
import email.utils
import importlib.metadata
import importlib.util
import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

import anyio

from lettre._loops import call_in_loop, current_loop, loop_is_closed
from lettre.errors import HttpApiError
from lettre.hooks import Hook
from lettre.transports.base import BaseTransport, RecipientResult, SendResult, Signer

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Self

    from lettre.envelope import Envelope

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_TIMEOUT",
    "ApiRequest",
    "ApiResponse",
    "HttpApiError",
    "HttpApiTransport",
]

logger = logging.getLogger("lettre.http")

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds for each step of a request: connecting, each write, each read."""

DEFAULT_DEADLINE: Final = 120.0
"""Seconds a whole request may take, the upload and the answer included."""

DEFAULT_MAX_RESPONSE_SIZE: Final = 1024 * 1024
"""How many bytes of a service's answer are read at most (1 MiB)."""

_EXTRA_HINT = "install the 'http' extra: pip install 'lettre[http]'"
_CLOSE_TIMEOUT = 10.0
_QUOTE_LIMIT = 500  # characters of a service's error text quoted in an error message


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One POST to a service, as a service module builds it.

    Attributes:
        path: the path under the transport's ``base_url`` (``"/email"``).
        json: the JSON body, or None for a form.
        form: form fields (name, value), repeated names allowed, sent as
            ``multipart/form-data`` together with ``files``.
        files: file fields: (name, (filename, content, content type)).
    """

    path: str
    json: Any = None
    form: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, tuple[str, bytes, str]], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """A service's answer, read up to the transport's bound.

    Attributes:
        status: the HTTP status.
        headers: the answer's headers, names in lower case.
        body: the body, at most ``max_response_size`` bytes of it.
        truncated: True when the body was longer and the rest was not read.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    truncated: bool = False

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON (or was cut short)."""
        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def text(self) -> str:
        """The body as text (undecodable bytes replaced), whitespace collapsed."""
        return " ".join(self.body.decode("utf-8", "replace").split())

    def json_string(self, key: str) -> str | None:
        """The non-empty string at ``key`` of a JSON object body, or None."""
        answer = self.json()
        value = answer.get(key) if isinstance(answer, dict) else None
        return value if isinstance(value, str) and value else None


def _require_httpx(service: str) -> None:
    if importlib.util.find_spec("httpx") is None:
        raise ImportError(f"the {service} transport needs httpx; {_EXTRA_HINT}")


def _user_agent() -> str:
    try:
        return f"lettre/{importlib.metadata.version('lettre')}"
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a tree
        return "lettre"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait, from a ``Retry-After`` value (seconds, or an HTTP date).

    Returns None for a missing or unreadable value; never a negative number.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _regional_base_url(urls: Mapping[str, str], region: str, base_url: str | None) -> str:
    """``base_url`` if given, else the API address of the service's ``region``.

    Raises:
        ValueError: ``region`` is not one of ``urls``.
    """
    if region not in urls:
        names = " or ".join(repr(name) for name in urls)
        raise ValueError(f"region must be {names}, not {region!r}")
    return base_url if base_url is not None else urls[region]


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _QUOTE_LIMIT:
        text = text[:_QUOTE_LIMIT] + "..."
    return text


class HttpApiTransport(BaseTransport, abc.ABC):
    """The base of the HTTP email API transports (one subclass per service).

    A client (``httpx.AsyncClient``) is made at the first send of each event
    loop and kept for that loop's later sends, so connections are reused;
    :meth:`aclose` (or leaving ``async with transport:``) closes them. A
    closed transport can send again: the next send makes a new client.

    Every request is bounded: ``timeout`` for each step (connecting, each
    write, each read), ``deadline`` for the whole request, and at most
    ``max_response_size`` bytes of the answer are read. Redirects are never
    followed (the API key goes to ``base_url`` only).

    Args:
        api_key: the service's API key (or server token). Never shown in a
            repr, an error or a log.
        base_url: where the API is, instead of the service's own URL (a
            regional endpoint, or a local stand-in in tests).
        timeout: seconds for each step of a request.
        deadline: seconds for a whole request.
        max_response_size: the most bytes of an answer that are read.
        trust_env: let httpx read proxy and certificate settings from the
            environment (``HTTPS_PROXY``, ``SSL_CERT_FILE``...).
        dkim: DKIM signers: only for a service that receives the message's
            bytes (Mailgun); the JSON APIs rebuild the message, which would
            break any signature, and sign with your domain's key themselves.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send.

    Raises:
        ImportError: httpx (the ``http`` extra) is not installed.
        ValueError: an empty API key, a bad ``base_url``, a bound that is
            not positive, or DKIM signers on a JSON API.
    """

    service: ClassVar[str] = "HTTP API"
    """The service's name, as errors quote it."""

    default_base_url: ClassVar[str] = ""
    """The service's API address."""

    carries_signature: ClassVar[bool] = False
    """Whether the service sends the message's own bytes, so DKIM signatures survive."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        trust_env: bool = True,
        dkim: Signer | Sequence[Signer] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        super().__init__(dkim=dkim, hooks=hooks)
        _require_httpx(self.service)
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError(f"the {self.service} API key must be a non-empty string")
        if any(c in api_key for c in "\r\n"):
            raise ValueError(f"the {self.service} API key must not contain a line break")
        if self._signers and not self.carries_signature:
            raise ValueError(
                f"{type(self).__name__} cannot carry a DKIM signature: {self.service}'s API "
                "builds the message again from JSON, which breaks any signature made here. "
                f"Set up DKIM for your domain in {self.service} (it signs every message), "
                "or send with MailgunTransport or SMTP, which send the signed bytes"
            )
        if not timeout > 0 or not deadline > 0:
            raise ValueError("timeout and deadline must be positive numbers of seconds")
        if isinstance(max_response_size, bool) or max_response_size < 1:
            raise ValueError("max_response_size must be a positive number of bytes")
        url = (base_url if base_url is not None else self.default_base_url).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("base_url must not hold credentials; pass api_key")
        self._api_key = api_key
        self._base_url = url
        self._server = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self._timeout = float(timeout)
        self._deadline = float(deadline)
        self._max_response_size = max_response_size
        self._trust_env = trust_env
        self._clients: dict[object, httpx.AsyncClient] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what a service says

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        """The headers that authenticate every request (by default a bearer token)."""
        return {"Authorization": f"Bearer {api_key}"}

    @abc.abstractmethod
    def _build_request(self, envelope: Envelope, data: bytes) -> ApiRequest:
        """The request that sends ``data`` to the envelope's recipients."""

    @abc.abstractmethod
    def _transport_id(self, response: ApiResponse) -> str | None:
        """The service's id of the accepted message, from a 2xx answer."""

    @abc.abstractmethod
    def _error_detail(self, answer: dict[str, Any]) -> tuple[str | None, str] | None:
        """The service's error code (if any) and message, from an error answer's JSON object.

        None when the object does not hold them: the answer's text is quoted instead.
        """

    # ------------------------------------------------------------------ public surface

    @property
    def base_url(self) -> str:
        """Where the API is (no trailing slash)."""
        return self._base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r}, api_key='***')"

    def for_new_process(self) -> Self:
        """A copy of this transport with no client, for a forked child.

        It keeps the settings, the signers and the hooks.
        """
        fresh = copy.copy(self)
        fresh._clients = {}
        fresh._lock = threading.Lock()
        return fresh

    async def aclose(self) -> None:
        """Close the clients (and their connections) of every event loop.

        The calling loop's client is closed here; another live loop's is
        closed as a task of that loop, and a finished loop's is dropped.
        Shielded from cancellation; safe to call more than once. A later
        send makes a new client.
        """
        here = current_loop()
        with self._lock:
            clients, self._clients = self._clients, {}
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            for loop, client in clients.items():
                if loop is here:
                    await client.aclose()
                elif not loop_is_closed(loop):
                    call_in_loop(loop, client.aclose)

    # ------------------------------------------------------------------ sending

    def _error(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        transient: bool,
        outcome_unknown: bool = False,
    ) -> HttpApiError:
        return HttpApiError(
            message.replace(self._api_key, "***"),
            service=self.service,
            status=status,
            code=code,
            retry_after=retry_after,
            transient=transient,
            outcome_unknown=outcome_unknown,
        )

    def _client_here(self) -> httpx.AsyncClient:
        """The client of the event loop running the caller (made on first use)."""
        loop = current_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is not None:
                return client
            # A finished loop's connections cannot be closed from here, nor
            # used again: forget them.
            for gone in [other for other in self._clients if loop_is_closed(other)]:
                del self._clients[gone]
            import httpx

            headers = {"User-Agent": _user_agent(), "Accept": "application/json"}
            headers.update(self._auth_headers(self._api_key))
            client = httpx.AsyncClient(
                base_url=self._base_url,
                headers=headers,
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                trust_env=self._trust_env,
            )
            self._clients[loop] = client
            return client

    async def _post(self, request: ApiRequest) -> ApiResponse:
        """POST the request; the answer, read up to the bound."""
        import httpx

        client = self._client_here()
        kwargs: dict[str, Any] = {}
        if request.json is not None:
            kwargs["json"] = request.json
        else:
            form: dict[str, list[str]] = {}
            for name, value in request.form:
                form.setdefault(name, []).append(value)
            kwargs["data"] = form
            kwargs["files"] = list(request.files)
        limit = self._max_response_size
        where = f"{self.service} at {self._base_url}"
        try:
            with anyio.fail_after(self._deadline):
                async with client.stream("POST", request.path, **kwargs) as answer:
                    body = bytearray()
                    truncated = False
                    async for chunk in answer.aiter_bytes():
                        room = limit - len(body)
                        if len(chunk) > room:
                            body += chunk[:room]
                            truncated = True
                            break
                        body += chunk
                    headers = {k.lower(): v for k, v in answer.headers.items()}
                    return ApiResponse(answer.status_code, headers, bytes(body), truncated)
        except TimeoutError as exc:
            raise self._error(
                f"{where} did not answer within the deadline of {self._deadline:g} s; "
                "the message may or may not have been accepted",
                transient=True,
                outcome_unknown=True,
            ) from exc
        except httpx.TimeoutException as exc:
            unanswered = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            if unanswered:
                detail = "did not answer in time; the message may or may not have been accepted"
            else:
                detail = "could not be reached in time"
            raise self._error(
                f"{where} {detail} (timeout {self._timeout:g} s): {type(exc).__name__}",
                transient=True,
                outcome_unknown=unanswered,
            ) from exc
        except httpx.TransportError as exc:
            # A request sent whose answer was cut off may have been acted on.
            unanswered = isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError))
            detail = "; the message may or may not have been accepted" if unanswered else ""
            raise self._error(
                f"cannot reach {where}: {type(exc).__name__}: {exc}{detail}",
                transient=True,
                outcome_unknown=unanswered,
            ) from exc
        except httpx.HTTPError as exc:  # pragma: no cover - nothing else is raised here
            raise self._error(
                f"the request to {where} failed: {type(exc).__name__}: {exc}", transient=True
            ) from exc

    def _raise_for(self, response: ApiResponse) -> None:
        """Raise the :class:`HttpApiError` that a non-2xx answer means."""
        status = response.status
        answer = response.json()
        found = self._error_detail(answer) if isinstance(answer, dict) else None
        code, detail = found if found is not None else (None, response.text())
        detail = _quote(detail) or f"HTTP {status}"
        label = f"HTTP {status}" + (f", {code}" if code else "")
        service = self.service
        if status in (401, 403):
            raise self._error(
                f"{service} refused the request ({label}): {detail}; check the API key, "
                "its permissions and the sender's domain",
                status=status,
                code=code,
                transient=False,
            )
        if status == 429 or status >= 500 or status == 408:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            wait = (
                f"; retry after {retry_after:g} s" if retry_after is not None else "; retry later"
            )
            what = "is limiting the rate of requests" if status == 429 else "failed"
            raise self._error(
                f"{service} {what} ({label}): {detail}{wait}",
                status=status,
                code=code,
                retry_after=retry_after,
                transient=True,
            )
        if 300 <= status < 400:
            raise self._error(
                f"{service} answered with a redirect ({label}) to "
                f"{response.headers.get('location', '?')!r}; redirects are not followed: "
                "check base_url",
                status=status,
                code=code,
                transient=False,
            )
        raise self._error(
            f"{service} rejected the message ({label}): {detail}",
            status=status,
            code=code,
            transient=False,
        )

    async def _send_raw(self, envelope: Envelope, data: bytes) -> SendResult:
        """Send the message to every envelope recipient with one API request.

        The service takes or refuses the request as a whole: on success every
        recipient is accepted.

        Args:
            envelope: the recipients (To, Cc and Bcc alike); the reverse path
                is not sent (the services use their own bounce address).
            data: the message bytes: sent as they are to Mailgun, parsed
                into the API's JSON for the others.

        Returns:
            A :class:`SendResult` whose ``transport_id`` is the service's
            message id.

        Raises:
            HttpApiError: the service refused or failed the request, could
                not be reached, or the message cannot be expressed in its API.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        request = self._build_request(envelope, bytes(data))
        response = await self._post(request)
        if not 200 <= response.status < 300:
            self._raise_for(response)
        transport_id = self._transport_id(response)
        if response.truncated:
            logger.warning(
                "%s accepted the message (HTTP %d) but its answer was larger than %d bytes; "
                "the rest was not read",
                self.service,
                response.status,
                self._max_response_size,
            )
        logger.debug("%s accepted the message (id %s)", self.service, transport_id)
        return SendResult(
            recipients=tuple(
                RecipientResult(recipient=str(address), accepted=True)
                for address in envelope.forward_paths
            ),
            transport_id=transport_id,
        )
