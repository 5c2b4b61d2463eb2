"""After training: register a model that passed its gate as a registry version, and say plainly what
became of it (serves, waits for approval, or was rejected).

Used by :func:`smspark_assets.assets.training.train_register_and_gate` for every model that names a model
package group. A version carries

* ``ModelMetrics.ModelQuality.Statistics``: a JSON report in S3 next to the model (the test figures, in
  SageMaker Model Monitor's model-quality layout, or the job's final metrics when there is no test split);
* ``CustomerMetadataProperties``: data fingerprint, hyperparameters hash, training job, channels, code
  version, and the S3 URI of a lineage report holding what does not fit 256 characters (the feature
  columns, every hyperparameter, the channel URIs);
* ``ModelApprovalStatus``: ``Approved`` in automatic mode, ``PendingManualApproval`` in manual mode.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, Callable, Mapping

from smspark_assets.assets.algorithm_catalog import GateOutcome
from smspark_assets.environment import split_s3_uri
from smspark_assets.sagemaker import registry
from smspark_assets.sagemaker.registry import ModelVersion
from smspark_assets.sagemaker.training import Channel, TrainingResult

APPROVAL_MODES = ("automatic", "manual")
APPROVAL_ENV = "SMSPARK_MODEL_APPROVAL"
CODE_VERSION_ENV = "SMSPARK_CODE_VERSION"


def approval_mode(configured: str | None = None) -> str:
    """``configured`` when given, else ``SMSPARK_MODEL_APPROVAL``, else ``automatic``; checked."""
    mode = (configured or os.environ.get(APPROVAL_ENV) or "automatic").strip().lower()
    if mode not in APPROVAL_MODES:
        source = "the approval setting" if configured else APPROVAL_ENV
        raise ValueError(f"{source} is {mode!r}; allowed: {', '.join(APPROVAL_MODES)}")
    return mode


def code_version() -> str:
    """What code trained the model: ``SMSPARK_CODE_VERSION`` (e.g. a commit set by CI), else the package
    version."""
    if os.environ.get(CODE_VERSION_ENV):
        return os.environ[CODE_VERSION_ENV]
    try:
        return "smspark_assets " + importlib_metadata.version("smspark_assets")
    except importlib_metadata.PackageNotFoundError:
        return "smspark_assets (not installed)"


def hyperparameters_hash(hyperparameters: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps({k: str(v) for k, v in hyperparameters.items()},
                                     sort_keys=True).encode()).hexdigest()[:16]


def reports_prefix(model_artifacts: str) -> str:
    """``s3://.../<job>/reports``: next to the job's ``output/model.tar.gz``."""
    base = model_artifacts.rsplit("/output/", 1)[0] if "/output/" in model_artifacts else model_artifacts.rstrip("/")
    return f"{base}/reports"


def put_json(s3: Any, uri: str, document: Mapping[str, Any]) -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=1, default=str).encode(),
                  ContentType="application/json")


def get_json(s3: Any, uri: str) -> dict[str, Any]:
    bucket, key = split_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@dataclass(frozen=True)
class RegistryTarget:
    """Where a model is registered and how its versions are approved."""

    group: str
    approval: str = "automatic"
    description: str = ""


@dataclass(frozen=True)
class Lifecycle:
    """What became of a trained model: its registry version (if any), whether it serves, and why."""

    version: ModelVersion | None
    serving: bool
    decision: str

    def handle_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"serving": self.serving, "decision": self.decision}
        if self.version is not None:
            fields.update(self.version.to_json())
        return fields

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"serving": self.serving, "decision": self.decision}
        if self.version is not None:
            out.update({"model_version": self.version.version, "approval_status": self.version.approval_status,
                        "model_package_arn": self.version.arn, "model_package_group": self.version.group})
        return out


@dataclass
class Assessment:
    """A model's assessment beyond its job's metrics: the gate's outcome, figures merged into the handle's
    metrics, extra check metadata, the model-quality report for the registry, and the model page (drawn
    once the lifecycle is known)."""

    outcome: GateOutcome
    metrics: Mapping[str, float] = field(default_factory=dict)
    check_metadata: Mapping[str, Any] = field(default_factory=dict)
    quality_report: Mapping[str, Any] | None = None
    page: Callable[[Lifecycle], Mapping[str, Any]] | None = None
    lineage: Mapping[str, Any] = field(default_factory=dict)


def _decision(sm: Any, version: ModelVersion) -> Lifecycle:
    group, number = version.group, version.version
    if version.approval_status == registry.APPROVED:
        latest = registry.latest_approved(sm, group)
        if latest is not None and latest.version != number:
            return Lifecycle(version, False, f"approved, but version {latest.version} is newer and serves")
        return Lifecycle(version, True, f"approved: version {number} serves (the endpoint deploys it)")
    current = registry.latest_approved(sm, group)
    serving_now = f"version {current.version} keeps serving" if current else "nothing serves yet"
    if version.approval_status == registry.PENDING:
        return Lifecycle(version, False, f"pending manual approval: version {number} waits for a person "
                                         f"(job approve_model_version, or UpdateModelPackage); {serving_now}")
    return Lifecycle(version, False, f"rejected by a reviewer: version {number}; {serving_now}")


def register_and_decide(sm: Any, s3: Any, target: RegistryTarget | None, result: TrainingResult,
                        outcome: GateOutcome, *, data_fingerprint: str, channels: Mapping[str, Channel],
                        metrics: Mapping[str, float], assessment: Assessment | None,
                        log: Callable[[str], None]) -> Lifecycle:
    """Register ``result``'s model when it passed (once per training job) and decide what it is now."""
    if not outcome.passed:
        earlier = registry.version_of_job(sm, target.group, result.job_name) if target else None
        return Lifecycle(earlier, False, f"rejected: {outcome.describe()}; the endpoint keeps its model")
    if target is None:
        return Lifecycle(None, True, "serves: passed its gate")
    registry.ensure_group(sm, target.group, target.description or f"versions of {target.group}")
    existing = registry.version_of_job(sm, target.group, result.job_name)
    if existing is not None:
        log(f"training job {result.job_name} is already version {existing.version} of {target.group} "
            f"({existing.approval_status})")
        return _decision(sm, existing)
    reports = reports_prefix(result.model_artifacts)
    quality_uri, lineage_uri = f"{reports}/model_quality.json", f"{reports}/lineage.json"
    put_json(s3, quality_uri, assessment.quality_report if assessment and assessment.quality_report else {
        "version": 0.0, "final_metrics": dict(metrics)})
    put_json(s3, lineage_uri, {
        "training_job_name": result.job_name, "image": result.image, "model_data_url": result.model_artifacts,
        "hyperparameters": result.hyperparameters, "data_fingerprint": data_fingerprint,
        "channels": {name: {"uri": c.uri, "content_type": c.content_type} for name, c in channels.items()},
        "code_version": code_version(), "registered_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "metrics": dict(metrics), **(dict(assessment.lineage) if assessment else {})})
    status = registry.APPROVED if approval_mode(target.approval) == "automatic" else registry.PENDING
    version = registry.register_version(
        sm, target.group, training_job_name=result.job_name, image=result.image,
        model_data_url=result.model_artifacts, approval_status=status, summary=outcome.describe(),
        model_metrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": quality_uri}}},
        customer_metadata={
            "training_job": result.job_name, "data_fingerprint": data_fingerprint,
            "hyperparameters_sha256": hyperparameters_hash(result.hyperparameters),
            "channels": ",".join(sorted(channels)), "code_version": code_version(),
            "lineage_report": lineage_uri, "gate": outcome.describe(),
        })
    log(f"registered training job {result.job_name} as version {version.version} of {target.group} ({status})")
    return _decision(sm, version)


def lineage_of(sm: Any, s3: Any, version: ModelVersion) -> dict[str, Any]:
    """The lineage report of ``version`` ({} when it has none)."""
    described = sm.describe_model_package(ModelPackageName=version.arn)
    uri = (described.get("CustomerMetadataProperties") or {}).get("lineage_report")
    return get_json(s3, uri) if uri else {}
