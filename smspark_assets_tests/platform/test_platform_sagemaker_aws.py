"""The SageMaker requests our assets make, against moto's SageMaker (the AWS code path) and Stubber."""

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from smspark_assets.sagemaker.endpoints import EndpointSettings, deploy_model
from smspark_assets.sagemaker.naming import endpoint_config_name
from smspark_assets.sagemaker.images import builtin_algorithm, image_uri
from smspark_assets.sagemaker.training import Channel, TrainingJobFailed, TrainingRequest, ensure_model, run_training_job

ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def _request(fingerprint: str = "fp-1", eta: str = "0.1") -> TrainingRequest:
    return TrainingRequest(
        name_prefix="credit-default-xgb", image=image_uri("xgboost", "us-east-1"), role_arn=ROLE,
        hyperparameters={"objective": "binary:logistic", "num_round": "10", "eta": eta},
        channels={"train": Channel("s3://demo/channels/train", "text/csv"),
                  "validation": Channel("s3://demo/channels/validation", "text/csv")},
        output_uri="s3://demo/models", data_fingerprint=fingerprint,
    )


def test_image_uris_round_trip_in_any_region() -> None:
    uri = image_uri("xgboost", "eu-west-1")
    assert uri.endswith("/sagemaker-xgboost:1.7-1") and ".eu-west-1." in uri
    assert builtin_algorithm(uri) == "xgboost"
    assert builtin_algorithm("999999999999.dkr.ecr.ap-south-9.amazonaws.com/kmeans:1") == "kmeans"
    assert builtin_algorithm("my-registry/custom:latest") is None
    with pytest.raises(ValueError, match="allowed"):
        image_uri("random-forest", "us-east-1")


def test_training_request_is_what_sagemaker_expects() -> None:
    request = _request()
    kwargs = request.create_kwargs(request.job_name())
    assert kwargs["AlgorithmSpecification"] == {"TrainingImage": request.image, "TrainingInputMode": "File"}
    assert [c["ChannelName"] for c in kwargs["InputDataConfig"]] == ["train", "validation"]
    assert kwargs["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://demo/channels/train/"
    assert request.job_name() == _request().job_name()
    assert request.job_name() != _request(fingerprint="fp-2").job_name() != _request(eta="0.2").job_name()


@mock_aws
def test_training_is_adopted_when_the_same_job_completed() -> None:
    sm = boto3.client("sagemaker")
    first = run_training_job(sm, _request(), poll_seconds=0.01, log=lambda _: None)
    assert not first.adopted and first.status == "Completed"
    assert first.model_artifacts.endswith(f"/{first.job_name}/output/model.tar.gz")
    again = run_training_job(sm, _request(), poll_seconds=0.01, log=lambda _: None)
    assert again.adopted and again.job_name == first.job_name
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == 1
    assert ensure_model(sm, first.job_name, _request().image, first.model_artifacts, ROLE)
    assert not ensure_model(sm, first.job_name, _request().image, first.model_artifacts, ROLE)


@mock_aws
def test_endpoint_is_created_then_left_alone() -> None:
    sm = boto3.client("sagemaker")
    ensure_model(sm, "model-a", _request().image, "s3://demo/models/a/model.tar.gz", ROLE)
    created = deploy_model(sm, "credit-default", "model-a", EndpointSettings("ml.m5.xlarge"), poll_seconds=0.01, log=lambda _: None)
    assert (created.action, created.status) == ("created", "InService")
    again = deploy_model(sm, "credit-default", "model-a", EndpointSettings("ml.m5.xlarge"), poll_seconds=0.01, log=lambda _: None)
    assert again.action == "unchanged"
    config = sm.describe_endpoint_config(EndpointConfigName=created.config_name)
    assert config["ProductionVariants"][0]["ModelName"] == "model-a"


def test_a_new_model_updates_the_existing_endpoint() -> None:
    """moto has no UpdateEndpoint: the Stubber plays SageMaker for the update path."""
    sm = boto3.client("sagemaker")
    cfg = endpoint_config_name("model-b", EndpointSettings("ml.m5.xlarge").config_request("model-b"))
    not_found = {"service_error_code": "ValidationException", "service_message": "Could not find endpoint config"}
    with Stubber(sm) as stub:
        stub.add_client_error("describe_endpoint_config", **not_found)
        stub.add_response("create_endpoint_config",
                          {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/" + cfg})
        stub.add_response("describe_endpoint", _endpoint("old-cfg", "InService"), {"EndpointName": "credit-default"})
        stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/credit-default"},
                          {"EndpointName": "credit-default", "EndpointConfigName": cfg})
        stub.add_response("describe_endpoint", _endpoint(cfg, "InService"), {"EndpointName": "credit-default"})
        stub.add_response("describe_endpoint", _endpoint(cfg, "InService"), {"EndpointName": "credit-default"})
        result = deploy_model(sm, "credit-default", "model-b", EndpointSettings("ml.m5.xlarge"), poll_seconds=0.01, log=lambda _: None)
    assert result.action == "updated" and result.config_name == cfg


def test_a_failed_training_job_raises_its_failure_reason() -> None:
    sm = boto3.client("sagemaker")
    request = _request()
    missing = {"service_error_code": "ValidationException", "service_message": "Requested resource not found."}
    failed = {"TrainingJobName": request.job_name(), "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/x", "TrainingJobStatus": "Failed",
              "SecondaryStatus": "Failed", "FailureReason": "AlgorithmError: label column has NaN",
              "AlgorithmSpecification": {"TrainingImage": request.image, "TrainingInputMode": "File"},
              "ModelArtifacts": {"S3ModelArtifacts": ""}, "ResourceConfig": {"InstanceType": "ml.m5.xlarge",
              "InstanceCount": 1, "VolumeSizeInGB": 30}, "StoppingCondition": {"MaxRuntimeInSeconds": 60},
              "CreationTime": 0, "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": "s3://demo/models"}}
    with Stubber(sm) as stub:
        stub.add_client_error("describe_training_job", **missing)
        stub.add_response("create_training_job",
                          {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/x"})
        stub.add_response("describe_training_job", failed)  # the waiter's poll
        stub.add_response("describe_training_job", failed)
        with pytest.raises(TrainingJobFailed, match="label column has NaN"):
            run_training_job(sm, request, poll_seconds=0.01, log=lambda _: None)


def _endpoint(config: str, status: str) -> dict:
    return {"EndpointName": "credit-default", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/credit-default", "EndpointConfigName": config,
            "EndpointStatus": status, "CreationTime": 0, "LastModifiedTime": 0}
