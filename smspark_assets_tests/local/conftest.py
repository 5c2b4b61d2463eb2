"""Fixtures for the local service tests: a service on a temporary root and boto3 clients for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

from smspark_assets.local import process
from smspark_assets_tests.stack_access import stack_credentials


@dataclass
class RunningService:
    root: Path
    url: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            **stack_credentials(self.root),
            region_name="us-east-1",
        )

    @property
    def sm(self) -> Any:
        return self.client("sagemaker")

    @property
    def runtime(self) -> Any:
        return self.client("sagemaker-runtime")


def _fake_aws_env(mp: pytest.MonkeyPatch, root: Path) -> None:
    mp.setenv("SMSPARK_ROOT", str(root))
    # The stack verifies SigV4 with the root's generated credentials: create them and let boto3 use them.
    creds = stack_credentials(root)
    mp.setenv("AWS_ACCESS_KEY_ID", creds["aws_access_key_id"])
    mp.setenv("AWS_SECRET_ACCESS_KEY", creds["aws_secret_access_key"])
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        mp.delenv(var, raising=False)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A local service on a fresh temporary root, shared by one test module and stopped after it."""
    root = tmp_path_factory.mktemp("local-root")
    with pytest.MonkeyPatch.context() as mp:
        _fake_aws_env(mp, root)
        info = process.start(root)
        try:
            yield RunningService(root, info.url)
        finally:
            process.stop(root)


@pytest.fixture
def fresh_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary root for tests that start and stop the service themselves; stops any service left
    running."""
    root = tmp_path / "root"
    _fake_aws_env(monkeypatch, root)
    yield root
    process.stop(root)
