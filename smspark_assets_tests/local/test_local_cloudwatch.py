"""The stack's CloudWatch through boto3: the same calls answered as moto answers them (shapes and statistics),
alarms evaluated from the metrics on the stack's tick, and the AWS/SageMaker invocation metrics of an endpoint."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from deployment_helpers import configure_guarded_algorithm, endpoint_config, train_model
from local_service_helpers import FAST
from smspark_assets.local import process
from stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DIMS = [{"Name": "Service", "Value": "scoring"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    root = tmp_path_factory.mktemp("cloudwatch-root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(root))
        configure_guarded_algorithm(root)
        info = process.start(root)
        try:
            yield root, info
        finally:
            process.stop(root)


def _calls(cw: Any) -> dict[str, Any]:
    """The same calls against any CloudWatch; returns the answers to compare."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    cw.put_metric_data(Namespace="Platform", MetricData=[
        {"MetricName": "Rows", "Value": v, "Dimensions": DIMS, "Unit": "Count"} for v in (10.0, 20.0, 60.0)])
    cw.put_metric_data(Namespace="Platform", MetricData=[
        {"MetricName": "Rows", "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 4, "Maximum": 6},
         "Dimensions": DIMS, "Unit": "Count"}])
    window = {"StartTime": now - dt.timedelta(minutes=10), "EndTime": now + dt.timedelta(minutes=10)}
    stats = cw.get_metric_statistics(Namespace="Platform", MetricName="Rows", Dimensions=DIMS, Period=3600,
                                     Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"], **window)
    data = cw.get_metric_data(MetricDataQueries=[{"Id": "rows", "MetricStat": {
        "Metric": {"Namespace": "Platform", "MetricName": "Rows", "Dimensions": DIMS}, "Period": 3600,
        "Stat": "Sum"}}], **window)
    listed = cw.list_metrics(Namespace="Platform")
    cw.put_metric_alarm(AlarmName="rows-high", Namespace="Platform", MetricName="Rows", Dimensions=DIMS,
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=50.0,
                        ComparisonOperator="GreaterThanThreshold")
    alarms = cw.describe_alarms(AlarmNames=["rows-high"])
    return {"stats": stats, "data": data, "listed": listed, "alarms": alarms}


def test_answers_match_moto(stack) -> None:
    root, info = stack
    ours = _calls(stack_client(root, info.url, "cloudwatch"))
    with mock_aws():
        theirs = _calls(boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="a",
                                     aws_secret_access_key="b"))
    ours_point, = ours["stats"]["Datapoints"]
    theirs_point, = theirs["stats"]["Datapoints"]
    for stat in ("SampleCount", "Sum", "Average", "Minimum", "Maximum"):
        assert ours_point[stat] == pytest.approx(theirs_point[stat]), stat
    assert ours["data"]["MetricDataResults"][0]["Values"] == theirs["data"]["MetricDataResults"][0]["Values"]
    assert set(ours["data"]["MetricDataResults"][0]) >= {"Id", "Label", "Timestamps", "Values", "StatusCode"}
    assert ours["listed"]["Metrics"] == theirs["listed"]["Metrics"]
    ours_alarm, = ours["alarms"]["MetricAlarms"]
    theirs_alarm, = theirs["alarms"]["MetricAlarms"]
    assert set(theirs_alarm) - {"Metrics", "StateReasonData"} <= set(ours_alarm)
    for key in ("AlarmName", "Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods", "Threshold",
                "ComparisonOperator", "Dimensions", "ActionsEnabled"):
        assert ours_alarm[key] == theirs_alarm[key], key
    # Where moto is wrong (aws_next_notes.md §3.4): a new alarm starts in INSUFFICIENT_DATA, not OK.
    assert ours_alarm["StateValue"] == "INSUFFICIENT_DATA"


def test_alarm_follows_its_metric(stack) -> None:
    root, info = stack
    cw = stack_client(root, info.url, "cloudwatch")
    dims = [{"Name": "Job", "Value": "alarm-test"}]
    cw.put_metric_alarm(AlarmName="errors", Namespace="Platform", MetricName="Errors", Dimensions=dims,
                        Statistic="Sum", Period=10, EvaluationPeriods=1, Threshold=3.0,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")

    def wait_for(expected: str) -> dict[str, Any]:
        deadline = time.time() + 15
        while time.time() < deadline:
            found = cw.describe_alarms(AlarmNames=["errors"])["MetricAlarms"][0]
            if found["StateValue"] == expected:
                return found
            time.sleep(0.2)
        raise AssertionError(f"alarm never reached {expected}: {found['StateValue']} ({found['StateReason']})")

    wait_for("OK")  # no data, treated as not breaching
    cw.put_metric_data(Namespace="Platform", MetricData=[{"MetricName": "Errors", "Value": 4.0, "Dimensions": dims}])
    found = wait_for("ALARM")
    assert "4.0" in found["StateReason"]
    assert cw.describe_alarms(StateValue="ALARM", AlarmNamePrefix="err")["MetricAlarms"][0]["AlarmName"] == "errors"
    cw.set_alarm_state(AlarmName="errors", StateValue="OK", StateReason="operator override")
    cw.delete_alarms(AlarmNames=["errors"])
    assert cw.describe_alarms(AlarmNames=["errors"])["MetricAlarms"] == []
    with pytest.raises(ClientError) as error:
        cw.set_alarm_state(AlarmName="errors", StateValue="OK", StateReason="gone")
    assert error.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as error:
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "Invocations", "Value": 1.0}])
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_endpoint_publishes_sagemaker_invocation_metrics(stack) -> None:
    root, info = stack
    sm = stack_client(root, info.url, "sagemaker")
    runtime = stack_client(root, info.url, "sagemaker-runtime")
    cw = stack_client(root, info.url, "cloudwatch")
    train_model(sm, "metrics-model", w=1, fail_at=5)
    sm.create_endpoint(EndpointName="metered", EndpointConfigName=endpoint_config(sm, "metered", "metrics-model"))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="metered", WaiterConfig=FAST)
    good, bad = 30, 7
    took = []
    for _ in range(good):
        started = time.perf_counter()
        runtime.invoke_endpoint(EndpointName="metered", ContentType="text/csv", Body=b"1,1\n")["Body"].read()
        took.append((time.perf_counter() - started) * 1e6)
    for _ in range(bad):
        with pytest.raises(ClientError):
            runtime.invoke_endpoint(EndpointName="metered", ContentType="text/csv", Body=b"9,1\n")
    now = dt.datetime.now(dt.timezone.utc)
    dims = [{"Name": "EndpointName", "Value": "metered"}, {"Name": "VariantName", "Value": "AllTraffic"}]

    def total(metric: str, stat: str = "Sum") -> float:
        points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims,
                                          StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1),
                                          Period=360, Statistics=[stat])["Datapoints"]
        return sum(p[stat] for p in points)

    assert total("Invocations") == good + bad
    assert total("Invocation5XXErrors") == bad  # the model answered 500
    assert total("Invocation4XXErrors") == 0
    assert total("InvocationModelErrors") == bad
    latency = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="ModelLatency", Dimensions=dims,
                                       StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1),
                                       Period=360, Statistics=["Maximum", "Minimum"])["Datapoints"]
    assert latency[0]["Unit"] == "Microseconds"
    assert 0 < min(p["Minimum"] for p in latency) <= max(took)  # the model's share of what the client saw
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=[
        {"Name": "EndpointName", "Value": "metered"}])["Metrics"]}
    assert names >= {"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "InvocationModelErrors",
                     "ModelLatency", "OverheadLatency"}
