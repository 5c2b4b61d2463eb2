"""CloudWatch metric alarms: validation of PutMetricAlarm and the evaluation of an alarm's state.

The evaluator is a pure function of the alarm, the metric's per-period statistics and the time, so it is
unit-tested without a stack. The rules (AWS guide "Using Amazon CloudWatch alarms", botocore's model):

* the evaluation range is the ``EvaluationPeriods`` most recent periods, the current (still filling)
  period included, periods aligned to multiples of ``Period`` as CloudWatch aligns them; the range of
  the last complete periods can still raise ALARM (a breach at the very end of a period is evaluated
  once the period is complete, as CloudWatch does), so an alarm stays in ALARM one period after it;
* a datapoint breaches when ``<value> <ComparisonOperator> <Threshold>``; the alarm is ``ALARM`` when at
  least ``DatapointsToAlarm`` (default: ``EvaluationPeriods``) datapoints of the range breach;
* missing datapoints per ``TreatMissingData``: ``breaching`` counts them as breaching, ``notBreaching``
  as good, ``ignore`` keeps the current state when all are missing, ``missing`` (the default) goes to
  ``INSUFFICIENT_DATA`` when all are missing; otherwise the present datapoints decide;
* a new alarm starts in ``INSUFFICIENT_DATA``; updating an alarm keeps its state.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.metric_series import STATISTICS, Stat, percentile_of

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
TREAT_MISSING = ("breaching", "notBreaching", "ignore", "missing")
SECONDS_PER_DAY = 86400


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterValue", message)


def check_period(period: Any, member: str = "Period") -> int:
    """CloudWatch's periods: 10, 20, 30 (high resolution) or a multiple of 60."""
    if not isinstance(period, int) or isinstance(period, bool) or period < 1 or (
            period not in (1, 5, 10, 20, 30) and period % 60):
        raise invalid(f"The parameter {member} must be 1, 5, 10, 20, 30 or a multiple of 60; got {period!r}.")
    return period


def check_alarm(p: dict[str, Any]) -> dict[str, Any]:
    """A PutMetricAlarm request checked as CloudWatch checks a static-threshold alarm; the stored config."""
    name = p.get("AlarmName")
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or not name.strip():
        raise ApiError("MissingParameter", "The parameter AlarmName is required (1-255 characters).")
    if p.get("Metrics"):
        raise invalid("Metric math alarms (Metrics) are not supported by the local stack; give MetricName, "
                      "Namespace, Statistic or ExtendedStatistic, Period and Dimensions.")
    for member in ("MetricName", "Namespace", "Period", "EvaluationPeriods", "Threshold", "ComparisonOperator"):
        if p.get(member) is None:
            raise ApiError("MissingParameter", f"The parameter {member} is required for a metric alarm.")
    statistic, extended = p.get("Statistic"), p.get("ExtendedStatistic")
    if (statistic is None) == (extended is None):
        raise ApiError("InvalidParameterCombination",
                       "Exactly one of Statistic and ExtendedStatistic must be given.")
    if statistic is not None and statistic not in STATISTICS:
        raise invalid(f"Statistic {statistic!r} is not one of {', '.join(STATISTICS)}.")
    if extended is not None and percentile_of(str(extended)) is None:
        raise invalid(f"ExtendedStatistic {extended!r} is not a percentile such as p99 or p99.9.")
    period = check_period(p["Period"])
    periods = p["EvaluationPeriods"]
    if not isinstance(periods, int) or periods < 1:
        raise invalid("The parameter EvaluationPeriods must be an integer of at least 1.")
    limit = SECONDS_PER_DAY if period < 3600 else 7 * SECONDS_PER_DAY
    if period * periods > limit:
        raise invalid(f"Period * EvaluationPeriods must be at most {limit} seconds for a period of {period} s.")
    datapoints = p.get("DatapointsToAlarm", periods)
    if not isinstance(datapoints, int) or not 1 <= datapoints <= periods:
        raise invalid("DatapointsToAlarm must be between 1 and EvaluationPeriods.")
    if p["ComparisonOperator"] not in OPERATORS:
        raise invalid(f"ComparisonOperator {p['ComparisonOperator']!r} is not one of "
                      f"{', '.join(OPERATORS)} (anomaly detection bands are not supported locally).")
    threshold = p["Threshold"]
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not math.isfinite(threshold):
        raise invalid("The parameter Threshold must be a finite number.")
    treat = p.get("TreatMissingData", "missing")
    if treat not in TREAT_MISSING:
        raise invalid(f"TreatMissingData {treat!r} is not one of {', '.join(TREAT_MISSING)}.")
    dims = p.get("Dimensions") or []
    if not isinstance(dims, list) or len(dims) > 30 or not all(
            isinstance(d, dict) and d.get("Name") and d.get("Value") is not None for d in dims):
        raise invalid("Dimensions must be a list of at most 30 {Name, Value} objects.")
    config = {k: v for k, v in p.items() if k != "Tags"}
    config.update(DatapointsToAlarm=datapoints, TreatMissingData=treat, Threshold=float(threshold),
                  ActionsEnabled=bool(p.get("ActionsEnabled", True)))
    for member in ("OKActions", "AlarmActions", "InsufficientDataActions"):
        config.setdefault(member, [])
    config.setdefault("Dimensions", [])
    return config


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def evaluate(alarm: dict[str, Any], periods: dict[int, Stat], now: float) -> tuple[str, str, str] | None:
    """The state the alarm should be in, with ``StateReason`` and ``StateReasonData``; ``None`` = keep.

    ``periods`` maps period starts (aligned to ``alarm["Period"]``) to their statistic sets. The range
    ending with the current period decides, except that the range of the last complete periods still
    raises ALARM: CloudWatch evaluates every period once it is complete, so a breach in the last moments
    of a period is not lost when the first evaluation after it falls in the next, empty period.
    """
    current = int(now) - int(now) % int(alarm["Period"])
    outcome = _evaluate_range(alarm, periods, now, current)
    if outcome is not None and outcome[0] == "ALARM":
        return outcome
    complete = _evaluate_range(alarm, periods, now, current - int(alarm["Period"]))
    return complete if complete is not None and complete[0] == "ALARM" else outcome


def _evaluate_range(alarm: dict[str, Any], periods: dict[int, Stat], now: float, newest: int
                    ) -> tuple[str, str, str] | None:
    """:func:`evaluate` over the ``EvaluationPeriods`` periods ending with the one starting at ``newest``."""
    period = int(alarm["Period"])
    count = int(alarm["EvaluationPeriods"])
    needed = int(alarm.get("DatapointsToAlarm") or count)
    statistic = alarm.get("Statistic") or alarm["ExtendedStatistic"]
    threshold = float(alarm["Threshold"])
    compare, words = OPERATORS[alarm["ComparisonOperator"]]
    treat = alarm.get("TreatMissingData") or "missing"
    starts = [newest - i * period for i in range(count)]  # newest first, as CloudWatch lists them
    values: list[float | None] = []
    for start in starts:
        stat = periods.get(start)
        values.append(stat.statistic(statistic) if stat is not None else None)
    present = [(s, v) for s, v in zip(starts, values) if v is not None]
    breaching = [(s, v) for s, v in present if compare(v, threshold)]
    missing = count - len(present)
    data = json.dumps({
        "version": "1.0", "queryDate": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(),
        "startDate": dt.datetime.fromtimestamp(starts[-1], dt.timezone.utc).isoformat(),
        "statistic": statistic, "period": period, "recentDatapoints": [v for _, v in present],
        "threshold": threshold, "evaluatedDatapoints": [
            {"timestamp": dt.datetime.fromtimestamp(s, dt.timezone.utc).isoformat(), "value": v}
            for s, v in present],
    })
    if not present:
        if treat == "missing":
            return "INSUFFICIENT_DATA", (
                f"Insufficient Data: {count} datapoint{'s were' if count > 1 else ' was'} unknown."), data
        if treat == "ignore":
            return None
        if treat == "notBreaching":
            return "OK", f"Threshold Crossed: no datapoints were received for {count} period(s) and " \
                         f"{count} missing datapoint(s) were treated as [NonBreaching].", data
        return "ALARM", f"Threshold Crossed: no datapoints were received for {count} period(s) and " \
                        f"{count} missing datapoint(s) were treated as [Breaching].", data
    n_breaching = len(breaching) + (missing if treat == "breaching" else 0)
    shown = ", ".join(f"{float(v)} ({_stamp(s)})" for s, v in (breaching or present)[:5])
    if n_breaching >= needed:
        return "ALARM", (f"Threshold Crossed: {len(breaching)} out of the last {count} datapoints "
                         f"[{shown}] {'were' if len(breaching) != 1 else 'was'} {words} the threshold "
                         f"({threshold}) (minimum {needed} datapoint{'s' if needed > 1 else ''} for OK -> "
                         "ALARM transition)."), data
    return "OK", (f"Threshold Crossed: {len(present) - len(breaching)} out of the last {count} datapoints "
                  f"[{shown}] {'was' if len(present) - len(breaching) == 1 else 'were'} not {words} the "
                  f"threshold ({threshold}) (minimum 1 datapoint for ALARM -> OK transition)."), data
