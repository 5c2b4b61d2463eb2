"""A cancelled run stops its tuning job (and so its trials); an ended one is not stopped again; a completed one is
adopted. Botocore's Stubber plays SageMaker (the calls are AWS-only code paths: the stack has its own tests); the
run's cancellation is Dagster's ``DagsterExecutionInterruptedError`` raised where the step sleeps between polls."""

import datetime as dt
import time
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from dagster import DagsterExecutionInterruptedError

import smspark_assets.sagemaker.tuning as tuning
from smspark_assets.sagemaker.training import Channel
from smspark_assets.sagemaker.tuning import ParameterRange, TuningJobFailed, TuningRequest, run_tuning_job

pytestmark = pytest.mark.timeout(60)

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def _request() -> TuningRequest:
    return TuningRequest(
        algorithm="xgboost", name_prefix="credit-default-tune", image=IMAGE, role_arn=ROLE,
        static_hyperparameters={"objective": "binary:logistic", "num_round": "20"},
        ranges=(ParameterRange.continuous("eta", 0.05, 0.3),), objective_metric="validation:auc",
        channels={"train": Channel("s3://demo/channels/train/", "text/csv")}, output_uri="s3://demo/models",
        data_fingerprint="fp", max_jobs=4, max_parallel=2)


def _tuning(name: str, status: str, best: str | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}},
        "HyperParameterTuningJobStatus": status, "CreationTime": T0,
        "TrainingJobStatusCounters": {"Completed": 0, "InProgress": 2},
        "ObjectiveStatusCounters": {"Succeeded": 0, "Pending": 2, "Failed": 0}, **extra}
    if best:
        doc["BestTrainingJob"] = _summary(best, 0.81)
    return doc


def _summary(name: str, value: float) -> dict[str, Any]:
    return {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
            "CreationTime": T0, "TrainingJobStatus": "Completed", "TunedHyperParameters": {"eta": "0.1"},
            "TrainingStartTime": T0, "TrainingEndTime": T0 + dt.timedelta(seconds=5), "ObjectiveStatus": "Succeeded",
            "FinalHyperParameterTuningJobObjectiveMetric": {"Type": "Maximize", "MetricName": "validation:auc",
                                                            "Value": value}}


def _interrupt_on_first_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            raise DagsterExecutionInterruptedError("run terminated")

    monkeypatch.setattr(time, "sleep", sleep)
    return slept


def _created(stub: Stubber, name: str) -> None:
    stub.add_client_error("describe_hyper_parameter_tuning_job", "ResourceNotFound",
                          f"Amazon SageMaker can't find a tuning job with name {name}")
    stub.add_response("create_hyper_parameter_tuning_job",
                      {"HyperParameterTuningJobArn": _tuning(name, "InProgress")["HyperParameterTuningJobArn"]},
                      {"HyperParameterTuningJobName": name, "HyperParameterTuningJobConfig": ANY,
                       "TrainingJobDefinition": ANY, "Tags": ANY})


def test_a_cancelled_run_stops_its_tuning_job(monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    name = _request().job_name()
    _interrupt_on_first_sleep(monkeypatch)
    with Stubber(sm) as stub:
        _created(stub, name)
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning(name, "InProgress"))  # the first poll
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning(name, "InProgress"))  # before stopping
        stub.add_response("stop_hyper_parameter_tuning_job", {}, {"HyperParameterTuningJobName": name})
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning(name, "Stopping"))
        with pytest.raises(DagsterExecutionInterruptedError, match=f"tuning job {name}.*stopped tuning job {name}"):
            run_tuning_job(sm, _request(), poll_seconds=1, log=lambda _: None)
        stub.assert_no_pending_responses()


def test_a_wait_past_its_deadline_stops_the_tuning_job(monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    name = _request().job_name()
    monkeypatch.setattr(tuning, "WAIT_MARGIN_SECONDS", -10**9)  # the deadline has passed at the first poll
    with Stubber(sm) as stub:
        _created(stub, name)
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning(name, "InProgress"))
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning(name, "InProgress"))
        stub.add_response("stop_hyper_parameter_tuning_job", {}, {"HyperParameterTuningJobName": name})
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning(name, "Stopping"))
        with pytest.raises(TuningJobFailed, match=f"was still InProgress after .*stopped tuning job {name}"):
            run_tuning_job(sm, _request(), poll_seconds=1, log=lambda _: None)
        stub.assert_no_pending_responses()


def test_a_tuning_job_that_failed_is_reported_not_stopped() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    name = _request().job_name()
    with Stubber(sm) as stub:  # no stop stubbed: calling it would fail the test
        _created(stub, name)
        stub.add_response("describe_hyper_parameter_tuning_job",
                          _tuning(name, "Failed", FailureReason="No training job reported the objective metric"))
        with pytest.raises(TuningJobFailed, match="ended Failed: No training job reported the objective metric"):
            run_tuning_job(sm, _request(), poll_seconds=1, log=lambda _: None)
        stub.assert_no_pending_responses()


def test_a_completed_tuning_job_is_adopted_with_its_trials() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    name = _request().job_name()
    best = f"{name}-002-0a1b2c3d"
    with Stubber(sm) as stub:  # no create stubbed: adoption must not create anything
        stub.add_response("describe_hyper_parameter_tuning_job", _tuning(name, "Completed", best=best),
                          {"HyperParameterTuningJobName": name})
        stub.add_response("describe_training_job", {
            "TrainingJobName": best, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{best}",
            "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "HyperParameters": {"eta": "0.1", "num_round": "20", "_tuning_objective_metric": "validation:auc"},
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://demo/models/{best}/output/model.tar.gz"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}, "CreationTime": T0, "RoleArn": ROLE,
            "OutputDataConfig": {"S3OutputPath": "s3://demo/models"}}, {"TrainingJobName": best})
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job",
                          {"TrainingJobSummaries": [_summary(f"{name}-001-00000000", 0.75), _summary(best, 0.81)]},
                          {"HyperParameterTuningJobName": name, "SortBy": "CreationTime", "SortOrder": "Ascending"})
        result = run_tuning_job(sm, _request(), poll_seconds=1, log=lambda _: None)
        stub.assert_no_pending_responses()
    assert result.adopted and result.best_training_job_name == best and result.best_objective == 0.81
    assert [t.objective for t in result.trials] == [0.75, 0.81]
    assert result.best_model_artifacts.endswith(f"{best}/output/model.tar.gz")
    assert result.best_hyperparameters["num_round"] == "20"
