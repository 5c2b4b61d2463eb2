"""The requests the platform sends for rollouts, guard alarms and transform jobs: valid for botocore's own
models, built from the settings as documented, and bad settings refused with the allowed range."""

from __future__ import annotations

import math

import boto3
import pytest
from botocore.validate import validate_parameters

from smspark_assets.assets.algorithm_models import AlgorithmEndpointConfig
from smspark_assets.environment import rollout_bake_seconds
from smspark_assets.assets.serving import EndpointConfig, endpoint_mode, endpoint_settings, rollout_settings
from smspark_assets.sagemaker.alarms import AlarmSettings, alarm_requests
from smspark_assets.sagemaker.endpoints import RolloutSettings
from smspark_assets.sagemaker.transform import TransformRequest, output_uri_for

KEY = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


def _shape(service: str, operation: str):
    return boto3.client(service, region_name="us-east-1").meta.service_model.operation_model(operation).input_shape


def test_rollout_bake_defaults_to_five_minutes_on_aws_and_is_checked(monkeypatch) -> None:
    monkeypatch.delenv("SMSPARK_ROLLOUT_BAKE_SECONDS", raising=False)
    monkeypatch.setenv("SMSPARK_ENV", "aws")
    assert rollout_bake_seconds() == 300
    monkeypatch.setenv("SMSPARK_ENV", "local")
    assert rollout_bake_seconds() == 20
    monkeypatch.setenv("SMSPARK_ROLLOUT_BAKE_SECONDS", "45")
    assert rollout_bake_seconds() == 45
    for bad in ("-1", "3601", "ten"):
        monkeypatch.setenv("SMSPARK_ROLLOUT_BAKE_SECONDS", bad)
        with pytest.raises(ValueError, match="0..3600"):
            rollout_bake_seconds()


def test_default_endpoint_config_is_a_canary_guarded_by_both_alarms() -> None:
    config = EndpointConfig()
    rollout = rollout_settings(config)
    alarms = alarm_requests("credit-default", "AllTraffic", rollout.alarms)
    names = [a["AlarmName"] for a in alarms]
    deployment = rollout.deployment_config(names)
    validate_parameters({"EndpointName": "credit-default", "EndpointConfigName": "c",
                         "DeploymentConfig": deployment}, _shape("sagemaker", "UpdateEndpoint"))
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    bake = rollout_bake_seconds()  # the environment's default: 20 s on the embedded stack, 300 s on AWS
    assert routing == {"Type": "CANARY", "WaitIntervalInSeconds": bake,
                       "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    # two bakes + 600 s margin
    assert deployment["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == 2 * bake + 600
    assert deployment["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "credit-default-5xx-rate"},
                                                                  {"AlarmName": "credit-default-model-latency"}]}
    for alarm in alarms:
        validate_parameters(alarm, _shape("cloudwatch", "PutMetricAlarm"))
    error, latency = alarms
    assert (error["MetricName"], error["Statistic"], error["Threshold"]) == ("Invocation5XXErrors", "Average", 0.05)
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("ModelLatency", "p99")
    assert latency["Threshold"] == 1000.0 * 1000  # 1 s in SageMaker's microseconds
    assert all(a["Dimensions"] == [{"Name": "EndpointName", "Value": "credit-default"},
                                   {"Name": "VariantName", "Value": "AllTraffic"}] for a in alarms)
    assert all(a["TreatMissingData"] == "notBreaching" for a in alarms)


@pytest.mark.parametrize("step, steps", [(10, 10), (25, 4), (34, 3), (50, 2)])
def test_linear_rollout_steps_and_limits(step: int, steps: int) -> None:
    rollout = RolloutSettings(mode="LINEAR", linear_step_percent=step, wait_seconds=120, alarms=None)
    assert rollout.steps() == steps == math.ceil(100 / step)
    deployment = rollout.deployment_config([])
    validate_parameters({"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": deployment},
                        _shape("sagemaker", "UpdateEndpoint"))
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["LinearStepSize"] == \
        {"Type": "CAPACITY_PERCENT", "Value": step}
    assert "AutoRollbackConfiguration" not in deployment
    assert deployment["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == max(600, steps * 120 + 600)


def test_serverless_updates_shift_all_at_once_but_keep_bake_and_alarms() -> None:
    rollout = RolloutSettings(wait_seconds=30)
    deployment = rollout.deployment_config(["a"], serverless=True)
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == \
        {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 30}
    assert deployment["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "a"}]}


@pytest.mark.parametrize("rollout, message", [
    (RolloutSettings(mode="BLUE"), "ALL_AT_ONCE, CANARY, LINEAR"),
    (RolloutSettings(canary_percent=60), "1..50"),
    (RolloutSettings(mode="LINEAR", linear_step_percent=5), "10..50"),
    (RolloutSettings(wait_seconds=4000), "0..3600"),
    (RolloutSettings(wait_seconds=3600, max_execution_seconds=3000), "must exceed the total"),
    (RolloutSettings(max_execution_seconds=100), "600..28800"),
    (RolloutSettings(alarms=AlarmSettings(error_rate=1.5)), "(0, 1]"),
    (RolloutSettings(alarms=AlarmSettings(latency_statistic="median")), "p50, p99"),
    (RolloutSettings(alarms=AlarmSettings(period_seconds=45)), "10, 20, 30 or a multiple of 60"),
])
def test_bad_rollout_settings_are_refused_with_the_allowed_range(rollout: RolloutSettings, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        rollout.deployment_config(["a"])


def test_platform_kms_key_reaches_endpoint_configs_and_data_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_KMS_KEY_ARN", KEY)
    settings = endpoint_settings(EndpointConfig(data_capture_uri="s3://demo/capture/"))
    request = settings.config_request("model-a")
    assert request["KmsKeyId"] == KEY and request["DataCaptureConfig"]["KmsKeyId"] == KEY
    validate_parameters({"EndpointConfigName": "c", **request}, _shape("sagemaker", "CreateEndpointConfig"))
    assert settings.tags == {"project": "smspark_assets"}
    # an explicit key wins; serverless variants have no storage volume to encrypt
    assert endpoint_settings(EndpointConfig(kms_key_id="alias/other")).kms_key_id == "alias/other"
    assert endpoint_settings(EndpointConfig(endpoint_mode="serverless")).kms_key_id is None
    monkeypatch.delenv("SMSPARK_KMS_KEY_ARN")
    assert "KmsKeyId" not in endpoint_settings(EndpointConfig()).config_request("m")


def test_endpoint_modes() -> None:
    assert endpoint_mode(EndpointConfig()) == "realtime"
    assert endpoint_mode(EndpointConfig(serverless_memory_mb=4096)) == "serverless"  # older configs
    demo = endpoint_settings(AlgorithmEndpointConfig())
    assert demo.serverless is not None and demo.serverless.to_request() == {"MemorySizeInMB": 2048,
                                                                           "MaxConcurrency": 5}
    variant = demo.config_request("m")["ProductionVariants"][0]
    assert "InstanceType" not in variant
    assert endpoint_settings(AlgorithmEndpointConfig(endpoint_mode="realtime")).serverless is None
    assert endpoint_mode(AlgorithmEndpointConfig(endpoint_mode="none")) == "none"
    with pytest.raises(ValueError, match="not supported on serverless"):
        endpoint_settings(EndpointConfig(endpoint_mode="serverless", data_capture_uri="s3://demo/c/"))


def test_transform_request_validates_and_names_its_output() -> None:
    request = TransformRequest(model_name="m", input_uri="s3://demo/in/sample.rec", output_uri="s3://demo/out/x",
                               content_type="application/x-recordio-protobuf", input_fingerprint="abc",
                               accept="application/x-recordio-protobuf", split_type="RecordIO", kms_key_id=KEY,
                               tags={"project": "smspark_assets"})
    kwargs = request.create_kwargs(request.job_name("algo-kmeans-scores"))
    validate_parameters(kwargs, _shape("sagemaker", "CreateTransformJob"))
    assert kwargs["TransformOutput"]["KmsKeyId"] == KEY and kwargs["TransformResources"]["VolumeKmsKeyId"] == KEY
    assert len(kwargs["TransformJobName"]) <= 63
    assert request.job_name("p") == request.job_name("p") != TransformRequest(
        **{**request.__dict__, "input_fingerprint": "abd"}).job_name("p")
    assert request.job_name("p", 2).endswith("-r2")
    assert output_uri_for("s3://demo/in/sample.rec", "s3://demo/in/sample.rec", "s3://demo/out/x") == \
        "s3://demo/out/x/sample.rec.out"
    assert output_uri_for("s3://demo/in/a/b.csv", "s3://demo/in/", "s3://demo/out/") == "s3://demo/out/a/b.csv.out"
    with pytest.raises(ValueError, match="None, Line, RecordIO, TFRecord"):
        TransformRequest("m", "s3://d/i", "s3://d/o", "text/csv", "f", split_type="Lines").validate()
