"""Resend: messages through the ``POST /emails`` API.

The request is JSON built from the message (:mod:`lettre.transports.http.content`);
the API key goes in ``Authorization: Bearer``. Resend's email ``id`` becomes
``SendResult.transport_id``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from lettre.transports.http.base import (
    ApiRequest,
    ApiResponse,
    HttpApiTransport,
)
from lettre.transports.http.content import ParsedMessage, parse_message

if TYPE_CHECKING:
    from lettre.envelope import Envelope

__all__ = ["RESEND_BASE_URL", "ResendTransport", "resend_request"]

RESEND_BASE_URL = "https://api.resend.com"
"""Resend's API."""


def resend_request(message: ParsedMessage) -> ApiRequest:
    """The ``POST /emails`` request that sends ``message`` through Resend.

    Args:
        message: the parsed message.

    Returns:
        The request, with its JSON body.

    Raises:
        HttpApiError: a header field appears twice (Resend takes one value
            per name).
    """
    body: dict[str, Any] = {
        "from": message.from_.formatted,
        "to": [a.formatted for a in message.to],
        "subject": message.subject,
    }
    if message.cc:
        body["cc"] = [a.formatted for a in message.cc]
    if message.bcc:
        body["bcc"] = [a.formatted for a in message.bcc]
    if message.reply_to:
        body["reply_to"] = [a.formatted for a in message.reply_to]
    if message.text is not None:
        body["text"] = message.text
    if message.html is not None:
        body["html"] = message.html
    if message.headers:
        body["headers"] = message.headers_as_dict("Resend")
    if message.attachments:
        attachments = []
        for item in message.attachments:
            entry = {
                "filename": item.filename,
                "content": base64.b64encode(item.content).decode("ascii"),
                "content_type": item.content_type,
            }
            if item.content_id is not None:
                entry["content_id"] = item.content_id
            attachments.append(entry)
        body["attachments"] = attachments
    return ApiRequest("/emails", json=body)


class ResendTransport(HttpApiTransport):
    """Send messages through Resend's email API (``POST /emails``).

    The message is sent as Resend's JSON: from, to, cc and bcc (every
    envelope recipient not in To or Cc), subject, the text and HTML bodies,
    the attachments, reply_to and the other header fields (Message-ID
    included). Resend signs with your domain's DKIM key; ``dkim=`` is
    refused.

    Args:
        api_key: the Resend API key (``re_...``).
        base_url: another API address (a local stand-in in tests).
        timeout: seconds for each step of a request.
        deadline: seconds for a whole request.
        max_response_size: the most bytes of an answer that are read.
        trust_env: let httpx read proxy settings from the environment.
        dkim: must be None (see above).
        hooks: :class:`~lettre.hooks.Hook` objects told about every send.

    Raises:
        ImportError: httpx (the ``http`` extra) is not installed.
        ValueError: an empty key, a bad setting, or ``dkim`` given.
    """

    transport_name = "resend"
    service = "Resend"
    default_base_url = RESEND_BASE_URL

    def _build_request(self, envelope: Envelope, data: bytes) -> ApiRequest:
        return resend_request(parse_message(envelope, data, self.service))

    def _transport_id(self, response: ApiResponse) -> str | None:
        return response.json_string("id")

    def _error_detail(self, answer: dict[str, Any]) -> tuple[str | None, str] | None:
        name = answer.get("name")
        return (str(name) if name else None, str(answer.get("message") or ""))
