"""Transports for HTTP email APIs: Postmark, SendGrid, Mailgun and Resend.

They need the ``http`` extra (``pip install 'lettre[http]'``: httpx); it is
imported when a transport makes its first client. Mailgun receives the
message's own bytes (raw MIME); Postmark, SendGrid and Resend receive JSON
built from them (:mod:`lettre.transports.http.content`). Every failure is an
:class:`HttpApiError`.
"""

from __future__ import annotations

from lettre.transports.http.base import ApiRequest, ApiResponse, HttpApiError, HttpApiTransport
from lettre.transports.http.mailgun import MailgunTransport
from lettre.transports.http.postmark import PostmarkTransport
from lettre.transports.http.resend import ResendTransport
from lettre.transports.http.sendgrid import SendGridTransport

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "HttpApiError",
    "HttpApiTransport",
    "MailgunTransport",
    "PostmarkTransport",
    "ResendTransport",
    "SendGridTransport",
]
