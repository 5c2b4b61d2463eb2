"""Live endpoints: create one, or move an existing one to a new config (SageMaker updates blue/green).

The endpoint config is named by a hash of everything that determines it (model, instance type and
count or serverless settings, variant, data capture, KMS key), so any change of settings makes a new
config and an update, and an unchanged endpoint is recognised as such.

Updates shift traffic as :class:`RolloutSettings` say (SageMaker's deployment guardrails: ``CANARY`` by
default, ``LINEAR`` or ``ALL_AT_ONCE``), guarded by CloudWatch alarms (:mod:`~smspark_assets.sagemaker.alarms`)
that roll the endpoint back to its old config. A rollback is not an error of UpdateEndpoint: the endpoint
returns to ``InService`` on its *old* ``EndpointConfigName`` with a ``FailureReason``, which is how it is
detected here and reported as :class:`EndpointRolledBack`. The first create has no deployment config
(there is nothing to shift traffic from).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError, WaiterError

from smspark_assets.sagemaker.alarms import AlarmSettings, alarm_requests, alarms_in_alarm, put_alarms
from smspark_assets.sagemaker.job_control import describe_or_none, waiter_config
from smspark_assets.sagemaker.naming import endpoint_config_name

VARIANT = "AllTraffic"
# Creating an endpoint takes minutes; a blue/green update with a baking period can take longer.
ENDPOINT_WAIT_SECONDS = 2 * 3600
# Serverless inference's limits (memory in 1 GB steps).
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
# Tag of every SageMaker resource the platform creates; the idle reaper deletes nothing without it.
PROJECT_TAG = ("project", "smspark_assets")
ROLLOUT_MODES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
# DeploymentConfig's limits (botocore's sagemaker model; AWS guide "Deployment guardrails").
MAX_WAIT_SECONDS = 3600
MIN_EXECUTION_SECONDS, MAX_EXECUTION_SECONDS = 600, 28800


class EndpointFailed(RuntimeError):
    """The endpoint did not reach InService; the message carries SageMaker's FailureReason."""


class EndpointRolledBack(EndpointFailed):
    """A guarded update was rolled back: the endpoint is InService on its old config (``serving_config``)."""

    def __init__(self, message: str, reason: str, serving_config: str | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.serving_config = serving_config


@dataclass(frozen=True)
class RolloutSettings:
    """How an update shifts traffic to the new fleet, and which alarms roll it back.

    ``CANARY``: ``canary_percent`` of the traffic first, then all of it; ``LINEAR``: steps of
    ``linear_step_percent``; ``ALL_AT_ONCE``: one step. Every step bakes ``wait_seconds`` while the alarms
    are watched; the old fleet is kept ``termination_wait_seconds`` after the last bake.
    """

    mode: str = "CANARY"
    canary_percent: int = 10
    linear_step_percent: int = 25
    wait_seconds: int = 300
    termination_wait_seconds: int = 0
    # Default: every wait plus ten minutes (at least SageMaker's minimum of 600 s).
    max_execution_seconds: int | None = None
    alarms: AlarmSettings | None = field(default_factory=AlarmSettings)

    def steps(self, serverless: bool = False) -> int:
        mode = self.effective_mode(serverless)
        if mode == "CANARY":
            return 2
        if mode == "LINEAR":
            return math.ceil(100 / self.linear_step_percent)
        return 1

    def effective_mode(self, serverless: bool) -> str:
        # SageMaker shifts a serverless endpoint's traffic all at once only (its one variant has no instances
        # to split); the bake and the alarm rollback still apply.
        return "ALL_AT_ONCE" if serverless else self.mode

    def validate(self) -> None:
        if self.mode not in ROLLOUT_MODES:
            raise ValueError(f"rollout mode must be one of {', '.join(ROLLOUT_MODES)}, got {self.mode!r}")
        if self.mode == "CANARY" and not 1 <= self.canary_percent <= 50:
            raise ValueError(f"canary_percent must be in 1..50 (SageMaker's canary is at most half the fleet), "
                             f"got {self.canary_percent}")
        if self.mode == "LINEAR" and not 10 <= self.linear_step_percent <= 50:
            raise ValueError(f"linear_step_percent must be in 10..50, got {self.linear_step_percent}")
        for name in ("wait_seconds", "termination_wait_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= MAX_WAIT_SECONDS:
                raise ValueError(f"{name} must be in 0..{MAX_WAIT_SECONDS}, got {value!r}")
        if self.alarms is not None:
            self.alarms.validate()
        total = self._waits(False)
        limit = self.execution_limit(False)
        if not MIN_EXECUTION_SECONDS <= limit <= MAX_EXECUTION_SECONDS:
            raise ValueError(f"max_execution_seconds must be in {MIN_EXECUTION_SECONDS}..{MAX_EXECUTION_SECONDS}, "
                             f"got {limit}")
        if limit <= total:
            raise ValueError(f"max_execution_seconds ({limit}) must exceed the total of the waits ({total} s: "
                             f"{self.steps()} bake(s) of {self.wait_seconds} s + {self.termination_wait_seconds} s)")

    def _waits(self, serverless: bool) -> int:
        return self.steps(serverless) * self.wait_seconds + self.termination_wait_seconds

    def execution_limit(self, serverless: bool) -> int:
        if self.max_execution_seconds is not None:
            return self.max_execution_seconds
        return min(MAX_EXECUTION_SECONDS, max(MIN_EXECUTION_SECONDS, self._waits(serverless) + 600))

    def deployment_config(self, alarm_names: list[str], serverless: bool = False) -> dict[str, Any]:
        """UpdateEndpoint's ``DeploymentConfig`` (BlueGreenUpdatePolicy + AutoRollbackConfiguration)."""
        self.validate()
        mode = self.effective_mode(serverless)
        routing: dict[str, Any] = {"Type": mode, "WaitIntervalInSeconds": self.wait_seconds}
        if mode == "CANARY":
            routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": self.canary_percent}
        elif mode == "LINEAR":
            routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": self.linear_step_percent}
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": self.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": self.execution_limit(serverless)}}
        if alarm_names:
            if len(alarm_names) > 10:
                raise ValueError(f"at most 10 rollback alarms, got {len(alarm_names)}")
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in alarm_names]}
        return config


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
    deployment: dict[str, Any] | None = None  # the DeploymentConfig of an update
    alarms: tuple[str, ...] = ()


def _wait_in_service(sm, name: str, poll_seconds: float,
                     timeout_seconds: float = ENDPOINT_WAIT_SECONDS) -> dict[str, Any]:
    """Wait until endpoint ``name`` is InService (or Failed, which the caller reports with its reason).

    A waiter that gives up (timeout, repeated errors) raises with the endpoint's current status instead
    of passing for success: SageMaker goes on creating or updating it, and the user must know.
    No API stops a creation or update in progress, so an interrupt is left to propagate as it is.
    """
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name,
                                                  WaiterConfig=waiter_config(poll_seconds, timeout_seconds))
    except WaiterError as exc:
        desc = sm.describe_endpoint(EndpointName=name)
        if desc["EndpointStatus"] != "Failed":  # Failed is a normal end: the caller reports FailureReason
            raise EndpointFailed(
                f"waiting for endpoint {name} gave up while it was {desc['EndpointStatus']} "
                f"(SageMaker goes on with it; check it before re-running): {exc}") from exc
        return desc
    return sm.describe_endpoint(EndpointName=name)


def _tags(settings: EndpointSettings) -> list[dict[str, str]]:
    """The endpoint's tags: the project tag (what the idle reaper looks for) and the settings' own."""
    tags = {PROJECT_TAG[0]: PROJECT_TAG[1], **dict(settings.tags)}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _wait_deleted(sm, name: str, poll_seconds: float) -> None:
    # As long as the old fixed budget: 1,000 polls of at least a second.
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=waiter_config(
        poll_seconds, 1000 * max(1.0, poll_seconds)))


def _guard(sm, cloudwatch: Any, endpoint_name: str, settings: EndpointSettings, rollout: RolloutSettings,
           log: Callable[[str], None]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Put the guard alarms in place and return the update's DeploymentConfig and the alarm names."""
    names: list[str] = []
    if rollout.alarms is not None:
        if cloudwatch is None:
            raise ValueError("a rollout with alarms needs a CloudWatch client (cloudwatch=...)")
        names = put_alarms(cloudwatch, alarm_requests(endpoint_name, settings.variant_name, rollout.alarms), log)
        firing = alarms_in_alarm(cloudwatch, names)
        if firing:
            # SageMaker would roll the update back at its first bake: say why instead of trying.
            raise EndpointFailed(
                f"endpoint {endpoint_name} was not updated: its guard alarm(s) are in ALARM now, so the update "
                f"would roll back at once: " + "; ".join(f"{n}: {r}" for n, r in firing.items())
                + f". Wait until they return to OK (one period: {rollout.alarms.period_seconds} s without the "
                  "condition) and re-run.")
    return rollout.deployment_config(names, serverless=settings.serverless is not None), tuple(names)


def delete_endpoint(sm, endpoint_name: str, poll_seconds: float = 30.0, wait: bool = True) -> bool:
    """Delete ``endpoint_name`` if it exists (its configs and models stay); whether it existed."""
    try:
        sm.delete_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound") and \
                describe_or_none(sm.describe_endpoint, EndpointName=endpoint_name) is None:
            return False
        raise
    if wait:
        _wait_deleted(sm, endpoint_name, poll_seconds)
    return True


def deploy_model(sm, endpoint_name: str, model_name: str, settings: EndpointSettings | None = None,
                 poll_seconds: float = 30.0, log: Callable[[str], None] = print,
                 rollout: RolloutSettings | None = None, cloudwatch: Any = None) -> EndpointResult:
    """Serve ``model_name`` on ``endpoint_name`` with ``settings``: create the endpoint (also when it was
    deleted, e.g. by the idle reaper), update it, or leave it as it is when it already serves exactly this
    config.

    An update follows ``rollout`` (default: SageMaker's blue/green all at once, no alarms), after putting
    its guard alarms in place with ``cloudwatch``. A rolled-back update raises :class:`EndpointRolledBack`
    (the endpoint still serves its old config); anything else that ends elsewhere than InService on the
    new config raises :class:`EndpointFailed`.
    """
    settings = settings or EndpointSettings()
    request = settings.config_request(model_name)
    if rollout is not None:
        rollout.validate()
    config_name = endpoint_config_name(model_name, request)
    if describe_or_none(sm.describe_endpoint_config, EndpointConfigName=config_name) is None:
        tags = [{"Key": k, "Value": v} for k, v in settings.tags.items()]
        sm.create_endpoint_config(EndpointConfigName=config_name, **request, **({"Tags": tags} if tags else {}))
    current = describe_or_none(sm.describe_endpoint, EndpointName=endpoint_name)
    if current is not None and current["EndpointStatus"] == "Deleting":
        log(f"endpoint {endpoint_name} is being deleted; waiting to create it again")
        _wait_deleted(sm, endpoint_name, poll_seconds)
        current = None
    deployment: dict[str, Any] | None = None
    alarms: tuple[str, ...] = ()
    if current is None:
        # The first create has no DeploymentConfig: there is no old fleet to shift traffic from.
        log(f"creating endpoint {endpoint_name} with {config_name}")
        sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name, Tags=_tags(settings))
        action = "created"
    else:
        if current["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating"):
            current = _wait_in_service(sm, endpoint_name, poll_seconds)
        if current.get("EndpointConfigName") == config_name and current["EndpointStatus"] == "InService":
            return EndpointResult(endpoint_name, config_name, model_name, "InService", "unchanged")
        if current["EndpointStatus"] == "Failed":
            log(f"endpoint {endpoint_name} is Failed ({current.get('FailureReason')}); recreating it")
            sm.delete_endpoint(EndpointName=endpoint_name)
            _wait_deleted(sm, endpoint_name, poll_seconds)
            sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name, Tags=_tags(settings))
            action = "created"
        else:
            old_config = current.get("EndpointConfigName")
            extra: dict[str, Any] = {}
            if rollout is not None:
                deployment, alarms = _guard(sm, cloudwatch, endpoint_name, settings, rollout, log)
                extra["DeploymentConfig"] = deployment
                shift = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"]
                log(f"updating endpoint {endpoint_name} from {old_config} to {config_name}: {shift}, "
                    f"{rollout.steps(settings.serverless is not None)} step(s) baking {rollout.wait_seconds} s, "
                    f"rollback on {', '.join(alarms) or 'no alarm'}")
            else:
                log(f"updating endpoint {endpoint_name} from {old_config} to {config_name}")
            sm.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name, **extra)
            action = "updated"
    desc = _wait_in_service(sm, endpoint_name, poll_seconds)
    if action == "updated" and desc["EndpointStatus"] == "InService" and desc.get("EndpointConfigName") != config_name:
        serving = desc.get("EndpointConfigName")
        reason = desc.get("FailureReason") or "no reason given"
        raise EndpointRolledBack(
            f"endpoint {endpoint_name} did not serve {config_name} (model {model_name}): the update was rolled "
            f"back and it still serves {serving}. SageMaker: {reason}", reason, serving)
    if desc["EndpointStatus"] != "InService" or desc.get("EndpointConfigName") != config_name:
        raise EndpointFailed(
            f"endpoint {endpoint_name} did not serve {config_name}: status {desc['EndpointStatus']}, "
            f"{desc.get('FailureReason', 'no reason given')}")
    return EndpointResult(endpoint_name, config_name, model_name, desc["EndpointStatus"], action,
                          deployment, alarms)


def ensure_endpoint(sm, endpoint_name: str, config_name: str, poll_seconds: float = 30.0,
                    tags: Mapping[str, str] | None = None, log: Callable[[str], None] = print) -> bool:
    """Make sure ``endpoint_name`` exists before it is called; whether it had to be created again.

    A scoring step calls this with the config its endpoint asset deployed: an endpoint the idle reaper
    deleted is created again from that config (kept when the endpoint was deleted), instead of the step
    failing on "Could not find endpoint".
    """
    current = describe_or_none(sm.describe_endpoint, EndpointName=endpoint_name)
    if current is not None and current["EndpointStatus"] == "Deleting":
        _wait_deleted(sm, endpoint_name, poll_seconds)
        current = None
    if current is None:
        if describe_or_none(sm.describe_endpoint_config, EndpointConfigName=config_name) is None:
            raise EndpointFailed(f"endpoint {endpoint_name} does not exist and its config {config_name} is gone "
                                 "too; materialize the endpoint asset to deploy it again")
        log(f"endpoint {endpoint_name} does not exist (deleted while idle?); creating it again from {config_name}")
        all_tags = {PROJECT_TAG[0]: PROJECT_TAG[1], **dict(tags or {})}
        sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name,
                           Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()])
        recreated = True
    elif current["EndpointStatus"] == "InService":
        return False
    else:
        recreated = False
    desc = _wait_in_service(sm, endpoint_name, poll_seconds)
    if desc["EndpointStatus"] != "InService":
        raise EndpointFailed(f"endpoint {endpoint_name} is {desc['EndpointStatus']}: "
                             f"{desc.get('FailureReason', 'no reason given')}; materialize its endpoint asset")
    return recreated
