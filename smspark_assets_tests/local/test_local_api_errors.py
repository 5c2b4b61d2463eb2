"""Refused requests get AWS's error codes, so boto3 raises the same ClientErrors as against AWS."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3

from smspark_assets_tests.stack_access import stack_credentials
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from local_service_helpers import FAST, ROLE, XGBOOST_IMAGE, training_request, write_xgboost_channels

pytestmark = pytest.mark.integration


def code_of(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture(scope="module")
def data_uri(service):
    uri, _ = write_xgboost_channels(service.root, prefix="errors", rows=200)
    return uri


@pytest.mark.parametrize(
    "name,value,allowed",
    [("max_depth", "-1", "max_depth"), ("eta", "2", "eta"), ("objective", "binary:nonsense", "objective")],
)
def test_invalid_hyperparameters_are_refused_before_any_job_exists(service, data_uri, name, value, allowed):
    sm = service.sm
    job = f"bad-hp-{name.replace('_', '-')}"
    hps = {"objective": "binary:logistic", "num_round": "5", name: value}
    code, message = code_of(sm.create_training_job, **training_request(job, data_uri, hps))
    assert code == "ValidationException"
    assert allowed in message and value in message
    # nothing was created
    assert code_of(sm.describe_training_job, TrainingJobName=job)[0] == "ValidationException"
    assert not (service.root / "local" / "training-jobs" / job).exists()


def test_missing_required_hyperparameter_names_it(service, data_uri):
    code, message = code_of(
        service.sm.create_training_job,
        **training_request("bad-hp-missing", data_uri, {"objective": "binary:logistic"}),
    )
    assert code == "ValidationException" and "num_round" in message


def test_unknown_image_and_bad_names_are_validation_errors(service, data_uri):
    sm = service.sm
    code, message = code_of(
        sm.create_training_job,
        **training_request(
            "unknown-image", data_uri, image="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:latest"
        ),
    )
    assert code == "ValidationException" and "custom_images" in message
    code, message = code_of(sm.create_training_job, **training_request("bad_name!", data_uri))
    assert code == "ValidationException" and "trainingJobName" in message
    bad_uri = training_request("bad-uri", data_uri)
    bad_uri["OutputDataConfig"]["S3OutputPath"] = "models/not-an-s3-uri"
    assert code_of(sm.create_training_job, **bad_uri)[0] == "ValidationException"


def test_requests_botocore_would_refuse_are_refused_by_the_service_too(service, data_uri):
    unchecked = boto3.client(
        "sagemaker",
        endpoint_url=service.url,
        **stack_credentials(service.root),
        region_name="us-east-1",
        config=Config(parameter_validation=False),
    )
    request = training_request("no-role", data_uri)
    del request["RoleArn"]
    code, message = code_of(unchecked.create_training_job, **request)
    assert code == "ValidationException" and "RoleArn" in message
    code, message = code_of(
        unchecked.create_endpoint_config, EndpointConfigName="no-variants", ProductionVariants=[]
    )
    assert code == "ValidationException"


def test_missing_channel_data_fails_the_job_and_duplicates_are_resource_in_use(service):
    sm = service.sm
    request = training_request("no-data", "s3://local-test/does-not-exist")
    sm.create_training_job(**request)
    with pytest.raises(WaiterError):
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="no-data", WaiterConfig=FAST)
    job = sm.describe_training_job(TrainingJobName="no-data")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: No S3 objects found under S3 URL")
    code, _ = code_of(sm.create_training_job, **request)
    assert code == "ResourceInUse"
    assert code_of(sm.stop_training_job, TrainingJobName="no-data")[0] == "ValidationException"
    assert code_of(sm.stop_training_job, TrainingJobName="never-was")[0] == "ResourceNotFound"


def test_missing_resources(service):
    sm = service.sm
    assert code_of(sm.describe_training_job, TrainingJobName="nope")[0] == "ValidationException"
    assert code_of(sm.describe_model, ModelName="nope")[0] == "ValidationException"
    assert code_of(sm.delete_model, ModelName="nope")[0] == "ValidationException"
    assert code_of(sm.describe_endpoint_config, EndpointConfigName="nope")[0] == "ValidationException"
    assert code_of(sm.delete_endpoint_config, EndpointConfigName="nope")[0] == "ValidationException"
    code, message = code_of(sm.describe_endpoint, EndpointName="nope")
    assert code == "ValidationException" and "Could not find endpoint" in message
    assert code_of(sm.delete_endpoint, EndpointName="nope")[0] == "ValidationException"
    assert (
        code_of(sm.update_endpoint, EndpointName="nope", EndpointConfigName="nope")[0]
        == "ValidationException"
    )
    # the waiter treats ValidationException as a terminal failure, as on AWS
    with pytest.raises(WaiterError, match="ValidationException"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="nope", WaiterConfig=FAST)
    sm.get_waiter("endpoint_deleted").wait(EndpointName="nope", WaiterConfig=FAST)
    with pytest.raises(service.runtime.exceptions.ValidationError):
        service.runtime.invoke_endpoint(EndpointName="nope", ContentType="text/csv", Body=b"1,2\n")


def test_model_config_endpoint_validation(service):
    sm = service.sm
    code, message = code_of(
        sm.create_model,
        ModelName="no-artifact",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://local-test/none.tar.gz"},
    )
    assert code == "ValidationException" and "s3://local-test/none.tar.gz" in message
    artifact = service.root / "s3" / "local-test" / "fake" / "model.tar.gz"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(b"not a tarball")
    container = {"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://local-test/fake/model.tar.gz"}
    sm.create_model(ModelName="fake-model", ExecutionRoleArn=ROLE, PrimaryContainer=container)
    code, message = code_of(
        sm.create_model, ModelName="fake-model", ExecutionRoleArn=ROLE, PrimaryContainer=container
    )
    assert code == "ValidationException" and "Cannot create already existing model" in message
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "missing-model",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    code, message = code_of(sm.create_endpoint_config, EndpointConfigName="cfg", ProductionVariants=[variant])
    assert code == "ValidationException" and "missing-model" in message
    variant["ModelName"] = "fake-model"
    code, _ = code_of(
        sm.create_endpoint_config, EndpointConfigName="cfg", ProductionVariants=[variant, variant]
    )
    assert code == "ValidationException"
    sm.create_endpoint_config(EndpointConfigName="cfg", ProductionVariants=[variant])
    assert (
        "Cannot create already existing endpoint configuration"
        in code_of(sm.create_endpoint_config, EndpointConfigName="cfg", ProductionVariants=[variant])[1]
    )
    assert (
        code_of(sm.create_endpoint, EndpointName="ep", EndpointConfigName="missing-cfg")[0]
        == "ValidationException"
    )
    # a model that cannot be extracted: the endpoint ends Failed with the reason, and the waiter fails
    sm.create_endpoint(EndpointName="broken-ep", EndpointConfigName="cfg")
    assert (
        "Cannot create already existing endpoint"
        in code_of(sm.create_endpoint, EndpointName="broken-ep", EndpointConfigName="cfg")[1]
    )
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="broken-ep", WaiterConfig=FAST)
    described = sm.describe_endpoint(EndpointName="broken-ep")
    assert described["EndpointStatus"] == "Failed"
    assert "s3://local-test/fake/model.tar.gz" in described["FailureReason"]
    assert (
        code_of(sm.update_endpoint, EndpointName="broken-ep", EndpointConfigName="cfg")[0]
        == "ValidationException"
    )


def test_tags_on_resources(service):
    sm = service.sm
    container = {"Image": XGBOOST_IMAGE}
    arn = sm.create_model(
        ModelName="tagged",
        ExecutionRoleArn=ROLE,
        PrimaryContainer=container,
        Tags=[{"Key": "team", "Value": "risk"}],
    )["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "dev"}, {"Key": "team", "Value": "credit"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "stage", "Value": "dev"},
        {"Key": "team", "Value": "credit"},
    ]
    sm.delete_tags(ResourceArn=arn, TagKeys=["stage"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "credit"}]
    assert (
        code_of(sm.add_tags, ResourceArn=arn, Tags=[{"Key": "aws:reserved", "Value": "x"}])[0]
        == "ValidationException"
    )
    missing = arn.replace("tagged", "untagged")
    assert code_of(sm.list_tags, ResourceArn=missing)[0] == "ValidationException"


def test_oversized_invocation_and_unknown_operation(service):
    with pytest.raises(service.runtime.exceptions.ValidationError, match="6 MB"):
        service.runtime.invoke_endpoint(
            EndpointName="any", ContentType="text/csv", Body=b"1" * (6 * 1024 * 1024 + 1)
        )
    # Signed with the root's credentials (the stack refuses unsigned requests before routing them).
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = stack_credentials(service.root)
    signed = AWSRequest("POST", service.url + "/", data=b"{}", headers={
        "X-Amz-Target": "SageMaker.CreateNotebookInstance", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(creds["aws_access_key_id"], creds["aws_secret_access_key"]), "sagemaker",
              "us-east-1").add_auth(signed)
    request = urllib.request.Request(service.url + "/", data=b"{}", method="POST", headers=dict(signed.headers.items()))
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    body = json.loads(raised.value.read())
    assert raised.value.code == 400 and body["__type"] == "UnknownOperationException"
