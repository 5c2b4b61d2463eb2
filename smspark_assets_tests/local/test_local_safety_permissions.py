"""The state folder is private: 0700 folders and 0600 files, whatever the caller's umask (issue 9, item 5)."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import RunningService
from local_service_helpers import FAST, ROLE, csv_rows
from safety_helpers import SAFETY_IMAGE, configure_safety_algorithm, safety_job, walk
from smspark_assets.local import process
from smspark_assets.local.endpoints import _extract
from smspark_assets.local.private_files import create_private_file, open_private, private_dir

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def loose_umask():
    """The umask most desktops have (0o022): what the service's writers must not depend on."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_private_writers_ignore_a_loose_umask(tmp_path: Path, loose_umask) -> None:
    folder = private_dir(tmp_path / "a" / "b")
    assert (_mode(tmp_path / "a"), _mode(folder)) == (0o700, 0o700)
    with open_private(folder / "log", "ab") as fh:
        fh.write(b"x")
    create_private_file(folder / "db")
    assert (_mode(folder / "log"), _mode(folder / "db")) == (0o600, 0o600)
    old = folder / "old.log"
    old.write_bytes(b"")
    os.chmod(old, 0o644)
    with open_private(old, "ab"):
        pass
    assert _mode(old) == 0o600


def test_model_archives_extract_privately(tmp_path: Path, loose_umask) -> None:
    source = tmp_path / "model"
    source.mkdir(mode=0o755)
    (source / "weights.json").write_text("{}")
    os.chmod(source / "weights.json", 0o644)
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=".")
    target = tmp_path / "endpoint" / "model"
    _extract(archive, target)
    assert _mode(target / "weights.json") == 0o600 and _mode(target) == 0o700
    assert (target / "weights.json").read_text() == "{}"


@pytest.mark.integration
def test_nothing_under_the_root_is_group_or_world_readable_after_a_run(tmp_path, monkeypatch, loose_umask):
    root = tmp_path / "root"
    monkeypatch.setenv("SMSPARK_ROOT", str(root))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    # An older version made the root and local/ world-readable: starting must tighten them.
    (root / "local").mkdir(parents=True, mode=0o755)
    os.chmod(root, 0o755)
    os.chmod(root / "local", 0o755)
    configure_safety_algorithm(root)
    try:
        info = process.start(root)
        service = RunningService(root, info.url)
        sm = service.sm
        sm.create_training_job(**safety_job("private-job", {"MY_SETTING": "x"}))
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="private-job", WaiterConfig=FAST)
        job = sm.describe_training_job(TrainingJobName="private-job")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        sm.create_model(ModelName="private-model", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": SAFETY_IMAGE, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
        sm.create_endpoint_config(EndpointConfigName="private-model", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "private-model", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName="private-model", EndpointConfigName="private-model")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="private-model", WaiterConfig=FAST)
        service.runtime.invoke_endpoint(EndpointName="private-model", ContentType="text/csv",
                                        Body=csv_rows(np.ones((2, 2))))
        dynamodb = service.client("dynamodb")
        dynamodb.create_table(TableName="private", BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        dynamodb.put_item(TableName="private", Item={"id": {"S": "a"}})
        # while running: the endpoint's extracted model, logs, journal, state database
        open_now = [p for p in walk(root) if _mode(p) & 0o077]
        assert open_now == [], [f"{p} {oct(_mode(p))}" for p in open_now]
    finally:
        process.stop(root)
    assert (root / "local" / "dynamodb.pickle").exists()  # the snapshot written at stop
    readable = [f"{p.relative_to(root)} {oct(_mode(p))}" for p in walk(root) if _mode(p) & 0o077]
    assert readable == []
    assert _mode(root) == 0o700
