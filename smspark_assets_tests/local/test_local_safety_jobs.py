"""Training jobs cannot change stored data, and stopped jobs name only artifacts that exist (issue 9,
items 3 and 16)."""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import RunningService, _fake_aws_env
from local_service_helpers import FAST
from safety_helpers import TRAIN_ROWS, configure_safety_algorithm, safety_job
from smspark_assets.local import process
from smspark_assets.local.training import copy_file

pytestmark = [pytest.mark.timeout(180)]


def test_copy_file_shares_no_inode_and_copies_every_byte(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    payload = bytes(range(256)) * 40_000  # ~10 MB
    source.write_bytes(payload)
    target = tmp_path / "job" / "input" / "data" / "train" / "source.bin"
    copy_file(source, target)
    assert target.stat().st_ino != source.stat().st_ino
    assert hashlib.md5(target.read_bytes()).hexdigest() == hashlib.md5(payload).hexdigest()
    target.write_bytes(b"rewritten")
    assert hashlib.md5(source.read_bytes()).hexdigest() == hashlib.md5(payload).hexdigest()
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningService, Path]]:
    root = tmp_path_factory.mktemp("safety-jobs") / "root"
    with pytest.MonkeyPatch.context() as mp:
        _fake_aws_env(mp, root)
        stored = configure_safety_algorithm(root)
        info = process.start(root)
        try:
            yield RunningService(root, info.url), stored
        finally:
            process.stop(root)


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


@pytest.mark.integration
def test_a_job_that_rewrites_its_input_leaves_the_stored_object_unchanged(stack) -> None:
    service, stored = stack
    sm = service.sm
    sm.create_training_job(**safety_job("rewrites-input", mode="rewrite"))
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="rewrites-input", WaiterConfig=FAST)
    job = sm.describe_training_job(TrainingJobName="rewrites-input")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    # the job did rewrite its own copy ...
    staged = service.root / "local" / "training-jobs" / "rewrites-input" / "input" / "data" / "train" / "rows.csv"
    assert staged.read_bytes().startswith(b"tampered by the job")
    # ... and the stored object kept its bytes
    assert hashlib.md5(stored.read_bytes()).hexdigest() == hashlib.md5(TRAIN_ROWS).hexdigest()


@pytest.mark.integration
def test_a_stopped_job_publishes_what_its_model_folder_holds(stack) -> None:
    service, _ = stack
    sm = service.sm
    sm.create_training_job(**safety_job("stopped-with-model", {"MY_SETTING": "partial"}, mode="stop_after_write"))
    _wait_for(service.root / "local" / "training-jobs" / "stopped-with-model" / "model" / "env.json")
    sm.stop_training_job(TrainingJobName="stopped-with-model")
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="stopped-with-model",
                                                            WaiterConfig=FAST)
    job = sm.describe_training_job(TrainingJobName="stopped-with-model")
    assert job["TrainingJobStatus"] == "Stopped"
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == "s3://local-test/models/stopped-with-model/output/model.tar.gz"
    # read back through the object store's folder with tarfile (not through the code that wrote it)
    with tarfile.open(service.root / "s3" / uri[len("s3://"):]) as tar:
        assert tar.getnames() == ["env.json"]
        assert json.loads(tar.extractfile("env.json").read())["MY_SETTING"] == "partial"


@pytest.mark.integration
def test_a_job_stopped_before_writing_a_model_names_no_artifact(stack) -> None:
    service, _ = stack
    sm = service.sm
    sm.create_training_job(**safety_job("stopped-empty", mode="stop_before_write"))
    deadline = time.monotonic() + 60
    while sm.describe_training_job(TrainingJobName="stopped-empty")["SecondaryStatus"] != "Training":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    sm.stop_training_job(TrainingJobName="stopped-empty")
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="stopped-empty", WaiterConfig=FAST)
    job = sm.describe_training_job(TrainingJobName="stopped-empty")
    assert job["TrainingJobStatus"] == "Stopped"
    assert "ModelArtifacts" not in job
    assert not (service.root / "s3" / "local-test" / "models" / "stopped-empty").exists()


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("uri", ["s3://../local/state.sqlite", "s3://%2E%2E/local/config.json",
                                 "s3://a..b/key", "s3://UPPER/key"])
def test_sagemaker_refuses_bucket_names_s3_refuses(stack: tuple[RunningService, Path], uri: str) -> None:
    """Issue 9, item 2: a bucket named '..' resolved into .smspark/local/ through CreateModel."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        stack[0].sm.create_model(ModelName="escape", ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                                PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                                           "sagemaker-xgboost:1.7-1", "ModelDataUrl": uri})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "not a valid S3 URI" in refused.value.response["Error"]["Message"]
