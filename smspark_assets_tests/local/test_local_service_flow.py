"""The local service end to end with plain boto3: train XGBoost, deploy, invoke; lists and descriptions."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from local_service_helpers import (
    FAST,
    XGBOOST_IMAGE,
    csv_rows,
    deploy,
    training_request,
    write_xgboost_channels,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained(service):
    """One completed XGBoost training job shared by the tests of this module."""
    data_uri, features = write_xgboost_channels(service.root)
    sm = service.sm
    arn = sm.create_training_job(**training_request("flow-job", data_uri))["TrainingJobArn"]
    assert arn.endswith(":training-job/flow-job")
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="flow-job", WaiterConfig=FAST)
    return sm.describe_training_job(TrainingJobName="flow-job"), features


def test_training_job_completes_with_artifact_and_metrics(service, trained):
    job, _ = trained
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert all("EndTime" in t for t in job["SecondaryStatusTransitions"])
    assert job["TrainingEndTime"] >= job["TrainingStartTime"] >= job["CreationTime"]
    assert job["BillableTimeInSeconds"] >= 1
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["validation:auc"] > 0.8
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == "s3://local-test/models/flow-job/output/model.tar.gz"
    local = service.root / "s3" / "local-test" / "models" / "flow-job" / "output" / "model.tar.gz"
    with tarfile.open(local) as tar:
        assert "xgboost-model" in tar.getnames()
    # the worker's log is kept per job and names the channels it staged
    log = (service.root / "local" / "training-jobs" / "flow-job" / "training.log").read_text()
    assert "channel train" in log and "job Completed" in log


def test_list_training_jobs_sorts_filters_and_pages(service, trained):
    sm = service.sm
    data_uri, _ = write_xgboost_channels(service.root, prefix="more")
    for name in ("list-a", "list-b", "list-c"):
        sm.create_training_job(
            **training_request(name, data_uri, {"objective": "binary:logistic", "num_round": "2"})
        )
    for name in ("list-a", "list-b", "list-c"):
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)
    newest_first = [
        s["TrainingJobName"] for s in sm.list_training_jobs(NameContains="list-")["TrainingJobSummaries"]
    ]
    assert newest_first == ["list-c", "list-b", "list-a"]  # AWS default: CreationTime, Descending
    by_name = sm.list_training_jobs(SortBy="Name", SortOrder="Ascending", NameContains="LIST")[
        "TrainingJobSummaries"
    ]
    assert [s["TrainingJobName"] for s in by_name] == ["list-a", "list-b", "list-c"]
    pages = list(
        sm.get_paginator("list_training_jobs").paginate(
            SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["TrainingJobSummaries"]) for p in pages] == [2, 2]
    assert [s["TrainingJobName"] for p in pages for s in p["TrainingJobSummaries"]] == [
        "flow-job",
        "list-a",
        "list-b",
        "list-c",
    ]
    completed = sm.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"]
    assert completed == []
    # botocore sends these filters in whole seconds, as to AWS
    created = sm.describe_training_job(TrainingJobName="list-a")["CreationTime"].timestamp()
    after = sm.list_training_jobs(CreationTimeAfter=created - 60, NameContains="list-")[
        "TrainingJobSummaries"
    ]
    assert len(after) == 3
    assert sm.list_training_jobs(CreationTimeAfter=created + 60)["TrainingJobSummaries"] == []
    assert (
        len(
            sm.list_training_jobs(CreationTimeBefore=created + 60, NameContains="list-")[
                "TrainingJobSummaries"
            ]
        )
        == 3
    )


def test_endpoint_serves_predictions_for_csv_rows(service, trained):
    job, features = trained
    sm, runtime = service.sm, service.runtime
    deploy(sm, "flow-endpoint", job["ModelArtifacts"]["S3ModelArtifacts"])
    described = sm.describe_endpoint(EndpointName="flow-endpoint")
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert described["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == XGBOOST_IMAGE
    response = runtime.invoke_endpoint(
        EndpointName="flow-endpoint", ContentType="text/csv", Body=csv_rows(features)
    )
    assert response["ContentType"].startswith("text/csv")
    assert response["InvokedProductionVariant"] == "AllTraffic"
    predictions = np.array(response["Body"].read().decode().split(), dtype=float)
    assert predictions.shape == (len(features),)
    assert ((predictions >= 0) & (predictions <= 1)).all()
    # the model learned something: the predictions follow the label's driving feature
    assert np.corrcoef(predictions, features[:, 0] + 0.5 * features[:, 1])[0, 1] > 0.6
    names = [e["EndpointName"] for e in sm.list_endpoints(StatusEquals="InService")["Endpoints"]]
    assert "flow-endpoint" in names


def test_unsupported_content_type_is_a_model_error(service, trained):
    runtime = service.runtime
    if "flow-endpoint" not in [e["EndpointName"] for e in service.sm.list_endpoints()["Endpoints"]]:
        pytest.skip("needs the endpoint of test_endpoint_serves_predictions_for_csv_rows")
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName="flow-endpoint", ContentType="image/png", Body=b"\x89PNG")
    assert raised.value.response["OriginalStatusCode"] == 415


def test_delete_endpoint_stops_it(service, trained):
    sm = service.sm
    job, _ = trained
    deploy(sm, "flow-delete", job["ModelArtifacts"]["S3ModelArtifacts"])
    sm.delete_endpoint(EndpointName="flow-delete")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="flow-delete", WaiterConfig=FAST)
    with pytest.raises(service.runtime.exceptions.ValidationError):
        service.runtime.invoke_endpoint(EndpointName="flow-delete", ContentType="text/csv", Body=b"1,2,3,4\n")
    assert not (service.root / "local" / "endpoints" / "flow-delete").exists()
    sm.delete_endpoint_config(EndpointConfigName="flow-delete")
    sm.delete_model(ModelName="flow-delete")
    with pytest.raises(sm.exceptions.ClientError) as raised:
        sm.describe_model(ModelName="flow-delete")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_batch_transform_with_the_xgboost_model(service, trained):
    job, features = trained
    sm, runtime = service.sm, service.runtime
    sm.create_model(
        ModelName="flow-batch",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/local",
        PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]},
    )
    source = service.root / "s3" / "local-test" / "score-in" / "rows.csv"
    source.parent.mkdir(parents=True)
    source.write_bytes(csv_rows(features))
    sm.create_transform_job(
        TransformJobName="flow-batch",
        ModelName="flow-batch",
        BatchStrategy="MultiRecord",
        MaxPayloadInMB=1,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://local-test/score-in"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": "s3://local-test/score-out", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="flow-batch", WaiterConfig=FAST)
    described = sm.describe_transform_job(TransformJobName="flow-batch")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    batch = np.array((service.root / "s3" / "local-test" / "score-out" / "rows.csv.out").read_text().split(),
                     dtype=float)
    assert batch.shape == (len(features),)
    if "flow-endpoint" in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]:
        live = runtime.invoke_endpoint(EndpointName="flow-endpoint", ContentType="text/csv",
                                       Body=csv_rows(features))
        live_predictions = np.array(live["Body"].read().decode().split(), dtype=float)
        np.testing.assert_allclose(batch, live_predictions, rtol=1e-6)
