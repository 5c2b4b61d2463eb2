"""Unit tests of the alarm evaluator and PutMetricAlarm validation (no stack): the transitions CloudWatch
documents for Period, EvaluationPeriods, DatapointsToAlarm, ComparisonOperator, Statistic and
TreatMissingData."""

from __future__ import annotations

import pytest

from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.cloudwatch_alarms import check_alarm, evaluate
from smspark_assets.local.metric_series import Stat

pytestmark = pytest.mark.timeout(30)

NOW = 1_800_000_005.0  # 5 s into a 10-second period (1_800_000_000 is a multiple of 10 and 60)


def alarm(**over: object) -> dict:
    config = {"AlarmName": "a", "Namespace": "App", "MetricName": "m", "Statistic": "Sum", "Period": 10,
              "EvaluationPeriods": 3, "Threshold": 5.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
    config.update(over)
    return check_alarm(config)


def points(*sums: float | None, period: int = 10) -> dict[int, Stat]:
    """Sums of the newest period first; ``None`` = no data in that period."""
    current = int(NOW) - int(NOW) % period
    out = {}
    for i, value in enumerate(sums):
        if value is not None:
            out[current - i * period] = Stat(count=1, total=value, minimum=value, maximum=value, values=[value])
    return out


def state(config: dict, data: dict[int, Stat]) -> str | None:
    outcome = evaluate(config, data, NOW)
    return None if outcome is None else outcome[0]


def test_all_breaching_is_alarm_and_none_breaching_is_ok() -> None:
    assert state(alarm(), points(6, 7, 5)) == "ALARM"
    assert state(alarm(), points(1, 2, 3)) == "OK"
    assert state(alarm(), points(6, 7, 1)) == "OK"  # 2 of 3 breach; DatapointsToAlarm defaults to 3


def test_m_out_of_n() -> None:
    assert state(alarm(DatapointsToAlarm=2), points(6, 1, 7)) == "ALARM"
    assert state(alarm(DatapointsToAlarm=2), points(6, 1, 1)) == "OK"


@pytest.mark.parametrize("operator,value,expected", [
    ("GreaterThanOrEqualToThreshold", 5.0, "ALARM"), ("GreaterThanThreshold", 5.0, "OK"),
    ("LessThanThreshold", 4.9, "ALARM"), ("LessThanOrEqualToThreshold", 5.0, "ALARM"),
    ("LessThanThreshold", 5.0, "OK"),
])
def test_comparison_operators(operator: str, value: float, expected: str) -> None:
    assert state(alarm(ComparisonOperator=operator, EvaluationPeriods=1), points(value)) == expected


def test_statistics_are_computed_per_period() -> None:
    current = int(NOW) - int(NOW) % 10
    data = {current: Stat(count=4, total=8.0, minimum=0.0, maximum=6.0, values=[0.0, 1.0, 1.0, 6.0])}
    one = {"EvaluationPeriods": 1, "Threshold": 2.0}
    assert state(alarm(Statistic="Average", **one), data) == "ALARM"  # 8 / 4 = 2
    assert state(alarm(Statistic="SampleCount", Threshold=5.0, EvaluationPeriods=1), data) == "OK"
    assert state(alarm(Statistic="Maximum", Threshold=6.0, EvaluationPeriods=1), data) == "ALARM"
    assert state(alarm(Statistic="Minimum", Threshold=0.5, EvaluationPeriods=1), data) == "OK"
    assert state(alarm(Statistic=None, ExtendedStatistic="p50", **one), data) == "OK"  # nearest rank: 1.0
    assert state(alarm(Statistic=None, ExtendedStatistic="p99", **one), data) == "ALARM"  # 6.0


@pytest.mark.parametrize("treat,expected", [
    ("missing", "INSUFFICIENT_DATA"), ("notBreaching", "OK"), ("breaching", "ALARM"), ("ignore", None),
])
def test_all_missing_per_treat_missing_data(treat: str, expected: str | None) -> None:
    assert state(alarm(TreatMissingData=treat), points()) == expected


def test_some_missing() -> None:
    # 1 present and breaching, 2 missing; 3 of 3 needed
    assert state(alarm(TreatMissingData="breaching"), points(6, None, None)) == "ALARM"
    assert state(alarm(TreatMissingData="notBreaching"), points(6, None, None)) == "OK"
    assert state(alarm(TreatMissingData="missing", DatapointsToAlarm=1), points(None, 6, None)) == "ALARM"


def test_only_the_evaluation_range_counts() -> None:
    old = points(None, None, None, 50, 50)  # breaching data older than 3 periods
    assert state(alarm(TreatMissingData="missing"), old) == "INSUFFICIENT_DATA"


def test_a_breach_at_the_end_of_a_period_alarms_once_the_period_is_complete() -> None:
    """A datapoint in the last moments of a period, first evaluated in the next (empty) period, still
    raises ALARM, as CloudWatch evaluates every completed period; one clean period later it is OK."""
    one = alarm(EvaluationPeriods=1, TreatMissingData="notBreaching")
    late = points(None, 7)  # nothing yet in the current period, 7 in the one that just ended
    outcome = evaluate(one, late, NOW)
    assert outcome is not None and outcome[0] == "ALARM" and "7.0" in outcome[1]
    assert state(one, points(None, None, 7)) == "OK"  # two periods ago: out of both ranges
    assert state(one, points(1, 7)) == "ALARM"  # the complete period breached; the filling one cannot undo it
    assert state(alarm(TreatMissingData="missing"), points(None, 6, 6, 6)) == "ALARM"  # 3 complete periods


def test_reason_names_the_datapoints_and_threshold() -> None:
    outcome = evaluate(alarm(EvaluationPeriods=1), points(7), NOW)
    assert outcome is not None
    assert "7.0" in outcome[1] and "5.0" in outcome[1] and "greater than or equal to" in outcome[1]


@pytest.mark.parametrize("bad", [
    {"Period": 7}, {"Period": 90}, {"EvaluationPeriods": 0}, {"DatapointsToAlarm": 4},
    {"ComparisonOperator": "Above"}, {"Statistic": "Median"}, {"TreatMissingData": "zero"},
    {"Statistic": None}, {"ExtendedStatistic": "p50"}, {"Period": 60, "EvaluationPeriods": 1441},
    {"Threshold": None}, {"Metrics": [{"Id": "m1"}]},
])
def test_invalid_alarms_are_refused(bad: dict) -> None:
    with pytest.raises(ApiError) as error:
        alarm(**bad)
    assert error.value.status == 400
    assert error.value.code in ("InvalidParameterValue", "MissingParameter", "InvalidParameterCombination")
