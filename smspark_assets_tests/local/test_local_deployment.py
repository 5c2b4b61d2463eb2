"""Blue/green updates with traffic shifting: a canary to a faulty model rolls back on its CloudWatch alarm while
a steady invoke loop runs; a linear rollout to a good model completes in its steps; the update requests are
checked as botocore's model constrains them."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from deployment_helpers import configure_guarded_algorithm, endpoint_config, train_model
from local_service_helpers import FAST
from smspark_assets.local import process
from stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

GOOD = b"1,1\n"  # every model answers it: w * 2
BAD = b"9,1\n"  # the faulty model refuses it (first value >= 5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any]]:
    root = tmp_path_factory.mktemp("deploy-root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(root))
        configure_guarded_algorithm(root)
        info = process.start(root)
        try:
            sm = stack_client(root, info.url, "sagemaker")
            train_model(sm, "w1", w=1)
            train_model(sm, "w3", w=3)
            train_model(sm, "faulty", w=3, fail_at=5)
            yield root, info, sm
        finally:
            process.stop(root)


def _alarm(cw: Any, name: str, endpoint: str) -> None:
    cw.put_metric_alarm(
        AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Period=10, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching")


def _policy(kind: str, wait: int, alarms: list[str], **routing: Any) -> dict[str, Any]:
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": wait,
                                                                      **routing},
                                      "TerminationWaitInSeconds": 0, "MaximumExecutionTimeoutInSeconds": 600},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]}}


class Loop:
    """A steady invoke loop: alternates a good and a bad input, records (input, answer or error, time)."""

    def __init__(self, root: Any, url: str, endpoint: str) -> None:
        self.runtime = stack_client(root, url, "sagemaker-runtime")
        self.endpoint = endpoint
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


def test_canary_to_a_faulty_model_rolls_back_on_its_alarm_under_load(stack) -> None:
    root, info, sm = stack
    cw = stack_client(root, info.url, "cloudwatch")
    sm.create_endpoint(EndpointName="canary", EndpointConfigName=endpoint_config(sm, "canary-1", "w1"))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="canary", WaiterConfig=FAST)
    _alarm(cw, "canary-5xx", "canary")
    policy = _policy("CANARY", 30, ["canary-5xx"], CanarySize={"Type": "CAPACITY_PERCENT", "Value": 25})
    with Loop(root, info.url, "canary") as loop:
        time.sleep(1.0)
        sm.update_endpoint(EndpointName="canary", EndpointConfigName=endpoint_config(sm, "canary-2", "faulty"),
                           DeploymentConfig=policy)
        seen_baking = seen_alarm = False
        deadline = time.time() + 60
        while time.time() < deadline:
            # The alarm is watched while the canary bakes: it recovers at the next period once the old fleet
            # serves alone, so its state after the rollback says nothing about what triggered it.
            alarm_state = cw.describe_alarms(AlarmNames=["canary-5xx"])["MetricAlarms"][0]["StateValue"]
            seen_alarm |= alarm_state == "ALARM"
            described = sm.describe_endpoint(EndpointName="canary")
            pending = described.get("PendingDeploymentSummary")
            if pending and pending.get("ProductionVariants"):
                status = pending["ProductionVariants"][0]["VariantStatus"][0]
                seen_baking |= status["Status"] == "Baking"
                assert pending["EndpointConfigName"] == "canary-2"
            if described["EndpointStatus"] == "InService":
                break
            time.sleep(0.1)
        rolled_back_at = time.time()
        time.sleep(1.5)  # the loop keeps running on the old fleet
    described = sm.describe_endpoint(EndpointName="canary")
    assert seen_baking
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "canary-1"  # the OLD config: how callers detect a rollback
    assert "canary-5xx" in described["FailureReason"] and "rolled back" in described["FailureReason"]
    assert "PendingDeploymentSummary" not in described
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert seen_alarm, "the rollback happened without its alarm ever being in ALARM"

    failures = [(body, value) for body, value, _ in loop.results if isinstance(value, Exception)]
    assert failures, "the faulty canary never got traffic"
    # Zero failed requests outside the canary's share: only bad inputs failed, and only while the canary ran.
    assert all(body == BAD for body, _ in failures)
    assert all(value.response["Error"]["Code"] == "ModelError" for _, value in failures)
    bad_during = [v for body, v, t in loop.results if body == BAD and t <= rolled_back_at]
    assert len(failures) <= 0.5 * len(bad_during) + 1  # a 25 % canary, not the whole fleet
    after = [v for _, v, t in loop.results if t > rolled_back_at + 0.2]
    assert after and not any(isinstance(v, Exception) for v in after)
    assert {v for body, v, _ in loop.results if body == GOOD} <= {2.0, 6.0}  # old (w=1) or canary (w=3)


def test_linear_rollout_to_a_good_model_completes_in_its_steps(stack) -> None:
    root, info, sm = stack
    cw = stack_client(root, info.url, "cloudwatch")
    sm.create_endpoint(EndpointName="linear", EndpointConfigName=endpoint_config(sm, "linear-1", "w1"))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="linear", WaiterConfig=FAST)
    _alarm(cw, "linear-5xx", "linear")
    policy = _policy("LINEAR", 2, ["linear-5xx"], LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 34})
    weights: list[float] = []
    with Loop(root, info.url, "linear") as loop:
        sm.update_endpoint(EndpointName="linear", EndpointConfigName=endpoint_config(sm, "linear-2", "w3"),
                           DeploymentConfig=policy)
        started = time.time()
        while time.time() - started < 60:
            described = sm.describe_endpoint(EndpointName="linear")
            for variant in (described.get("PendingDeploymentSummary") or {}).get("ProductionVariants", []):
                if variant["VariantStatus"][0]["Status"] == "Baking" and (
                        not weights or weights[-1] != variant["CurrentWeight"]):
                    weights.append(variant["CurrentWeight"])
            if described["EndpointStatus"] == "InService":
                break
            time.sleep(0.1)
        elapsed = time.time() - started
        time.sleep(0.5)
    described = sm.describe_endpoint(EndpointName="linear")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "linear-2"
    assert "FailureReason" not in described
    assert weights == [0.34, 0.68, 1.0]  # ceil(100 / 34) = 3 steps
    assert elapsed >= 3 * 2  # three bakes of 2 s
    assert not any(isinstance(v, Exception) for _, v, _ in loop.results)
    assert loop.results[-1][1] in (6.0, 30.0)  # the new model (w=3) answers every input now


def test_update_requests_validate_against_botocore_models(stack) -> None:
    root, info, sm = stack
    model = sm.meta.service_model.operation_model("UpdateEndpoint").input_shape
    good = {"EndpointName": "linear", "EndpointConfigName": "linear-1",
            "DeploymentConfig": _policy("CANARY", 5, ["a"], CanarySize={"Type": "INSTANCE_COUNT", "Value": 1})}
    validate_parameters(good, model)  # what the platform sends passes botocore's own validation
    raw = stack_client(root, info.url, "sagemaker", parameter_validation=False)
    cases = {
        "wait above 3600": _policy("LINEAR", 4000, ["a"], LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 20}),
        "canary over half": _policy("CANARY", 5, ["a"], CanarySize={"Type": "CAPACITY_PERCENT", "Value": 60}),
        "linear step below 10%": _policy("LINEAR", 5, ["a"], LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 5}),
        "canary without size": _policy("CANARY", 5, ["a"]),
        "bad type": _policy("BLUE", 5, ["a"]),
        "timeout below 600": {"BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "MaximumExecutionTimeoutInSeconds": 100}},
        "timeout below the waits": {"BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600},
            "TerminationWaitInSeconds": 100, "MaximumExecutionTimeoutInSeconds": 650}},
        "eleven alarms": {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"a{i}"} for i in range(11)]}},
    }
    for what, config in cases.items():
        with pytest.raises(ClientError) as info_:
            raw.update_endpoint(EndpointName="linear", EndpointConfigName="linear-1", DeploymentConfig=config)
        assert info_.value.response["Error"]["Code"] == "ValidationException", what
        assert info_.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, what
    # nothing was started by a refused request
    assert sm.describe_endpoint(EndpointName="linear")["EndpointStatus"] == "InService"
