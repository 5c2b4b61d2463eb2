"""Endpoint config names cover everything that determines the config (issue 10, defect 4)."""

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from smspark_assets.sagemaker.endpoints import DataCapture, EndpointFailed, EndpointSettings, ServerlessSettings, deploy_model
from smspark_assets.sagemaker.training import ensure_model

pytestmark = pytest.mark.timeout(60)

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def _quiet(_: str) -> None:
    return None


@mock_aws
def test_a_new_instance_type_or_count_is_not_unchanged() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    ensure_model(sm, "model-a", IMAGE, "s3://demo/models/a/model.tar.gz", ROLE)
    created = deploy_model(sm, "credit-default", "model-a", EndpointSettings("ml.m5.xlarge"), 0.01, _quiet)
    assert created.action == "created"
    assert deploy_model(sm, "credit-default", "model-a", EndpointSettings("ml.m5.xlarge"), 0.01,
                        _quiet).action == "unchanged"
    # moto has no UpdateEndpoint: a Stubber plays the update, after the real config was created in moto.
    bigger = EndpointSettings("ml.m5.2xlarge", instance_count=2)
    with Stubber(sm) as stub:
        stub.add_client_error("describe_endpoint_config", "ValidationException", "Could not find endpoint config")
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x"},
                          {"EndpointConfigName": ANY, "ProductionVariants": [{
                              "VariantName": "AllTraffic", "ModelName": "model-a", "InitialVariantWeight": 1.0,
                              "InstanceType": "ml.m5.2xlarge", "InitialInstanceCount": 2}]})
        stub.add_response("describe_endpoint", _endpoint(created.config_name), {"EndpointName": "credit-default"})
        stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/credit-default"},
                          {"EndpointName": "credit-default", "EndpointConfigName": ANY})
        stub.add_response("describe_endpoint", _endpoint("pending"), {"EndpointName": "credit-default"})  # waiter
        stub.add_response("describe_endpoint", _endpoint("pending"), {"EndpointName": "credit-default"})
        # The update was requested (the stubbed endpoint then reports another config, hence the error):
        # before, the same config name made this "unchanged" and nothing was created or updated.
        with pytest.raises(EndpointFailed, match="did not serve model-a-cfg-"):
            deploy_model(sm, "credit-default", "model-a", bigger, 0.01, _quiet)
        stub.assert_no_pending_responses()


@mock_aws
def test_the_stored_config_is_what_was_asked() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    ensure_model(sm, "model-a", IMAGE, "s3://demo/models/a/model.tar.gz", ROLE)
    result = deploy_model(sm, "scores", "model-a", EndpointSettings("ml.c5.large", instance_count=3), 0.01, _quiet)
    variant = sm.describe_endpoint_config(EndpointConfigName=result.config_name)["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"], variant["ModelName"]) == \
        ("ml.c5.large", 3, "model-a")
    assert result.config_name.startswith("model-a-cfg-") and len(result.config_name) <= 63


def test_every_setting_changes_the_name_and_equal_settings_keep_it() -> None:
    base = EndpointSettings()
    variants = [
        EndpointSettings(instance_type="ml.m5.2xlarge"),
        EndpointSettings(instance_count=2),
        EndpointSettings(variant_name="Blue"),
        EndpointSettings(variant_weight=0.5),
        EndpointSettings(data_capture=DataCapture("s3://demo/capture/")),
        EndpointSettings(data_capture=DataCapture("s3://demo/capture/", sampling_percentage=10)),
        EndpointSettings(serverless=ServerlessSettings(2048, 5)),
        EndpointSettings(serverless=ServerlessSettings(4096, 5)),
        EndpointSettings(kms_key_id="arn:aws:kms:us-east-1:123456789012:key/1"),
    ]
    from smspark_assets.sagemaker.naming import endpoint_config_name

    names = [endpoint_config_name("m", s.config_request("m")) for s in [base, *variants]]
    assert len(set(names)) == len(names)
    assert endpoint_config_name("m", EndpointSettings().config_request("m")) == names[0]
    assert endpoint_config_name("other", base.config_request("other")) != names[0]
    # Tags change nothing the config does: same name.
    assert endpoint_config_name("m", EndpointSettings(tags={"a": "b"}).config_request("m")) == names[0]


@pytest.mark.parametrize("settings, message", [
    (EndpointSettings(instance_count=0), "at least 1"),
    (EndpointSettings(instance_type="m5.large"), "ml"),
    (EndpointSettings(serverless=ServerlessSettings(1000, 5)), "1024"),
    (EndpointSettings(serverless=ServerlessSettings(2048, 500)), "1..200"),
    (EndpointSettings(data_capture=DataCapture("s3://demo/c/", sampling_percentage=101)), "0..100"),
])
def test_bad_settings_are_refused_with_the_allowed_range(settings: EndpointSettings, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings.config_request("m")


def test_serverless_request_has_no_instances() -> None:
    request = EndpointSettings(serverless=ServerlessSettings(3072, 10, 2)).config_request("m")
    variant = request["ProductionVariants"][0]
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 10, "ProvisionedConcurrency": 2}


def _endpoint(config: str) -> dict:
    return {"EndpointName": "credit-default", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/c",
            "EndpointConfigName": config, "EndpointStatus": "InService", "CreationTime": 0, "LastModifiedTime": 0}
