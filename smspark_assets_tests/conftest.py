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


# Test files that share one expensive session fixture (the demo flow: a whole run of the graph) go to one
# xdist worker together; every other file is its own unit. Keys are path prefixes of the tests' node ids.
SHARED_FIXTURE_FOLDERS = {"smspark_assets_tests/flow/": "demo_flow"}
# The longest units (from the suite's --durations list), started first so that neither worker is left with
# a long one at the end while the other idles. Everything else keeps its collection order.
LONGEST_FIRST = (
    "smspark_assets_tests/flow/",                                      # ~400 s: the demo flow and its tests
    "smspark_assets_tests/lifecycle/test_lifecycle_champion_flow.py",  # ~180 s
    "smspark_assets_tests/monitoring/test_monitoring_drift_assets.py",  # ~150 s
    "smspark_assets_tests/dagster_ui/test_dagster_ui_per_day.py",      # ~100 s
    "smspark_assets_tests/benchmarks/test_scale_smoke.py",             # ~100 s
)


def _rank(nodeid: str) -> int:
    return next((i for i, prefix in enumerate(LONGEST_FIRST) if nodeid.startswith(prefix)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest test files first (a stable sort: the order inside a file is kept)."""
    items.sort(key=lambda item: _rank(item.nodeid))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``make test`` runs on 2 workers (pytest-xdist). A worker takes a whole test file, as ``--dist
    loadfile`` does: its module-scoped stack or Spark session is built once and its tests run in order
    (several build on the state the previous ones left). The demo flow's files are one unit. Units go out
    in collection order (longest first, see ``LONGEST_FIRST``), not xdist's most-tests-first."""
    from xdist.scheduler import LoadFileScheduling

    class FilesAndSharedFixtures(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return next((unit for prefix, unit in SHARED_FIXTURE_FOLDERS.items() if path.startswith(prefix)), path)

    config.option.loadscopereorder = False
    return FilesAndSharedFixtures(config, log)
