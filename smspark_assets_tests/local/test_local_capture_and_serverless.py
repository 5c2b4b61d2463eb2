"""Data capture in SageMaker's layout and encodings, DataCaptureConfigSummary; serverless variants: validation,
cold start on first invoke (ModelSetupTime), stop after idle, 4 MB payload limit, CurrentServerlessConfig."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from deployment_helpers import configure_guarded_algorithm, endpoint_config, train_model
from local_service_helpers import BUCKET, FAST
from smspark_assets.local import process
from stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

KEY_RE = re.compile(r"^captures/(?P<endpoint>[^/]+)/AllTraffic/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/(?P<h>\d\d)/"
                    r"\d\d-\d\d-\d{3}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.jsonl$")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any]]:
    root = tmp_path_factory.mktemp("capture-root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(root))
        configure_guarded_algorithm(root, capture_rotate_seconds=1, serverless_idle_seconds=2)
        info = process.start(root)
        try:
            sm = stack_client(root, info.url, "sagemaker")
            train_model(sm, "w2", w=2)
            yield root, info, sm
        finally:
            process.stop(root)


def _capture(percent: int, **header: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"EnableCapture": True, "InitialSamplingPercentage": percent,
                              "DestinationS3Uri": f"s3://{BUCKET}/captures",
                              "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
    if header:
        config["CaptureContentTypeHeader"] = header
    return config


def _captured(s3: Any, endpoint: str, at_least: int) -> list[tuple[str, dict[str, Any]]]:
    deadline = time.time() + 20
    while True:
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"captures/{endpoint}/") for o in page.get("Contents", [])]
        records = [(k, json.loads(line)) for k in keys
                   for line in s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode().splitlines()]
        if len(records) >= at_least or time.time() > deadline:
            return records
        time.sleep(0.3)


def test_capture_files_appear_in_sagemakers_layout(stack) -> None:
    root, info, sm = stack
    s3 = stack_client(root, info.url, "s3")
    runtime = stack_client(root, info.url, "sagemaker-runtime")
    sm.create_endpoint(EndpointName="cap", EndpointConfigName=endpoint_config(
        sm, "cap", "w2", DataCaptureConfig=_capture(100, CsvContentTypes=["text/csv"],
                                                    JsonContentTypes=["application/json"])))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="cap", WaiterConfig=FAST)
    before = dt.datetime.now(dt.timezone.utc)
    answers = []
    for i in range(5):
        response = runtime.invoke_endpoint(EndpointName="cap", ContentType="text/csv", Body=f"{i},1\n".encode(),
                                           InferenceId=f"inf-{i}")
        answers.append(response["Body"].read())
    records = _captured(s3, "cap", 5)
    assert len(records) == 5
    for key, _ in records:
        match = KEY_RE.match(key)
        assert match, key
        assert match["endpoint"] == "cap"
        assert int(match["h"]) in (before.hour, (before.hour + 1) % 24)  # the UTC hour of the invocation
    by_id = {r["eventMetadata"].get("inferenceId"): r for _, r in records}
    for i in range(5):
        record = by_id[f"inf-{i}"]
        assert record["eventVersion"] == "0"
        assert record["captureData"]["endpointInput"] == {
            "observedContentType": "text/csv", "mode": "INPUT", "data": f"{i},1\n", "encoding": "CSV"}
        output = record["captureData"]["endpointOutput"]
        assert output["mode"] == "OUTPUT" and output["encoding"] == "JSON"
        assert output["data"] == answers[i].decode()
        assert re.fullmatch(r"[0-9a-f-]{36}", record["eventMetadata"]["eventId"])
        inferred = dt.datetime.fromisoformat(record["eventMetadata"]["inferenceTime"].replace("Z", "+00:00"))
        assert abs((inferred - before).total_seconds()) < 60
    summary = sm.describe_endpoint(EndpointName="cap")["DataCaptureConfig"]
    assert summary == {"EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 100,
                       "DestinationS3Uri": f"s3://{BUCKET}/captures"}


def test_capture_samples_and_input_only(stack) -> None:
    root, info, sm = stack
    s3 = stack_client(root, info.url, "s3")
    runtime = stack_client(root, info.url, "sagemaker-runtime")
    config = _capture(50)
    config["CaptureOptions"] = [{"CaptureMode": "Input"}]
    sm.create_endpoint(EndpointName="half", EndpointConfigName=endpoint_config(sm, "half", "w2",
                                                                                DataCaptureConfig=config))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="half", WaiterConfig=FAST)
    for _ in range(200):
        runtime.invoke_endpoint(EndpointName="half", ContentType="text/csv", Body=b"1,1\n")["Body"].read()
    time.sleep(2.5)
    records = _captured(s3, "half", 200)
    assert 60 < len(records) < 140  # a 50 % sample of 200 (binomial: outside this is < 1e-7)
    assert all(set(r["captureData"]) == {"endpointInput"} for _, r in records)
    # no CaptureContentTypeHeader: the data is base64-encoded
    assert all(r["captureData"]["endpointInput"]["encoding"] == "BASE64" for _, r in records)
    assert {base64.b64decode(r["captureData"]["endpointInput"]["data"]) for _, r in records} == {b"1,1\n"}


def test_capture_config_is_validated(stack) -> None:
    root, info, sm = stack
    raw = stack_client(root, info.url, "sagemaker", parameter_validation=False)
    bad = {
        "percent above 100": {**_capture(101)},
        "no options": {**_capture(10), "CaptureOptions": []},
        "bad mode": {**_capture(10), "CaptureOptions": [{"CaptureMode": "Both"}]},
        "escaping bucket": {**_capture(10), "DestinationS3Uri": "s3://../local"},
        "not s3": {**_capture(10), "DestinationS3Uri": "file:///tmp/x"},
    }
    for what, config in bad.items():
        with pytest.raises(ClientError) as error:
            raw.create_endpoint_config(EndpointConfigName="bad-capture", ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": "w2", "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large"}], DataCaptureConfig=config)
        assert error.value.response["Error"]["Code"] == "ValidationException", what


def test_serverless_cold_start_idle_stop_and_limits(stack) -> None:
    root, info, sm = stack
    runtime = stack_client(root, info.url, "sagemaker-runtime")
    cw = stack_client(root, info.url, "cloudwatch")
    sm.create_endpoint_config(EndpointConfigName="sls", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "w2",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}])
    sm.create_endpoint(EndpointName="sls", EndpointConfigName="sls")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="sls", WaiterConfig=FAST)
    variant = sm.describe_endpoint(EndpointName="sls")["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    started = time.perf_counter()
    body = runtime.invoke_endpoint(EndpointName="sls", ContentType="text/csv", Body=b"1,2\n")["Body"].read()
    cold = time.perf_counter() - started
    assert json.loads(body)["predictions"] == [6.0]
    started = time.perf_counter()
    runtime.invoke_endpoint(EndpointName="sls", ContentType="text/csv", Body=b"1,2\n")["Body"].read()
    warm = time.perf_counter() - started
    assert cold > 3 * warm  # the first request started the model server
    with pytest.raises(ClientError) as error:
        runtime.invoke_endpoint(EndpointName="sls", ContentType="text/csv", Body=b"1,2\n" * (1100 * 1024))
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert "oversize body" in error.value.response["Error"]["Message"]
    time.sleep(4.0)  # idle past serverless_idle_seconds (2 s): the server is stopped
    started = time.perf_counter()
    runtime.invoke_endpoint(EndpointName="sls", ContentType="text/csv", Body=b"1,2\n")["Body"].read()
    assert time.perf_counter() - started > 3 * warm  # a cold start again
    now = dt.datetime.now(dt.timezone.utc)
    setup = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelSetupTime", Statistics=["SampleCount", "Minimum"],
        Dimensions=[{"Name": "EndpointName", "Value": "sls"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1), Period=300)["Datapoints"]
    assert sum(p["SampleCount"] for p in setup) == 2
    assert min(p["Minimum"] for p in setup) > 1000  # microseconds: a process start takes more than 1 ms


def test_serverless_config_is_validated(stack) -> None:
    root, info, sm = stack
    raw = stack_client(root, info.url, "sagemaker", parameter_validation=False)
    for config in ({"MemorySizeInMB": 1000, "MaxConcurrency": 1}, {"MemorySizeInMB": 2048, "MaxConcurrency": 0},
                   {"MemorySizeInMB": 2048, "MaxConcurrency": 201},
                   {"MemorySizeInMB": 2048, "MaxConcurrency": 2, "ProvisionedConcurrency": 3}):
        with pytest.raises(ClientError) as error:
            raw.create_endpoint_config(EndpointConfigName="bad-sls", ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": "w2", "ServerlessConfig": config}])
        assert error.value.response["Error"]["Code"] == "ValidationException", config
    with pytest.raises(ClientError):  # serverless endpoints do not support data capture
        raw.create_endpoint_config(EndpointConfigName="bad-sls", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "w2",
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}], DataCaptureConfig=_capture(10))
