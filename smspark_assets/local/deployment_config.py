"""``DeploymentConfig`` of CreateEndpoint / UpdateEndpoint: checked as botocore's model and SageMaker's
deployment guardrails constrain it, and turned into the traffic steps of a blue/green rollout.

Constraints (botocore ``sagemaker`` model; AWS guide "Deployment guardrails"):

* ``TrafficRoutingConfiguration.Type`` ``ALL_AT_ONCE | CANARY | LINEAR`` and ``WaitIntervalInSeconds``
  0-3600 are required; ``CANARY`` needs ``CanarySize`` (at most 50 % of the new fleet), ``LINEAR`` needs
  ``LinearStepSize`` (10-50 % of the new fleet); ``CapacitySize`` is ``{Type: INSTANCE_COUNT |
  CAPACITY_PERCENT, Value >= 1}``;
* ``TerminationWaitInSeconds`` 0-3600 (default 0); ``MaximumExecutionTimeoutInSeconds`` 600-28800 and
  larger than the sum of the waits;
* ``AutoRollbackConfiguration.Alarms``: 1-10 ``{AlarmName}``;
* ``RollingUpdatePolicy`` is refused here: the local stack runs blue/green updates only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from smspark_assets.local.api_errors import validation

TRAFFIC_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
CAPACITY_TYPES = ("INSTANCE_COUNT", "CAPACITY_PERCENT")
DEFAULT_MAX_EXECUTION_SECONDS = 28800


@dataclass
class RolloutPlan:
    """What a blue/green update does: traffic fractions in order, each followed by a bake."""

    kind: str = "ALL_AT_ONCE"
    steps: list[float] = field(default_factory=lambda: [1.0])
    wait_seconds: int = 0
    termination_wait_seconds: int = 0
    max_execution_seconds: int = DEFAULT_MAX_EXECUTION_SECONDS
    alarms: list[str] = field(default_factory=list)

    @property
    def guarded(self) -> bool:
        """Whether anything happens between the switch and the end (else the switch is immediate)."""
        return bool(self.wait_seconds or self.termination_wait_seconds or len(self.steps) > 1)


def _int_in(value: Any, member: str, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"greater than or equal to {low}"
        raise validation(f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
                         f"constraint: Member must have value {bound}")
    return value


def _fraction(size: Any, member: str, instances: int, low_pct: float, high_pct: float) -> float:
    """A CapacitySize as the fraction of the new fleet's traffic it stands for."""
    if not isinstance(size, dict):
        raise validation(f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
                         "Member must not be null")
    kind = size.get("Type")
    if kind not in CAPACITY_TYPES:
        raise validation(f"1 validation error detected: Value '{kind}' at '{member}.type' failed to satisfy "
                         f"constraint: Member must satisfy enum value set: [{', '.join(CAPACITY_TYPES)}]")
    value = _int_in(size.get("Value"), f"{member}.value", 1)
    fraction = value / 100.0 if kind == "CAPACITY_PERCENT" else value / max(1, instances)
    if not low_pct / 100.0 <= fraction <= high_pct / 100.0 + 1e-9:
        what = f"{value}%" if kind == "CAPACITY_PERCENT" else f"{value} of {instances} instance(s)"
        raise validation(f"{member} ({what}) must be between {low_pct:g}% and {high_pct:g}% of the new fleet "
                         f"({instances} instance(s)).")
    return fraction


def plan_for(config: dict[str, Any] | None, instances: int) -> RolloutPlan:
    """Check a DeploymentConfig against a new fleet of ``instances`` and return its rollout plan."""
    if not config:
        return RolloutPlan()
    if not isinstance(config, dict):
        raise validation("DeploymentConfig must be an object")
    if config.get("RollingUpdatePolicy"):
        raise validation("RollingUpdatePolicy is not supported by the local stack; use BlueGreenUpdatePolicy.")
    alarms: list[str] = []
    rollback = config.get("AutoRollbackConfiguration")
    if rollback is not None:
        listed = rollback.get("Alarms") if isinstance(rollback, dict) else None
        if not isinstance(listed, list) or not 1 <= len(listed) <= 10:
            raise validation("1 validation error detected: Value at 'deploymentConfig.autoRollbackConfiguration"
                             ".alarms' failed to satisfy constraint: Member must have length between 1 and 10")
        for i, alarm in enumerate(listed, 1):
            name = alarm.get("AlarmName") if isinstance(alarm, dict) else None
            if not isinstance(name, str) or not 1 <= len(name) <= 255 or not name.strip():
                raise validation(f"Value '{name}' at 'deploymentConfig.autoRollbackConfiguration.alarms.{i}."
                                 "member.alarmName' must be 1-255 characters, not only spaces")
            alarms.append(name)
    policy = config.get("BlueGreenUpdatePolicy")
    if policy is None:
        return RolloutPlan(alarms=alarms)
    member = "deploymentConfig.blueGreenUpdatePolicy"
    routing = policy.get("TrafficRoutingConfiguration") if isinstance(policy, dict) else None
    if not isinstance(routing, dict):
        raise validation(f"1 validation error detected: Value null at '{member}.trafficRoutingConfiguration' "
                         "failed to satisfy constraint: Member must not be null")
    kind = routing.get("Type")
    if kind not in TRAFFIC_TYPES:
        raise validation(f"1 validation error detected: Value '{kind}' at '{member}.trafficRoutingConfiguration"
                         f".type' failed to satisfy constraint: Member must satisfy enum value set: "
                         f"[{', '.join(TRAFFIC_TYPES)}]")
    wait = _int_in(routing.get("WaitIntervalInSeconds"),
                   f"{member}.trafficRoutingConfiguration.waitIntervalInSeconds", 0, 3600)
    if kind != "CANARY" and routing.get("CanarySize") is not None:
        raise validation(f"CanarySize is only valid with TrafficRoutingConfiguration Type CANARY, not {kind}.")
    if kind != "LINEAR" and routing.get("LinearStepSize") is not None:
        raise validation(f"LinearStepSize is only valid with TrafficRoutingConfiguration Type LINEAR, not {kind}.")
    if kind == "CANARY":
        canary = _fraction(routing.get("CanarySize"), f"{member}.trafficRoutingConfiguration.canarySize",
                           instances, 0.0, 50.0)
        steps = [canary, 1.0]
    elif kind == "LINEAR":
        step = _fraction(routing.get("LinearStepSize"), f"{member}.trafficRoutingConfiguration.linearStepSize",
                         instances, 10.0, 50.0)
        count = math.ceil(1.0 / step - 1e-9)
        steps = [min(1.0, step * (i + 1)) for i in range(count)]
    else:
        steps = [1.0]
    termination = _int_in(policy.get("TerminationWaitInSeconds", 0), f"{member}.terminationWaitInSeconds", 0, 3600)
    max_seconds = policy.get("MaximumExecutionTimeoutInSeconds")
    if max_seconds is None:
        max_seconds = DEFAULT_MAX_EXECUTION_SECONDS
    else:
        _int_in(max_seconds, f"{member}.maximumExecutionTimeoutInSeconds", 600, 28800)
    total = wait * len(steps) + termination
    if max_seconds <= total:
        raise validation(f"MaximumExecutionTimeoutInSeconds ({max_seconds}) must be greater than the total of the "
                         f"waits ({len(steps)} bake(s) of {wait} s + termination wait {termination} s = {total} s).")
    return RolloutPlan(kind, steps, wait, termination, max_seconds, alarms)
