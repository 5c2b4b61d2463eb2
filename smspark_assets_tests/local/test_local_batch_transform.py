"""Batch transform: record splitting and batching (unit), transform jobs through the service (integration)."""

from __future__ import annotations

import struct
import time

import boto3

from smspark_assets_tests.stack_access import stack_credentials_for_url
import numpy as np
import pytest
from botocore.exceptions import WaiterError

from local_service_helpers import BUCKET, CUSTOM_IMAGE, FAST, ROLE, configure_custom_algorithm, linear_job
from smspark_assets.local import process
from smspark_assets.local.transform import MB, TransformFailure, batch_bounds, line_records, recordio_records


def recordio(payloads: list[bytes]) -> bytes:
    out = b""
    for payload in payloads:
        out += struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\0" * (-len(payload) % 4)
    return out


def test_line_records_and_batches():
    data = b"1,2\n3,4\n5,6"  # the last line has no newline
    ends = line_records(data)
    assert ends.tolist() == [4, 8, 11]
    assert batch_bounds(ends, 8, multi=True) == [(0, 8), (8, 11)]
    assert batch_bounds(ends, 100, multi=True) == [(0, 11)]
    assert batch_bounds(ends, 100, multi=False) == [(0, 4), (4, 8), (8, 11)]
    with pytest.raises(TransformFailure, match="larger than MaxPayloadInMB"):
        batch_bounds(ends, 3, multi=True)
    assert batch_bounds(line_records(b""), 10, multi=True) == []


def test_batches_never_exceed_the_payload_and_cover_everything():
    rng = np.random.default_rng(3)
    lines = [b"x" * int(n) + b"\n" for n in rng.integers(1, 2000, size=5000)]
    data = b"".join(lines)
    bounds = batch_bounds(line_records(data), MB // 4, multi=True)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(data)
    assert all(b - a <= MB // 4 for a, b in bounds)
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1))
    assert all(data[b - 1:b] == b"\n" for _, b in bounds)  # whole records only


def test_recordio_records():
    payloads = [b"a", b"bcdef", b"ghij"]
    data = recordio(payloads)
    ends = recordio_records(data)
    assert ends.tolist() == [12, 28, 40]
    with pytest.raises(TransformFailure, match="magic"):
        recordio_records(b"\0" * 12)
    with pytest.raises(TransformFailure, match="truncated"):
        recordio_records(data[:-2])


@pytest.mark.integration
def test_transform_jobs(fresh_root):
    configure_custom_algorithm(fresh_root)
    info = process.start(fresh_root)
    kwargs = dict(
        endpoint_url=info.url,
        **stack_credentials_for_url(info.url),
        region_name="us-east-1",
    )
    sm = boto3.client("sagemaker", **kwargs)
    sm.create_training_job(**linear_job("linear-w2", w=2))
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="linear-w2", WaiterConfig=FAST)
    artifact = sm.describe_training_job(TrainingJobName="linear-w2")["ModelArtifacts"]["S3ModelArtifacts"]
    sm.create_model(
        ModelName="linear",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": CUSTOM_IMAGE, "ModelDataUrl": artifact},
    )
    rng = np.random.default_rng(0)
    inputs = fresh_root / "s3" / BUCKET / "batch-in"
    inputs.mkdir(parents=True)
    expected = {}
    for part, rows in (("part-0.csv", 20000), ("sub/part-1.csv", 7)):
        x = rng.integers(0, 100, size=(rows, 3))
        (inputs / part).parent.mkdir(parents=True, exist_ok=True)
        (inputs / part).write_text("\n".join(",".join(map(str, r)) for r in x) + "\n")
        expected[part] = x.sum(axis=1) * 2

    def job(name: str, **overrides) -> dict:
        request = {
            "TransformJobName": name,
            "ModelName": "linear",
            "MaxPayloadInMB": 1,
            "BatchStrategy": "MultiRecord",
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch-in"}
                },
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {
                "S3OutputPath": f"s3://{BUCKET}/batch-out/{name}",
                "Accept": "text/csv",
                "AssembleWith": "Line",
            },
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        }
        request.update(overrides)
        return request

    waiter = sm.get_waiter("transform_job_completed_or_stopped")
    sm.create_transform_job(**job("multi"))
    sm.create_transform_job(
        **job(
            "single",
            BatchStrategy="SingleRecord",
            TransformInput={
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch-in/sub"}
                },
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
        )
    )
    for name in ("multi", "single"):
        waiter.wait(TransformJobName=name, WaiterConfig=FAST)
        described = sm.describe_transform_job(TransformJobName=name)
        assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
        assert described["TransformEndTime"] >= described["TransformStartTime"]
    out = fresh_root / "s3" / BUCKET / "batch-out"
    for part, values in expected.items():
        got = np.loadtxt(out / "multi" / f"{part}.out")
        np.testing.assert_array_equal(np.atleast_1d(got), values)
    np.testing.assert_array_equal(np.loadtxt(out / "single" / "part-1.csv.out"), expected["sub/part-1.csv"])
    assert sorted(p.name for p in (out / "single").rglob("*.out")) == ["part-1.csv.out"]

    # a record larger than MaxPayloadInMB fails the job with the reason; errors have AWS's codes
    (fresh_root / "s3" / BUCKET / "huge").mkdir()
    (fresh_root / "s3" / BUCKET / "huge" / "big.csv").write_bytes(b"1" * (MB + 10) + b"\n")
    sm.create_transform_job(
        **job(
            "too-big",
            TransformInput={
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/huge"}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
        )
    )
    with pytest.raises(WaiterError):
        waiter.wait(TransformJobName="too-big", WaiterConfig=FAST)
    assert (
        "larger than MaxPayloadInMB" in sm.describe_transform_job(TransformJobName="too-big")["FailureReason"]
    )
    with pytest.raises(sm.exceptions.ClientError) as raised:
        sm.create_transform_job(**job("multi"))
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(sm.exceptions.ClientError) as raised:
        sm.create_transform_job(**job("no-model", ModelName="missing"))
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    # StopTransformJob: a one-request-per-row job over 20,000 rows is stopped part-way
    sm.create_transform_job(**job("to-stop", BatchStrategy="SingleRecord"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "TransformStartTime" not in sm.describe_transform_job(
        TransformJobName="to-stop"
    ):
        time.sleep(0.1)
    sm.stop_transform_job(TransformJobName="to-stop")
    waiter.wait(TransformJobName="to-stop", WaiterConfig=FAST)
    assert sm.describe_transform_job(TransformJobName="to-stop")["TransformJobStatus"] == "Stopped"
    assert not (out / "to-stop" / "part-0.csv.out").exists()
    with pytest.raises(sm.exceptions.ClientError) as raised:
        sm.stop_transform_job(TransformJobName="to-stop")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    summaries = sm.list_transform_jobs(SortBy="Name", SortOrder="Ascending")["TransformJobSummaries"]
    assert [s["TransformJobName"] for s in summaries] == ["multi", "single", "to-stop", "too-big"]
    assert (
        sm.list_transform_jobs(StatusEquals="Failed")["TransformJobSummaries"][0]["TransformJobName"]
        == "too-big"
    )
