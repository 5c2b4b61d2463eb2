"""The registry client: one version per training job, the latest approved version serves, rejection rolls
back. The same calls run against moto (AWS's shapes) and the embedded stack."""

from __future__ import annotations

from typing import Any, Iterator

import boto3
import pytest
from moto import mock_aws

from smspark_assets.sagemaker import registry
from smspark_assets_tests.stack_access import stack_client

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture(params=["moto", pytest.param("stack", marks=pytest.mark.integration)])
def sm(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "moto":
        with mock_aws():
            yield boto3.client("sagemaker", region_name="us-east-1")
    else:
        root, url = request.getfixturevalue("local_stack")
        client = stack_client(root, url, "sagemaker")
        # The stack is shared by the session: a group of its own per test.
        yield client


def _register(sm: Any, group: str, job: str, status: str) -> registry.ModelVersion:
    return registry.register_version(
        sm, group, training_job_name=job, image=IMAGE, model_data_url=f"s3://lifecycle-bucket/{job}/model.tar.gz",
        approval_status=status, summary="test AUC 0.8",
        customer_metadata={"training_job": job, "long": "x" * 400})


@pytest.mark.timeout(120)
def test_one_version_per_job_and_the_latest_approved_serves(sm: Any, request: pytest.FixtureRequest) -> None:
    group = f"lifecycle-{request.node.callspec.id}-a"
    registry.ensure_group(sm, group, "credit default")
    assert registry.ensure_group(sm, group, "again").endswith(f"model-package-group/{group}")
    assert registry.latest_approved(sm, group) is None

    first = _register(sm, group, "job-one", registry.APPROVED)
    again = _register(sm, group, "job-one", registry.PENDING)  # a re-run of the same job
    assert (first.created, again.created) == (True, False)
    assert again.version == first.version == 1 and again.approval_status == registry.APPROVED
    assert again.training_job_name == "job-one"
    described = registry.describe_version(sm, group, 1)
    assert len(described["CustomerMetadataProperties"]["long"]) == registry.MAX_METADATA_VALUE

    second = _register(sm, group, "job-two", registry.PENDING)
    assert second.version == 2
    assert registry.latest_approved(sm, group).version == 1  # pending does not serve
    registry.set_approval(sm, group, 2, registry.APPROVED, "looked at the model page")
    assert registry.latest_approved(sm, group).version == 2
    registry.set_approval(sm, group, second.arn, registry.REJECTED, "complaints")  # by ARN too
    assert registry.latest_approved(sm, group).version == 1  # rolled back
    assert [v.version for v in registry.list_versions(sm, group)] == [2, 1]
    assert registry.describe_version(sm, group, 2)["ApprovalDescription"] == "complaints"


@pytest.mark.timeout(60)
def test_unknown_versions_and_statuses_are_refused(sm: Any, request: pytest.FixtureRequest) -> None:
    group = f"lifecycle-{request.node.callspec.id}-b"
    registry.ensure_group(sm, group, "credit default")
    _register(sm, group, "job-one", registry.APPROVED)
    with pytest.raises(registry.RegistryError, match=r"no version 7 \(versions: \[1\]\)"):
        registry.describe_version(sm, group, 7)
    with pytest.raises(ValueError, match="not one of Approved, Rejected, PendingManualApproval"):
        registry.set_approval(sm, group, 1, "Yes")
    assert registry.list_versions(sm, "no-such-group") == []
