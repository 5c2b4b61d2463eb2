"""Rollouts through the platform's own path (``deploy_gated_model`` / ``deploy_model``) on the embedded stack:
a canary to a model that fails on some inputs rolls back on the alarm the platform put in place, while a
steady invoke loop runs, and the asset fails with SageMaker's reason; a linear rollout to a good model
completes in its steps."""

import json
import threading
import time
from typing import Any

import dagster as dg
import pytest
from botocore.exceptions import ClientError

from smspark_assets.assets.serving import EndpointConfig, deploy_gated_model
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.sagemaker.alarms import AlarmSettings
from smspark_assets.sagemaker.endpoints import EndpointSettings, RolloutSettings, deploy_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

GOOD = b"1,1\n"  # every model answers it: w * 2
BAD = b"9,1\n"  # the faulty model refuses it (first value >= 5)


class Loop:
    """A steady invoke loop alternating a good and a bad input; records (input, answer or error, time)."""

    def __init__(self, runtime: Any, endpoint: str) -> None:
        self.runtime, self.endpoint = runtime, endpoint
        self.results: list[tuple[bytes, Any, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        body = GOOD
        while not self.stop.is_set():
            try:
                answer = self.runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="text/csv", Body=body)
                value: Any = float(json.loads(answer["Body"].read())["predictions"][0])
            except ClientError as exc:
                value = exc
            self.results.append((body, value, time.time()))
            body = BAD if body is GOOD else GOOD
            time.sleep(0.005)

    def __enter__(self) -> "Loop":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def endpoint_asset(model_name: str, endpoint_name: str) -> dg.AssetsDefinition:
    """An endpoint asset as the platform's are: the gated model handle through ``deploy_gated_model``."""

    @dg.asset(name=f"{endpoint_name.replace('-', '_')}_endpoint")
    def _endpoint(context: dg.AssetExecutionContext, config: EndpointConfig,
                  sagemaker: SageMakerResource) -> dg.Output:
        model = {"model_name": model_name, "quality_gate": {"passed": True}}
        return deploy_gated_model(context, sagemaker, model, endpoint_name, config)

    return _endpoint


def materialize(stack: Any, model_name: str, endpoint_name: str, **config: Any) -> dg.ExecuteInProcessResult:
    asset = endpoint_asset(model_name, endpoint_name)
    return dg.materialize([asset], resources={"sagemaker": stack.resource()}, raise_on_error=False,
                          run_config={"ops": {asset.key.path[-1]: {"config": config}}})


def test_canary_to_a_faulty_model_rolls_back_and_the_asset_fails_with_the_reason(guarded_stack) -> None:
    stack = guarded_stack
    rollout = {"canary_percent": 25, "rollout_wait_seconds": 20, "alarm_error_rate": 0.05,
               "alarm_latency_ms": 5000.0, "alarm_period_seconds": 10}
    first = materialize(stack, "w1", "canary-asset", **rollout)
    assert first.success
    created = first.asset_materializations_for_node("canary_asset_endpoint")[0].metadata
    assert created["action"].value == "created" and created["rollout"].value == "CANARY"
    old_config = created["endpoint_config"].value
    assert stack.sm.describe_endpoint(EndpointName="canary-asset").get("LastDeploymentConfig") is None  # first create

    with Loop(stack.runtime, "canary-asset") as loop:
        time.sleep(1.0)
        result = materialize(stack, "faulty", "canary-asset", **rollout)
        rolled_back_at = time.time()
        time.sleep(1.5)  # the loop goes on, on the old fleet
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    data = failure.event_specific_data.user_failure_data
    assert "rolled back" in data.description and "canary-asset-5xx-rate" in data.description
    assert data.metadata["rolled_back"].value is True
    assert data.metadata["still_serving_config"].value == old_config
    assert "canary-asset-5xx-rate" in data.metadata["rollback_reason"].value

    described = stack.sm.describe_endpoint(EndpointName="canary-asset")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", old_config)
    deployment = described["LastDeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"] == \
        {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert [a["AlarmName"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]] == \
        ["canary-asset-5xx-rate", "canary-asset-model-latency"]
    alarms = {a["AlarmName"]: a for a in stack.cloudwatch.describe_alarms(
        AlarmNamePrefix="canary-asset-")["MetricAlarms"]}
    assert alarms["canary-asset-5xx-rate"]["Threshold"] == 0.05
    assert alarms["canary-asset-model-latency"]["ExtendedStatistic"] == "p99"

    failures = [(body, value) for body, value, _ in loop.results if isinstance(value, Exception)]
    assert failures, "the faulty canary never got traffic"
    # Zero failed requests outside the canary's share: only bad inputs failed (the model's own 500s).
    assert all(body == BAD for body, _ in failures)
    assert all(value.response["Error"]["Code"] == "ModelError" for _, value in failures)
    bad_before = [v for body, v, t in loop.results if body == BAD and t <= rolled_back_at]
    assert len(failures) <= 0.5 * len(bad_before) + 1  # a 25 % canary, not the whole fleet
    after = [v for _, v, t in loop.results if t > rolled_back_at + 0.5]
    assert after and not any(isinstance(v, Exception) for v in after)
    assert {v for body, v, _ in loop.results if body == GOOD} <= {2.0, 6.0}  # old (w=1) or canary (w=3)


def test_linear_rollout_to_a_good_model_completes_in_its_steps(guarded_stack) -> None:
    stack = guarded_stack
    settings = EndpointSettings(instance_type="ml.m5.large")
    rollout = RolloutSettings(mode="LINEAR", linear_step_percent=34, wait_seconds=2,
                              alarms=AlarmSettings(error_rate=0.05, latency_ms=5000.0, period_seconds=10))
    quiet = lambda _: None  # noqa: E731
    first = deploy_model(stack.sm, "linear-asset", "w1", settings, 0.2, quiet, rollout, stack.cloudwatch)
    assert first.action == "created" and first.deployment is None
    outcome: dict[str, Any] = {}

    def update() -> None:
        try:
            outcome["result"] = deploy_model(stack.sm, "linear-asset", "w3", settings, 0.2, quiet, rollout,
                                             stack.cloudwatch)
        except Exception as exc:  # reported by the assertions below
            outcome["error"] = exc

    weights: list[float] = []
    with Loop(stack.runtime, "linear-asset") as loop:
        worker = threading.Thread(target=update)
        started = time.time()
        worker.start()
        while worker.is_alive() and time.time() - started < 90:
            described = stack.sm.describe_endpoint(EndpointName="linear-asset")
            for variant in (described.get("PendingDeploymentSummary") or {}).get("ProductionVariants", []):
                if variant["VariantStatus"][0]["Status"] == "Baking" and (
                        not weights or weights[-1] != variant["CurrentWeight"]):
                    weights.append(variant["CurrentWeight"])
            time.sleep(0.1)
        worker.join(30)
        elapsed = time.time() - started
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.action == "updated"
    assert result.alarms == ("linear-asset-5xx-rate", "linear-asset-model-latency")
    assert weights == [0.34, 0.68, 1.0]  # ceil(100 / 34) = 3 steps
    assert elapsed >= 3 * 2  # three bakes of 2 s
    described = stack.sm.describe_endpoint(EndpointName="linear-asset")
    assert described["EndpointConfigName"] == result.config_name and "FailureReason" not in described
    assert not any(isinstance(v, Exception) for _, v, _ in loop.results)
    assert loop.results[-1][1] in (6.0, 30.0)  # the new model (w=3) answers every input now
