"""Live endpoints: create one, or move an existing one to a new model (SageMaker updates blue/green)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError

from smspark_assets.sagemaker.naming import derived_name

VARIANT = "AllTraffic"


class EndpointFailed(RuntimeError):
    """The endpoint did not reach InService; the message carries SageMaker's FailureReason."""


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


def _wait_in_service(sm, name: str, poll_seconds: float) -> dict[str, Any]:
    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": max(1, int(poll_seconds)), "MaxAttempts": 100000})
    except Exception:  # a Failed endpoint stops the waiter; describe below tells why
        pass
    return sm.describe_endpoint(EndpointName=name)


def deploy_model(sm, endpoint_name: str, model_name: str, instance_type: str, instance_count: int = 1,
                 poll_seconds: float = 30.0, log: Callable[[str], None] = print) -> EndpointResult:
    """Serve ``model_name`` on ``endpoint_name``: create the endpoint, update it, or leave it as it is."""
    config_name = derived_name(model_name, "cfg")
    if _describe(sm.describe_endpoint_config, EndpointConfigName=config_name) is None:
        sm.create_endpoint_config(
            EndpointConfigName=config_name,
            ProductionVariants=[{"VariantName": VARIANT, "ModelName": model_name, "InstanceType": instance_type,
                                 "InitialInstanceCount": instance_count, "InitialVariantWeight": 1.0}],
        )
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
            log(f"updating endpoint {endpoint_name} to {config_name}")
            sm.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
            action = "updated"
    desc = _wait_in_service(sm, endpoint_name, poll_seconds)
    if desc["EndpointStatus"] != "InService" or desc.get("EndpointConfigName") != config_name:
        raise EndpointFailed(
            f"endpoint {endpoint_name} did not serve {config_name}: status {desc['EndpointStatus']}, "
            f"{desc.get('FailureReason', 'no reason given')}")
    return EndpointResult(endpoint_name, config_name, model_name, desc["EndpointStatus"], action)
