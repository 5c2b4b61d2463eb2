"""Issue 10: the KMS key and the optional VPC reach training jobs, tuning definitions and models.

Requests are checked against botocore's own SageMaker model (``validate_parameters``) and sent through a
Stubber, which refuses anything but the expected parameters: what SageMaker would receive.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from botocore.validate import validate_parameters

from smspark_assets import environment
from smspark_assets.resources.by_environment import Environment, resources_for, sagemaker_security
from smspark_assets.sagemaker.images import image_uri
from smspark_assets.sagemaker.training import Channel, SecuritySettings, TrainingRequest, ensure_model

pytestmark = pytest.mark.timeout(60)

ROLE = "arn:aws:iam::123456789012:role/smspark-sagemaker"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SUBNETS = ("subnet-0123456789abcdef0", "subnet-0fedcba9876543210")
GROUPS = ("sg-0123456789abcdef0",)
XGBOOST = image_uri("xgboost", "us-east-1")
CUSTOM = "123456789012.dkr.ecr.us-east-1.amazonaws.com/smspark-sklearn-logistic:1"
SECURE = SecuritySettings(kms_key_id=KEY, subnet_ids=SUBNETS, security_group_ids=GROUPS)


def _sagemaker() -> Any:
    return boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _valid(operation: str, params: dict[str, Any]) -> None:
    model = _sagemaker().meta.service_model.operation_model(operation)
    validate_parameters(params, model.input_shape)  # raises ParamValidationError naming the bad field


def _request(image: str = XGBOOST, instances: int = 1, security: SecuritySettings = SECURE) -> TrainingRequest:
    return TrainingRequest(
        name_prefix="credit-default-xgb", image=image, role_arn=ROLE, hyperparameters={"num_round": "10"},
        channels={"train": Channel("s3://demo/channels/train", "text/csv")}, output_uri="s3://demo/models",
        data_fingerprint="fp", instance_count=instances, security=security)


def test_training_job_carries_key_vpc_and_isolation() -> None:
    request = _request()
    kwargs = request.create_kwargs(request.job_name())
    _valid("CreateTrainingJob", kwargs)
    assert kwargs["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert kwargs["OutputDataConfig"] == {"S3OutputPath": "s3://demo/models", "KmsKeyId": KEY}
    assert kwargs["VpcConfig"] == {"Subnets": list(SUBNETS), "SecurityGroupIds": list(GROUPS)}
    assert kwargs["EnableNetworkIsolation"] is True  # a built-in algorithm needs no network
    assert "EnableInterContainerTrafficEncryption" not in kwargs  # one instance: no traffic between containers


def test_distributed_custom_image_encrypts_traffic_without_isolation() -> None:
    request = _request(image=CUSTOM, instances=2)
    kwargs = request.create_kwargs(request.job_name())
    _valid("CreateTrainingJob", kwargs)
    assert kwargs["EnableInterContainerTrafficEncryption"] is True
    assert "EnableNetworkIsolation" not in kwargs  # script mode fetches its code at start


def test_without_settings_only_isolation_is_added() -> None:
    request = _request(security=SecuritySettings())
    kwargs = request.create_kwargs(request.job_name())
    _valid("CreateTrainingJob", kwargs)
    assert "VpcConfig" not in kwargs and "KmsKeyId" not in kwargs["OutputDataConfig"]
    assert "VolumeKmsKeyId" not in kwargs["ResourceConfig"]
    # Security settings do not rename the job: a completed job stays adoptable.
    assert request.job_name() == _request().job_name()


def test_tuning_training_definition_gets_the_same_fields() -> None:
    definition = {
        "AlgorithmSpecification": {"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://demo/channels/train/"}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://demo/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    secured = SECURE.apply_to_training(definition)
    shape = _sagemaker().meta.service_model.shape_for("HyperParameterTrainingJobDefinition")
    validate_parameters(secured, shape)
    assert secured["VpcConfig"]["Subnets"] == list(SUBNETS)
    assert secured["ResourceConfig"]["VolumeKmsKeyId"] == secured["OutputDataConfig"]["KmsKeyId"] == KEY
    assert "KmsKeyId" not in definition["OutputDataConfig"]  # the caller's dict is left as it was


@pytest.mark.parametrize(("image", "isolated"), [(XGBOOST, True), (CUSTOM, False)])
def test_model_is_created_in_the_vpc(image: str, isolated: bool) -> None:
    sm = _sagemaker()
    expected = {"ModelName": "m", "ExecutionRoleArn": ROLE,
                "PrimaryContainer": {"Image": image, "ModelDataUrl": "s3://demo/models/m.tar.gz", "Environment": {}},
                "VpcConfig": {"Subnets": list(SUBNETS), "SecurityGroupIds": list(GROUPS)},
                **({"EnableNetworkIsolation": True} if isolated else {})}
    with Stubber(sm) as stub:
        stub.add_client_error("describe_model", service_error_code="ValidationException",
                              service_message="Could not find model")
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"}, expected)
        assert ensure_model(sm, "m", image, "s3://demo/models/m.tar.gz", ROLE, security=SECURE)
        stub.assert_no_pending_responses()


def test_a_vpc_needs_subnets_and_security_groups() -> None:
    with pytest.raises(ValueError, match="security group ids were not"):
        SecuritySettings(subnet_ids=SUBNETS)
    with pytest.raises(ValueError, match="subnet ids were not"):
        SecuritySettings(security_group_ids=GROUPS)


def test_environment_is_read_and_checked_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (environment.KMS_KEY_VAR, environment.SUBNETS_VAR, environment.SECURITY_GROUPS_VAR):
        monkeypatch.delenv(var, raising=False)
    assert sagemaker_security() == {"kms_key_id": None, "subnet_ids": [], "security_group_ids": []}
    monkeypatch.setenv(environment.KMS_KEY_VAR, KEY)
    monkeypatch.setenv(environment.SUBNETS_VAR, " , ".join(SUBNETS) + ",")
    monkeypatch.setenv(environment.SECURITY_GROUPS_VAR, GROUPS[0])
    sagemaker = resources_for(Environment.AWS)["sagemaker"]
    assert sagemaker.security() == SECURE
    assert resources_for(Environment.LOCAL)["sagemaker"].security() == SecuritySettings()  # the stack has no VPC


@pytest.mark.parametrize(("var", "value", "message"), [
    (environment.KMS_KEY_VAR, "my-key", "is not a KMS key; allowed"),
    (environment.SUBNETS_VAR, "subnet-123,vpc-0123456789abcdef0", "'subnet-123', 'vpc-0123456789abcdef0' not allowed"),
    (environment.SECURITY_GROUPS_VAR, ",".join(f"sg-{n:017x}" for n in range(6)), "at most 5"),
])
def test_bad_settings_name_the_variable_and_what_is_allowed(monkeypatch: pytest.MonkeyPatch, var: str,
                                                            value: str, message: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=message) as raised:
        sagemaker_security()
    assert var in str(raised.value)


def test_a_subnet_without_security_group_fails_when_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(environment.SECURITY_GROUPS_VAR, raising=False)
    monkeypatch.delenv(environment.KMS_KEY_VAR, raising=False)
    monkeypatch.setenv(environment.SUBNETS_VAR, SUBNETS[0])
    with pytest.raises(ValueError, match="needs both"):
        resources_for(Environment.AWS)
