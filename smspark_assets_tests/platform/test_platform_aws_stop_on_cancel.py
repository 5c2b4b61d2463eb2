"""A cancelled run or a wait that ends early stops what it started (issue 10, defect 5).

Botocore's Stubber plays SageMaker and Athena; the run's cancellation is Dagster's own
``DagsterExecutionInterruptedError``, raised where the step sleeps between polls, as on run termination.
"""

import time
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from dagster import DagsterExecutionInterruptedError

import smspark_assets.sagemaker.training as training
from smspark_assets.resources.catalog import AthenaQueryFailed, GlueAthenaCatalogResource
from smspark_assets.sagemaker.endpoints import EndpointFailed, _wait_in_service
from smspark_assets.sagemaker.training import Channel, TrainingJobFailed, TrainingRequest, run_training_job

pytestmark = pytest.mark.timeout(60)

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
QID = "11111111-2222-3333-4444-555555555555"


def _request(max_runtime: int = 3600) -> TrainingRequest:
    return TrainingRequest(name_prefix="credit-default-xgb", image=IMAGE, role_arn=ROLE,
                           hyperparameters={"num_round": "10"},
                           channels={"train": Channel("s3://demo/channels/train/", "text/csv")},
                           output_uri="s3://demo/models", data_fingerprint="fp", max_runtime_seconds=max_runtime)


def _job(name: str, status: str) -> dict[str, Any]:
    return {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
            "TrainingJobStatus": status, "SecondaryStatus": "Training" if status == "InProgress" else status,
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "ModelArtifacts": {"S3ModelArtifacts": ""},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}, "CreationTime": 0, "RoleArn": ROLE,
            "OutputDataConfig": {"S3OutputPath": "s3://demo/models"}}


def _interrupt_on_first_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The run is cancelled while the step sleeps between two polls; later sleeps return at once."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            raise DagsterExecutionInterruptedError("run terminated")

    monkeypatch.setattr(time, "sleep", sleep)
    return slept


def _start_training(stub: Stubber, name: str) -> None:
    stub.add_client_error("describe_training_job", "ValidationException", "Requested resource not found.")
    stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/x"})


def test_a_cancelled_run_stops_its_training_job(monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    name = _request().job_name()
    _interrupt_on_first_sleep(monkeypatch)
    with Stubber(sm) as stub:
        _start_training(stub, name)
        stub.add_response("describe_training_job", _job(name, "InProgress"))  # the waiter's first poll
        stub.add_response("describe_training_job", _job(name, "InProgress"))  # before stopping
        stub.add_response("stop_training_job", {}, {"TrainingJobName": name})
        stub.add_response("describe_training_job", _job(name, "Stopping"))
        with pytest.raises(DagsterExecutionInterruptedError, match=f"training job {name}.*stopped training job {name}"):
            run_training_job(sm, _request(), poll_seconds=1, log=lambda _: None)
        stub.assert_no_pending_responses()


def test_a_waiter_that_gives_up_stops_the_job_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    request = _request(max_runtime=1)
    name = request.job_name()
    monkeypatch.setattr(training, "WAIT_MARGIN_SECONDS", 0)  # one poll, then the waiter gives up
    with Stubber(sm) as stub:
        _start_training(stub, name)
        stub.add_response("describe_training_job", _job(name, "InProgress"))  # the waiter's only poll
        stub.add_response("describe_training_job", _job(name, "InProgress"))  # after WaiterError: still running
        stub.add_response("describe_training_job", _job(name, "InProgress"))  # before stopping
        stub.add_response("stop_training_job", {}, {"TrainingJobName": name})
        stub.add_response("describe_training_job", _job(name, "Stopping"))
        with pytest.raises(TrainingJobFailed, match=f"waiting for training job {name} failed while it was InProgress"):
            run_training_job(sm, request, poll_seconds=1, log=lambda _: None)
        stub.assert_no_pending_responses()


def test_a_job_that_ended_is_not_stopped_again(monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    name = _request().job_name()
    failed = {**_job(name, "Failed"), "FailureReason": "AlgorithmError: bad label"}
    with Stubber(sm) as stub:  # no stop_training_job stubbed: calling it would fail the test
        _start_training(stub, name)
        stub.add_response("describe_training_job", failed)
        stub.add_response("describe_training_job", failed)
        with pytest.raises(TrainingJobFailed, match="bad label"):
            run_training_job(sm, _request(), poll_seconds=1, log=lambda _: None)
        stub.assert_no_pending_responses()


def test_an_endpoint_waiter_that_gives_up_raises_with_the_status() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    creating = {"EndpointName": "e", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e",
                "EndpointConfigName": "c", "EndpointStatus": "Creating", "CreationTime": 0, "LastModifiedTime": 0}
    with Stubber(sm) as stub:
        stub.add_response("describe_endpoint", creating)  # the waiter's only poll
        stub.add_response("describe_endpoint", creating)
        with pytest.raises(EndpointFailed, match="endpoint e gave up while it was Creating"):
            _wait_in_service(sm, "e", poll_seconds=1, timeout_seconds=1)


def _athena(monkeypatch: pytest.MonkeyPatch, timeout_seconds: float) -> tuple[GlueAthenaCatalogResource, Stubber]:
    catalog = GlueAthenaCatalogResource(region_name="us-east-1", output_location="s3://demo/athena/",
                                        poll_seconds=0.01, timeout_seconds=timeout_seconds)
    athena = boto3.client("athena", region_name="us-east-1")
    catalog._clients["athena"] = athena
    stub = Stubber(athena)
    stub.add_response("start_query_execution", {"QueryExecutionId": QID})
    return catalog, stub


def _state(state: str) -> dict[str, Any]:
    return {"QueryExecution": {"QueryExecutionId": QID, "Status": {"State": state}}}


def test_a_cancelled_run_stops_its_athena_query(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, stub = _athena(monkeypatch, timeout_seconds=600)
    _interrupt_on_first_sleep(monkeypatch)
    with stub:
        stub.add_response("get_query_execution", _state("RUNNING"), {"QueryExecutionId": QID})
        stub.add_response("get_query_execution", _state("RUNNING"), {"QueryExecutionId": QID})
        stub.add_response("stop_query_execution", {}, {"QueryExecutionId": QID})
        stub.add_response("get_query_execution", _state("CANCELLED"), {"QueryExecutionId": QID})
        with pytest.raises(DagsterExecutionInterruptedError, match=f"Athena query {QID}.*stopped it"):
            catalog.query("SELECT 1")
        stub.assert_no_pending_responses()


def test_an_athena_query_past_its_timeout_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, stub = _athena(monkeypatch, timeout_seconds=0)
    with stub:
        stub.add_response("get_query_execution", _state("RUNNING"), {"QueryExecutionId": QID})
        stub.add_response("get_query_execution", _state("RUNNING"), {"QueryExecutionId": QID})
        stub.add_response("stop_query_execution", {}, {"QueryExecutionId": QID})
        stub.add_response("get_query_execution", _state("CANCELLED"), {"QueryExecutionId": QID})
        with pytest.raises(AthenaQueryFailed, match="ran longer than timeout_seconds=0"):
            catalog.query("SELECT 1")
        stub.assert_no_pending_responses()
