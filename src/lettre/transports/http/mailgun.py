"""Mailgun: the message's own bytes through ``POST /v3/{domain}/messages.mime``.

Mailgun takes the MIME message as it is, as a file field ``message`` of a
``multipart/form-data`` request, and the recipients as ``to`` fields (one per
envelope recipient, Bcc included: the bytes hold no Bcc header). The bytes
are not rebuilt, so a DKIM signature made by lettre stays valid. The API key
goes in HTTP basic authentication as ``api:KEY``. Mailgun's message ``id``
(without its angle brackets) becomes ``SendResult.transport_id``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from lettre.hooks import Hook
from lettre.transports.http.base import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_TIMEOUT,
    ApiRequest,
    ApiResponse,
    HttpApiError,
    HttpApiTransport,
    _regional_base_url,
)

if TYPE_CHECKING:
    from lettre.envelope import Envelope
    from lettre.signing import Signer

__all__ = ["MAILGUN_BASE_URLS", "MailgunTransport", "mailgun_request"]

MAILGUN_BASE_URLS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
"""Mailgun's API for domains in the US region (``"us"``) and the EU region (``"eu"``)."""


def mailgun_request(domain: str, recipients: Sequence[str], data: bytes) -> ApiRequest:
    """The ``messages.mime`` request that sends ``data`` to ``recipients``.

    Args:
        domain: the Mailgun sending domain.
        recipients: every envelope recipient (one ``to`` field each).
        data: the MIME message, sent unchanged.

    Returns:
        The request, a form with the message as a file.
    """
    return ApiRequest(
        f"/v3/{quote(domain, safe='')}/messages.mime",
        form=tuple(("to", recipient) for recipient in recipients),
        files=(("message", ("message.mime", data, "message/rfc822")),),
    )


class MailgunTransport(HttpApiTransport):
    """Send messages through Mailgun's MIME API (``/v3/{domain}/messages.mime``).

    The message's bytes go to Mailgun unchanged (signed, when ``dkim=`` is
    set), with every envelope recipient as a ``to`` field: Bcc recipients
    receive the message although no Bcc header is in the bytes.

    Args:
        api_key: the Mailgun API key (a sending key of the domain is enough).
        domain: the Mailgun sending domain (``mg.example.com``).
        region: ``"us"`` (the default) or ``"eu"``: where the domain was created.
        base_url: another API address; overrides ``region``.
        timeout: seconds for each step of a request.
        deadline: seconds for a whole request.
        max_response_size: the most bytes of an answer that are read.
        trust_env: let httpx read proxy settings from the environment.
        dkim: one signer or several; each signs the bytes that are sent.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send.

    Raises:
        ImportError: httpx (the ``http`` extra) is not installed.
        ValueError: an empty key or domain, an unknown region or a bad setting.
    """

    transport_name = "mailgun"
    service = "Mailgun"
    default_base_url = MAILGUN_BASE_URLS["us"]
    carries_signature = True

    def __init__(
        self,
        api_key: str,
        domain: str,
        *,
        region: Literal["us", "eu"] = "us",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        trust_env: bool = True,
        dkim: Signer | Sequence[Signer] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        url = _regional_base_url(MAILGUN_BASE_URLS, region, base_url)
        if not isinstance(domain, str) or not domain.strip() or "/" in domain:
            raise ValueError(f"domain must be a Mailgun sending domain name, not {domain!r}")
        super().__init__(
            api_key,
            base_url=url,
            timeout=timeout,
            deadline=deadline,
            max_response_size=max_response_size,
            trust_env=trust_env,
            dkim=dkim,
            hooks=hooks,
        )
        self._domain = domain.strip()

    @property
    def domain(self) -> str:
        """The Mailgun sending domain."""
        return self._domain

    def __repr__(self) -> str:
        return (
            f"MailgunTransport(domain={self._domain!r}, base_url={self._base_url!r}, api_key='***')"
        )

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        token = base64.b64encode(f"api:{api_key}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def _build_request(self, envelope: Envelope, data: bytes) -> ApiRequest:
        recipients = []
        for address in envelope.forward_paths:
            recipients.append(str(address) if address.needs_smtputf8 else address.to_ascii())
        if not recipients:  # pragma: no cover - an Envelope always has one
            raise HttpApiError(
                "the envelope has no recipients", service=self.service, transient=False
            )
        return mailgun_request(self._domain, recipients, data)

    def _transport_id(self, response: ApiResponse) -> str | None:
        value = response.json_string("id")
        return value.strip().strip("<>") if value is not None and value.strip("<> ") else None

    def _error_detail(self, answer: dict[str, Any]) -> tuple[str | None, str] | None:
        return (None, str(answer["message"])) if answer.get("message") else None
