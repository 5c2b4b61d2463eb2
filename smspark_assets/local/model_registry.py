"""The SageMaker Model Registry of the local service: model package groups and (versioned) model packages.

Stored as Describe documents in the state store: kind ``model-package-group`` by group name, kind
``model-package`` by ``<group>/<version>`` (versioned) or by name (unversioned). Behaviour follows AWS where
moto deviates (see ``aws_next_notes.md`` §5):

* a versioned package's Describe carries ``ModelPackageName`` (= the group name) and
  ``ModelApprovalStatus`` defaults to ``PendingManualApproval``;
* versions are 1, 2, ... per group and never reused after a delete (the group keeps its counter);
* ``UpdateModelPackage`` changes only what it is given (moto clears the approval status, the description and
  the metadata when they are omitted);
* ``DeleteModelPackage`` and ``DeleteModelPackageGroup`` exist; a group that still holds versions is not
  deleted (``ConflictException``; the AWS message is UNCONFIRMED);
* ``ClientToken`` makes CreateModelPackage idempotent: the same token with the same request answers the same
  ARN, with a different request an ``IdempotentParameterMismatch`` error.

Approval transitions: any of ``PendingManualApproval``, ``Approved``, ``Rejected`` to any other (the API states
no rule); each change records ``ApprovalDescription`` and ``LastModifiedTime``.

CreateModel from a package (:meth:`ModelRegistry.container_for_model`): the package's first container gives the
model's Image, ModelDataUrl and Environment. A versioned package must be ``Approved``: the API reference says a
version "must be set to Approved to deploy the model"; whether AWS refuses it at CreateModel or only at deploy is
UNCONFIRMED, and this service refuses it at CreateModel, the stricter choice, so code that works here never
deploys an unapproved version on AWS either.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from typing import Any, Callable

from smspark_assets.local.api_errors import ApiError, validation
from smspark_assets.local.process_environment import CONTAINER_LIMITS, check_environment
from smspark_assets.local.state import AlreadyExists, NotFound

GROUP = "model-package-group"
PACKAGE = "model-package"
NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
APPROVAL = ("Approved", "Rejected", "PendingManualApproval")
PACKAGE_TYPES = ("Versioned", "Unversioned", "Both")
MAX_CUSTOMER_METADATA = 50
# Members of CreateModelPackage kept as given on the package's Describe document.
_KEPT = (
    "ModelPackageDescription", "InferenceSpecification", "ModelMetrics", "MetadataProperties",
    "CustomerMetadataProperties", "DriftCheckBaselines", "Domain", "Task", "SamplePayloadUrl",
    "SourceAlgorithmSpecification", "ValidationSpecification", "CertifyForMarketplace",
    "AdditionalInferenceSpecifications", "SkipModelValidation", "SourceUri", "ModelCard", "ModelLifeCycle",
    "SecurityConfig",
)
_S3_URI_MEMBERS = ("ModelDataUrl",)


def _conflict(message: str) -> ApiError:
    return ApiError("ConflictException", message)


def _check_name(value: Any, member: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise validation(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {NAME_RE.pattern}"
        )
    return value


def _check_metadata(value: Any, member: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_CUSTOMER_METADATA:
        raise validation(f"{member} must be a map of at most {MAX_CUSTOMER_METADATA} string entries")
    for key, item in value.items():
        if not 1 <= len(str(key)) <= 128 or len(str(item)) > 256 or str(key).startswith("aws:"):
            raise validation(
                f"{member} key {key!r}: keys are 1-128 characters (not starting with 'aws:'), values at most 256"
            )
    return {str(k): str(v) for k, v in value.items()}


def _s3_uris(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ``S3Uri`` / ``ModelDataUrl`` / ``S3OutputPath`` inside a request member, with its member path."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            member = f"{path}.{key}" if path else key
            if key in ("S3Uri", "ModelDataUrl") and isinstance(item, str):
                found.append((member, item))
            else:
                found.extend(_s3_uris(item, member))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_s3_uris(item, f"{path}.{i + 1}"))
    return found


class ModelRegistry:
    """Model package groups and model packages; built by the SageMaker API of the service."""

    def __init__(self, sagemaker: Any) -> None:
        self.sm = sagemaker
        self.store = sagemaker.store
        # Version numbers and client tokens are decided under this lock (the store's own transactions are
        # per document; a create touches the group and the package).
        self._lock = threading.Lock()

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "CreateModelPackageGroup": self.create_group,
            "DescribeModelPackageGroup": self.describe_group,
            "ListModelPackageGroups": self.list_groups,
            "DeleteModelPackageGroup": self.delete_group,
            "CreateModelPackage": self.create_package,
            "DescribeModelPackage": self.describe_package,
            "ListModelPackages": self.list_packages,
            "UpdateModelPackage": self.update_package,
            "DeleteModelPackage": self.delete_package,
        }

    # -- names ------------------------------------------------------------------------------------------

    def _group_name(self, value: Any, member: str = "modelPackageGroupName") -> str:
        """A group given by name or ARN."""
        text = str(value or "")
        if text.startswith("arn:"):
            text = text.rsplit("/", 1)[-1]
            for doc in self.store.list(GROUP):
                if doc["ModelPackageGroupArn"] == value or doc["ModelPackageGroupName"].lower() == text:
                    return doc["ModelPackageGroupName"]
        return _check_name(text, member)

    def _group(self, name: str) -> dict[str, Any]:
        doc = self.store.get(GROUP, name)
        if doc is None:
            raise validation(f"ModelPackageGroup {name} does not exist.")
        return doc

    def _package_key(self, value: Any) -> str:
        """``<group>/<version>`` or an unversioned name, from a name, ``name/version`` or an ARN."""
        text = str(value or "")
        if not text:
            raise validation("1 validation error detected: Value null at 'modelPackageName' failed to satisfy "
                             "constraint: Member must not be null")
        if text.startswith("arn:"):
            found = self.store.kind_of_arn(text)
            if found is None or found[0] != PACKAGE:
                raise validation(f"Model package {text} does not exist.")
            return found[1]
        return text

    def package(self, value: Any) -> dict[str, Any]:
        key = self._package_key(value)
        doc = self.store.get(PACKAGE, key)
        if doc is None:
            raise validation(f"Model package {value} does not exist.")
        return doc

    # -- groups -----------------------------------------------------------------------------------------

    def create_group(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _check_name(p.get("ModelPackageGroupName"), "modelPackageGroupName")
        description = p.get("ModelPackageGroupDescription")
        if description is not None and len(str(description)) > 1024:
            raise validation("ModelPackageGroupDescription must be at most 1024 characters")
        tags = _tags(self.sm)(p.get("Tags"))
        arn = self.sm.arn("model-package-group", name)
        doc: dict[str, Any] = {
            "ModelPackageGroupName": name,
            "ModelPackageGroupArn": arn,
            "CreationTime": time.time(),
            "ModelPackageGroupStatus": "Completed",
            "_NextVersion": 1,
            "_ClientTokens": {},
        }
        if description is not None:
            doc["ModelPackageGroupDescription"] = str(description)
        try:
            self.store.create(GROUP, name, arn, doc, status="Completed")
        except AlreadyExists:
            raise validation(f"Model Package Group already exists: {arn}") from None
        if tags:
            self.store.add_tags(arn, tags)
        return {"ModelPackageGroupArn": arn}

    def describe_group(self, p: dict[str, Any]) -> dict[str, Any]:
        return _public(self._group(self._group_name(p.get("ModelPackageGroupName"))))

    def list_groups(self, p: dict[str, Any]) -> dict[str, Any]:
        from smspark_assets.local.sagemaker_api import _filter_and_sort, _Pager

        params = {"SortBy": "CreationTime", "SortOrder": "Ascending", **p}
        docs = _filter_and_sort(self.store.list(GROUP), params, "ModelPackageGroupName", None, (),
                                {"Name": "ModelPackageGroupName", "CreationTime": "CreationTime"})
        page, token = _Pager.page(docs, params, name_key="ModelPackageGroupName")
        keys = ("ModelPackageGroupName", "ModelPackageGroupArn", "ModelPackageGroupDescription", "CreationTime",
                "ModelPackageGroupStatus")
        out: dict[str, Any] = {"ModelPackageGroupSummaryList": [{k: d[k] for k in keys if k in d} for d in page]}
        if token:
            out["NextToken"] = token
        return out

    def delete_group(self, p: dict[str, Any]) -> dict[str, Any]:
        name = self._group_name(p.get("ModelPackageGroupName"))
        with self._lock:
            self._group(name)
            versions = [d["ModelPackageVersion"] for d in self.store.list(PACKAGE)
                        if d.get("ModelPackageGroupName") == name]
            if versions:
                raise _conflict(
                    f"Model package group {name} still holds {len(versions)} model package version(s) "
                    f"({', '.join(map(str, sorted(versions)))}); delete them first"
                )
            try:
                self.store.delete(GROUP, name)
            except NotFound:
                pass
        return {}

    # -- packages ---------------------------------------------------------------------------------------

    def _check_package_request(self, p: dict[str, Any]) -> None:
        check = _s3_check(self.sm)
        for member in ("InferenceSpecification", "ModelMetrics", "DriftCheckBaselines",
                       "AdditionalInferenceSpecifications", "ValidationSpecification"):
            for path, uri in _s3_uris(p.get(member), member):
                check(uri, path)
        spec = p.get("InferenceSpecification")
        if spec is not None:
            containers = spec.get("Containers") if isinstance(spec, dict) else None
            if not isinstance(containers, list) or not 1 <= len(containers) <= 15:
                raise validation("InferenceSpecification.Containers must list 1 to 15 containers")
            for i, container in enumerate(containers):
                member = f"inferenceSpecification.containers.{i + 1}.member"
                if not isinstance(container, dict) or not container.get("Image"):
                    raise validation(
                        f"1 validation error detected: Value null at '{member}.image' failed to satisfy "
                        "constraint: Member must not be null"
                    )
                # The map reaches a model server's environment when a model is created from this package.
                check_environment(container.get("Environment"), f"{member}.environment", CONTAINER_LIMITS)
        _check_metadata(p.get("CustomerMetadataProperties"), "CustomerMetadataProperties")
        from smspark_assets.local.sagemaker_api import _check_enum

        _check_enum(p.get("ModelApprovalStatus"), "modelApprovalStatus", APPROVAL)

    def create_package(self, p: dict[str, Any]) -> dict[str, Any]:
        group_value, name = p.get("ModelPackageGroupName"), p.get("ModelPackageName")
        if group_value and name:
            raise validation("Both ModelPackageName and ModelPackageGroupName are provided in the input. "
                             "Give ModelPackageGroupName for a versioned package, ModelPackageName otherwise.")
        if not group_value and not name:
            raise validation("Give ModelPackageGroupName (a versioned package) or ModelPackageName "
                             "(an unversioned package)")
        self._check_package_request(p)
        if name:
            return self._create_unversioned(p, _check_name(name, "modelPackageName"))
        if p.get("Tags"):
            raise validation("A versioned model package takes no Tags: it uses its model package group's tags")
        group = self._group_name(group_value)
        token = p.get("ClientToken")
        fingerprint = hashlib.sha256(json.dumps(
            {k: v for k, v in p.items() if k != "ClientToken"}, sort_keys=True, default=str).encode()).hexdigest()
        with self._lock:
            group_doc = self._group(group)
            if token and token in group_doc["_ClientTokens"]:
                arn, seen = group_doc["_ClientTokens"][token]
                if seen != fingerprint:
                    raise ApiError("IdempotentParameterMismatch",
                                   f"ClientToken {token} was used with a different CreateModelPackage request")
                return {"ModelPackageArn": arn}
            version = int(group_doc["_NextVersion"])
            arn = self.sm.arn("model-package", f"{group}/{version}")
            now = time.time()
            doc = {k: p[k] for k in _KEPT if k in p}
            doc.update({
                "ModelPackageName": group,
                "ModelPackageGroupName": group,
                "ModelPackageVersion": version,
                "ModelPackageArn": arn,
                "CreationTime": now,
                "LastModifiedTime": now,
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": _status_details(arn),
                "ModelApprovalStatus": p.get("ModelApprovalStatus") or "PendingManualApproval",
                "ModelPackageRegistrationType": "Registered",
            })

            def bump(d: dict[str, Any]) -> None:
                d["_NextVersion"] = version + 1
                if token:
                    d["_ClientTokens"][token] = [arn, fingerprint]

            self.store.create(PACKAGE, f"{group}/{version}", arn, doc, status=doc["ModelApprovalStatus"])
            self.store.update(GROUP, group, bump)
        return {"ModelPackageArn": arn}

    def _create_unversioned(self, p: dict[str, Any], name: str) -> dict[str, Any]:
        if p.get("ModelApprovalStatus"):
            raise validation("ModelApprovalStatus applies only to versioned model packages (ModelPackageGroupName)")
        tags = _tags(self.sm)(p.get("Tags"))
        arn = self.sm.arn("model-package", name)
        now = time.time()
        doc = {k: p[k] for k in _KEPT if k in p}
        doc.update({
            "ModelPackageName": name,
            "ModelPackageArn": arn,
            "CreationTime": now,
            "LastModifiedTime": now,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": _status_details(arn),
        })
        try:
            self.store.create(PACKAGE, name, arn, doc, status="Completed")
        except AlreadyExists:
            raise validation(f"Model package {arn} already exists.") from None
        if tags:
            self.store.add_tags(arn, tags)
        return {"ModelPackageArn": arn}

    def describe_package(self, p: dict[str, Any]) -> dict[str, Any]:
        return _public(self.package(p.get("ModelPackageName")))

    def list_packages(self, p: dict[str, Any]) -> dict[str, Any]:
        from smspark_assets.local.sagemaker_api import _check_enum, _filter_and_sort, _Pager

        _check_enum(p.get("ModelApprovalStatus"), "modelApprovalStatus", APPROVAL)
        _check_enum(p.get("ModelPackageType"), "modelPackageType", PACKAGE_TYPES)
        group = self._group_name(p["ModelPackageGroupName"]) if p.get("ModelPackageGroupName") else None
        # AWS lists Unversioned packages by default; a group filter only makes sense for versioned ones.
        kind = p.get("ModelPackageType") or ("Versioned" if group else "Unversioned")
        docs = []
        for doc in self.store.list(PACKAGE):
            versioned = "ModelPackageGroupName" in doc
            if kind != "Both" and versioned != (kind == "Versioned"):
                continue
            if group and doc.get("ModelPackageGroupName") != group:
                continue
            if p.get("ModelApprovalStatus") and doc.get("ModelApprovalStatus") != p["ModelApprovalStatus"]:
                continue
            docs.append(doc)
        params = {"SortBy": "CreationTime", "SortOrder": "Ascending", **p}
        params.pop("ModelApprovalStatus", None)
        docs = _filter_and_sort(docs, params, "ModelPackageArn", None, (),
                                {"Name": "ModelPackageName", "CreationTime": "CreationTime"})
        if params.get("SortBy") == "Name":  # versions of one group share a name: order them by version
            docs.sort(key=lambda d: (d["ModelPackageName"], d.get("ModelPackageVersion", 0)),
                      reverse=params["SortOrder"] == "Descending")
        page, token = _Pager.page(docs, params, name_key="ModelPackageArn")
        keys = ("ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
                "ModelPackageDescription", "CreationTime", "ModelPackageStatus", "ModelApprovalStatus",
                "ModelLifeCycle", "ModelPackageRegistrationType")
        out: dict[str, Any] = {"ModelPackageSummaryList": [{k: d[k] for k in keys if k in d} for d in page]}
        if token:
            out["NextToken"] = token
        return out

    def update_package(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p.get("ModelPackageArn")
        if not arn:
            raise validation("1 validation error detected: Value null at 'modelPackageArn' failed to satisfy "
                             "constraint: Member must not be null")
        key = self._package_key(arn)
        current = self.package(arn)
        from smspark_assets.local.sagemaker_api import _check_enum

        status = p.get("ModelApprovalStatus")
        _check_enum(status, "modelApprovalStatus", APPROVAL)
        if status and "ModelPackageGroupName" not in current:
            raise validation("ModelApprovalStatus applies only to versioned model packages")
        add = _check_metadata(p.get("CustomerMetadataProperties"), "CustomerMetadataProperties")
        remove = p.get("CustomerMetadataPropertiesToRemove") or []
        if not isinstance(remove, list):
            raise validation("CustomerMetadataPropertiesToRemove must be a list of keys")
        if set(add) & set(map(str, remove)):
            raise validation("A key cannot be both set and removed in one UpdateModelPackage")
        extra = p.get("AdditionalInferenceSpecificationsToAdd") or []
        for path, uri in _s3_uris(extra, "AdditionalInferenceSpecificationsToAdd"):
            _s3_check(self.sm)(uri, path)
        if p.get("InferenceSpecification") is not None:
            for path, uri in _s3_uris(p["InferenceSpecification"], "InferenceSpecification"):
                _s3_check(self.sm)(uri, path)

        def change(d: dict[str, Any]) -> None:
            # Only what the request gives changes (moto clears the rest).
            if status:
                d["ModelApprovalStatus"] = status
            if p.get("ApprovalDescription") is not None:
                d["ApprovalDescription"] = str(p["ApprovalDescription"])
            if add or remove:
                merged = {**(d.get("CustomerMetadataProperties") or {}), **add}
                for k in remove:
                    merged.pop(str(k), None)
                d["CustomerMetadataProperties"] = merged
                if len(merged) > MAX_CUSTOMER_METADATA:
                    raise validation(f"A model package can have at most {MAX_CUSTOMER_METADATA} metadata entries")
            if extra:
                existing = d.setdefault("AdditionalInferenceSpecifications", [])
                if len(existing) + len(extra) > 15:
                    raise validation("A model package can have at most 15 additional inference specifications")
                existing.extend(extra)
            for member in ("InferenceSpecification", "SourceUri", "ModelCard", "ModelLifeCycle"):
                if p.get(member) is not None:
                    d[member] = p[member]
            d["LastModifiedTime"] = time.time()

        try:
            doc = self.store.update(PACKAGE, key, change, status_key="ModelApprovalStatus")
        except NotFound:
            raise validation(f"Model package {arn} does not exist.") from None
        return {"ModelPackageArn": doc["ModelPackageArn"]}

    def delete_package(self, p: dict[str, Any]) -> dict[str, Any]:
        key = self._package_key(p.get("ModelPackageName"))
        try:
            self.store.delete(PACKAGE, key)
        except NotFound:
            raise validation(f"Model package {p.get('ModelPackageName')} does not exist.") from None
        return {}

    # -- CreateModel ------------------------------------------------------------------------------------

    def container_for_model(self, container: dict[str, Any], member: str) -> dict[str, Any]:
        """The container a model gets from ``ModelPackageName``: the package's first inference container
        (Image, ModelDataUrl, Environment), plus the package's ARN. The container's own Environment entries
        win over the package's, as SageMaker merges them."""
        doc = self.package(container["ModelPackageName"])
        if "ModelPackageGroupName" in doc and doc.get("ModelApprovalStatus") != "Approved":
            raise validation(
                f"Model package {doc['ModelPackageArn']} has ModelApprovalStatus "
                f"{doc.get('ModelApprovalStatus')}; a model package version must be Approved to be deployed "
                "(approve it with UpdateModelPackage)"
            )
        containers = (doc.get("InferenceSpecification") or {}).get("Containers") or []
        if not containers:
            raise validation(f"Model package {doc['ModelPackageArn']} has no InferenceSpecification.Containers")
        first = containers[0]
        resolved: dict[str, Any] = {"ModelPackageName": doc["ModelPackageArn"], "Image": first["Image"]}
        if first.get("ModelDataUrl"):
            resolved["ModelDataUrl"] = first["ModelDataUrl"]
        environment = {**(first.get("Environment") or {}), **(container.get("Environment") or {})}
        check_environment(environment or None, f"{member}.environment", CONTAINER_LIMITS)
        if environment:
            resolved["Environment"] = environment
        for key in ("ContainerHostname", "Mode"):
            if container.get(key):
                resolved[key] = container[key]
        return resolved


def _status_details(arn: str) -> dict[str, Any]:
    """Validation and image scan: nothing to validate or scan locally, so both are complete at once."""
    return {key: [{"Name": arn, "Status": "Completed"}] for key in ("ValidationStatuses", "ImageScanStatuses")}


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _tags(sm: Any) -> Callable[[Any], list[dict[str, str]]]:
    from smspark_assets.local.sagemaker_api import _check_tags

    return _check_tags


def check_s3_uri(value: Any, member: str) -> str:
    """An S3 URI of a registry or tuning request: a valid bucket name (S3's rules: no ``..``, which would
    leave the object store) and a key that stays inside its bucket."""
    from smspark_assets.local.sagemaker_api import _check_s3_uri

    return _check_s3_uri(value, member)


def _s3_check(sm: Any) -> Callable[[Any, str], str]:
    return check_s3_uri
