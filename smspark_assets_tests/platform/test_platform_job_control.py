"""One stop-on-abandon for every SageMaker job kind (job_control), seen through transform and tuning jobs.

Botocore's Stubber plays SageMaker: it fails the test on any call not queued, in order, with these
parameters, so a second Stop* or a Stop* of an ended job would fail it.
"""

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from dagster import DagsterExecutionInterruptedError

from smspark_assets.sagemaker.job_control import describe_or_none, wait_until_ended
from smspark_assets.sagemaker.transform import TransformJobFailed, _wait, stop_transform_job
from smspark_assets.sagemaker.tuning import TUNING_JOB, stop_tuning_job

pytestmark = pytest.mark.timeout(60)


def _transform(name: str, status: str) -> dict[str, Any]:
    return {"TransformJobName": name, "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}",
            "TransformJobStatus": status, "ModelName": "m", "CreationTime": 0,
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}


def _tuning(name: str, status: str) -> dict[str, Any]:
    return {"HyperParameterTuningJobName": name, "HyperParameterTuningJobStatus": status, "CreationTime": 0,
            "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}",
            "HyperParameterTuningJobConfig": {"Strategy": "Random",
                                              "ResourceLimits": {"MaxParallelTrainingJobs": 1}},
            "TrainingJobStatusCounters": {}, "ObjectiveStatusCounters": {}}


def test_a_cancelled_wait_stops_the_transform_job(monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")

    def sleep(seconds: float) -> None:  # the run is cancelled while the waiter sleeps between polls
        raise DagsterExecutionInterruptedError("run terminated")

    monkeypatch.setattr(time, "sleep", sleep)
    logged: list[str] = []
    with Stubber(sm) as stub:
        stub.add_response("describe_transform_job", _transform("t", "InProgress"))  # the waiter's first poll
        stub.add_response("describe_transform_job", _transform("t", "InProgress"))  # before stopping
        stub.add_response("stop_transform_job", {}, {"TransformJobName": "t"})
        stub.add_response("describe_transform_job", _transform("t", "Stopping"))
        with pytest.raises(DagsterExecutionInterruptedError,
                           match="transform job t abandoned.*stopped transform job t \\(now Stopping\\)"):
            _wait(sm, "t", poll_seconds=1, log=logged.append)
        stub.assert_no_pending_responses()
    assert logged[0] == "stopping transform job t (InProgress)"


def test_an_ended_or_stopping_job_is_not_stopped_again() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sm) as stub:  # no stop_* queued: calling one would fail the test
        stub.add_response("describe_transform_job", _transform("t", "Failed"))
        assert stop_transform_job(sm, "t", log=lambda _: None) == "transform job t had already ended Failed"
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning("h", "Stopping"))
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning("h", "Stopping"))
        assert stop_tuning_job(sm, "h", log=lambda _: None) == "stopped tuning job h (now Stopping)"
        stub.assert_no_pending_responses()


def test_stopping_a_tuning_job_says_its_trials_stop_too() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    logged: list[str] = []
    with Stubber(sm) as stub:
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning("h", "InProgress"))
        stub.add_response("stop_hyper_parameter_tuning_job", {}, {"HyperParameterTuningJobName": "h"})
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning("h", "Stopped"))
        assert stop_tuning_job(sm, "h", log=logged.append) == "stopped tuning job h (now Stopped)"
        stub.assert_no_pending_responses()
    assert logged == ["stopping tuning job h (InProgress) and its running trials"]


def test_describe_or_none_is_none_only_for_a_missing_resource() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sm) as stub:
        stub.add_client_error("describe_transform_job", "ValidationException", "Could not find job")
        stub.add_client_error("describe_transform_job", "AccessDeniedException", "not allowed")
        assert describe_or_none(sm.describe_transform_job, TransformJobName="t") is None
        with pytest.raises(ClientError, match="AccessDenied"):
            describe_or_none(sm.describe_transform_job, TransformJobName="t")


def test_waiting_with_a_waiter_on_a_kind_without_one_is_refused() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    with pytest.raises(ValueError, match="no waiter for a tuning job"):
        wait_until_ended(sm, TUNING_JOB, "h", 1, 1, TransformJobFailed)
