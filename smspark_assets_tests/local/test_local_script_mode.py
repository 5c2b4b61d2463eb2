"""Custom algorithms in script mode: the environment a script sees, and the scikit-learn worked example
trained and served by the local service."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from smspark_assets_tests.stack_access import stack_credentials_for_url
import numpy as np
import pytest

from local_service_helpers import FAST, csv_rows, deploy, training_request, write_xgboost_channels
from smspark_assets.local import process
from smspark_assets.local.algorithm_lookup import SCRIPT, resolve_image
from smspark_assets.local.algorithms.base import TrainingEnvironment
from smspark_assets.local.script_mode import script_environment

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def test_script_environment_points_into_the_job_folder(tmp_path: Path):
    env = TrainingEnvironment(
        tmp_path, {"C": "0.5", "solver": "lbfgs"}, {"train": {"ContentType": "text/csv"}, "validation": {}}
    )
    sm = script_environment(env)
    assert sm["SM_MODEL_DIR"] == str(tmp_path / "model")
    assert sm["SM_CHANNEL_TRAIN"] == str(tmp_path / "input" / "data" / "train")
    assert json.loads(sm["SM_CHANNELS"]) == ["train", "validation"]
    assert json.loads(sm["SM_HPS"]) == {
        "C": 0.5,
        "solver": "lbfgs",
    }  # JSON-decoded when possible, as SageMaker does
    assert sm["SM_HP_C"] == "0.5"
    assert sm["SM_OUTPUT_DATA_DIR"] == str(tmp_path / "output" / "data")
    assert json.loads(sm["SM_USER_ARGS"]) == ["--C", "0.5", "--solver", "lbfgs"]


def test_image_resolution():
    assert resolve_image("382416733822.dkr.ecr.eu-west-1.amazonaws.com/kmeans:1").algorithm == "kmeans"
    ref = resolve_image(
        SKLEARN_IMAGE, {"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:*": "m"}
    )
    assert (ref.algorithm, ref.entry_point) == (SCRIPT, "m")
    with pytest.raises(ValueError, match="custom_images"):
        resolve_image(SKLEARN_IMAGE, {})


@pytest.mark.integration
def test_sklearn_worked_example_trains_and_serves(fresh_root):
    (fresh_root / "local").mkdir(parents=True, exist_ok=True)  # the fixture created the credentials there
    (fresh_root / "local" / "config.json").write_text(
        json.dumps(
            {"custom_images": {SKLEARN_IMAGE: "smspark_assets.custom_algorithms.sklearn_logistic"}}
        )
    )
    data_uri, features = write_xgboost_channels(fresh_root, prefix="sk", rows=800)
    info = process.start(fresh_root)
    sm = boto3.client("sagemaker", endpoint_url=info.url, **stack_credentials_for_url(info.url))
    runtime = boto3.client("sagemaker-runtime", endpoint_url=info.url, **stack_credentials_for_url(info.url))
    request = training_request("sklearn-job", data_uri, {"C": "0.5", "max_iter": "300"}, image=SKLEARN_IMAGE)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "validation:auc", "Regex": "validation-auc=([0-9.]+)"}
    ]
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="sklearn-job", WaiterConfig=FAST)
    job = sm.describe_training_job(TrainingJobName="sklearn-job")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["FinalMetricDataList"][0]["MetricName"] == "validation:auc"
    assert job["FinalMetricDataList"][0]["Value"] > 0.8
    deploy(sm, "sklearn", job["ModelArtifacts"]["S3ModelArtifacts"], image=SKLEARN_IMAGE)
    body = runtime.invoke_endpoint(
        EndpointName="sklearn", ContentType="text/csv", Accept="text/csv", Body=csv_rows(features[:50])
    )["Body"].read()
    probabilities = np.array(body.decode().split(), dtype=float)
    assert probabilities.shape == (50,) and ((probabilities > 0) & (probabilities < 1)).all()
    answer = json.loads(
        runtime.invoke_endpoint(
            EndpointName="sklearn",
            ContentType="application/json",
            Body=json.dumps({"instances": features[:2].tolist()}),
        )["Body"].read()
    )
    np.testing.assert_allclose(answer["predictions"], probabilities[:2], rtol=1e-6)
    # the script's own failure file becomes the FailureReason
    bad = training_request("sklearn-bad", data_uri, {"C": "-1"}, image=SKLEARN_IMAGE)
    sm.create_training_job(**bad)
    with pytest.raises(Exception):
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName="sklearn-bad", WaiterConfig=FAST
        )
    assert (
        sm.describe_training_job(TrainingJobName="sklearn-bad")["FailureReason"]
        == "ClientError: C must be > 0, got -1.0"
    )
