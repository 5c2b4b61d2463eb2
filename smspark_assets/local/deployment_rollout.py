"""Blue/green traffic shifting with alarm-driven auto-rollback, as SageMaker's deployment guardrails do it.

The new fleet (green) is already running and healthy when this starts; the old fleet (blue) still serves.
For each traffic step of the plan (``ALL_AT_ONCE``: 100 %; ``CANARY``: the canary, then 100 %; ``LINEAR``:
n equal steps) the share of new requests routed to green becomes the step's fraction
(``ActivatingTraffic``), then the step bakes for ``WaitIntervalInSeconds`` (``Baking``) while the
``AutoRollbackConfiguration`` alarms are watched. An alarm in ``ALARM`` during a bake, or the
``MaximumExecutionTimeoutInSeconds`` passing, sends all traffic back to blue at once: the update ends
with the endpoint ``InService`` on its **old** ``EndpointConfigName`` and a ``FailureReason``, which is how
callers detect a rollback on AWS. After the last bake, blue is kept for ``TerminationWaitInSeconds``
before the caller retires it.

DescribeEndpoint shows the progress in ``PendingDeploymentSummary`` (new config, start time, per variant
``CurrentWeight`` / ``DesiredWeight`` and ``VariantStatus`` with ``Status``, ``StatusMessage`` and
``StartTime``), as the AWS guide and the guardrails sample notebook show it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from smspark_assets.local.deployment_config import RolloutPlan
from smspark_assets.local.state import NotFound

if TYPE_CHECKING:
    from smspark_assets.local.endpoints import Deployment

log = logging.getLogger("smspark.local.rollout")

POLL_SECONDS = 0.1


@dataclass
class Shift:
    """While an update shifts traffic: the green deployment and the share of requests it gets."""

    deployment: "Deployment"
    fraction: float = 0.0


class RolledBack(Exception):
    """The rollout stopped; the message is the endpoint's ``FailureReason``."""


class Aborted(Exception):
    """The endpoint is being deleted or the stack stops: the rollout just ends."""


def pending_summary(new: "Deployment", fraction: float, status: str, message: str, started: float,
                    step_started: float) -> dict[str, Any]:
    variants = []
    for variant in new.variants:
        entry: dict[str, Any] = {
            "VariantName": variant.name,
            "DeployedImages": [{"SpecifiedImage": variant.image, "ResolvedImage": variant.image,
                                "ResolutionTime": started}],
            "CurrentWeight": round(variant.weight * fraction, 6),
            "DesiredWeight": variant.weight,
            "VariantStatus": [{"Status": status, "StatusMessage": message, "StartTime": step_started}],
        }
        if variant.serverless is not None:
            entry["CurrentServerlessConfig"] = entry["DesiredServerlessConfig"] = dict(variant.serverless.config)
        else:
            entry["CurrentInstanceCount"] = entry["DesiredInstanceCount"] = variant.desired_instances
            if variant.instance_type:
                entry["InstanceType"] = variant.instance_type
        variants.append(entry)
    return {"EndpointConfigName": new.config_name, "StartTime": started, "ProductionVariants": variants}


def run_rollout(
    endpoint: str,
    new: "Deployment",
    plan: RolloutPlan,
    shifts: dict[str, Shift],
    store: Any,
    alarm_state: Callable[[str], tuple[str, str] | None],
    still_wanted: Callable[[], bool],
) -> None:
    """Shift traffic to ``new`` step by step; raise :class:`RolledBack` (traffic is back on blue) or
    :class:`Aborted`. Returns once 100 % is on green and the termination wait is over."""
    started = time.time()
    deadline = time.monotonic() + plan.max_execution_seconds
    shift = Shift(new, 0.0)
    shifts[endpoint] = shift

    def show(status: str, message: str, step_started: float) -> None:
        summary = pending_summary(new, shift.fraction, status, message, started, step_started)

        def change(doc: dict[str, Any]) -> None:
            doc["PendingDeploymentSummary"] = summary
            doc["LastModifiedTime"] = time.time()

        try:
            store.update("endpoint", endpoint, change, status_key="EndpointStatus")
        except NotFound:
            raise Aborted() from None

    def roll_back(reason: str) -> None:
        shift.fraction = 0.0  # from here on every new request goes to blue
        shifts.pop(endpoint, None)
        log.info("endpoint %s: rolled back: %s", endpoint, reason)
        raise RolledBack(reason[:1024])

    def watch(seconds: float, step: str) -> None:
        """Bake: watch the alarms for ``seconds``."""
        end = time.monotonic() + seconds
        while True:
            if not still_wanted():
                shifts.pop(endpoint, None)
                raise Aborted()
            for name in plan.alarms:
                state = alarm_state(name)
                if state is not None and state[0] == "ALARM":
                    roll_back(f"Endpoint update to configuration \"{new.config_name}\" was rolled back: "
                              f"CloudWatch alarm \"{name}\" went into ALARM while baking {step} "
                              f"({state[1]})")
            if time.monotonic() >= deadline:
                roll_back(f"Endpoint update to configuration \"{new.config_name}\" was rolled back: it did not "
                          f"finish within MaximumExecutionTimeoutInSeconds ({plan.max_execution_seconds} s)")
            if time.monotonic() >= end:
                return
            time.sleep(min(POLL_SECONDS, max(0.0, end - time.monotonic())))

    for index, fraction in enumerate(plan.steps, 1):
        step = f"step {index} of {len(plan.steps)} ({fraction:.0%} of traffic on the new fleet)"
        show("ActivatingTraffic", f"Shifting traffic: {step}", time.time())
        shift.fraction = fraction
        show("Baking", f"Baking for {plan.wait_seconds} s, watching alarms "
                       f"{', '.join(plan.alarms) or '(none)'}: {step}", time.time())
        watch(plan.wait_seconds, step)
    if plan.termination_wait_seconds:
        show("Deleting", f"All traffic on the new fleet; the old fleet is terminated in "
                         f"{plan.termination_wait_seconds} s", time.time())
        end = time.monotonic() + plan.termination_wait_seconds
        while time.monotonic() < end:
            if not still_wanted():
                raise Aborted()
            time.sleep(POLL_SECONDS)
