"""Fixtures for the s3 test service (see docs/testing.md): moto's S3 server on 127.0.0.1.

- ``s3_server`` (session): starts one ``ThreadedMotoServer`` on a free loopback port and
  yields its endpoint URL, ``http://127.0.0.1:PORT``.
- ``s3_bucket`` (per test): a fresh, empty bucket, and the environment set so that boto3,
  and so ``open_backend("s3://…")``, reach moto: ``AWS_ENDPOINT_URL``, test credentials,
  region ``us-east-1``. It yields an :class:`S3Bucket`; ``s3_bucket.storage_url("prefix")`` is
  the ``s3://`` URL to give a project. The server is reset after each test.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Bucket:
    endpoint_url: str
    name: str
    client: Any  # a boto3 S3 client on the endpoint, to look at what the code under test stored

    def storage_url(self, prefix: str = "") -> str:
        """Return ``s3://<bucket>/<prefix>``, the storage URL of a project in this bucket."""
        return f"s3://{self.name}/{prefix}".rstrip("/")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Yield the endpoint URL of moto's S3 server, started once per test session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
        host, port = server.get_host_and_port()
    except Exception as e:  # noqa: BLE001 - any failure to start is reported the same way
        pytest.fail(f"moto's S3 server did not start on 127.0.0.1: {e!r}", pytrace=False)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """Yield a fresh bucket on moto, with the environment pointing boto3 at it."""
    import boto3
    from botocore.config import Config

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    name = f"ama-test-{secrets.token_hex(6)}"
    client.create_bucket(Bucket=name)
    try:
        yield S3Bucket(s3_server, name, client)
    finally:
        requests.post(f"{s3_server}/moto-api/reset", timeout=30).raise_for_status()
