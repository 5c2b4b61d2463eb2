"""The CloudWatch alarms that guard an endpoint's blue/green updates (SageMaker's deployment guardrails).

Two alarms per endpoint variant, on the metrics SageMaker publishes in ``AWS/SageMaker`` with dimensions
``EndpointName`` + ``VariantName``:

* **error rate**: ``Invocation5XXErrors`` with statistic ``Average``. SageMaker records 1 for a request the
  model answered 5xx and 0 otherwise, so the average over a period *is* the error rate; no metric math is
  needed (which keeps one code path for AWS and the embedded stack, which serves no metric math);
* **latency**: ``ModelLatency`` (microseconds) at a percentile (``p99`` by default) or ``Average``.

Missing data is ``notBreaching``: an endpoint nobody calls is healthy, not in alarm. The alarms are written
with PutMetricAlarm before every update; PutMetricAlarm replaces an alarm's configuration and keeps its
state, so calling it again with the same settings is idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

NAMESPACE = "AWS/SageMaker"
# CloudWatch's periods: 10, 20 or 30 s (high resolution) or a multiple of 60 s.
HIGH_RESOLUTION_PERIODS = (10, 20, 30)
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{1,2})?|100)$")
ALARM_NAME_MAX = 255


def check_period(period: int) -> int:
    """Refuse a period CloudWatch refuses, naming the allowed values."""
    if not isinstance(period, int) or period < 10 or (period not in HIGH_RESOLUTION_PERIODS and period % 60):
        raise ValueError(f"alarm period must be 10, 20, 30 or a multiple of 60 seconds, got {period!r}")
    return period


@dataclass(frozen=True)
class AlarmSettings:
    """Thresholds of the two guard alarms; ``None`` leaves that alarm out."""

    error_rate: float | None = 0.05  # share of requests answered 5xx in one period
    latency_ms: float | None = 1000.0  # ModelLatency at ``latency_statistic``, in milliseconds
    latency_statistic: str = "p99"  # a percentile (p50, p99, p99.9) or Average
    period_seconds: int = 60
    evaluation_periods: int = 1

    def validate(self) -> None:
        if self.error_rate is not None and not 0.0 < self.error_rate <= 1.0:
            raise ValueError(f"error_rate alarm threshold must be a share in (0, 1], got {self.error_rate}")
        if self.latency_ms is not None and not self.latency_ms > 0:
            raise ValueError(f"latency_ms alarm threshold must be positive, got {self.latency_ms}")
        if self.latency_statistic != "Average" and not _PERCENTILE.match(self.latency_statistic):
            raise ValueError(f"latency_statistic must be a percentile such as p50, p99, p99.9, or Average; "
                             f"got {self.latency_statistic!r}")
        check_period(self.period_seconds)
        if not isinstance(self.evaluation_periods, int) or self.evaluation_periods < 1:
            raise ValueError(f"evaluation_periods must be at least 1, got {self.evaluation_periods}")
        if self.period_seconds * self.evaluation_periods > 86400:
            raise ValueError("period_seconds * evaluation_periods must be at most one day (86400 s), got "
                             f"{self.period_seconds * self.evaluation_periods}")


def alarm_name(endpoint_name: str, what: str) -> str:
    """``<endpoint>-<what>``: one name per endpoint and guard, so re-deploying overwrites, never adds."""
    return f"{endpoint_name}-{what}"[:ALARM_NAME_MAX]


def alarm_requests(endpoint_name: str, variant_name: str, settings: AlarmSettings) -> list[dict[str, Any]]:
    """PutMetricAlarm's arguments for the endpoint's guard alarms (checked before anything is written)."""
    settings.validate()
    dims = [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant_name}]
    common: dict[str, Any] = {
        "Namespace": NAMESPACE, "Dimensions": dims, "Period": settings.period_seconds,
        "EvaluationPeriods": settings.evaluation_periods, "DatapointsToAlarm": settings.evaluation_periods,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
        "ActionsEnabled": False,  # SageMaker reads the state itself; no SNS action is needed
    }
    requests: list[dict[str, Any]] = []
    if settings.error_rate is not None:
        requests.append({
            "AlarmName": alarm_name(endpoint_name, "5xx-rate"), "MetricName": "Invocation5XXErrors",
            "Statistic": "Average", "Threshold": float(settings.error_rate),
            "AlarmDescription": f"Rolls back updates of endpoint {endpoint_name}: 5xx error rate >= "
                                f"{settings.error_rate:.2%} of requests in {settings.period_seconds} s.",
            **common})
    if settings.latency_ms is not None:
        statistic = ({"Statistic": "Average"} if settings.latency_statistic == "Average"
                     else {"ExtendedStatistic": settings.latency_statistic})
        requests.append({
            "AlarmName": alarm_name(endpoint_name, "model-latency"), "MetricName": "ModelLatency",
            **statistic, "Threshold": float(settings.latency_ms) * 1000.0,  # SageMaker publishes microseconds
            "AlarmDescription": f"Rolls back updates of endpoint {endpoint_name}: ModelLatency "
                                f"{settings.latency_statistic} >= {settings.latency_ms:g} ms.",
            **common})
    return requests


def put_alarms(cloudwatch: Any, requests: list[dict[str, Any]], log: Callable[[str], None] = print) -> list[str]:
    """Create or update the alarms (PutMetricAlarm is an upsert that keeps the state); their names."""
    for request in requests:
        cloudwatch.put_metric_alarm(**request)
    names = [r["AlarmName"] for r in requests]
    if names:
        log(f"guard alarms in place: {', '.join(names)}")
    return names


def alarms_in_alarm(cloudwatch: Any, names: list[str]) -> dict[str, str]:
    """The alarms among ``names`` that are in ALARM now, with their reason.

    An update whose guard alarm is already in ALARM rolls back at its first bake; callers say so instead.
    """
    if not names:
        return {}
    found = cloudwatch.describe_alarms(AlarmNames=names).get("MetricAlarms", [])
    return {a["AlarmName"]: a.get("StateReason", "") for a in found if a.get("StateValue") == "ALARM"}
