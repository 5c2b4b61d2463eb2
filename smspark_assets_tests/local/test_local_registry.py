"""The model registry of the embedded stack: groups, versioned packages, approval, paging, idempotency, and
CreateModel from an approved package serving the package's model; shapes checked against moto's."""

from __future__ import annotations

import datetime
import io
import tarfile
import time
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_service_helpers import FAST, ROLE, XGBOOST_IMAGE, csv_rows
from stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BUCKET = "registry-test"
# (operation, key path) answered by the stack and not by moto, and why (aws_next_notes.md §5).
ONLY_LOCAL = {
    ("DescribeModelPackage", "ModelPackageName"): "AWS names a versioned package after its group; moto omits it",
    ("DescribeModelPackage", "ModelApprovalStatus"): "AWS defaults to PendingManualApproval; moto leaves None",
    ("DescribeModelPackage", "LastModifiedTime"): "set by the stack on create; moto only after an update",
    ("DescribeModelPackage", "ModelPackageRegistrationType"): "newer botocore member; moto does not set it",
    ("ListModelPackages", "ModelPackageSummaryList[].ModelApprovalStatus"): "(same as Describe)",
    ("ListModelPackages", "ModelPackageSummaryList[].ModelPackageRegistrationType"): "(same as Describe)",
    ("ListModelPackages", "ModelPackageSummaryList[].ModelPackageName"): "(same as Describe)",
}
ONLY_MOTO = {
    ("DescribeModelPackage", "CreatedBy.UserProfileArn"): "moto invents a Studio user profile; there is none",
    ("DescribeModelPackage", "CreatedBy.UserProfileName"): "(same)",
    ("DescribeModelPackage", "CreatedBy.DomainId"): "(same)",
    ("DescribeModelPackage", "CertifyForMarketplace"): "moto answers False when not given; AWS omits it",
    ("DescribeModelPackage", "ApprovalDescription"): "moto answers an empty value when not given",
    ("DescribeModelPackage", "SkipModelValidation"): "moto answers a default; the stack echoes only what is given",
    ("DescribeModelPackageGroup", "ModelPackageGroupDescription"): "moto answers None-as-missing differently",
}


def _shape(value: Any, path: str, out: dict[str, type]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _shape(item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        out[path] = list
        for item in value:
            _shape(item, f"{path}[]", out)
    else:
        out[path] = datetime.datetime if isinstance(value, datetime.datetime) else type(value)


def _calls(sm: Any) -> dict[str, dict[str, Any]]:
    sm.create_model_package_group(ModelPackageGroupName="conf-group", ModelPackageGroupDescription="g")
    arn = sm.create_model_package(
        ModelPackageGroupName="conf-group",
        ModelPackageDescription="v1",
        InferenceSpecification={
            "Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        CustomerMetadataProperties={"data": "abc"},
    )["ModelPackageArn"]
    out = {
        "DescribeModelPackageGroup": sm.describe_model_package_group(ModelPackageGroupName="conf-group"),
        "ListModelPackageGroups": sm.list_model_package_groups(),
        "DescribeModelPackage": sm.describe_model_package(ModelPackageName=arn),
        "ListModelPackages": sm.list_model_package(ModelPackageGroupName="conf-group")
        if hasattr(sm, "list_model_package") else sm.list_model_packages(ModelPackageGroupName="conf-group"),
        "UpdateModelPackage": sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved"),
    }
    for doc in out.values():
        doc.pop("ResponseMetadata", None)
    return out


@pytest.fixture(scope="module")
def sm(service: Any) -> Any:
    stack_client(service.root, service.url, "s3").create_bucket(Bucket=BUCKET)
    return stack_client(service.root, service.url, "sagemaker")


def test_registry_shapes_match_moto(sm: Any) -> None:
    local = _calls(sm)
    import boto3

    with mock_aws():
        moto = _calls(boto3.client("sagemaker", region_name="us-east-1"))
    for operation in local:
        ours, theirs = {}, {}
        _shape(local[operation], "", ours)
        _shape(moto[operation], "", theirs)
        extra = {k for k in set(ours) - set(theirs) if (operation, k) not in ONLY_LOCAL}
        missing = {k for k in set(theirs) - set(ours) if (operation, k) not in ONLY_MOTO}
        assert not extra and not missing, (operation, extra, missing)
        for key in set(ours) & set(theirs):
            if theirs[key] is not type(None):
                assert ours[key] is theirs[key], (operation, key, ours[key], theirs[key])


def test_versions_approval_and_metadata(sm: Any) -> None:
    sm.create_model_package_group(ModelPackageGroupName="credit")
    spec = {"Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
    arns = [sm.create_model_package(
        ModelPackageGroupName="credit", InferenceSpecification=spec,
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                      "S3Uri": f"s3://{BUCKET}/reports/{i}.json"}}},
        CustomerMetadataProperties={"auc": f"0.8{i}", "fingerprint": f"f{i}"},
        MetadataProperties={"CommitId": "abc123"}, Domain="MACHINE_LEARNING", Task="CLASSIFICATION",
    )["ModelPackageArn"] for i in range(3)]
    assert [a.rsplit("/", 1)[-1] for a in arns] == ["1", "2", "3"]
    doc = sm.describe_model_package(ModelPackageName="credit/2")
    assert doc["ModelPackageArn"] == arns[1] and doc["ModelPackageVersion"] == 2
    assert doc["ModelPackageGroupName"] == "credit" and doc["ModelPackageName"] == "credit"
    assert doc["ModelApprovalStatus"] == "PendingManualApproval"
    assert doc["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == f"s3://{BUCKET}/reports/1.json"

    sm.update_model_package(ModelPackageArn=arns[1], ModelApprovalStatus="Approved", ApprovalDescription="gate ok")
    sm.update_model_package(ModelPackageArn=arns[1], CustomerMetadataProperties={"owner": "risk"},
                            CustomerMetadataPropertiesToRemove=["fingerprint"])
    doc = sm.describe_model_package(ModelPackageName=arns[1])
    # the second update changed only the metadata: approval and description stay
    assert doc["ModelApprovalStatus"] == "Approved" and doc["ApprovalDescription"] == "gate ok"
    assert doc["CustomerMetadataProperties"] == {"auc": "0.81", "owner": "risk"}
    for status in ("Rejected", "PendingManualApproval", "Approved"):
        sm.update_model_package(ModelPackageArn=arns[0], ModelApprovalStatus=status)
        assert sm.describe_model_package(ModelPackageName=arns[0])["ModelApprovalStatus"] == status

    approved = sm.list_model_packages(ModelPackageGroupName="credit", ModelApprovalStatus="Approved",
                                      SortBy="CreationTime", SortOrder="Descending")["ModelPackageSummaryList"]
    assert [s["ModelPackageVersion"] for s in approved] == [2, 1]
    pages = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName="credit", PaginationConfig={"PageSize": 2})
    assert [s["ModelPackageVersion"] for p in pages for s in p["ModelPackageSummaryList"]] == [1, 2, 3]
    assert sm.list_model_packages(ModelPackageGroupName="credit", NameContains="nomatch")[
        "ModelPackageSummaryList"] == []
    # unversioned packages only, by default: none exist
    assert sm.list_model_packages()["ModelPackageSummaryList"] == []

    sm.delete_model_package(ModelPackageName=arns[2])
    with pytest.raises(ClientError):
        sm.describe_model_package(ModelPackageName=arns[2])
    fourth = sm.create_model_package(ModelPackageGroupName="credit", InferenceSpecification=spec)
    assert fourth["ModelPackageArn"].endswith("/credit/4")  # versions are never reused
    with pytest.raises(ClientError) as err:
        sm.delete_model_package_group(ModelPackageGroupName="credit")
    assert err.value.response["Error"]["Code"] == "ConflictException"


def test_client_token_makes_create_idempotent(sm: Any) -> None:
    sm.create_model_package_group(ModelPackageGroupName="tokens")
    spec = {"Containers": [{"Image": XGBOOST_IMAGE}]}
    first = sm.create_model_package(ModelPackageGroupName="tokens", InferenceSpecification=spec, ClientToken="t-1")
    again = sm.create_model_package(ModelPackageGroupName="tokens", InferenceSpecification=spec, ClientToken="t-1")
    assert first["ModelPackageArn"] == again["ModelPackageArn"]
    assert len(sm.list_model_packages(ModelPackageGroupName="tokens")["ModelPackageSummaryList"]) == 1
    with pytest.raises(ClientError) as err:
        sm.create_model_package(ModelPackageGroupName="tokens", InferenceSpecification=spec,
                                ModelPackageDescription="other", ClientToken="t-1")
    assert err.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    sm.delete_model_package(ModelPackageName=first["ModelPackageArn"])
    sm.delete_model_package_group(ModelPackageGroupName="tokens")
    with pytest.raises(ClientError):
        sm.describe_model_package_group(ModelPackageGroupName="tokens")


@pytest.mark.parametrize(
    "request_, message",
    [
        ({"ModelPackageGroupName": "missing-group"}, "does not exist"),
        ({"ModelPackageGroupName": "bad", "ModelPackageName": "x"}, "Both"),
        ({"ModelPackageGroupName": "bad", "InferenceSpecification": {"Containers": [
            {"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://../local/state.sqlite"}]}}, "S3"),
        ({"ModelPackageGroupName": "bad", "InferenceSpecification": {"Containers": [
            {"Image": XGBOOST_IMAGE, "Environment": {"LD_PRELOAD": "evil.so"}}]}}, "LD_PRELOAD"),
        ({"ModelPackageGroupName": "bad", "ModelApprovalStatus": "Maybe"}, "enum"),
    ],
)
def test_bad_packages_are_refused(sm: Any, request_: dict[str, Any], message: str) -> None:
    try:
        sm.create_model_package_group(ModelPackageGroupName="bad")
    except ClientError:
        pass
    with pytest.raises(ClientError) as err:
        sm.create_model_package(**request_)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert message in err.value.response["Error"]["Message"]


def test_create_model_from_an_approved_package_serves_its_model(sm: Any, service: Any) -> None:
    import xgboost as xgb

    s3 = stack_client(service.root, service.url, "s3")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] - x[:, 2] > 0).astype(int)
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([y, x]), delimiter=",", fmt="%.6g")
    s3.put_object(Bucket=BUCKET, Key="serve/train/part.csv", Body=buf.getvalue().encode())
    sm.create_training_job(
        TrainingJobName="registry-train", RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        HyperParameters={"objective": "binary:logistic", "num_round": "10"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/serve/train"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/serve/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 300})
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="registry-train", WaiterConfig=FAST)
    artifact = sm.describe_training_job(TrainingJobName="registry-train")["ModelArtifacts"]["S3ModelArtifacts"]
    sm.create_model_package_group(ModelPackageGroupName="served")
    arn = sm.create_model_package(ModelPackageGroupName="served", InferenceSpecification={
        "Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": artifact}],
        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]

    with pytest.raises(ClientError) as err:  # not approved yet
        sm.create_model(ModelName="from-package", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": arn})
    assert "Approved" in err.value.response["Error"]["Message"]
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sm.create_model(ModelName="from-package", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": arn})
    model = sm.describe_model(ModelName="from-package")
    assert model["PrimaryContainer"]["ModelPackageName"] == arn
    assert model["PrimaryContainer"]["Image"] == XGBOOST_IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == artifact
    sm.create_endpoint_config(EndpointConfigName="from-package", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "from-package", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="from-package", EndpointConfigName="from-package")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="from-package", WaiterConfig=FAST)
    runtime = stack_client(service.root, service.url, "sagemaker-runtime")
    rows = csv_rows(x[:20])
    body = runtime.invoke_endpoint(EndpointName="from-package", ContentType="text/csv",
                                   Body=rows)["Body"].read().decode()
    served = np.array([float(v) for v in body.replace("\n", ",").split(",") if v.strip()])
    # independent answer: the archive's booster, loaded with xgboost itself
    archive = s3.get_object(Bucket=BUCKET, Key=artifact.split(f"{BUCKET}/", 1)[1])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    expected = booster.predict(xgb.DMatrix(np.loadtxt(io.StringIO(rows.decode()), delimiter=",")))
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    sm.delete_endpoint(EndpointName="from-package")
    time.sleep(0.5)
