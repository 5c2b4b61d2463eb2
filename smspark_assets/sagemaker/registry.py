"""The SageMaker Model Registry: versions of a model in a model package group, and their approval.

The same boto3 calls run on AWS and on the local stack. What this module decides:

* **One version per training job.** A version's ``ModelPackageDescription`` starts with
  ``training job <name>``; registering a job that already has a version returns that version, so a re-run
  (an adopted training job) never adds a second one and never changes a decision people made on it.
  The description is in ``ListModelPackages``' summaries, so the check costs one listing, not a describe
  per version.
* **The served version** is the latest ``Approved`` one (highest version number). Rejecting it makes the
  previous approved version the latest again: that is the rollback.
* **A model per version** is created from the package (``PrimaryContainer.ModelPackageName``), named by
  the group, the version and a hash of the package ARN, so it is created once and found again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from botocore.exceptions import ClientError

from smspark_assets.sagemaker.job_control import is_not_found

APPROVED, REJECTED, PENDING = "Approved", "Rejected", "PendingManualApproval"
APPROVAL_STATUSES = (APPROVED, REJECTED, PENDING)
JOB_MARKER = "training job "
# SageMaker's limits: CustomerMetadataProperties values at most 256 characters, descriptions 1024.
MAX_METADATA_VALUE = 256
MAX_DESCRIPTION = 1024


class RegistryError(RuntimeError):
    """A registry request could not be served as asked; the message says what was found."""


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model package group, as the registry lists it."""

    arn: str
    group: str
    version: int
    approval_status: str
    description: str = ""
    created: bool = False  # True when this call registered it

    @property
    def training_job_name(self) -> str | None:
        if not self.description.startswith(JOB_MARKER):
            return None
        return self.description[len(JOB_MARKER):].split(":", 1)[0].strip() or None

    def to_json(self) -> dict[str, Any]:
        return {"model_package_arn": self.arn, "model_package_group": self.group, "model_version": self.version,
                "approval_status": self.approval_status}


def ensure_group(sm: Any, group: str, description: str) -> str:
    """The ARN of model package group ``group``, created when it does not exist yet."""
    try:
        return sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except ClientError as exc:
        if not is_not_found(exc):
            raise
    try:
        return sm.create_model_package_group(ModelPackageGroupName=group,
                                             ModelPackageGroupDescription=description[:MAX_DESCRIPTION]
                                             )["ModelPackageGroupArn"]
    except ClientError as exc:  # created meanwhile by a concurrent run
        if "already exists" not in str(exc):
            raise
        return sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]


def _summaries(sm: Any, group: str, approval_status: str | None = None) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "ModelPackageType": "Versioned",
                              "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 100}
    if approval_status:
        kwargs["ModelApprovalStatus"] = approval_status
    while True:
        page = sm.list_model_packages(**kwargs)
        yield from page.get("ModelPackageSummaryList", [])
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def _version(summary: Mapping[str, Any], created: bool = False) -> ModelVersion:
    return ModelVersion(arn=summary["ModelPackageArn"], group=summary["ModelPackageGroupName"],
                        version=int(summary["ModelPackageVersion"]),
                        approval_status=summary.get("ModelApprovalStatus") or PENDING,
                        description=summary.get("ModelPackageDescription") or "", created=created)


def list_versions(sm: Any, group: str, approval_status: str | None = None) -> list[ModelVersion]:
    """The group's versions, newest (highest version) first; [] when the group does not exist."""
    if approval_status is not None and approval_status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status {approval_status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    try:
        versions = [_version(s) for s in _summaries(sm, group, approval_status)]
    except ClientError as exc:
        if is_not_found(exc) and "does not exist" in str(exc):
            return []
        raise
    return sorted(versions, key=lambda v: v.version, reverse=True)


def latest_approved(sm: Any, group: str) -> ModelVersion | None:
    """The version the endpoint serves: the highest approved one."""
    approved = list_versions(sm, group, APPROVED)
    return approved[0] if approved else None


def version_of_job(sm: Any, group: str, training_job_name: str) -> ModelVersion | None:
    """The version registered for ``training_job_name``, if any."""
    return next((v for v in list_versions(sm, group) if v.training_job_name == training_job_name), None)


def describe_version(sm: Any, group: str, version: int | str) -> dict[str, Any]:
    """DescribeModelPackage of ``version`` (a number, or an ARN) of ``group``.

    A number is looked up in the group's listing (``<group>/<version>`` names are not accepted everywhere:
    moto takes ARNs only)."""
    text = str(version)
    if not text.startswith("arn:"):
        try:
            number = int(text)
        except ValueError:
            raise RegistryError(f"a model version is a number or a model package ARN, got {text!r}") from None
        versions = list_versions(sm, group)
        found = next((v for v in versions if v.version == number), None)
        if found is None:
            raise RegistryError(f"model package group {group} has no version {number} "
                                f"(versions: {[v.version for v in versions] or 'none'})")
        text = found.arn
    try:
        return sm.describe_model_package(ModelPackageName=text)
    except ClientError as exc:
        if is_not_found(exc):
            raise RegistryError(f"no model package {text}: {exc}") from exc
        raise


def metadata_value(value: Any) -> str:
    """A CustomerMetadataProperties value: text of at most 256 characters (longer ones are cut, marked)."""
    text = str(value)
    return text if len(text) <= MAX_METADATA_VALUE else text[:MAX_METADATA_VALUE - 3] + "..."


def register_version(sm: Any, group: str, *, training_job_name: str, image: str, model_data_url: str,
                     approval_status: str, summary: str = "", content_types: tuple[str, ...] = ("text/csv",),
                     response_types: tuple[str, ...] = ("text/csv",),
                     model_metrics: Mapping[str, Any] | None = None,
                     customer_metadata: Mapping[str, Any] | None = None) -> ModelVersion:
    """Register the model of ``training_job_name`` as a new version of ``group`` with ``approval_status``,
    or return the version it already has (unchanged: an earlier decision on it stands)."""
    if approval_status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status {approval_status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    existing = version_of_job(sm, group, training_job_name)
    if existing is not None:
        return existing
    description = f"{JOB_MARKER}{training_job_name}" + (f": {summary}" if summary else "")
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": description[:MAX_DESCRIPTION],
        "ModelApprovalStatus": approval_status,
        "InferenceSpecification": {
            "Containers": [{"Image": image, "ModelDataUrl": model_data_url}],
            "SupportedContentTypes": list(content_types),
            "SupportedResponseMIMETypes": list(response_types),
        },
        # A client token per job: two runs registering the same job at once make one version.
        "ClientToken": hashlib.sha256(f"{group}/{training_job_name}".encode()).hexdigest()[:36],
    }
    if model_metrics:
        request["ModelMetrics"] = dict(model_metrics)
    if customer_metadata:
        request["CustomerMetadataProperties"] = {str(k): metadata_value(v) for k, v in customer_metadata.items()}
    arn = sm.create_model_package(**request)["ModelPackageArn"]
    desc = sm.describe_model_package(ModelPackageName=arn)
    return ModelVersion(arn=arn, group=group, version=int(desc["ModelPackageVersion"]),
                        approval_status=desc.get("ModelApprovalStatus") or approval_status,
                        description=description, created=True)


def set_approval(sm: Any, group: str, version: int | str, status: str, description: str = "") -> ModelVersion:
    """UpdateModelPackage: set ``version``'s approval status (and the reason, when given)."""
    if status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    desc = describe_version(sm, group, version)
    kwargs: dict[str, Any] = {"ModelPackageArn": desc["ModelPackageArn"], "ModelApprovalStatus": status}
    if description:
        kwargs["ApprovalDescription"] = description[:MAX_DESCRIPTION]
    sm.update_model_package(**kwargs)
    return ModelVersion(arn=desc["ModelPackageArn"], group=desc.get("ModelPackageGroupName", group),
                        version=int(desc["ModelPackageVersion"]), approval_status=status,
                        description=desc.get("ModelPackageDescription") or "")


def model_name_for(version: ModelVersion) -> str:
    """The SageMaker model of a version: ``<group>-v<version>-<hash of the ARN>`` (at most 63 characters)."""
    digest = hashlib.sha256(version.arn.encode()).hexdigest()[:8]
    return f"{version.group[:40].rstrip('-')}-v{version.version}-{digest}"


def ensure_model_for_version(sm: Any, version: ModelVersion, role_arn: str,
                             extra_fields: Mapping[str, Any] | None = None) -> tuple[str, bool]:
    """The model created from ``version``'s package (CreateModel with ``ModelPackageName``; ``extra_fields``
    such as ``VpcConfig``); True when created now. SageMaker requires the version to be Approved."""
    name = model_name_for(version)
    try:
        sm.describe_model(ModelName=name)
        return name, False
    except ClientError as exc:
        if not is_not_found(exc):
            raise
    sm.create_model(ModelName=name, PrimaryContainer={"ModelPackageName": version.arn}, ExecutionRoleArn=role_arn,
                    **dict(extra_fields or {}))
    return name, True
