"""Conformance: the same boto3 calls against moto's SageMaker and against the local service give the same
response keys and value types, for every operation both implement. Where the two differ, the difference is
listed below with a one-line reason (usually: moto is not what AWS answers)."""

from __future__ import annotations

import datetime
from typing import Any, Callable

import boto3

from smspark_assets_tests.stack_access import stack_credentials_for_url
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_service_helpers import BUCKET, CUSTOM_IMAGE, FAST, ROLE, configure_custom_algorithm, linear_job
from smspark_assets.local import process

pytestmark = pytest.mark.integration

# (operation, key path) present on one side only, and why. Paths use "." for nesting, "[]" for list items.
ONLY_LOCAL: dict[tuple[str, str], str] = {
    ("DescribeTrainingJob", "TrainingTimeInSeconds"): "moto never runs the job, so it has no duration",
    ("DescribeTrainingJob", "BillableTimeInSeconds"): "(same)",
    ("ListTrainingJobs", "TrainingJobSummaries[].SecondaryStatus"): "AWS includes it; moto leaves it out",
    (
        "DescribeEndpoint",
        "ProductionVariants[].DeployedImages",
    ): "AWS lists the deployed images; moto does not",
    ("DescribeEndpoint", "ProductionVariants[].DeployedImages[].SpecifiedImage"): "(same)",
    ("DescribeEndpoint", "ProductionVariants[].DeployedImages[].ResolvedImage"): "(same)",
    ("DescribeEndpoint", "ProductionVariants[].DeployedImages[].ResolutionTime"): "(same)",
    (
        "DescribeTransformJob",
        "MaxConcurrentTransforms",
    ): "AWS answers the value in effect; moto leaves it out",
}
ONLY_MOTO: dict[tuple[str, str], str] = {
    (
        "DescribeTransformJob",
        "FailureReason",
    ): "moto answers an empty FailureReason for a completed job; AWS omits it",
    (
        "DescribeTransformJob",
        "LabelingJobArn",
    ): "moto answers an empty LabelingJobArn; AWS omits it without one",
    (
        "DescribeModel",
        "Containers",
    ): "moto answers an empty Containers list beside PrimaryContainer; AWS omits it",
}


def _shape(value: Any, path: str, out: dict[str, type]) -> None:
    """Flatten a response into {key path: python type}, descending into dicts and list items."""
    if isinstance(value, dict):
        for key, item in value.items():
            _shape(item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        out[path] = list
        for item in value:
            _shape(item, f"{path}[]", out)
    else:
        out[path] = type(value)


def shape(response: dict[str, Any]) -> dict[str, type]:
    out: dict[str, type] = {}
    _shape({k: v for k, v in response.items() if k != "ResponseMetadata"}, "", out)
    return out


def scenario(
    sm: Any, wait: Callable[[str, str], None], artifact_for: Callable[[str], str]
) -> dict[str, dict]:
    """The calls both implementations support, in a lifecycle order; returns the response of each."""
    r: dict[str, dict] = {}
    request = linear_job("conformance-job", w=2)
    request["Tags"] = [{"Key": "team", "Value": "risk"}]
    r["CreateTrainingJob"] = sm.create_training_job(**request)
    wait("training", "conformance-job")
    r["DescribeTrainingJob"] = sm.describe_training_job(TrainingJobName="conformance-job")
    r["ListTrainingJobs"] = sm.list_training_jobs(NameContains="conformance", MaxResults=5)
    artifact = artifact_for("conformance-job")
    r["CreateModel"] = sm.create_model(
        ModelName="conformance-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": CUSTOM_IMAGE, "ModelDataUrl": artifact},
    )
    r["DescribeModel"] = sm.describe_model(ModelName="conformance-model")
    r["ListModels"] = sm.list_models(NameContains="conformance")
    r["CreateEndpointConfig"] = sm.create_endpoint_config(
        EndpointConfigName="conformance-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "conformance-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    r["DescribeEndpointConfig"] = sm.describe_endpoint_config(EndpointConfigName="conformance-config")
    r["ListEndpointConfigs"] = sm.list_endpoint_configs(NameContains="conformance")
    r["CreateEndpoint"] = sm.create_endpoint(
        EndpointName="conformance-endpoint", EndpointConfigName="conformance-config"
    )
    wait("endpoint", "conformance-endpoint")
    r["DescribeEndpoint"] = sm.describe_endpoint(EndpointName="conformance-endpoint")
    r["ListEndpoints"] = sm.list_endpoints(NameContains="conformance")
    r["UpdateEndpointWeightsAndCapacities"] = sm.update_endpoint_weights_and_capacities(
        EndpointName="conformance-endpoint",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 0.5}],
    )
    wait("endpoint", "conformance-endpoint")
    arn = r["CreateModel"]["ModelArn"]
    r["AddTags"] = sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "dev"}])
    r["ListTags"] = sm.list_tags(ResourceArn=arn)
    r["DeleteTags"] = sm.delete_tags(ResourceArn=arn, TagKeys=["stage"])
    r["CreateTransformJob"] = sm.create_transform_job(
        TransformJobName="conformance-transform",
        ModelName="conformance-model",
        BatchStrategy="MultiRecord",
        MaxPayloadInMB=1,
        TransformInput={
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/linear/train"}
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={
            "S3OutputPath": f"s3://{BUCKET}/conformance-out",
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    wait("transform", "conformance-transform")
    r["DescribeTransformJob"] = sm.describe_transform_job(TransformJobName="conformance-transform")
    r["ListTransformJobs"] = sm.list_transform_jobs(NameContains="conformance")
    r["DeleteEndpoint"] = sm.delete_endpoint(EndpointName="conformance-endpoint")
    wait("deleted", "conformance-endpoint")
    r["DeleteEndpointConfig"] = sm.delete_endpoint_config(EndpointConfigName="conformance-config")
    r["DeleteModel"] = sm.delete_model(ModelName="conformance-model")
    return r


def _waiter(sm: Any) -> Callable[[str, str], None]:
    def wait(kind: str, name: str) -> None:
        if kind == "training":
            sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)
        elif kind == "endpoint":
            sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
        elif kind == "transform":
            sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName=name, WaiterConfig=FAST)
        else:
            sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=FAST)

    return wait


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance-root")
    with pytest.MonkeyPatch.context() as mp:
        for var, value in (
            ("SMSPARK_ROOT", str(root)),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            mp.setenv(var, value)
        configure_custom_algorithm(root)
        info = process.start(root)
        try:
            local_sm = boto3.client("sagemaker", endpoint_url=info.url, region_name="us-east-1",
                                    **stack_credentials_for_url(info.url))
            local = scenario(
                local_sm,
                _waiter(local_sm),
                lambda job: local_sm.describe_training_job(TrainingJobName=job)["ModelArtifacts"][
                    "S3ModelArtifacts"
                ],
            )
        finally:
            process.stop(root)
        with mock_aws():
            moto_sm = boto3.client("sagemaker", region_name="us-east-1")
            moto = scenario(
                moto_sm, _waiter(moto_sm), lambda job: f"s3://{BUCKET}/models/{job}/output/model.tar.gz"
            )
    return local, moto


OPERATIONS = [
    "CreateTrainingJob",
    "DescribeTrainingJob",
    "ListTrainingJobs",
    "CreateModel",
    "DescribeModel",
    "ListModels",
    "CreateEndpointConfig",
    "DescribeEndpointConfig",
    "ListEndpointConfigs",
    "CreateEndpoint",
    "DescribeEndpoint",
    "ListEndpoints",
    "UpdateEndpointWeightsAndCapacities",
    "AddTags",
    "ListTags",
    "DeleteTags",
    "CreateTransformJob",
    "DescribeTransformJob",
    "ListTransformJobs",
    "DeleteEndpoint",
    "DeleteEndpointConfig",
    "DeleteModel",
]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_same_keys_and_types_as_moto(both, operation):
    local, moto = both
    ours, theirs = shape(local[operation]), shape(moto[operation])
    only_ours = {k for k in ours.keys() - theirs.keys() if (operation, k) not in ONLY_LOCAL}
    only_theirs = {k for k in theirs.keys() - ours.keys() if (operation, k) not in ONLY_MOTO}
    assert not only_ours, f"{operation}: only the local service answers {sorted(only_ours)}"
    assert not only_theirs, f"{operation}: only moto answers {sorted(only_theirs)}"
    mismatched = {k: (ours[k], theirs[k]) for k in ours.keys() & theirs.keys() if ours[k] is not theirs[k]}
    assert not mismatched, f"{operation}: value types differ {mismatched}"


def test_documented_differences_are_real(both):
    """Keeps the lists above true: each listed difference still exists."""
    local, moto = both
    for operation, path in ONLY_LOCAL:
        assert path in shape(local[operation]) and path not in shape(moto[operation]), (operation, path)
    for operation, path in ONLY_MOTO:
        assert path in shape(moto[operation]) and path not in shape(local[operation]), (operation, path)


def test_timestamps_are_datetimes(both):
    local, _ = both
    assert isinstance(local["DescribeTrainingJob"]["CreationTime"], datetime.datetime)
    assert isinstance(local["DescribeEndpoint"]["LastModifiedTime"], datetime.datetime)


# Refused calls: the same error code on both sides (ValidationException for missing resources, as AWS).
REFUSALS: list[tuple[str, dict[str, Any]]] = [
    ("describe_training_job", {"TrainingJobName": "missing"}),
    ("describe_model", {"ModelName": "missing"}),
    ("describe_endpoint_config", {"EndpointConfigName": "missing"}),
    ("describe_endpoint", {"EndpointName": "missing"}),
    ("delete_endpoint", {"EndpointName": "missing"}),
    ("delete_endpoint_config", {"EndpointConfigName": "missing"}),
    ("delete_model", {"ModelName": "missing"}),
    ("describe_transform_job", {"TransformJobName": "missing"}),
    ("create_endpoint", {"EndpointName": "e", "EndpointConfigName": "missing"}),
    (
        "create_endpoint_config",
        {
            "EndpointConfigName": "c",
            "ProductionVariants": [
                {"VariantName": "v", "ModelName": "missing", "InitialInstanceCount": 1,
                 "InstanceType": "ml.m5.large"}
            ],
        },
    ),
]


def _code(call: Callable[[], Any]) -> str:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return "no error"


def test_refused_calls_have_the_same_error_codes_as_moto(tmp_path, monkeypatch):
    for var, value in (("SMSPARK_ROOT", str(tmp_path)), ("AWS_ACCESS_KEY_ID", "local"),
                       ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(var, value)
    info = process.start(tmp_path)
    try:
        local_sm = boto3.client("sagemaker", endpoint_url=info.url, region_name="us-east-1",
                                    **stack_credentials_for_url(info.url))
        ours = {op: _code(lambda: getattr(local_sm, op)(**kwargs)) for op, kwargs in REFUSALS}
    finally:
        process.stop(tmp_path)
    with mock_aws():
        moto_sm = boto3.client("sagemaker", region_name="us-east-1")
        theirs = {op: _code(lambda: getattr(moto_sm, op)(**kwargs)) for op, kwargs in REFUSALS}
    differing = {op: (ours[op], theirs[op]) for op, _ in REFUSALS if ours[op] != theirs[op]}
    assert not differing, f"(local, moto) error codes differ: {differing}"
    assert all(code != "no error" for code in ours.values()), ours
