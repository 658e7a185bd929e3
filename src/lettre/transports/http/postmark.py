"""Postmark: messages through the ``POST /email`` API.

The request is JSON built from the message (:mod:`lettre.transports.http.content`);
the server token goes in the ``X-Postmark-Server-Token`` header. Postmark's
``MessageID`` becomes ``SendResult.transport_id``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from lettre.hooks import Hook
from lettre.transports.http.base import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_TIMEOUT,
    ApiRequest,
    ApiResponse,
    HttpApiTransport,
)
from lettre.transports.http.content import ParsedMessage, parse_message

if TYPE_CHECKING:
    from lettre.envelope import Envelope
    from lettre.signing import Signer

__all__ = ["POSTMARK_BASE_URL", "PostmarkTransport", "postmark_request"]

POSTMARK_BASE_URL = "https://api.postmarkapp.com"
"""Postmark's API."""


def postmark_request(message: ParsedMessage, message_stream: str | None = None) -> ApiRequest:
    """The ``POST /email`` request that sends ``message`` through Postmark.

    Args:
        message: the parsed message.
        message_stream: the message stream (Postmark's default, ``outbound``,
            when None).

    Returns:
        The request, with its JSON body.
    """
    body: dict[str, Any] = {
        "From": message.from_.formatted,
        "To": ", ".join(a.formatted for a in message.to),
        "Subject": message.subject,
    }
    if message.cc:
        body["Cc"] = ", ".join(a.formatted for a in message.cc)
    if message.bcc:
        body["Bcc"] = ", ".join(a.formatted for a in message.bcc)
    if message.reply_to:
        body["ReplyTo"] = ", ".join(a.formatted for a in message.reply_to)
    if message.text is not None:
        body["TextBody"] = message.text
    if message.html is not None:
        body["HtmlBody"] = message.html
    if message.headers:
        body["Headers"] = [{"Name": name, "Value": value} for name, value in message.headers]
    if message.attachments:
        attachments = []
        for item in message.attachments:
            entry = {
                "Name": item.filename,
                "Content": base64.b64encode(item.content).decode("ascii"),
                "ContentType": item.content_type,
            }
            if item.content_id is not None:
                # Postmark's inline parts are named "cid:<id>".
                entry["ContentID"] = f"cid:{item.content_id}"
            attachments.append(entry)
        body["Attachments"] = attachments
    if message_stream is not None:
        body["MessageStream"] = message_stream
    return ApiRequest("/email", json=body)


class PostmarkTransport(HttpApiTransport):
    """Send messages through Postmark's email API (``POST /email``).

    The message is sent as Postmark's JSON: From, To, Cc and Bcc (every
    envelope recipient not in To or Cc), Subject, the text and HTML bodies,
    the attachments, Reply-To and the other header fields (Message-ID
    included). Postmark signs with your domain's DKIM key; ``dkim=`` is
    refused.

    Args:
        server_token: the Postmark server's API token.
        message_stream: the message stream to send through (Postmark's
            default, ``outbound``, when None).
        base_url: another API address (a local stand-in in tests).
        timeout: seconds for each step of a request.
        deadline: seconds for a whole request.
        max_response_size: the most bytes of an answer that are read.
        trust_env: let httpx read proxy settings from the environment.
        dkim: must be None (see above).
        hooks: :class:`~lettre.hooks.Hook` objects told about every send.

    Raises:
        ImportError: httpx (the ``http`` extra) is not installed.
        ValueError: an empty token, a bad setting, or ``dkim`` given.
    """

    transport_name = "postmark"
    service = "Postmark"
    default_base_url = POSTMARK_BASE_URL

    def __init__(
        self,
        server_token: str,
        *,
        message_stream: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        trust_env: bool = True,
        dkim: Signer | Sequence[Signer] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        super().__init__(
            server_token,
            base_url=base_url,
            timeout=timeout,
            deadline=deadline,
            max_response_size=max_response_size,
            trust_env=trust_env,
            dkim=dkim,
            hooks=hooks,
        )
        if message_stream is not None and not message_stream:
            raise ValueError("message_stream must be a non-empty name or None")
        self._message_stream = message_stream

    def _auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-Postmark-Server-Token": api_key}

    def _build_request(self, envelope: Envelope, data: bytes) -> ApiRequest:
        return postmark_request(parse_message(envelope, data, self.service), self._message_stream)

    def _transport_id(self, response: ApiResponse) -> str | None:
        answer = response.json()
        if isinstance(answer, dict) and answer.get("ErrorCode", 0) not in (0, None):
            # A 200 that still reports an error: treat it as the error it is.
            self._raise_for(ApiResponse(422, response.headers, response.body))
        return response.json_string("MessageID")

    def _error_detail(self, answer: dict[str, Any]) -> tuple[str | None, str] | None:
        code = answer.get("ErrorCode")
        return (str(code) if code is not None else None, str(answer.get("Message") or ""))
