"""Hyperparameter tuning jobs on the embedded stack: real training jobs as trials, the parallel limit, stop,
early stopping, warm start and the request checks, through boto3."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from local_service_helpers import ROLE, XGBOOST_IMAGE
from stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BUCKET = "tuning-test"
QUAD_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/local-test-quadratic:1"
# A script-mode algorithm whose loss per epoch is (w - 1)^2 + 1 / (epoch + 1): the best w is 1. It logs one
# line per epoch, so the median stopping rule has curves to compare.
QUADRATIC_SCRIPT = """
import json, os, time
from pathlib import Path
hps = json.loads(os.environ["SM_HPS"])
w = float(hps["w"])
for epoch in range(int(hps.get("epochs", 8))):
    print(f"epoch={epoch} loss={(w - 1) ** 2 + 1 / (epoch + 1):.6f}", flush=True)
    time.sleep(float(hps.get("sleep", 0.3)))
Path(os.environ["SM_MODEL_DIR"], "w.json").write_text(json.dumps({"w": w}))
"""


@pytest.fixture(scope="module")
def stack(service: Any) -> Any:
    sm = stack_client(service.root, service.url, "sagemaker")
    s3 = stack_client(service.root, service.url, "s3")
    s3.create_bucket(Bucket=BUCKET)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] + 0.5 * rng.normal(size=600) > 0).astype(int)
    for channel, part in (("train", slice(0, 480)), ("validation", slice(480, 600))):
        buf = io.StringIO()
        np.savetxt(buf, np.column_stack([labels[part], features[part]]), delimiter=",", fmt="%.6g")
        s3.put_object(Bucket=BUCKET, Key=f"xgb/{channel}/part-0.csv", Body=buf.getvalue().encode())
    s3.put_object(Bucket=BUCKET, Key="quad/train/rows.csv", Body=b"1,2\n")
    script = Path(service.root) / "quadratic_algorithm.py"
    script.write_text(QUADRATIC_SCRIPT)
    config = Path(service.root) / "local" / "config.json"
    existing = json.loads(config.read_text()) if config.exists() else {}
    existing.setdefault("custom_images", {})[QUAD_IMAGE] = str(script)
    config.write_text(json.dumps(existing))
    return sm


def _definition(image: str, prefix: str, static: dict[str, str], channels: tuple[str, ...],
                metrics: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File",
                                   **({"MetricDefinitions": metrics} if metrics else {})},
        "RoleArn": ROLE,
        "StaticHyperParameters": static,
        "InputDataConfig": [
            {"ChannelName": c, "ContentType": "text/csv",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix}/{c}"}}}
            for c in channels],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def _quad_job(sm: Any, name: str, jobs: int, parallel: int, early: str = "Off", strategy: str = "Random",
              warm: dict[str, Any] | None = None, **static: str) -> None:
    extra = {"WarmStartConfig": warm} if warm else {}
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "train:loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {"ContinuousParameterRanges": [
                {"Name": "w", "MinValue": "-3", "MaxValue": "5", "ScalingType": "Linear"}]},
            "TrainingJobEarlyStoppingType": early,
            "RandomSeed": 4,
        },
        TrainingJobDefinition=_definition(QUAD_IMAGE, "quad", static, ("train",),
                                          [{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}]),
        **extra,
    )


def _wait(sm: Any, name: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if doc["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            return doc
        time.sleep(0.2)
    raise AssertionError(f"tuning job {name} did not finish in {timeout}s")


def _trials(sm: Any, name: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, PaginationConfig={"PageSize": 2})
    return [t for page in pages for t in page["TrainingJobSummaries"]]


def test_xgboost_tuning_never_exceeds_parallel_limit_and_reports_the_best_trial(stack: Any) -> None:
    sm = stack
    name = "xgb-tune"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"}],
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "6"}],
            },
            "RandomSeed": 1,
        },
        TrainingJobDefinition=_definition(XGBOOST_IMAGE, "xgb", {"objective": "binary:logistic",
                                                                 "num_round": "30"}, ("train", "validation")),
    )
    most_in_progress, samples = 0, 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        jobs = sm.list_training_jobs(NameContains=f"{name}-", MaxResults=100)["TrainingJobSummaries"]
        states = [sm.describe_training_job(TrainingJobName=j["TrainingJobName"])["TrainingJobStatus"] for j in jobs]
        most_in_progress = max(most_in_progress, sum(s in ("InProgress", "Stopping") for s in states))
        samples += 1
        status = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if status["HyperParameterTuningJobStatus"] != "InProgress":
            break
        time.sleep(0.05)
    doc = _wait(sm, name)
    assert doc["HyperParameterTuningJobStatus"] == "Completed", doc.get("FailureReason")
    assert samples > 10 and most_in_progress == 2  # the limit was used and never exceeded
    assert doc["TrainingJobStatusCounters"] == {
        "Completed": 4, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    assert doc["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    assert doc["TrainingJobDefinition"]["StaticHyperParameters"]["_tuning_objective_metric"] == "validation:auc"
    trials = _trials(sm, name)
    assert len(trials) == 4
    auc = {}
    for trial in trials:
        assert re.fullmatch(rf"{name}-00[1-4]-[0-9a-f]{{8}}", trial["TrainingJobName"])
        job = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert job["TuningJobArn"] == doc["HyperParameterTuningJobArn"]
        assert job["HyperParameters"]["_tuning_objective_metric"] == "validation:auc"
        assert job["HyperParameters"]["eta"] == trial["TunedHyperParameters"]["eta"]
        # the objective is the training job's own final metric
        auc[trial["TrainingJobName"]] = next(
            m["Value"] for m in job["FinalMetricDataList"] if m["MetricName"] == "validation:auc")
        assert trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
            auc[trial["TrainingJobName"]])
    best = max(auc, key=auc.get)
    assert doc["BestTrainingJob"]["TrainingJobName"] == best
    ordered = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    assert [t["TrainingJobName"] for t in ordered["TrainingJobSummaries"]] == sorted(auc, key=auc.get, reverse=True)
    listed = sm.list_hyper_parameter_tuning_jobs(NameContains="xgb-tune")["HyperParameterTuningJobSummaries"]
    assert [(s["HyperParameterTuningJobName"], s["Strategy"]) for s in listed] == [(name, "Bayesian")]


def test_stopping_a_tuning_job_stops_its_trials(stack: Any) -> None:
    sm = stack
    _quad_job(sm, "quad-stop", jobs=6, parallel=2, sleep="20")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = [t for t in _trials(sm, "quad-stop") if t["TrainingJobStatus"] == "InProgress"]
        if len(running) == 2:
            break
        time.sleep(0.2)
    started = time.monotonic()
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="quad-stop")
    assert sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="quad-stop")["HyperParameterTuningJobStatus"] in ("Stopping", "Stopped")
    doc = _wait(sm, "quad-stop", timeout=60)
    assert time.monotonic() - started < 15  # the 20 s trials did not run to their end
    assert doc["HyperParameterTuningJobStatus"] == "Stopped"
    trials = _trials(sm, "quad-stop")
    assert len(trials) == 2  # no trial started after the stop
    assert {sm.describe_training_job(TrainingJobName=t["TrainingJobName"])["TrainingJobStatus"]
            for t in trials} == {"Stopped"}
    assert doc["TrainingJobStatusCounters"]["Stopped"] == 2
    with pytest.raises(ClientError) as err:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="quad-stop")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_early_stopping_stops_trials_worse_than_the_median(stack: Any) -> None:
    sm = stack
    _quad_job(sm, "quad-early", jobs=10, parallel=2, early="Auto", epochs="10", sleep="0.4")
    doc = _wait(sm, "quad-early")
    assert doc["HyperParameterTuningJobStatus"] == "Completed", doc.get("FailureReason")
    trials = _trials(sm, "quad-early")
    stopped = [t for t in trials if t["TrainingJobStatus"] == "Stopped"]
    completed = [t for t in trials if t["TrainingJobStatus"] == "Completed"]
    assert stopped, "no trial was stopped early"
    assert all(t["ObjectiveStatus"] == "Succeeded" for t in stopped)  # their last value still counts
    distance = {t["TrainingJobName"]: abs(float(t["TunedHyperParameters"]["w"]) - 1) for t in trials}
    best = min(completed, key=lambda t: distance[t["TrainingJobName"]])
    # Only trials farther from the optimum than the best completed one are stopped.
    assert all(distance[t["TrainingJobName"]] > distance[best["TrainingJobName"]] for t in stopped)
    assert doc["TrainingJobStatusCounters"]["Stopped"] == len(stopped)


def test_warm_start_seeds_the_search_and_reports_the_overall_best(stack: Any) -> None:
    sm = stack
    _quad_job(sm, "quad-parent", jobs=4, parallel=2, strategy="Bayesian", sleep="0")
    parent = _wait(sm, "quad-parent")
    assert parent["HyperParameterTuningJobStatus"] == "Completed"
    warm = {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "quad-parent"}],
            "WarmStartType": "IdenticalDataAndAlgorithm"}
    _quad_job(sm, "quad-child", jobs=2, parallel=2, strategy="Bayesian", warm=warm, sleep="0")
    child = _wait(sm, "quad-child")
    assert child["WarmStartConfig"] == warm
    everything = _trials(sm, "quad-parent") + _trials(sm, "quad-child")
    best = min(everything, key=lambda t: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert child["OverallBestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    assert len(_trials(sm, "quad-child")) == 2


@pytest.mark.parametrize(
    "change, code, message",
    [
        (lambda r: r.update(HyperParameterTuningJobName="x" * 33), "ValidationException", "hyperParameterTuningJobName"),
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Hyperband"), "ValidationException", "Hyperband"),
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Grid"), "ValidationException", "Categorical"),
        (lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(
            MetricName="validation:auc"), "ValidationException", "not emitted"),
        (lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0].update(
            MinValue="-1", ScalingType="Logarithmic"), "ValidationException", "above 0"),
        (lambda r: r["TrainingJobDefinition"]["OutputDataConfig"].update(S3OutputPath="s3://../local"),
         "ValidationException", "S3"),
        (lambda r: r["TrainingJobDefinition"].update(Environment={"BASH_ENV": "$(id)"}), "ValidationException",
         "BASH_ENV"),
        (lambda r: r.update(WarmStartConfig={"ParentHyperParameterTuningJobs": [
            {"HyperParameterTuningJobName": "missing"}], "WarmStartType": "TransferLearning"}),
         "ResourceNotFound", "can't find"),
    ],
)
def test_bad_requests_are_refused_before_any_trial(stack: Any, change: Any, code: str, message: str) -> None:
    sm = stack
    request = {
        "HyperParameterTuningJobName": "bad-request",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "train:loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "w", "MinValue": "0", "MaxValue": "2"}]},
        },
        "TrainingJobDefinition": _definition(QUAD_IMAGE, "quad", {}, ("train",),
                                             [{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}]),
    }
    change(request)
    with pytest.raises(ClientError) as err:
        sm.create_hyper_parameter_tuning_job(**request)
    assert err.value.response["Error"]["Code"] == code
    assert message in err.value.response["Error"]["Message"]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not sm.list_training_jobs(NameContains="bad-request")["TrainingJobSummaries"]


def test_describe_of_a_missing_tuning_job_is_resource_not_found(stack: Any) -> None:
    with pytest.raises(ClientError) as err:
        stack.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="nothing-here")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
