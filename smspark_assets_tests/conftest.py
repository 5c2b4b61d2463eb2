"""Fixtures shared by every test: fake AWS credentials and a temporary local-stack root."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def _aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: fake credentials and a fixed region for boto3 and moto."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def smspark_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``SMSPARK_ROOT`` in the local environment."""
    root = tmp_path / "smspark"
    root.mkdir()
    monkeypatch.setenv("SMSPARK_ROOT", str(root))
    monkeypatch.setenv("SMSPARK_ENV", "local")
    # Code under test that runs "inside a job" maps s3:// to this root's store, as the embedded EMR's jobs do.
    monkeypatch.setenv("SMSPARK_EMRFS_ROOT", str(root / "s3"))
    return root


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory):
    """One embedded stack for the platform tests that talk to it over the wire (stopped at the end)."""
    from smspark_assets.local import process

    root = tmp_path_factory.mktemp("stack") / "smspark"
    info = process.start(root)
    try:
        yield root, info.url
    finally:
        process.stop(root)


@pytest.fixture(autouse=True)
def fresh_boto3_default_session() -> Iterator[None]:
    """A ``boto3.client(...)`` without a session caches boto3's default session, and with it the
    credentials found at that moment; a later test pointing the SDK at another stack would sign with them.
    Every test starts and ends without one."""
    import boto3

    boto3.DEFAULT_SESSION = None
    yield
    boto3.DEFAULT_SESSION = None
