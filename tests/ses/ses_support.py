"""Helpers shared by the SES tests: constants and a handle on the moto server."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3

from lettre.transports.ses import AwsCredentials, SesTransport

REGION = "us-east-1"
CREDENTIALS = AwsCredentials("AKIDTESTING", "testing-secret")
SENDER = "sender@example.com"
HTTP_TIMEOUT = 10.0


@dataclass
class Moto:
    """Handles on the moto server: reset, identities, what it "sent"."""

    url: str
    admin: Any  # a boto3 SESv2 client for setting the server up

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            assert response.status == 200

    def verify(self, identity: str) -> None:
        self.admin.create_email_identity(EmailIdentity=identity)

    def raw_messages(self) -> list[dict[str, Any]]:
        """The raw messages moto stored, oldest first."""
        with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=HTTP_TIMEOUT) as r:
            data = json.load(r)
        messages: list[dict[str, Any]] = data["ses"]["RawMessage"]
        return messages

    def transport(self, **kwargs: Any) -> SesTransport:
        kwargs.setdefault("region", REGION)
        kwargs.setdefault("endpoint_url", self.url)
        kwargs.setdefault("credentials", CREDENTIALS)
        kwargs.setdefault("max_attempts", 1)
        return SesTransport(**kwargs)

    def boto3_client(self) -> Any:
        return boto3.client(
            "sesv2",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS.access_key_id,
            aws_secret_access_key=CREDENTIALS.secret_access_key,
        )
