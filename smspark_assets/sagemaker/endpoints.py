"""Live endpoints: create one, or move an existing one to a new config (SageMaker updates blue/green).

The endpoint config is named by a hash of everything that determines it (model, instance type and
count or serverless settings, variant, data capture, KMS key), so any change of settings makes a new
config and an update, and an unchanged endpoint is recognised as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError, WaiterError

from smspark_assets.sagemaker.naming import endpoint_config_name

VARIANT = "AllTraffic"
# Creating an endpoint takes minutes; a blue/green update with a baking period can take longer.
ENDPOINT_WAIT_SECONDS = 2 * 3600
# Serverless inference's limits (memory in 1 GB steps).
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200


class EndpointFailed(RuntimeError):
    """The endpoint did not reach InService; the message carries SageMaker's FailureReason."""


@dataclass(frozen=True)
class DataCapture:
    """Request/response capture to S3 (SageMaker's DataCaptureConfig)."""

    destination_uri: str
    sampling_percentage: int = 100
    capture_input: bool = True
    capture_output: bool = True
    kms_key_id: str | None = None

    def to_request(self) -> dict[str, Any]:
        if not 0 <= self.sampling_percentage <= 100:
            raise ValueError(f"data capture sampling_percentage must be in 0..100, got {self.sampling_percentage}")
        if not (self.capture_input or self.capture_output):
            raise ValueError("data capture must capture the input, the output or both")
        if not self.destination_uri.startswith("s3://"):
            raise ValueError(f"data capture destination must be an s3:// URI, got {self.destination_uri!r}")
        modes = [{"CaptureMode": m} for m, on in (("Input", self.capture_input), ("Output", self.capture_output))
                 if on]
        out: dict[str, Any] = {"EnableCapture": True, "InitialSamplingPercentage": self.sampling_percentage,
                               "DestinationS3Uri": self.destination_uri, "CaptureOptions": modes}
        if self.kms_key_id:
            out["KmsKeyId"] = self.kms_key_id
        return out


@dataclass(frozen=True)
class ServerlessSettings:
    """Serverless inference instead of instances (SageMaker's ServerlessConfig)."""

    memory_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None

    def to_request(self) -> dict[str, Any]:
        if self.memory_mb not in SERVERLESS_MEMORY_MB:
            raise ValueError(f"serverless memory_mb must be one of {SERVERLESS_MEMORY_MB}, got {self.memory_mb}")
        if not 1 <= self.max_concurrency <= SERVERLESS_MAX_CONCURRENCY:
            raise ValueError(f"serverless max_concurrency must be in 1..{SERVERLESS_MAX_CONCURRENCY}, "
                             f"got {self.max_concurrency}")
        out: dict[str, Any] = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency is not None:
            if not 1 <= self.provisioned_concurrency <= self.max_concurrency:
                raise ValueError(f"serverless provisioned_concurrency must be in 1..max_concurrency "
                                 f"({self.max_concurrency}), got {self.provisioned_concurrency}")
            out["ProvisionedConcurrency"] = self.provisioned_concurrency
        return out


@dataclass(frozen=True)
class EndpointSettings:
    """Everything that determines an endpoint config besides the model."""

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    variant_name: str = VARIANT
    variant_weight: float = 1.0
    data_capture: DataCapture | None = None
    serverless: ServerlessSettings | None = None
    # Encrypts the ML storage volume of the instances (and, with data capture, its objects unless set there).
    kms_key_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def config_request(self, model_name: str) -> dict[str, Any]:
        """CreateEndpointConfig's arguments but the name (and tags, which change nothing it does).

        Refuses values SageMaker would refuse, with the allowed range, before anything is created.
        """
        variant: dict[str, Any] = {"VariantName": self.variant_name, "ModelName": model_name,
                                   "InitialVariantWeight": float(self.variant_weight)}
        if self.variant_weight < 0:
            raise ValueError(f"variant_weight must be >= 0, got {self.variant_weight}")
        if self.serverless is not None:
            variant["ServerlessConfig"] = self.serverless.to_request()
        else:
            if self.instance_count < 1:
                raise ValueError(f"instance_count must be at least 1, got {self.instance_count}")
            if not self.instance_type.startswith("ml."):
                raise ValueError(f"instance_type must be a SageMaker instance type (ml.*), got {self.instance_type!r}")
            variant.update(InstanceType=self.instance_type, InitialInstanceCount=int(self.instance_count))
        request: dict[str, Any] = {"ProductionVariants": [variant]}
        if self.data_capture is not None:
            request["DataCaptureConfig"] = self.data_capture.to_request()
        if self.kms_key_id:
            request["KmsKeyId"] = self.kms_key_id
        return request


@dataclass(frozen=True)
class EndpointResult:
    endpoint_name: str
    config_name: str
    model_name: str
    status: str
    action: str  # created | updated | unchanged


def _describe(call: Callable[..., dict], **kwargs: Any) -> dict[str, Any] | None:
    try:
        return call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None
        raise


def _wait_in_service(sm, name: str, poll_seconds: float,
                     timeout_seconds: float = ENDPOINT_WAIT_SECONDS) -> dict[str, Any]:
    """Wait until endpoint ``name`` is InService (or Failed, which the caller reports with its reason).

    A waiter that gives up (timeout, repeated errors) raises with the endpoint's current status instead
    of passing for success: SageMaker goes on creating or updating it, and the user must know.
    No API stops a creation or update in progress, so an interrupt is left to propagate as it is.
    """
    delay = max(1, int(poll_seconds))
    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name,
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout_seconds / delay))})
    except WaiterError as exc:
        desc = sm.describe_endpoint(EndpointName=name)
        if desc["EndpointStatus"] != "Failed":  # Failed is a normal end: the caller reports FailureReason
            raise EndpointFailed(
                f"waiting for endpoint {name} gave up while it was {desc['EndpointStatus']} "
                f"(SageMaker goes on with it; check it before re-running): {exc}") from exc
        return desc
    return sm.describe_endpoint(EndpointName=name)


def deploy_model(sm, endpoint_name: str, model_name: str, settings: EndpointSettings | None = None,
                 poll_seconds: float = 30.0, log: Callable[[str], None] = print) -> EndpointResult:
    """Serve ``model_name`` on ``endpoint_name`` with ``settings``: create the endpoint, update it, or
    leave it as it is when it already serves exactly this config."""
    settings = settings or EndpointSettings()
    request = settings.config_request(model_name)
    config_name = endpoint_config_name(model_name, request)
    if _describe(sm.describe_endpoint_config, EndpointConfigName=config_name) is None:
        tags = [{"Key": k, "Value": v} for k, v in settings.tags.items()]
        sm.create_endpoint_config(EndpointConfigName=config_name, **request, **({"Tags": tags} if tags else {}))
    current = _describe(sm.describe_endpoint, EndpointName=endpoint_name)
    if current is None:
        log(f"creating endpoint {endpoint_name} with {config_name}")
        sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
        action = "created"
    else:
        if current["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating"):
            current = _wait_in_service(sm, endpoint_name, poll_seconds)
        if current.get("EndpointConfigName") == config_name and current["EndpointStatus"] == "InService":
            return EndpointResult(endpoint_name, config_name, model_name, "InService", "unchanged")
        if current["EndpointStatus"] == "Failed":
            log(f"endpoint {endpoint_name} is Failed ({current.get('FailureReason')}); recreating it")
            sm.delete_endpoint(EndpointName=endpoint_name)
            sm.get_waiter("endpoint_deleted").wait(
                EndpointName=endpoint_name, WaiterConfig={"Delay": max(1, int(poll_seconds)), "MaxAttempts": 1000})
            sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
            action = "created"
        else:
            log(f"updating endpoint {endpoint_name} from {current.get('EndpointConfigName')} to {config_name}")
            sm.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
            action = "updated"
    desc = _wait_in_service(sm, endpoint_name, poll_seconds)
    if desc["EndpointStatus"] != "InService" or desc.get("EndpointConfigName") != config_name:
        raise EndpointFailed(
            f"endpoint {endpoint_name} did not serve {config_name}: status {desc['EndpointStatus']}, "
            f"{desc.get('FailureReason', 'no reason given')}")
    return EndpointResult(endpoint_name, config_name, model_name, desc["EndpointStatus"], action)
