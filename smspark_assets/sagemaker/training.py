"""Training jobs and models through the SageMaker API (AWS or the local stack alike).

Jobs are named deterministically; a completed job with the same name is adopted, a running one is
re-attached to, and a failed one is retried under the next attempt suffix (names are unique forever).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from smspark_assets.sagemaker.images import builtin_algorithm
from smspark_assets.sagemaker.job_control import (
    STOP_CONFIRM_SECONDS, JobKind, describe_or_none, stop_job, wait_until_ended,
)
from smspark_assets.sagemaker.naming import deterministic_name

MAX_ATTEMPTS = 3
# Beyond MaxRuntimeInSeconds, a job still spends time starting, downloading and uploading: wait this
# much longer before deciding the waiter gave up.
WAIT_MARGIN_SECONDS = 3600
TRAINING_JOB = JobKind("training job", "describe_training_job", "stop_training_job", "TrainingJobName",
                       "TrainingJobStatus", waiter="training_job_completed_or_stopped")


class TrainingJobFailed(RuntimeError):
    """The training job ended Failed or Stopped; the message carries SageMaker's FailureReason."""


def channel_prefix(uri: str) -> str:
    """``uri`` as a folder prefix (ending with ``/``).

    S3Prefix matches keys by prefix: ``s3://b/channels/train`` would also train on ``train_old/...`` or
    ``training.csv``. Every channel the platform builds is a folder, so it always ends with ``/``.
    """
    return uri.rstrip("/") + "/"


@dataclass(frozen=True)
class SecuritySettings:
    """Where training jobs and models run and how their data is encrypted (on AWS, from the settings).

    * ``kms_key_id``: training volumes (``ResourceConfig.VolumeKmsKeyId``) and the model artifacts
      SageMaker writes (``OutputDataConfig.KmsKeyId``); without it SageMaker uses its own keys.
    * ``subnet_ids`` + ``security_group_ids``: ``VpcConfig`` of training jobs and models (both or neither).
    * Built-in algorithm containers get ``EnableNetworkIsolation``: they read their channels and write
      their model through SageMaker and need no network, so credit data cannot leave them. Custom images
      are left unisolated: script-mode containers fetch their code at start.
    * Distributed jobs (more than one instance) encrypt the traffic between their containers.

    :meth:`apply_to_training` serves CreateTrainingJob and a tuning job's ``TrainingJobDefinition`` alike
    (the same field names); :meth:`model_fields` serves CreateModel.
    """

    kms_key_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    isolate_builtin_algorithms: bool = True

    def __post_init__(self) -> None:
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            given, missing = (("subnet ids", "security group ids") if self.subnet_ids
                              else ("security group ids", "subnet ids"))
            raise ValueError(f"a VPC needs both subnet ids and security group ids: {given} were given, "
                             f"{missing} were not (set both, or neither for no VPC)")
        if self.kms_key_id is not None and not self.kms_key_id.strip():
            raise ValueError("kms_key_id is empty: give a KMS key ARN, key id or alias, or None")

    def vpc_config(self) -> dict[str, list[str]] | None:
        """SageMaker's ``VpcConfig``, or None without a VPC."""
        if not self.subnet_ids:
            return None
        return {"Subnets": list(self.subnet_ids), "SecurityGroupIds": list(self.security_group_ids)}

    def _isolated(self, image: str) -> bool:
        return self.isolate_builtin_algorithms and builtin_algorithm(image) is not None

    def apply_to_training(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``request`` (CreateTrainingJob kwargs or a ``TrainingJobDefinition``) with the security fields
        added; ``ResourceConfig``, ``OutputDataConfig`` and ``AlgorithmSpecification`` are read from it."""
        out = dict(request)
        if self.kms_key_id:
            out["ResourceConfig"] = {**out["ResourceConfig"], "VolumeKmsKeyId": self.kms_key_id}
            out["OutputDataConfig"] = {**out["OutputDataConfig"], "KmsKeyId": self.kms_key_id}
        vpc = self.vpc_config()
        if vpc is not None:
            out["VpcConfig"] = vpc
        if int(out["ResourceConfig"].get("InstanceCount", 1)) > 1:
            out["EnableInterContainerTrafficEncryption"] = True
        if self._isolated(out["AlgorithmSpecification"].get("TrainingImage", "")):
            out["EnableNetworkIsolation"] = True
        return out

    def model_fields(self, image: str) -> dict[str, Any]:
        """The CreateModel fields for a model of ``image``: ``VpcConfig`` and ``EnableNetworkIsolation``."""
        out: dict[str, Any] = {}
        vpc = self.vpc_config()
        if vpc is not None:
            out["VpcConfig"] = vpc
        if self._isolated(image):
            out["EnableNetworkIsolation"] = True
        return out


@dataclass(frozen=True)
class Channel:
    uri: str
    content_type: str
    distribution: str = "FullyReplicated"


@dataclass(frozen=True)
class TrainingRequest:
    name_prefix: str
    image: str
    role_arn: str
    hyperparameters: Mapping[str, str]
    channels: Mapping[str, Channel]
    output_uri: str
    data_fingerprint: str
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_gb: int = 30
    max_runtime_seconds: int = 3600
    tags: Mapping[str, str] = field(default_factory=dict)
    # Custom algorithms: regexes SageMaker applies to the job log to fill FinalMetricDataList.
    metric_definitions: Mapping[str, str] = field(default_factory=dict)
    # KMS key, VPC, isolation. Not part of the job's name: they do not change what is learned, and a
    # completed job stays adoptable when they change.
    security: SecuritySettings = field(default_factory=SecuritySettings)

    def job_name(self, attempt: int = 1) -> str:
        return deterministic_name(
            self.name_prefix, self.image, dict(self.hyperparameters), self.data_fingerprint,
            {k: (c.content_type, c.distribution) for k, c in sorted(self.channels.items())},
            suffix="" if attempt == 1 else f"r{attempt}",
        )

    def create_kwargs(self, job_name: str) -> dict[str, Any]:
        """The CreateTrainingJob request."""
        return {
            "TrainingJobName": job_name,
            **job_definition_fields(
                image=self.image, role_arn=self.role_arn, channels=self.channels, output_uri=self.output_uri,
                instance_type=self.instance_type, instance_count=self.instance_count, volume_gb=self.volume_gb,
                max_runtime_seconds=self.max_runtime_seconds, security=self.security,
                metric_definitions=self.metric_definitions),
            "HyperParameters": {k: str(v) for k, v in self.hyperparameters.items()},
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
        }


def job_definition_fields(*, image: str, role_arn: str, channels: Mapping[str, Channel], output_uri: str,
                          instance_type: str, instance_count: int, volume_gb: int, max_runtime_seconds: int,
                          security: SecuritySettings,
                          metric_definitions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a training job runs, on what data and hardware, for how long and how securely.

    CreateTrainingJob and a tuning job's ``TrainingJobDefinition`` spell these fields alike; each adds its
    own name, hyperparameters (``HyperParameters`` / ``StaticHyperParameters``) and tags. Every channel is
    a folder prefix (:func:`channel_prefix`). ``metric_definitions`` (name → regex) serve custom algorithms;
    built-in algorithms publish their metrics themselves.
    """
    algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File"}
    if metric_definitions:
        algorithm["MetricDefinitions"] = [{"Name": n, "Regex": r} for n, r in metric_definitions.items()]
    return security.apply_to_training({
        "AlgorithmSpecification": algorithm,
        "RoleArn": role_arn,
        "InputDataConfig": [
            {
                "ChannelName": name,
                "ContentType": ch.content_type,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": channel_prefix(ch.uri),
                                                "S3DataDistributionType": ch.distribution}},
            }
            for name, ch in channels.items()
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": instance_count,
                           "VolumeSizeInGB": volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
    })


@dataclass(frozen=True)
class TrainingResult:
    job_name: str
    status: str
    model_artifacts: str
    metrics: dict[str, float]
    hyperparameters: dict[str, str]
    training_seconds: float
    billable_seconds: int | None
    adopted: bool
    image: str


def describe_job(sm, name: str) -> dict[str, Any] | None:
    """Training job ``name``'s description, or None when there is none."""
    return TRAINING_JOB.find(sm, name)


def stop_training_job(sm, name: str, log: Callable[[str], None] = print,
                      confirm_seconds: float = STOP_CONFIRM_SECONDS) -> str:
    """Stop training job ``name`` unless it already ended, and wait briefly to see it Stopping.

    Returns what happened, for the message of the exception that made us stop it.
    """
    return stop_job(sm, TRAINING_JOB, name, log, confirm_seconds)


def _wait(sm, name: str, poll_seconds: float, timeout_seconds: float,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Wait until job ``name`` ends and describe it; stop it if the wait ends otherwise
    (:func:`~smspark_assets.sagemaker.job_control.wait_until_ended`)."""
    return wait_until_ended(sm, TRAINING_JOB, name, poll_seconds, timeout_seconds, TrainingJobFailed, log)


def _timeout(max_runtime_seconds: int | None) -> float:
    return float((max_runtime_seconds or 86400) + WAIT_MARGIN_SECONDS)


def training_result(desc: Mapping[str, Any], adopted: bool) -> TrainingResult:
    """A DescribeTrainingJob answer as a :class:`TrainingResult`."""
    start, end = desc.get("TrainingStartTime"), desc.get("TrainingEndTime")
    seconds = (end - start).total_seconds() if start and end else 0.0
    return TrainingResult(
        job_name=desc["TrainingJobName"],
        status=desc["TrainingJobStatus"],
        model_artifacts=desc.get("ModelArtifacts", {}).get("S3ModelArtifacts", ""),
        metrics={m["MetricName"]: float(m["Value"]) for m in desc.get("FinalMetricDataList", [])},
        hyperparameters=dict(desc.get("HyperParameters", {})),
        training_seconds=seconds,
        billable_seconds=desc.get("BillableTimeInSeconds"),
        adopted=adopted,
        image=desc["AlgorithmSpecification"]["TrainingImage"],
    )


def run_training_job(sm, request: TrainingRequest, poll_seconds: float = 30.0,
                     log: Callable[[str], None] = print) -> TrainingResult:
    """Train (or adopt) the job that ``request`` determines, and wait until it ends."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        name = request.job_name(attempt)
        desc = describe_job(sm, name)
        if desc is not None:
            status = desc["TrainingJobStatus"]
            if status == "Completed":
                log(f"adopting completed training job {name}")
                return training_result(desc, adopted=True)
            if status in ("InProgress", "Stopping"):
                log(f"re-attaching to running training job {name}")
                desc = _wait(sm, name, poll_seconds,
                             _timeout(desc.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")), log)
                if desc["TrainingJobStatus"] == "Completed":
                    return training_result(desc, adopted=True)
            log(f"training job {name} ended {desc['TrainingJobStatus']}: {desc.get('FailureReason', '')}; retrying")
            continue
        started = time.monotonic()
        log(f"creating training job {name}")
        sm.create_training_job(**request.create_kwargs(name))
        desc = _wait(sm, name, poll_seconds, _timeout(request.max_runtime_seconds), log)
        if desc["TrainingJobStatus"] != "Completed":
            raise TrainingJobFailed(
                f"training job {name} ended {desc['TrainingJobStatus']}: "
                f"{desc.get('FailureReason', 'no reason given')}")
        log(f"training job {name} completed in {time.monotonic() - started:.1f}s")
        return training_result(desc, adopted=False)
    raise TrainingJobFailed(f"{MAX_ATTEMPTS} attempts of {request.job_name()} failed; see their FailureReason")


def ensure_model(sm, model_name: str, image: str, model_data_url: str, role_arn: str,
                 environment: Mapping[str, str] | None = None, security: SecuritySettings | None = None) -> bool:
    """Create the SageMaker model unless it exists; returns True when created.

    ``security`` adds the model's ``VpcConfig`` and network isolation (:meth:`SecuritySettings.model_fields`).
    """
    if describe_or_none(sm.describe_model, ModelName=model_name) is not None:
        return False
    sm.create_model(
        ModelName=model_name,
        PrimaryContainer={"Image": image, "ModelDataUrl": model_data_url, "Environment": dict(environment or {})},
        ExecutionRoleArn=role_arn,
        **(security or SecuritySettings()).model_fields(image),
    )
    return True
