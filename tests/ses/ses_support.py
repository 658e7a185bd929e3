"""Helpers shared by the SES tests: constants, a handle on the moto server, its fixtures.

The fixtures (``moto_server``, ``aws_environment``, ``moto``) are imported by
the conftest files of the tests that talk to moto.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

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


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto server on a loopback port, for the session; yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the user's AWS configuration out of the test; the test credentials and region in."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SESV2",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def moto(moto_server: str, aws_environment: None) -> Moto:
    """The moto server, reset, with SENDER verified."""
    handle = Moto(moto_server, None)
    handle.admin = handle.boto3_client()
    handle.reset()
    handle.verify(SENDER)
    return handle
