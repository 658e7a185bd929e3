"""SendGrid: messages through the v3 ``POST /v3/mail/send`` API.

The request is JSON built from the message (:mod:`lettre.transports.http.content`),
with one personalization holding To, Cc and Bcc; the API key goes in
``Authorization: Bearer``. SendGrid answers 202 with the message id in the
``X-Message-Id`` header, which becomes ``SendResult.transport_id``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from lettre.hooks import Hook
from lettre.transports.http.base import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_TIMEOUT,
    ApiRequest,
    ApiResponse,
    HttpApiTransport,
    _regional_base_url,
)
from lettre.transports.http.content import ApiAddress, ParsedMessage, parse_message

if TYPE_CHECKING:
    from lettre.envelope import Envelope
    from lettre.signing import Signer

__all__ = ["SENDGRID_BASE_URLS", "SendGridTransport", "sendgrid_request"]

SENDGRID_BASE_URLS = {"us": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
"""SendGrid's API for global accounts (``"us"``) and for EU regional subusers (``"eu"``)."""


def _person(address: ApiAddress) -> dict[str, str]:
    entry = {"email": address.email}
    if address.name:
        entry["name"] = address.name
    return entry


def sendgrid_request(message: ParsedMessage) -> ApiRequest:
    """The ``POST /v3/mail/send`` request that sends ``message`` through SendGrid.

    Args:
        message: the parsed message.

    Returns:
        The request, with its JSON body.

    Raises:
        HttpApiError: a header field appears twice (SendGrid takes one
            value per name).
    """
    personalization: dict[str, Any] = {"to": [_person(a) for a in message.to]}
    if message.cc:
        personalization["cc"] = [_person(a) for a in message.cc]
    if message.bcc:
        personalization["bcc"] = [_person(a) for a in message.bcc]
    body: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _person(message.from_),
        "subject": message.subject,
    }
    if len(message.reply_to) == 1:
        body["reply_to"] = _person(message.reply_to[0])
    elif message.reply_to:
        body["reply_to_list"] = [_person(a) for a in message.reply_to]
    content = []
    # SendGrid wants text/plain first, then text/html.
    if message.text is not None:
        content.append({"type": "text/plain", "value": message.text})
    if message.html is not None:
        content.append({"type": "text/html", "value": message.html})
    if content:
        body["content"] = content
    if message.headers:
        body["headers"] = message.headers_as_dict("SendGrid")
    if message.attachments:
        attachments = []
        for item in message.attachments:
            entry = {
                "content": base64.b64encode(item.content).decode("ascii"),
                "type": item.content_type,
                "filename": item.filename,
                "disposition": "inline" if item.inline else "attachment",
            }
            if item.content_id is not None:
                entry["content_id"] = item.content_id
            attachments.append(entry)
        body["attachments"] = attachments
    return ApiRequest("/v3/mail/send", json=body)


class SendGridTransport(HttpApiTransport):
    """Send messages through SendGrid's v3 Mail Send API.

    The message is sent as SendGrid's JSON: one personalization with To, Cc
    and Bcc (every envelope recipient not in To or Cc), from, subject, the
    text and HTML contents, the attachments, reply_to and the other header
    fields (Message-ID included). SendGrid signs with your domain's DKIM key
    (domain authentication); ``dkim=`` is refused.

    Args:
        api_key: the SendGrid API key (``SG....``), with the Mail Send permission.
        region: ``"us"`` (global, the default) or ``"eu"`` (EU regional subusers).
        base_url: another API address; overrides ``region``.
        timeout: seconds for each step of a request.
        deadline: seconds for a whole request.
        max_response_size: the most bytes of an answer that are read.
        trust_env: let httpx read proxy settings from the environment.
        dkim: must be None (see above).
        hooks: :class:`~lettre.hooks.Hook` objects told about every send.

    Raises:
        ImportError: httpx (the ``http`` extra) is not installed.
        ValueError: an empty key, an unknown region, a bad setting, or ``dkim`` given.
    """

    transport_name = "sendgrid"
    service = "SendGrid"
    default_base_url = SENDGRID_BASE_URLS["us"]

    def __init__(
        self,
        api_key: str,
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
        super().__init__(
            api_key,
            base_url=_regional_base_url(SENDGRID_BASE_URLS, region, base_url),
            timeout=timeout,
            deadline=deadline,
            max_response_size=max_response_size,
            trust_env=trust_env,
            dkim=dkim,
            hooks=hooks,
        )

    def _build_request(self, envelope: Envelope, data: bytes) -> ApiRequest:
        return sendgrid_request(parse_message(envelope, data, self.service))

    def _transport_id(self, response: ApiResponse) -> str | None:
        return response.headers.get("x-message-id") or None

    def _error_detail(self, answer: dict[str, Any]) -> tuple[str | None, str] | None:
        if not isinstance(answer.get("errors"), list):
            return None
        texts = []
        for item in answer["errors"]:
            if not isinstance(item, dict):
                continue
            text = str(item.get("message") or "")
            where = item.get("field")
            texts.append(f"{where}: {text}" if where else text)
        return None, "; ".join(texts)
