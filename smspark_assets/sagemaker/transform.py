"""Batch transform jobs: scores without a live endpoint (CreateTransformJob, then read the ``.out`` objects).

An endpoint in mode ``none`` costs nothing between runs; its scores come from a transform job of the same
SageMaker model instead. SageMaker splits every input object (``SplitType``), packs records into requests
of at most ``MaxPayloadInMB`` (``BatchStrategy``) and writes one ``<input object name>.out`` per input
object under ``S3OutputPath``: the answers of its requests, concatenated (``AssembleWith`` ``None``) or
one per line (``Line``), in input order. A recordIO-protobuf answer stream stays a valid stream when
concatenated, so the algorithm deserializers read a whole ``.out`` object as one answer.

The job's name is derived from what determines it (model, input fingerprint, settings), so a completed
job is adopted instead of run again; a job that ended Failed or Stopped gets a new attempt name. Whatever
ends the wait early (a cancelled run, a waiter giving up) stops the job first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from smspark_assets.sagemaker.job_control import STOP_CONFIRM_SECONDS, JobKind, stop_job, wait_until_ended
from smspark_assets.sagemaker.naming import deterministic_name

SPLIT_TYPES = ("None", "Line", "RecordIO", "TFRecord")
BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
ASSEMBLE_WITH = ("None", "Line")
MAX_PAYLOAD_MB = 100
MAX_ATTEMPTS = 20
WAIT_SECONDS = 24 * 3600
TRANSFORM_JOB = JobKind("transform job", "describe_transform_job", "stop_transform_job", "TransformJobName",
                        "TransformJobStatus", waiter="transform_job_completed_or_stopped")


class TransformJobFailed(RuntimeError):
    """The transform job did not complete; the message carries SageMaker's FailureReason."""


@dataclass(frozen=True)
class TransformRequest:
    """Everything that determines a transform job's output."""

    model_name: str
    input_uri: str  # an S3 prefix (every object under it) or one object
    output_uri: str
    content_type: str
    input_fingerprint: str  # changes when the input data changes (e.g. a hash of the listing or bytes)
    accept: str | None = None
    split_type: str = "Line"
    batch_strategy: str = "MultiRecord"
    assemble_with: str = "None"
    max_payload_mb: int = 6
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    kms_key_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse what SageMaker would refuse, naming the allowed values, before a job exists."""
        for uri, what in ((self.input_uri, "input_uri"), (self.output_uri, "output_uri")):
            if not uri.startswith("s3://"):
                raise ValueError(f"transform {what} must be an s3:// URI, got {uri!r}")
        for value, allowed, what in ((self.split_type, SPLIT_TYPES, "split_type"),
                                     (self.batch_strategy, BATCH_STRATEGIES, "batch_strategy"),
                                     (self.assemble_with, ASSEMBLE_WITH, "assemble_with")):
            if value not in allowed:
                raise ValueError(f"transform {what} must be one of {', '.join(allowed)}, got {value!r}")
        if not 0 <= self.max_payload_mb <= MAX_PAYLOAD_MB:
            raise ValueError(f"transform max_payload_mb must be in 0..{MAX_PAYLOAD_MB}, got {self.max_payload_mb}")
        if self.instance_count < 1:
            raise ValueError(f"transform instance_count must be at least 1, got {self.instance_count}")
        if not self.instance_type.startswith("ml."):
            raise ValueError(f"transform instance_type must be a SageMaker instance type (ml.*), "
                             f"got {self.instance_type!r}")

    def job_name(self, prefix: str, attempt: int = 1) -> str:
        parts = {k: v for k, v in self.__dict__.items() if k != "tags"}
        return deterministic_name(prefix, parts, suffix=f"r{attempt}" if attempt > 1 else "")

    def create_kwargs(self, job_name: str) -> dict[str, Any]:
        """CreateTransformJob's arguments."""
        self.validate()
        output: dict[str, Any] = {"S3OutputPath": self.output_uri, "AssembleWith": self.assemble_with}
        if self.accept:
            output["Accept"] = self.accept
        if self.kms_key_id:
            output["KmsKeyId"] = self.kms_key_id
        resources: dict[str, Any] = {"InstanceType": self.instance_type, "InstanceCount": int(self.instance_count)}
        if self.kms_key_id:
            resources["VolumeKmsKeyId"] = self.kms_key_id
        kind = "S3Prefix"
        kwargs: dict[str, Any] = {
            "TransformJobName": job_name, "ModelName": self.model_name,
            "BatchStrategy": self.batch_strategy, "MaxPayloadInMB": int(self.max_payload_mb),
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": kind, "S3Uri": self.input_uri}},
                               "ContentType": self.content_type, "SplitType": self.split_type},
            "TransformOutput": output, "TransformResources": resources,
        }
        if self.tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        return kwargs


@dataclass(frozen=True)
class TransformResult:
    job_name: str
    status: str
    output_uri: str
    adopted: bool
    seconds: float


def output_uri_for(input_object_uri: str, input_prefix_uri: str, output_uri: str) -> str:
    """Where SageMaker writes the answers of one input object: ``<output>/<path under the prefix>.out``."""
    prefix = input_prefix_uri if input_prefix_uri.endswith("/") else input_prefix_uri.rsplit("/", 1)[0] + "/"
    if not input_object_uri.startswith(prefix):
        raise ValueError(f"{input_object_uri} is not under the transform input {input_prefix_uri}")
    return f"{output_uri.rstrip('/')}/{input_object_uri[len(prefix):]}.out"


def stop_transform_job(sm: Any, name: str, log: Callable[[str], None] = print,
                       confirm_seconds: float = STOP_CONFIRM_SECONDS) -> str:
    """Stop job ``name`` unless it already ended; what happened, for the abandoning exception's message."""
    return stop_job(sm, TRANSFORM_JOB, name, log, confirm_seconds)


def _wait(sm: Any, name: str, poll_seconds: float, log: Callable[[str], None]) -> dict[str, Any]:
    """Wait until job ``name`` ends (at most :data:`WAIT_SECONDS`); stop it if the wait ends otherwise."""
    return wait_until_ended(sm, TRANSFORM_JOB, name, poll_seconds, WAIT_SECONDS, TransformJobFailed, log)


def run_transform_job(sm: Any, request: TransformRequest, name_prefix: str, poll_seconds: float = 30.0,
                      log: Callable[[str], None] = print) -> TransformResult:
    """Run (or adopt) the transform job of ``request`` and wait for it; raise if it does not complete."""
    request.validate()
    started = time.monotonic()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        name = request.job_name(name_prefix, attempt)
        desc = TRANSFORM_JOB.find(sm, name)
        if desc is None:
            break
        status = desc["TransformJobStatus"]
        if status == "Completed":
            log(f"adopting completed transform job {name}")
            return TransformResult(name, status, request.output_uri, True, 0.0)
        if status in ("InProgress", "Stopping"):
            log(f"re-attaching to transform job {name} ({status})")
            desc = _wait(sm, name, poll_seconds, log)
            if desc["TransformJobStatus"] == "Completed":
                return TransformResult(name, "Completed", request.output_uri, True, time.monotonic() - started)
        # Failed or Stopped: the name is spent; the next attempt gets a new one.
    else:
        raise TransformJobFailed(f"{MAX_ATTEMPTS} attempts of transform job {request.job_name(name_prefix)} "
                                 "ended Failed or Stopped; look at their FailureReason")
    log(f"starting transform job {name} of model {request.model_name} on {request.input_uri}")
    sm.create_transform_job(**request.create_kwargs(name))
    desc = _wait(sm, name, poll_seconds, log)
    if desc["TransformJobStatus"] != "Completed":
        raise TransformJobFailed(f"transform job {name} ended {desc['TransformJobStatus']}: "
                                 f"{desc.get('FailureReason', 'no reason given')}")
    return TransformResult(name, "Completed", request.output_uri, False, time.monotonic() - started)
