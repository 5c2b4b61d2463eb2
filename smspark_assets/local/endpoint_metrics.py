"""The invocation metrics SageMaker publishes for endpoints (namespace ``AWS/SageMaker``), counted in memory.

Every InvokeEndpoint adds to one small array per ``(endpoint, variant, second)`` under a lock: no disk
write, no allocation beyond a list append for the latency sample. CloudWatch queries read these arrays
through the :class:`~smspark_assets.local.metric_series.MetricSource` protocol, with dimensions
``EndpointName`` + ``VariantName`` as SageMaker publishes them. Per request (AWS guide "SageMaker AI
metrics in CloudWatch"):

* ``Invocations`` 1; ``Invocation4XXErrors`` / ``Invocation5XXErrors`` 1 if the model answered 4xx / 5xx,
  else 0; ``InvocationModelErrors`` 1 if it did not answer 2xx (an unreachable model server included);
* ``ModelLatency`` the model server's round trip, ``OverheadLatency`` the rest of the time the stack spent,
  both in microseconds;
* ``ModelSetupTime`` (serverless variants) the cold start, in microseconds, once per cold start.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Iterable

from smspark_assets.local.metric_series import MAX_VALUES_PER_SECOND, RETENTION_SECONDS, MetricKey, Stat

NAMESPACE = "AWS/SageMaker"
COUNT_METRICS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "InvocationModelErrors")
LATENCY_METRICS = ("ModelLatency", "OverheadLatency")
METRIC_NAMES = COUNT_METRICS + LATENCY_METRICS + ("ModelSetupTime",)

# Slots of one second's array.
_N, _E4, _E5, _EM = 0, 1, 2, 3
_LAT, _LAT_MIN, _LAT_MAX, _OV, _OV_MIN, _OV_MAX = 4, 5, 6, 7, 8, 9
_SETUP_N, _SETUP, _SETUP_MIN, _SETUP_MAX = 10, 11, 12, 13
_SLOTS = 14


def _new_bucket() -> list:
    bucket: list = [0.0] * _SLOTS
    bucket[_LAT_MIN] = bucket[_OV_MIN] = bucket[_SETUP_MIN] = math.inf
    bucket[_LAT_MAX] = bucket[_OV_MAX] = bucket[_SETUP_MAX] = -math.inf
    return [bucket, [], []]  # counters, model latencies, overhead latencies (for percentiles)


class EndpointMetrics:
    """Per-second invocation counters of every endpoint variant; a CloudWatch metric source."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], dict[int, list]] = {}

    def record(self, endpoint: str, variant: str, status: int, model_us: float, overhead_us: float,
               now: float | None = None) -> None:
        """Count one invocation answered with ``status`` by the model (0: no answer at all)."""
        second = int(now if now is not None else time.time())
        with self._lock:
            per_second = self._data.get((endpoint, variant))
            if per_second is None:
                per_second = self._data[(endpoint, variant)] = {}
            entry = per_second.get(second)
            if entry is None:
                entry = per_second[second] = _new_bucket()
                if len(per_second) > RETENTION_SECONDS:  # rare: drop what is past retention
                    for old in [s for s in per_second if s < second - RETENTION_SECONDS]:
                        del per_second[old]
            bucket = entry[0]
            bucket[_N] += 1
            if not 200 <= status < 300:
                bucket[_EM] += 1
                if 400 <= status < 500:
                    bucket[_E4] += 1
                else:
                    bucket[_E5] += 1
            bucket[_LAT] += model_us
            if model_us < bucket[_LAT_MIN]:
                bucket[_LAT_MIN] = model_us
            if model_us > bucket[_LAT_MAX]:
                bucket[_LAT_MAX] = model_us
            bucket[_OV] += overhead_us
            if overhead_us < bucket[_OV_MIN]:
                bucket[_OV_MIN] = overhead_us
            if overhead_us > bucket[_OV_MAX]:
                bucket[_OV_MAX] = overhead_us
            if len(entry[1]) < MAX_VALUES_PER_SECOND:
                entry[1].append(model_us)
                entry[2].append(overhead_us)

    def record_setup(self, endpoint: str, variant: str, setup_us: float, now: float | None = None) -> None:
        """A serverless cold start of ``setup_us`` microseconds."""
        second = int(now if now is not None else time.time())
        with self._lock:
            entry = self._data.setdefault((endpoint, variant), {}).setdefault(second, _new_bucket())
            bucket = entry[0]
            bucket[_SETUP_N] += 1
            bucket[_SETUP] += setup_us
            bucket[_SETUP_MIN] = min(bucket[_SETUP_MIN], setup_us)
            bucket[_SETUP_MAX] = max(bucket[_SETUP_MAX], setup_us)

    # -- MetricSource -------------------------------------------------------------------------------------

    def metric_keys(self) -> list[MetricKey]:
        with self._lock:
            pairs = [(pair, any(e[0][_SETUP_N] for e in seconds.values()))
                     for pair, seconds in self._data.items()]
        keys: list[MetricKey] = []
        for (endpoint, variant), has_setup in pairs:
            dims = (("EndpointName", endpoint), ("VariantName", variant))
            names = METRIC_NAMES if has_setup else COUNT_METRICS + LATENCY_METRICS
            keys.extend((NAMESPACE, name, dims) for name in names)
        return keys

    def seconds(self, key: MetricKey, start: int, end: int) -> Iterable[tuple[int, Stat]]:
        namespace, name, dims = key
        if namespace != NAMESPACE or name not in METRIC_NAMES:
            return []
        given = dict(dims)
        if set(given) != {"EndpointName", "VariantName"}:
            return []  # SageMaker publishes these per endpoint and variant only
        with self._lock:
            per_second = self._data.get((given["EndpointName"], given["VariantName"]))
            rows = [(s, list(e[0]), e[1][:], e[2][:]) for s, e in per_second.items() if start <= s < end] \
                if per_second else []
        out = []
        for second, bucket, model, overhead in rows:
            stat = _stat(name, bucket, model, overhead)
            if stat is not None:
                out.append((second, stat))
        return out


def _stat(name: str, bucket: list, model: list[float], overhead: list[float]) -> Stat | None:
    n = bucket[_N]
    if name == "ModelSetupTime":
        if not bucket[_SETUP_N]:
            return None
        return Stat(bucket[_SETUP_N], bucket[_SETUP], bucket[_SETUP_MIN], bucket[_SETUP_MAX])
    if not n:
        return None
    if name == "Invocations":
        return Stat(n, n, 1.0, 1.0)
    if name in ("Invocation4XXErrors", "Invocation5XXErrors", "InvocationModelErrors"):
        errors = bucket[{"Invocation4XXErrors": _E4, "Invocation5XXErrors": _E5}.get(name, _EM)]
        return Stat(n, errors, 0.0 if errors < n else 1.0, 1.0 if errors else 0.0)
    if name == "ModelLatency":
        return Stat(n, bucket[_LAT], bucket[_LAT_MIN], bucket[_LAT_MAX], model)
    return Stat(n, bucket[_OV], bucket[_OV_MIN], bucket[_OV_MAX], overhead)
